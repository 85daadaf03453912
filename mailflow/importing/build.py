"""Cell conversions shared by every adapter; each failure names the field it came from."""

from __future__ import annotations

from datetime import datetime, tzinfo

from mailflow.clock import parse_timestamp
from mailflow.errors import RowRejected
from mailflow.importing.records import STATUSES, Line
from mailflow.values import clean, parse_amount, parse_flag, parse_quantity

__all__ = ["amount", "clean", "flag", "line_item", "status_from_dates", "timestamp", "vocabulary"]

flag = parse_flag


def timestamp(value: object, field: str, tz: tzinfo) -> datetime | None:
    try:
        return parse_timestamp(None if value is None else str(value), tz)
    except ValueError as exc:
        raise RowRejected(f"{field}: {exc}") from None


def required_timestamp(value: object, field: str, tz: tzinfo) -> datetime:
    moment = timestamp(value, field, tz)
    if moment is None:
        raise RowRejected(f"{field} is empty")
    return moment


def amount(value: object, field: str) -> str | None:
    try:
        return parse_amount(value)
    except ValueError as exc:
        raise RowRejected(f"{field}: {exc}") from None


def line_item(sku: object, name: object, quantity: object, price: object) -> Line:
    try:
        count = parse_quantity(quantity)
    except ValueError as exc:
        raise RowRejected(f"line quantity: {exc}") from None
    return Line(clean(sku), clean(name), count, amount(price, "line price"))


def vocabulary(status: str) -> str:
    """A status already in mailflow's words (canonical exports, mappings)."""
    word = status.strip().lower().replace("-", "_").replace(" ", "_")
    if word not in STATUSES:
        raise RowRejected(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    return word


def status_from_dates(paid: object, shipped: object, delivered: object, cancelled: object) -> str:
    """When an export gives no status, the furthest step its dates show."""
    if cancelled:
        return "cancelled"
    if delivered:
        return "delivered"
    if shipped:
        return "shipped"
    if paid:
        return "paid"
    return "pending_payment"
