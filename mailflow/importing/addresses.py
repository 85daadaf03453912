"""E-mail addresses: validated and normalised once, at import (no DNS lookups).

The policy (docs/inputs.md, "E-mail addresses") is the one of a shop that must be able to
deliver to the address through an ordinary SMTP relay:

- accepted: dot-atom addresses, internationalised ones (SMTPUTF8: `êjness@iana.org`,
  `伊昭傑@郵件.商務`), IDN domains in Unicode or punycode, and quoted local parts
  (`"Fred Bloggs"@example.com`; needless quotes are dropped: `"test"@x.org` → `test@x.org`);
- refused although RFC 5321 allows them: domain literals (`x@[192.0.2.1]`), domains without
  a dot or with a numeric or digit-bearing top-level label (`x@localhost`, `x@10.0.0.1`),
  special-use domains (`.test`, `.invalid`, `.local`, `.onion`…), invalid IDNA labels,
  empty local parts (`""@x.org`);
- refused as RFC 5321 says: a local part over 64 octets (UTF-8 counted, as written), and a
  quoted-pair of anything but printable ASCII (`"a\\©"@x.org`).

Whitespace around the address (line breaks included) is cell padding and is dropped, as
it is for every other cell. The normalised address keeps the local part as written and
lower-cases the domain (Unicode form for IDNs); the customer key lower-cases it all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

LOCAL_PART_MAX_OCTETS = 64
_BAD_QUOTED_PAIR = re.compile(r"\\[^\x20-\x7e]")


@dataclass(frozen=True, slots=True)
class Checked:
    email: str | None  # the normalised address, or None
    problem: str | None  # why it cannot be used: "missing_email" or "invalid_email: ..."

    @property
    def key(self) -> str | None:
        """Identity of a customer: the address, case-insensitive."""
        return self.email.lower() if self.email else None


def check_address(raw: object) -> Checked:
    """The address as mailflow stores it, or why it cannot be used. Never raises."""
    if raw is None:
        return _MISSING
    return _check(raw if isinstance(raw, str) else str(raw))


_MISSING = Checked(None, "missing_email")


# The common case, checked without email-validator (~100 µs an address, most of an import of
# a big export): a plain ASCII dot-atom at an ordinary domain. It only ever accepts, and only
# what email-validator accepts, normalised as it does (tests/test_addresses_fast.py shows it);
# anything else takes the full path.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})")
_DOUBLE_DASH = re.compile(r"(?:^|\.)[^.]{2}--")


def _plain_address(text: str) -> str | None:
    match = _PLAIN.fullmatch(text)
    if match is None or len(text) > 254 or len(match.group(1)) > LOCAL_PART_MAX_OCTETS:
        return None
    domain = _plain_domain(match.group(2))
    return None if domain is None else f"{match.group(1)}@{domain}"


@lru_cache(maxsize=1024)  # a shop's customers share a few hundred domains
def _plain_domain(domain: str) -> str | None:
    lowered = domain.lower()
    if len(lowered) > 253 or _DOUBLE_DASH.search(lowered) or _special_use(lowered):
        return None
    return lowered


_SPECIAL_USE = re.compile("(?:^|\\.)(?:" + "|".join(map(re.escape, SPECIAL_USE_DOMAIN_NAMES))
                          + ")\\Z")


def _special_use(domain: str) -> bool:
    return _SPECIAL_USE.search(domain) is not None


@lru_cache(maxsize=4096)  # bounded: memory must not grow with the export
def _check(raw: str) -> Checked:
    text = raw.strip()
    if not text:
        return _MISSING
    plain = _plain_address(text)
    if plain is not None:
        return Checked(plain, None)
    try:
        result = validate_email(
            text,
            check_deliverability=False,
            allow_smtputf8=True,
            allow_quoted_local=True,
            allow_domain_literal=False,
            allow_empty_local=False,
            allow_display_name=False,
            globally_deliverable=True,
        )
    except EmailNotValidError as exc:
        return Checked(None, f"invalid_email: {exc}")
    except (ValueError, UnicodeError) as exc:  # a validator bug must not stop an import
        return Checked(None, f"invalid_email: unreadable address ({type(exc).__name__})")
    written = text.rpartition("@")[0]
    if max(len(written.encode()), len(result.local_part.encode())) > LOCAL_PART_MAX_OCTETS:
        return Checked(None, f"invalid_email: the part before the @-sign is longer than"
                             f" {LOCAL_PART_MAX_OCTETS} bytes")
    if '"' in written and _BAD_QUOTED_PAIR.search(written):
        return Checked(None, "invalid_email: a backslash in quotes may only escape a printable"
                             " ASCII character")
    return Checked(result.normalized, None)
