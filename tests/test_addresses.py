"""`check_address` against public e-mail address corpora (tests/fixtures/email, SOURCES.md).

What "valid for mail" means per corpus:

- isemail `tests.xml` and `tests-original.xml` (Dominic Sayers' is_email): a test is valid
  when its category is below is_email's own threshold of 16, i.e. ISEMAIL_VALID_CATEGORY (1),
  ISEMAIL_DNSWARN (7) or ISEMAIL_RFC5321 (15): usable in an SMTP envelope. CFWS (31),
  DEPREC (63), RFC5322 (127) and ERR (255) are invalid for mail. Control characters are
  written there as U+2400+n and are mapped back to U+0000+n before checking.
- skeggse `tests.json` (the JavaScript port): the same threshold by diagnosis name: `valid`,
  `dnsWarn*` and `rfc5321*` are valid; `cfws*`, `deprecated*`, `rfc5322*` and `err*` are not
  (`deprecatedIPv6` is a deprecated domain literal there).

Every address a corpus calls valid is accepted, and every one it calls invalid is refused with
a reason, except the cases below, which are deliberate (docs/inputs.md, "E-mail addresses"):

- REFUSED_THOUGH_VALID: addresses RFC 5321 allows but a shop cannot sensibly send to
  (domain literals, domains without a dot, numeric or digit-bearing top-level labels, an
  invalid punycode label, an empty quoted local part, an emoji domain IDNA 2008 forbids, an
  unassigned code point). Each is listed with its reason; a listed address that the corpus
  does not hold, or that gets accepted, fails the test.
- Whitespace around an address, line breaks included, is cell padding, as for every other
  cell of an export: a padded address is judged as the address inside (`" a@b.org\\r\\n"` is
  `a@b.org`). The corpora call these invalid (folding whitespace, CR without LF…); the
  padded cases are counted so that the exception cannot grow unnoticed.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailflow.importing.addresses import check_address

CORPORA = Path(__file__).parent / "fixtures" / "email"
VALID_CATEGORIES = {"ISEMAIL_VALID_CATEGORY", "ISEMAIL_DNSWARN", "ISEMAIL_RFC5321"}
VALID_DIAGNOSIS_PREFIXES = ("valid", "dnsWarn", "rfc5321")


@dataclass(frozen=True)
class Case:
    corpus: str
    id: str
    address: str
    diagnosis: str
    valid: bool

    def __str__(self) -> str:
        return f"{self.corpus}#{self.id} {self.diagnosis} {self.address!r}"


def _control_chars_back(text: str) -> str:
    return "".join(chr(ord(c) - 0x2400) if 0x2400 <= ord(c) < 0x2420 else c for c in text)


def _isemail(name: str) -> list[Case]:
    cases = []
    for test in ET.parse(CORPORA / name).getroot().iter("test"):
        address = _control_chars_back(test.findtext("address") or "")
        category = test.findtext("category") or ""
        cases.append(Case(name, test.get("id") or "?", address, test.findtext("diagnosis") or "",
                          category in VALID_CATEGORIES))
    return cases


def _skeggse() -> list[Case]:
    pairs = json.loads((CORPORA / "skeggse_isemail_tests.json").read_text(encoding="utf-8"))
    return [Case("skeggse", str(i), address, diagnosis,
                 diagnosis.startswith(VALID_DIAGNOSIS_PREFIXES))
            for i, (address, diagnosis) in enumerate(pairs, 1)]


CASES = [*_isemail("isemail_tests.xml"), *_isemail("isemail_tests-original.xml"), *_skeggse()]

_DOTLESS = "a top-level domain alone (no dot) has no mail server a shop can reach"
_NUMERIC_TLD = "no top-level domain is numeric: this is an IP address or a typo, not a domain"
_DIGIT_TLD = "top-level domains are letters only (ICANN): this domain cannot exist"
REFUSED_THOUGH_VALID: dict[str, str] = {
    "test@io": _DOTLESS,
    "test@org": _DOTLESS,
    "first.last@com": _DOTLESS,
    "test@example": _DOTLESS,
    "a@b": _DOTLESS,
    "a@bar": _DOTLESS,
    "test@iana.123": _NUMERIC_TLD,
    "test@255.255.255.255": _NUMERIC_TLD,
    "first.last@example.123": _NUMERIC_TLD,
    "test@123.123.123.123": _NUMERIC_TLD,
    "foobar@192.168.0.1": _NUMERIC_TLD,
    "x@" + ".".join(["x23456789"] * 25) + ".x2": _DIGIT_TLD,
    "test@123.123.123.x123": _DIGIT_TLD,
    "test@xn--example.com": "`xn--example` is not a valid punycode (IDNA) label: no such domain"
                            " can be registered",
    '""@iana.org': "an empty mailbox name: no customer has one, and it reads as a missing address",
    "test@" + "\U0001f606" * 17 + ".org": "emoji are not allowed in domain names by IDNA 2008, which"
                                         " mail systems follow",
    "test@\U000103ff" + "ñoñó郵件ñoñó郵件." + "郵件ñoñó郵件ñoñó郵件." + "ñoñó郵件ñoñó郵件." * 5
    + "noñó郵件.商務": "U+103FF is an unassigned code point: not a usable domain name",
}
DOMAIN_LITERAL_REASON = ("a bracketed IP address (`x@[192.0.2.1]`) bypasses DNS and MX records: no"
                         " shop customer has one, and sending to raw IPs looks like spam")
# The padded cases per corpus: a change here means the corpus or the policy changed.
PADDED_COUNTS = {"isemail_tests.xml": 25, "isemail_tests-original.xml": 2, "skeggse": 31}


def _is_domain_literal(case: Case) -> bool:
    return case.address.rpartition("@")[2].startswith("[")


def _is_padded(case: Case) -> bool:
    return case.address != case.address.strip()


def _refused_on_purpose(case: Case) -> bool:
    return case.address in REFUSED_THOUGH_VALID or _is_domain_literal(case)


VALID = [c for c in CASES if c.valid and not _refused_on_purpose(c)]
INVALID = [c for c in CASES if not c.valid and not _is_padded(c)]
PADDED = [c for c in CASES if not c.valid and _is_padded(c)]
LISTED = [c for c in CASES if c.valid and _refused_on_purpose(c)]


def test_corpora_are_read_whole():
    counts = {corpus: sum(c.corpus == corpus for c in CASES) for corpus in PADDED_COUNTS}
    assert counts == {"isemail_tests.xml": 164, "isemail_tests-original.xml": 279, "skeggse": 210}
    assert any("\x00" in c.address for c in CASES)  # U+2400 mapped back to NUL
    assert any("\r\n" in c.address for c in CASES)


@pytest.mark.parametrize("case", VALID, ids=str)
def test_address_valid_for_mail_is_accepted(case: Case):
    checked = check_address(case.address)
    assert checked.problem is None, checked.problem
    assert checked.email


@pytest.mark.parametrize("case", INVALID, ids=str)
def test_address_invalid_for_mail_is_refused_with_a_reason(case: Case):
    checked = check_address(case.address)
    assert checked.email is None
    if case.address.strip():
        assert checked.problem.startswith("invalid_email: ")
        assert len(checked.problem) > len("invalid_email: ") + 10
    else:
        assert checked.problem == "missing_email"


@pytest.mark.parametrize("case", LISTED, ids=str)
def test_listed_exception_is_refused_with_a_reason(case: Case):
    reason = REFUSED_THOUGH_VALID.get(case.address) or DOMAIN_LITERAL_REASON
    checked = check_address(case.address)
    assert checked.email is None, f"listed as refused: {reason}"
    assert checked.problem.startswith("invalid_email: ")


def test_every_listed_exception_is_in_a_corpus_as_valid():
    corpus_valid = {c.address for c in CASES if c.valid}
    assert sorted(set(REFUSED_THOUGH_VALID) - corpus_valid) == []
    assert sum(_is_domain_literal(c) for c in LISTED) == 45


def test_padded_address_is_judged_without_its_padding():
    assert {corpus: sum(c.corpus == corpus for c in PADDED) for corpus in PADDED_COUNTS} == \
        PADDED_COUNTS
    for case in PADDED:
        assert check_address(case.address) == check_address(case.address.strip()), case
    assert check_address(" test@iana.org\r\n").email == "test@iana.org"


# -- normalisation -----------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "email", "key"), [
    ("Zoe.Martin@Example.COM", "Zoe.Martin@example.com", "zoe.martin@example.com"),
    ("user@Bücher.DE", "user@bücher.de", "user@bücher.de"),
    ("user@XN--BCHER-KVA.de", "user@bücher.de", "user@bücher.de"),
    ("x@ｅｘａｍｐｌｅ.com", "x@example.com", "x@example.com"),
    ("Zoé@exämple.fr", "Zoé@exämple.fr", "zoé@exämple.fr"),
    ('"test"@iana.org', "test@iana.org", "test@iana.org"),
    ('"Fred Bloggs"@iana.org', '"Fred Bloggs"@iana.org', '"fred bloggs"@iana.org'),
    ("  ana@example.com\t", "ana@example.com", "ana@example.com"),
])
def test_address_is_normalised(raw: str, email: str, key: str):
    checked = check_address(raw)
    assert (checked.email, checked.key, checked.problem) == (email, key, None)


@pytest.mark.parametrize(("raw", "says"), [
    ("ana@boutique.test", "special-use"),
    ("ana@localhost", "period"),
    ("a" * 65 + "@example.com", "longer than 64 bytes"),
    ("é" * 33 + "@example.com", "longer than 64 bytes"),
    ('"a\\©"@example.com', "printable ASCII"),
    ("Ana <ana@example.com>", ""),
])
def test_undeliverable_address_is_refused(raw: str, says: str):
    checked = check_address(raw)
    assert checked.email is None and checked.problem.startswith("invalid_email: ")
    assert says in checked.problem


@pytest.mark.parametrize("raw", [None, "", "   ", "\r\n"])
def test_no_address_is_missing_not_invalid(raw: str | None):
    assert check_address(raw).problem == "missing_email"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text().map(lambda s: s + "@" + s), st.integers(), st.none(),
                 st.lists(st.text(), max_size=2), st.binary(max_size=20)))
def test_check_address_never_raises_and_is_stable(raw: object):
    checked = check_address(raw)
    assert (checked.email is None) != (checked.problem is None)
    if checked.email is not None:
        assert check_address(checked.email) == checked
