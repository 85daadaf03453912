"""Building the message bytes: multipart/alternative, UTF-8, headers that data cannot forge."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from email.errors import HeaderDefect
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses

from mailflow.errors import ConfigError

# Header values such as List-Unsubscribe hold one long URL: fold only past RFC 5322's hard limit,
# or the policy would turn the URL into encoded-words that mail clients do not read as a link.
POLICY = SMTP.clone(max_line_length=998)
_LINE_BREAKS = re.compile(r"[\r\n\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")


def one_line(value: str) -> str:
    """Header text from data: every kind of line break and NUL becomes a space."""
    return _LINE_BREAKS.sub(" ", value).strip()


def parse_sender(value: str) -> Address:
    pairs = getaddresses([value])
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        raise ConfigError(f"sender.from {value!r}: write it like 'Shop name <hello@shop.example>'")
    name, address = pairs[0]
    local, domain = address.rsplit("@", 1)
    return Address(display_name=one_line(name), username=local, domain=domain)


def message_id(key: str, domain: str) -> str:
    """Stable for a logical message (a manual resend keeps it), unique across messages."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def build_message(*, sender: Address, to: str, to_name: str | None, subject: str, text: str,
                  html: str, msg_id: str, date: datetime, reply_to: str | None = None,
                  extra_headers: dict[str, str] | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    serialize_policy = POLICY
    try:
        recipient = Address(display_name=one_line(to_name or ""), addr_spec=to)
    except (ValueError, IndexError, HeaderDefect):
        # An internationalised mailbox (SMTPUTF8): only a UTF-8 message can carry it.
        local, domain = to.rsplit("@", 1)
        recipient = Address(display_name=one_line(to_name or ""), username=local, domain=domain)
        serialize_policy = POLICY.clone(utf8=True)
    message["To"] = recipient
    if reply_to:
        message["Reply-To"] = one_line(reply_to)
    message["Subject"] = one_line(subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = msg_id
    message["Auto-Submitted"] = "auto-generated"
    for name, value in (extra_headers or {}).items():
        message[name] = one_line(value)
    message.set_content(text, charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message.as_bytes(policy=serialize_policy)
