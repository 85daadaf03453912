"""A platform's webhook event, kept by `serve`, as the records a file or a pull would give.

Shopify's and WooCommerce's webhooks carry the same JSON as their REST APIs (an order, a
fulfillment, a checkout, a customer): each goes through the adapter that reads that JSON
in an export. Topics mailflow has no use for are kept and marked as ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from mailflow.errors import RowRejected
from mailflow.importing import build, shopify, woocommerce
from mailflow.importing.service import ImportReport, merge_reports, write_records
from mailflow.records import Customer, Record, Rejected
from mailflow.store import Store

Reader = Callable[[dict, int, tzinfo], Record]


@dataclass(frozen=True)
class _Context:  # what the WooCommerce adapter reads from a file's ParseContext
    tz: tzinfo
    now: datetime
    name: str = "webhook"


_SHOPIFY_READERS: dict[str, Reader] = {
    "orders": shopify._json_order, "fulfillments": shopify._json_fulfillment,
    "checkouts": shopify._json_cart, "customers": shopify._json_customer}


def _shopify_reader(topic: str) -> Reader | None:
    return _SHOPIFY_READERS.get(topic.split("/", 1)[0])


def _woo_customer(item: dict, line: int, tz: tzinfo) -> Customer:
    billing: dict = item["billing"] if isinstance(item.get("billing"), dict) else {}
    return Customer(
        email=build.clean(item.get("email")) or build.clean(billing.get("email")), line=line,
        first_name=build.clean(item.get("first_name")), last_name=build.clean(item.get("last_name")),
        created_at=build.timestamp(item.get("date_created_gmt"), "date_created_gmt", tz))


def records_of(platform: str, topic: str | None, body: bytes, tz: tzinfo,
               now: datetime) -> tuple[list[Record | Rejected], str]:
    """(records, outcome) of one event: outcome `imported`, `ignored: …` or `rejected: …`."""
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return [], f"rejected: not JSON ({exc})"
    if not isinstance(payload, dict):
        return [], "rejected: not a JSON object"
    topic = (topic or "").strip().lower()
    try:
        if platform == "shopify":
            reader = _shopify_reader(topic)
            if reader is None:
                return [], f"ignored: topic {topic or 'missing'}"
            return [reader(payload, 1, tz)], "imported"
        if platform == "woocommerce":
            if topic.startswith("order."):
                if woocommerce._slug(payload.get("status")) == woocommerce.DRAFT:
                    return [woocommerce._cart(payload, 1, _Context(tz, now))], "imported"
                return [woocommerce._order(payload, 1, _Context(tz, now))], "imported"
            if topic.startswith("customer."):
                return [_woo_customer(payload, 1, tz)], "imported"
            return [], f"ignored: topic {topic or 'missing'}"
    except RowRejected as exc:
        return [Rejected(None, exc.reason)], f"rejected: {exc.reason}"
    return [], f"ignored: no webhooks from {platform}"


def import_events(store: Store, tz: tzinfo, now: datetime) -> ImportReport:
    """Import the webhook events `serve` kept and nobody imported yet, each in one transaction
    with its mark: an event is imported once, whoever does it."""
    report = ImportReport()
    events = store.waiting_webhooks()
    if not events:
        return report
    with store.transaction():
        import_id = store.start_webhook_import(now)
    for event in events:
        records, outcome = records_of(event["platform"], event["topic"], event["body"], tz, now)
        staged = ImportReport()
        with store.transaction():
            if not store.webhook_done(event["id"], now, outcome):
                continue
            writer = store.pull_writer(import_id, event["platform"], now)
            write_records(writer, records, staged, now, event["source"])
        merge_reports(report, staged)
    return report
