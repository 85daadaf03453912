"""Cell conversions shared by every adapter; each failure names the field it came from."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import lru_cache

from mailflow.clock import parse_timestamp
from mailflow.errors import RowRejected
from mailflow.records import PAYMENT_CLASSES, STATUSES, Line, status_from_dates
from mailflow.values import clean, parse_amount, parse_consent, parse_flag, parse_quantity

__all__ = ["amount", "clean", "consent", "flag", "given_back", "line_item", "payment_class_of",
           "status_from_dates", "timestamp", "vocabulary"]

flag = parse_flag
consent = parse_consent

# Words of a payment method's name (platform code or the shop's own label, any case and
# accents) that say how it is paid. Checked in this order: "paiement à la livraison" is
# on delivery even though it says nothing of a bank.
_PAYMENT_WORDS = (
    ("on_delivery", r"cod|cash on delivery|cash_on_delivery|pay(?:ment)? on delivery|"
                    r"contre[ -]?remboursement|(?:paiement|payer|reglement) a la livraison|"
                    r"a la livraison|paiement en magasin|pay in store|pay at pickup"),
    ("offline", r"bacs|bank|banque|virement|transfer|wire|iban|cheque|check|money order|"
                r"mandat|purchase order|bon de commande|manual|invoice|facture|net \d+|"
                r"payment terms"),
    ("online", r"shopify[ _]payments|shop[ _]pay|paypal|ppcp|stripe|card|carte|credit|cb|visa|"
               r"mastercard|amex|apple pay|google pay|klarna|alma|oney|scalapay|mollie|payplug|"
               r"lyra|systempay|payzen|sumup|adyen|braintree|square|amazon|gift[ _]card|"
               r"woocommerce[ _]payments|wcpay|monetico|up2pay|e-transactions|lydia|ideal|"
               r"bancontact|sofort|giropay|sepa"),
)
_PAYMENT_PATTERNS = tuple((cls, re.compile(rf"(?<![a-z0-9])(?:{words})(?![a-z0-9])"))
                          for cls, words in _PAYMENT_WORDS)


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


def given_back(amount: str | None) -> str | None:
    """A refunded amount (docs/import.md, "Refunds"); none (`0`, `0.00`) is not said, so that
    orders never refunded keep their content hash."""
    return amount if amount and Decimal(amount) else None


def line_item(sku: object, name: object, quantity: object, price: object) -> Line:
    try:
        count = parse_quantity(quantity)
    except ValueError as exc:
        raise RowRejected(f"line quantity: {exc}") from None
    return Line(clean(sku), clean(name), count, amount(price, "line price"))


@lru_cache(maxsize=1024)
def _payment_class(text: str) -> str | None:
    plain = "".join(c for c in unicodedata.normalize("NFKD", text.lower())
                    if not unicodedata.combining(c))
    for cls, pattern in _PAYMENT_PATTERNS:
        if pattern.search(plain):
            return cls
    return None


def payment_class_of(*names: object) -> str | None:
    """How an order is paid, from its payment method's names (a code, a label): the first
    that says; None when none does (docs/import.md, "Payment classes")."""
    for name in names:
        text = clean(name)
        if text is None:
            continue
        word = text.lower().replace("-", "_")
        if word in PAYMENT_CLASSES:  # the canonical column says it in our words
            return word
        found = _payment_class(text)
        if found is not None:
            return found
    return None


def vocabulary(status: str) -> str:
    """A status already in mailflow's words (canonical exports, mappings)."""
    word = status.strip().lower().replace("-", "_").replace(" ", "_")
    if word not in STATUSES:
        raise RowRejected(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    return word
