"""Cell values as shops really write them: amounts, quantities, yes/no flags."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

_AMOUNT_NOISE = str.maketrans("", "", " \u00a0\u202f'€$£¥")
_TRUE = {"yes", "true", "1", "y", "oui", "vrai", "subscribed", "opted_in", "x"}
_FALSE = {"no", "false", "0", "n", "non", "faux", "unsubscribed", "not_subscribed", "opted_out"}


def clean(value: object) -> str | None:
    """Text of a cell; None for an empty cell, `""`, or JSON null."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_amount(value: object) -> str | None:
    """A money amount as a plain decimal string (`12,50` → `12.50`); ValueError if unreadable.

    Decimal commas: with only one kind of separator, a single one is the decimal mark and
    repeated ones group thousands; with both, the last one is the decimal mark.
    """
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(Decimal(str(value)))
    text = clean(value)
    if text is None:
        return None
    text = text.translate(_AMOUNT_NOISE)
    for code in ("EUR", "USD", "GBP", "CHF", "CAD"):
        text = text.replace(code, "")
    if "," in text and "." in text:
        if text.rfind(",") > text.rfind("."):
            text = text.replace(".", "").replace(",", ".")
        else:
            text = text.replace(",", "")
    elif text.count(",") == 1:
        text = text.replace(",", ".")
    elif text.count(",") > 1 or text.count(".") > 1:
        text = text.replace(",", "").replace(".", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"unreadable amount {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"unreadable amount {value!r}")
    return str(amount)


def parse_quantity(value: object) -> int:
    """A line quantity; empty means 1."""
    text = clean(value)
    if text is None:
        return 1
    try:
        number = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"unreadable quantity {value!r}") from None
    if number != number.to_integral_value():
        raise ValueError(f"quantity {value!r} is not a whole number")
    return int(number)


def parse_flag(value: object) -> bool | None:
    """yes/no/true/false/1/0 (and French) → bool; empty or unknown → None (consent unknown)."""
    if isinstance(value, bool):
        return value
    text = clean(value)
    if text is None:
        return None
    return True if text.lower() in _TRUE else False if text.lower() in _FALSE else None
