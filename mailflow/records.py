"""The vocabulary every stage shares: the records an export becomes, the statuses of an
order and of a message, what a decision does, and the exit codes.

Adapters yield the records (or raise RowRejected for a row that cannot be used); the import
service validates addresses and hands them to the store. Amounts are decimal strings,
times are aware datetimes (UTC), order statuses come from STATUSES.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import IntEnum, StrEnum

STATUSES = (
    "pending_payment",
    "paid",
    "awaiting_stock",
    "in_preparation",
    "shipped",
    "at_pickup_point",
    "delivered",
    "invoiced",
    "cancelled",
    "refunded",
    "failed",
)

KINDS = ("orders", "carts", "customers", "unsubscribes", "products")
# Not a status but a status event: an order that got part of its money back keeps its status
# (paid, shipped…), and this event records the partial refund for `order.refunded` rules.
PARTIALLY_REFUNDED = "partially_refunded"
# How far an order has gone on its way to the customer (cancelled, refunded and failed are
# ends of their own): what moves a stored order on, and what makes an e-mail superseded.
STATUS_PROGRESS = {"pending_payment": 0, "paid": 1, "awaiting_stock": 2, "in_preparation": 2,
                   "invoiced": 3, "shipped": 4, "at_pickup_point": 5, "delivered": 6}


class ExitCode(IntEnum):
    """The same for every command (README, "Exit codes"): scripts may rely on them."""

    OK = 0  # done, including "nothing to do"
    ATTENTION = 1  # done, but something needs a human
    USAGE = 2  # bad usage, config or file, or a --db mailflow cannot use: nothing changed
    BLOCKED = 3  # delivery blocked: nothing lost, due mail stays queued
    UNAVAILABLE = 4  # the database busy, the disk full, a shop's API down: try again later
    INTERRUPTED = 130


class OutboxStatus(StrEnum):
    """Where a message is (the outbox's `status`, and the `status` of `send`'s report)."""

    QUEUED = "queued"  # to send, when its turn comes
    DEFERRED = "deferred"  # waits (quiet hours, stale data, an SMTP 4xx) until next_attempt_at
    SENDING = "sending"  # claimed by a run; one its run left becomes unknown
    SENT = "sent"
    SKIPPED = "skipped"  # never sent, for its reason
    FAILED = "failed"
    UNKNOWN = "unknown"  # maybe delivered: never resent by itself
    WOULD_SEND = "would_send"  # only in a dry run's report, never stored


class Action(StrEnum):
    """What a decision does with a message."""

    SEND = "send"
    SKIP = "skip"
    DEFER = "defer"
    FAIL = "fail"

    @property
    def records(self) -> OutboxStatus:
        """The outbox status a decision with this action records."""
        return _RECORDED_AS[self]


_RECORDED_AS = {Action.SEND: OutboxStatus.QUEUED, Action.SKIP: OutboxStatus.SKIPPED,
                Action.DEFER: OutboxStatus.DEFERRED, Action.FAIL: OutboxStatus.FAILED}


def status_from_dates(paid: object, shipped: object, delivered: object, cancelled: object) -> str:
    """When a source gives no status, the furthest step its dates show."""
    if cancelled:
        return "cancelled"
    if delivered:
        return "delivered"
    if shipped:
        return "shipped"
    if paid:
        return "paid"
    return "pending_payment"

# How an order is paid, whatever the platform calls its payment method (docs/import.md):
# online at checkout (card, PayPal…), offline before shipping (bank transfer, cheque,
# purchase order), or on delivery (cash on delivery). None: the export does not say.
PAYMENT_CLASSES = ("online", "offline", "on_delivery")

# Every field of an order a source may carry: a record whose `carried` names fewer only
# updates those on a stored order (a partial update never wipes the rest).
UPDATABLE_FIELDS = (
    "email", "first_name", "last_name", "locale", "accepts_marketing", "status", "created_at",
    "paid_at", "shipped_at", "delivered_at", "cancelled_at", "currency", "subtotal",
    "shipping", "tax", "discount", "total", "payment_method", "payment_class",
    "shipping_method", "tracking_number", "tracking_url", "carrier", "pickup_point",
    "shipping_address", "platform_id", "partially_shipped", "refunded_amount", "lines",
)


@dataclass(slots=True)
class Line:
    sku: str | None
    name: str | None
    quantity: int
    price: str | None
    # whether the whole line has left the warehouse: True shipped, False not (or only part
    # of its quantity), None: the source does not say (order lines only)
    shipped: bool | None = None


@dataclass(slots=True)
class Order:
    order_id: str
    line: int  # where the order starts in the file (1-based), for messages
    email: str | None
    status: str
    created_at: datetime | None  # None only in a partial update of a stored order
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    accepts_marketing: bool | None = None
    paid_at: datetime | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    cancelled_at: datetime | None = None
    status_at: datetime | None = None  # when the export says it entered `status`, if it says
    currency: str | None = None
    subtotal: str | None = None
    shipping: str | None = None
    tax: str | None = None
    discount: str | None = None
    total: str | None = None
    payment_method: str | None = None
    payment_class: str | None = None  # one of PAYMENT_CLASSES, or None: not known
    shipping_method: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    carrier: str | None = None
    pickup_point: str | None = None
    shipping_address: str | None = None
    platform_id: str | None = None  # the platform's own numeric id, when it differs
    # when the platform last changed it (an API's or webhook's `updated_at`): an older
    # version arriving after a newer one (webhooks may come out of order) changes nothing
    changed_at: datetime | None = None
    # the platform's own word that only part of the order has left (Shopify `partial`,
    # WooCommerce `partial-shipped`): True, False (not partial), None: it does not say
    partially_shipped: bool | None = None
    refunded_amount: str | None = None  # the money given back so far; None: not said
    refunded_at: datetime | None = None  # when the last refund was made, if the export says
    # the platform's own word that part of the money went back (Shopify `partially_refunded`)
    partially_refunded: bool | None = None
    email_raw: str | None = None  # set by the import service after validation
    email_key: str | None = None
    email_problem: str | None = None
    lines: list[Line] = field(default_factory=list)
    carried: frozenset[str] | None = None  # the UPDATABLE_FIELDS the source carries; None: all


@dataclass(slots=True)
class Cart:
    cart_id: str
    line: int
    email: str | None
    created_at: datetime
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    order_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    accepts_marketing: bool | None = None
    currency: str | None = None
    total: str | None = None
    recovery_url: str | None = None
    email_raw: str | None = None  # set by the import service after validation
    email_key: str | None = None
    email_problem: str | None = None
    lines: list[Line] = field(default_factory=list)


@dataclass(slots=True)
class Customer:
    email: str | None
    line: int
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    accepts_marketing: bool | None = None
    created_at: datetime | None = None


@dataclass(slots=True)
class Unsubscribe:
    email: str | None
    line: int
    at: datetime | None = None


@dataclass(slots=True)
class Fulfillment:
    """A shipment reported on its own (Shopify fulfillment JSON) for an order already stored."""

    platform_order_id: str
    line: int
    shipped_at: datetime | None
    tracking_number: str | None = None
    tracking_url: str | None = None
    carrier: str | None = None
    # where the carrier's last word (Shopify `shipment_status`) puts the order:
    # delivered or at_pickup_point; None: still on its way
    shipment_status: str | None = None
    status_at: datetime | None = None  # when it said so
    # what the parcel holds: (sku, name, quantity) of each of the order's lines it carries
    items: list[tuple[str | None, str | None, int]] = field(default_factory=list)


def partly_refunded(o: Order) -> bool:
    """Part of the order's money went back and the order goes on (a full refund, a
    cancellation or a failed payment has its own status)."""
    if o.status in ("refunded", "cancelled", "failed"):
        return False
    if o.partially_refunded:
        return True
    if not o.refunded_amount:  # most orders: nothing went back
        return False
    try:
        amount = Decimal(o.refunded_amount)
        return amount > 0 and (o.total is None or amount < Decimal(o.total))
    except InvalidOperation:
        return False


@dataclass(slots=True)
class Product:
    """One thing the shop sells, from its catalogue export (one variant of a Shopify product).
    `key` is what order lines name it by: its SKU, else the name a line item shows."""

    key: str
    line: int
    name: str
    sku: str | None = None
    url: str | None = None  # absolute, or a path from the shop's root (/products/<handle>)
    image: str | None = None
    price: str | None = None
    currency: str | None = None
    available: bool = True  # published and for sale: only those are ever suggested


Record = Order | Cart | Customer | Unsubscribe | Fulfillment | Product


@dataclass(slots=True)
class Rejected:
    """A row (or a record spanning rows) that cannot be used: `FILE:LINE: reason`."""

    line: int | None
    reason: str


def eml_name(key: str) -> str:
    """The file the `file` transport writes for a message key, and purge removes: readable,
    and unique (keys that differ only in punctuation, `#1001` and `_1001`, must not
    overwrite each other)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9@._-]+', '_', key)[:170]}-{digest}.eml"
