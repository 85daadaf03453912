"""Webhook bodies are JSON input too: a signed event of any shape, sent over real HTTP to
`serve`'s endpoint, is kept (200), then `mailflow run` imports it, ignores it or rejects it
with its reason: never a traceback or an internal error, and one it did not import changes
no order, cart or customer. Bounded like the importers' property tests."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator

import pytest
from http_server import served
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_import_json_property import GOOD_SHOPIFY, GOOD_WOO, PER_TEST, _fields
from test_import_property import _JSON_ANY, PROPERTY
from test_webhooks import SHOPIFY_SECRET, WOO_SECRET, post, shop, signature  # noqa: F401

from mailflow.config import load_config
from mailflow.web.app import App

_TOPICS = {"shopify": ["orders/create", "orders/updated", "orders/paid", "orders/fulfilled",
                       "customers/create", "checkouts/create", "fulfillments/create", "app/x", ""],
           "woocommerce": ["order.created", "order.updated", "customer.created", "product.x", ""]}
_GOOD = {"shopify": GOOD_SHOPIFY, "woocommerce": GOOD_WOO}
_PEOPLE = ("orders", "order_lines", "carts", "cart_lines", "customers")
_deliveries = itertools.count()


@st.composite
def events(draw: st.DrawFn) -> tuple[str, str, bytes]:
    platform = draw(st.sampled_from(sorted(_TOPICS)))
    topic = draw(st.sampled_from(_TOPICS[platform]))
    payload = draw(st.one_of(_fields(_GOOD[platform]), _fields(_GOOD[platform]), _JSON_ANY))
    return platform, topic, json.dumps(payload).encode()


@pytest.fixture
def endpoints(shop) -> Iterator[tuple[object, int]]:  # noqa: F811
    """`serve`'s endpoints without its sender: a cron `run` imports what they keep."""
    with served(App(load_config(shop.config), shop.db, lambda: None)) as port:
        yield shop, port


def _people(project) -> dict[str, list]:
    conn = sqlite3.connect(project.db)
    try:
        return {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}"))) for t in _PEOPLE}
    finally:
        conn.close()


@settings(PROPERTY, max_examples=PER_TEST,
          suppress_health_check=[*PROPERTY.suppress_health_check, HealthCheck.function_scoped_fixture])
@given(event=events())
def test_a_signed_webhook_of_any_shape_is_imported_ignored_or_rejected_never_crashing(endpoints, event):
    project, port = endpoints
    platform, topic, body = event
    delivery = f"d-{next(_deliveries)}"
    if platform == "shopify":
        headers = {"X-Shopify-Hmac-Sha256": signature(body, SHOPIFY_SECRET),
                   "X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": delivery}
    else:
        headers = {"X-WC-Webhook-Signature": signature(body, WOO_SECRET),
                   "X-WC-Webhook-Topic": topic, "X-WC-Webhook-Delivery-ID": delivery}
    status, answer = post(port, f"/webhooks/{platform}", body, headers)
    assert status == 200, answer
    before = _people(project)

    result = project("run", "--json")

    assert result.exit_code in (0, 1), result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    (kept,) = project.query("SELECT processed_at, outcome FROM webhook_events WHERE delivery_id = ?",
                         (delivery,))
    assert kept["processed_at"] is not None
    assert kept["outcome"].split(":")[0] in ("imported", "ignored", "rejected"), kept
    if not kept["outcome"].startswith("imported"):
        assert _people(project) == before, kept["outcome"]
