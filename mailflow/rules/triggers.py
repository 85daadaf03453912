"""Every trigger a rule may name in `on:`, and every condition `skip_if:` may list, once.

A trigger says which query of the store selects its instances, what its messages are about,
its default `skip_if`, and what else its messages wait for. config.py validates rules.yaml
against these two tables, the planner asks them, and a name that is in neither raises.
Adding a trigger is one entry in TRIGGERS (and one query in store/outbox.py if it selects
something none selects yet) and one test in tests/test_triggers.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mailflow.clock import from_iso
from mailflow.records import PARTIALLY_REFUNDED, STATUS_PROGRESS, STATUSES
from mailflow.store import Store
from mailflow.store.outbox import Selection

# An order paid this soon after it was placed was paid at checkout (card, PayPal): its
# confirmation says so, and a separate "payment received" would be noise.
PAID_WHEN_PLACED = timedelta(minutes=15)


@dataclass(frozen=True)
class Condition:
    """A reason a due message is skipped, re-checked at the moment of sending."""

    name: str
    about: str  # the subject it looks at: `order` or `cart`; for any other it never holds
    # (store, subject, recipient's e-mail key, the status the message's instance entered:
    # the trigger's, or `partially_refunded` for a partial refund's)
    holds: Callable[[Store, dict[str, Any], str | None, str | None], bool]


def _order_completed(store: Store, cart: dict[str, Any], email_key: str | None,
                     _step: str | None) -> bool:
    # an order awaiting an offline payment counts: it gets its own rule, not a reminder
    return bool(cart.get("completed_at") or cart.get("order_id")
                or (email_key and store.ordered_since(email_key, cart["created_at"])))


def _paid_when_placed(store: Store, order: dict[str, Any], email_key: str | None,
                      _step: str | None) -> bool:
    paid, created = from_iso(order.get("paid_at")), from_iso(order.get("created_at"))
    if paid and created:
        return paid - created <= PAID_WHEN_PLACED
    # paid when first seen, no payment time: paid at checkout, not news to anyone
    return store.status_event_source(order["id"], "paid") == "inferred"


# A refund this soon after the cancellation came with it: the cancellation e-mail already
# says the money goes back.
REFUNDED_ON_CANCELLING = timedelta(minutes=15)


def _refunded_with_cancellation(store: Store, order: dict[str, Any], _email_key: str | None,
                                step: str | None) -> bool:
    if step != "refunded" or order["status"] != "refunded":
        return False
    cancelled = from_iso(store.status_event_time(order["id"], "cancelled"))
    refunded = from_iso(store.status_event_time(order["id"], "refunded"))
    return bool(cancelled and refunded and refunded - cancelled <= REFUNDED_ON_CANCELLING)


def _refunded_in_full(_store: Store, order: dict[str, Any], _email_key: str | None,
                      step: str | None) -> bool:
    """A partial refund's e-mail, once the order was refunded in full: the full refund's
    e-mail (or the cancellation's) is the news, and a partial one would say the wrong thing."""
    return step == PARTIALLY_REFUNDED and order["status"] == "refunded"


def _payment_recovered(store: Store, order: dict[str, Any], email_key: str | None,
                       _step: str | None) -> bool:
    """The failed payment went through after all, or the customer ordered again since."""
    return order["status"] != "failed" or bool(
        email_key and store.ordered_again(email_key, order["id"], order["created_at"]))


def _superseded(_store: Store, order: dict[str, Any], _email_key: str | None,
                step: str | None) -> bool:
    """The order went further than the step its e-mail is about."""
    return STATUS_PROGRESS.get(order["status"], -1) > STATUS_PROGRESS.get(step or "", 99)


CONDITIONS: dict[str, Condition] = {c.name: c for c in (
    Condition("order_completed", "cart", _order_completed),
    Condition("order_paid", "order",
              lambda _, order, __, ___: order["status"] != "pending_payment"),
    Condition("order_cancelled", "order",
              lambda _, order, __, ___: order["status"] in ("cancelled", "refunded")),
    Condition("paid_when_placed", "order", _paid_when_placed),
    Condition("pay_on_delivery", "order",
              lambda _, order, __, ___: order.get("payment_class") == "on_delivery"),
    Condition("online_payment", "order",
              lambda _, order, __, ___: order.get("payment_class") == "online"),
    # a step whose news the next one carries: no "shipped" for a parcel already delivered
    Condition("superseded", "order", _superseded),
    Condition("refunded_with_cancellation", "order", _refunded_with_cancellation),
    Condition("refunded_in_full", "order", _refunded_in_full),
    Condition("payment_recovered", "order", _payment_recovered),
)}


@dataclass(frozen=True)
class Trigger:
    name: str
    selects: Selection  # the store's query of its instances
    subject: str  # what its messages are about: order, cart or customer
    skip_if: tuple[str, ...] = ()  # the default conditions (a rule's `skip_if:` replaces them)
    status: str | None = None  # order.<status>: the status the order entered
    # deferred `awaiting_payment` while the order's online payment is under way or failed
    waits_for_payment: bool = False
    # deferred `stale_data` while the newest orders import is older than max_data_age
    needs_fresh_orders: bool = False
    needs_after: bool = False  # a rule on it must say `after`
    may_assume_delivery: bool = False  # a rule on it may set assume_delivered_after


# order.<status> defaults, where they differ from "not once the order is cancelled"
_STATUS_SKIP_IF = {
    # the payment instructions, only for a payment the customer still has to make
    "pending_payment": ("order_paid", "order_cancelled", "pay_on_delivery", "online_payment"),
    # a card order's confirmation already says it is paid; an online payment that came later
    # made the confirmation wait for it, and it says so too
    "paid": ("paid_when_placed", "order_cancelled", "pay_on_delivery", "online_payment"),
    "cancelled": (),
    # the cancellation e-mail of an order cancelled and refunded at once says both; a partial
    # refund not sent yet when the rest followed is said by the full refund's e-mail
    "refunded": ("refunded_with_cancellation", "refunded_in_full"),
    # no "payment failed" once it went through, nor to who ordered again since
    "failed": ("order_cancelled", "payment_recovered"),
    **{status: ("order_cancelled", "superseded") for status in (
        "awaiting_stock", "in_preparation", "invoiced", "shipped", "at_pickup_point")},
}


def _entered(status: str) -> Trigger:
    # refunded: in full (the status) or in part (the order keeps its status)
    selects = Selection.REFUNDS if status == "refunded" else Selection.STATUS_ENTERED
    return Trigger(f"order.{status}", selects, "order",
                   _STATUS_SKIP_IF.get(status, ("order_cancelled",)), status=status,
                   may_assume_delivery=status == "delivered")


TRIGGERS: dict[str, Trigger] = {t.name: t for t in (
    Trigger("cart.abandoned", Selection.CART_EPISODES, "cart", ("order_completed",),
            needs_fresh_orders=True),
    Trigger("order.placed", Selection.ORDERS_PLACED, "order", ("order_cancelled",),
            waits_for_payment=True),
    *(_entered(status) for status in STATUSES),
    Trigger("customer.created", Selection.CUSTOMERS_CREATED, "customer"),
    Trigger("customer.inactive", Selection.CUSTOMERS_LAST_ORDER, "customer", needs_after=True),
)}


class NotRegistered(LookupError):
    """A trigger or condition that is in neither table (rules.yaml is checked against them:
    only a Rule made in code can get here)."""


def trigger(name: str) -> Trigger:
    try:
        return TRIGGERS[name]
    except KeyError:
        raise NotRegistered(f"unknown trigger {name!r}: not in rules/triggers.py") from None


def condition(name: str) -> Condition:
    try:
        return CONDITIONS[name]
    except KeyError:
        raise NotRegistered(f"unknown condition {name!r}: not in rules/triggers.py") from None
