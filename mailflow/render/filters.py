"""Money and dates as a customer reads them, in the message's locale and the shop's timezone."""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency

from mailflow.values import to_decimal

__all__ = ["Formatter", "line_total", "normalize_locale", "to_decimal"]


def normalize_locale(value: str | None) -> str | None:
    """`fr_FR`, `fr-fr`, `FR` → `fr`: the language is what picks a template and a format."""
    if not value:
        return None
    return value.replace("-", "_").split("_")[0].strip().lower() or None


@lru_cache(maxsize=64)
def babel_locale(code: str) -> Locale:
    try:
        return Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


@lru_cache(maxsize=4096)
def _currency(amount: Decimal, currency: str, locale: Locale) -> str:
    # babel takes ~0.1 ms a call, and a shop's prices repeat from one e-mail to the next
    return format_currency(amount, currency, locale=locale)


class Formatter:
    """The filters of one message: bound to its locale, currency and the shop's timezone."""

    def __init__(self, locale: str, currency: str, tz: tzinfo) -> None:
        self.locale = babel_locale(locale)
        self.currency = currency
        self.tz = tz

    def money(self, value: object, currency: str | None = None) -> str:
        amount = to_decimal(value)
        if amount is None:
            return ""
        return _currency(amount, currency or self.currency, self.locale)

    def date(self, value: datetime | None, format: str = "long") -> str:
        if value is None:
            return ""
        return format_date(value.astimezone(self.tz), format=format, locale=self.locale)

    def datetime(self, value: datetime | None, format: str = "medium") -> str:
        if value is None:
            return ""
        return format_datetime(value, format=format, tzinfo=self.tz, locale=self.locale)


def line_total(line: dict) -> Decimal | None:
    price = to_decimal(line.get("price"))
    return None if price is None else price * int(line.get("quantity") or 1)
