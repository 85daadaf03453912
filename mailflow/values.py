"""Cell values as shops really write them: amounts, quantities, yes/no flags."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_AMOUNT_NOISE = str.maketrans("", "", " \u00a0\u202f'€$£¥")
_CURRENCY_CODES = ("EUR", "USD", "GBP", "CHF", "CAD")
# At most one separator: it is the decimal mark (`12,50`, `12.50`, `1234`).
_PLAIN = re.compile(r"([+-]?)(\d*)(?:[.,](\d*))?", re.ASCII)
# Thousands grouped by one separator, then maybe a decimal part after the other one
# (`1.234,56`, `1,234,567.89`, `1.234.567`).
_GROUPED = re.compile(r"([+-]?)(\d{1,3}([.,])\d{3}(?:\3\d{3})*)(?:(?!\3)[.,](\d*))?", re.ASCII)
_QUANTITY = re.compile(r"([+-]?\d{1,18})(?:[.,]0*)?", re.ASCII)
_TRUE = {"yes", "true", "1", "y", "oui", "vrai", "subscribed", "opted_in", "x"}
_FALSE = {"no", "false", "0", "n", "non", "faux", "unsubscribed", "not_subscribed", "opted_out"}


def clean(value: object) -> str | None:
    """Text of a cell; None for an empty cell, `""`, or JSON null."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def to_decimal(value: object) -> Decimal | None:
    """A stored amount as a Decimal; None when empty or not a number."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def parse_amount(value: object) -> str | None:
    """A money amount as a plain decimal string (`12,50` → `12.50`); ValueError if unreadable.

    Spaces (also non-breaking), apostrophes and currency signs or codes are ignored. A single
    separator, `,` or `.`, is the decimal mark; a separator that repeats, or comes before the
    other one, groups thousands (`1 234,56`, `1.234,56`, `1,234.56`). No exponents.
    """
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        amount = Decimal(str(value))
        if not amount.is_finite():
            raise ValueError(f"unreadable amount {value!r}")
        return format(amount, "f")
    text = clean(value)
    if text is None:
        return None
    text = text.translate(_AMOUNT_NOISE)
    if text[-3:].isalpha() or text[:3].isalpha():
        for code in _CURRENCY_CODES:
            text = text.replace(code, "")
    match = _PLAIN.fullmatch(text)
    if match:
        sign, whole, fraction = match.groups()
    else:
        match = _GROUPED.fullmatch(text)
        if not match:
            raise ValueError(f"unreadable amount {value!r}")
        sign, whole, mark, fraction = match.groups()
        whole = whole.replace(mark, "")
    if not (whole or fraction):
        raise ValueError(f"unreadable amount {value!r}")
    number = f"{sign}{whole or '0'}.{fraction}" if fraction else f"{sign}{whole}"
    return str(Decimal(number))


def parse_quantity(value: object) -> int:
    """A line quantity, a whole number (`2`, `2.0`, `2,00`); empty means 1."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18:
        return value
    text = clean(value)
    if text is None:
        return 1
    match = _QUANTITY.fullmatch(text)
    if not match:
        if text.lstrip("+-").isdigit():
            raise ValueError(f"quantity {value!r} is too large")
        raise ValueError(f"quantity {value!r} is not a whole number")
    return int(match.group(1))


def parse_consent(value: object) -> bool | None:
    """Marketing consent: yes-words (and `subscribed`) → True; empty → None (unknown);
    anything else → False. An answer we cannot read is no consent: `pending` (double
    opt-in not confirmed), `invalid`, `redacted` are states of Shopify's consent, not a yes."""
    if isinstance(value, bool):
        return value
    text = clean(value)
    if text is None:
        return None
    return text.lower() in _TRUE


def parse_flag(value: object) -> bool | None:
    """yes/no/true/false/1/0 (and French) → bool; empty or unknown → None (consent unknown)."""
    if isinstance(value, bool):
        return value
    text = clean(value)
    if text is None:
        return None
    return True if text.lower() in _TRUE else False if text.lower() in _FALSE else None
