"""Webhooks over real HTTP on 127.0.0.1: signed events kept before the answer, imported by the
background sender of `serve`, and what they make due sent once, under the run lock.

Payloads are the platforms' REST shapes (webhooks carry the same JSON): Shopify's
`tests/fixtures/shopify/shopify_python_api_order.json` (shopify.dev, "Order" REST resource;
webhook topics https://shopify.dev/docs/api/webhooks), WooCommerce's
`tests/fixtures/woocommerce/woocommerce_rest_v3_order_retrieve_example.json`
(woocommerce.github.io/woocommerce-rest-api-docs, "Retrieve an order"; webhooks
https://woocommerce.com/document/webhooks/)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from http_server import served

from mailflow.config import load_config
from mailflow.store import Store
from mailflow.web.app import App
from mailflow.web.sender import EventSender

FIXTURES = Path(__file__).parent / "fixtures"
SHOPIFY_SECRET = "shpss_test_secret"
WOO_SECRET = "woo-test-secret"
SOURCES = """
sources:
  - platform: shopify
    url: https://boutique.myshopify.com
    api_version: "2025-10"
    webhook_secret_env: SHOPIFY_WEBHOOK_SECRET   # webhooks only: no token to pull with
  - platform: woocommerce
    url: https://boutique.example.fr
    webhook_secret_env: WC_WEBHOOK_SECRET
"""


@pytest.fixture
def shop(mailflow, monkeypatch):
    for name, value in (("MAILFLOW_SECRET", "s"), ("SHOPIFY_WEBHOOK_SECRET", SHOPIFY_SECRET),
                        ("WC_WEBHOOK_SECRET", WOO_SECRET)):
        monkeypatch.setenv(name, value)
    assert mailflow("init", mailflow.folder / "p").exit_code == 0
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    text = mailflow.config.read_text().replace("sources:\n", "old_sources:\n", 1)
    text = text.split("old_sources:")[0] + SOURCES + "\nrules:" + text.split("\nrules:", 1)[1]
    mailflow.config.write_text(text)
    Store.open(mailflow.db).close()
    return mailflow


@contextmanager
def serving(shop):
    """`serve` as it runs: the endpoints in waitress, and the background sender."""
    config = load_config(shop.config)
    sender = EventSender(config, shop.db)
    with served(App(config, shop.db, sender.wake), sender=sender) as port:
        yield port


def signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_order(number: int, email: str, minutes_ago: float = 1) -> dict:
    order = json.loads((FIXTURES / "shopify/shopify_python_api_order.json").read_text())["order"]
    at = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(timespec="seconds")
    order.update(id=900000 + number, name=f"#W{number}", email=email, created_at=at,
                 updated_at=at, financial_status="paid", fulfillments=[],
                 fulfillment_status=None)
    order["customer"]["email"] = email
    return order


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                       **headers})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def shopify_post(port: int, order: dict, *, delivery: str, topic: str = "orders/create",
                 secret: str = SHOPIFY_SECRET, tamper: bool = False) -> tuple[int, str]:
    body = json.dumps(order).encode()
    headers = {"X-Shopify-Hmac-Sha256": signature(body, secret), "X-Shopify-Topic": topic,
               "X-Shopify-Webhook-Id": delivery, "X-Shopify-Shop-Domain": "boutique.myshopify.com"}
    return post(port, "/webhooks/shopify", body + (b" " if tamper else b""), headers)


def eventually(check, seconds: float = 20.0):
    """The background sender's work, seen from outside: poll, never a fixed sleep."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def sent_confirmations(shop) -> list[str]:
    return [r["key"] for r in shop.query(
        "SELECT key FROM outbox WHERE rule = 'order-confirmation' AND status = 'sent'"
        " ORDER BY key")]


def test_a_signed_order_is_kept_then_its_confirmation_sent(shop):
    with serving(shop) as port:
        assert shopify_post(port, shopify_order(1, "ana@example.com"), delivery="d-1") == (200,
                                                                                         "kept")
        assert eventually(lambda: sent_confirmations(shop)) == ["order-confirmation:order:#W1"]
    (eml,) = (shop.folder / "p" / "outbox").glob("order-confirmation*.eml")
    assert b"ana@example.com" in eml.read_bytes()
    event = shop.query("SELECT topic, processed_at, outcome FROM webhook_events")[0]
    assert (event["topic"], event["outcome"]) == ("orders/create", "imported")


@pytest.mark.parametrize("fault", ["tampered", "wrong secret", "no signature"])
def test_an_unsigned_or_altered_event_gets_401_and_nothing_is_kept(shop, fault):
    order = shopify_order(2, "bob@example.com")
    with serving(shop) as port:
        if fault == "no signature":
            status, _ = post(port, "/webhooks/shopify", json.dumps(order).encode(),
                             {"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "d-2"})
        else:
            status, _ = shopify_post(port, order, delivery="d-2", tamper=fault == "tampered",
                                     secret="another" if fault == "wrong secret" else SHOPIFY_SECRET)
        assert status == 401
    assert shop.query("SELECT * FROM webhook_events") == []
    assert shop.scalar("SELECT count(*) FROM orders") == 0


def test_the_same_delivery_twice_is_one_event_and_one_message(shop):
    order = shopify_order(3, "cid@example.com")
    with serving(shop) as port:
        assert shopify_post(port, order, delivery="d-3")[0] == 200
        assert shopify_post(port, order, delivery="d-3") == (200, "already kept")
        order["note"] = "a later update, as another delivery"
        assert shopify_post(port, order, delivery="d-4", topic="orders/updated")[0] == 200
        assert eventually(lambda: shop.scalar(
            "SELECT count(*) FROM webhook_events WHERE processed_at IS NOT NULL") == 2)
        assert eventually(lambda: sent_confirmations(shop)) == ["order-confirmation:order:#W3"]
    assert shop.scalar("SELECT count(*) FROM webhook_events") == 2
    assert len(list((shop.folder / "p" / "outbox").glob("order-confirmation*.eml"))) == 1


def test_a_burst_of_100_webhooks_is_kept_whole_and_each_confirmation_sent_once(shop):
    orders = [shopify_order(100 + i, f"client{i:03d}@example.com") for i in range(100)]
    with serving(shop) as port, ThreadPoolExecutor(max_workers=25) as pool:
        answers = list(pool.map(lambda i: shopify_post(port, orders[i], delivery=f"b-{i}"),
                                range(100)))
        assert [status for status, _ in answers] == [200] * 100
        assert shop.scalar("SELECT count(*) FROM webhook_events") == 100
        assert eventually(lambda: len(sent_confirmations(shop)) == 100, 60)
    keys = sent_confirmations(shop)
    assert len(keys) == len(set(keys)) == 100
    assert len(list((shop.folder / "p" / "outbox").glob("order-confirmation*.eml"))) == 100


def test_woocommerce_events_and_its_ping(shop):
    order = json.loads((FIXTURES / "woocommerce/woocommerce_rest_v3_order_retrieve_example.json"
                        ).read_text())
    at = (datetime.now(UTC) - timedelta(minutes=1)).replace(tzinfo=None).isoformat(
        timespec="seconds")
    order.update(date_created_gmt=at, date_modified_gmt=at, date_paid_gmt=at,
                 payment_method="stripe", payment_method_title="Carte")
    body = json.dumps(order).encode()
    with serving(shop) as port:
        assert post(port, "/webhooks/woocommerce", b"webhook_id=12", {
            "Content-Type": "application/x-www-form-urlencoded"}) == (200, "pong")
        status, _ = post(port, "/webhooks/woocommerce", body, {
            "X-WC-Webhook-Signature": signature(body, WOO_SECRET),
            "X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Delivery-ID": "w-1"})
        assert status == 200
        assert eventually(lambda: sent_confirmations(shop)) == ["order-confirmation:order:727"]
    assert shop.scalar("SELECT count(*) FROM webhook_events") == 1


def test_a_body_over_the_limit_gets_413_and_an_unknown_source_404(shop):
    with serving(shop) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.putrequest("POST", "/webhooks/shopify")
        conn.putheader("Content-Length", str(6 << 20))
        conn.putheader("X-Shopify-Hmac-Sha256", "x")
        conn.endheaders()
        assert conn.getresponse().status == 413
        conn.close()
        assert post(port, "/webhooks/magento", b"{}", {})[0] == 404
    assert shop.query("SELECT * FROM webhook_events") == []


def test_a_cron_run_imports_what_serve_kept_while_its_sender_was_down(shop):
    config = load_config(shop.config)
    with served(App(config, shop.db, lambda: None)) as port:  # no sender
        assert shopify_post(port, shopify_order(7, "dan@example.com"), delivery="d-7")[0] == 200
    assert sent_confirmations(shop) == []
    result = shop("run", "--json")
    assert result.exit_code == 0, result.stderr
    assert sent_confirmations(shop) == ["order-confirmation:order:#W7"]


def test_the_real_command_serves_webhooks(shop):
    command = [sys.executable, "-m", "mailflow", "--db", str(shop.db), "--config", str(shop.config),
               "serve", "--port", "0", "--timeout", "2s"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [server.stderr.readline() for _ in range(3)]
        webhook_line = next(line for line in lines if "/webhooks/shopify" in line)
        port = int(webhook_line.rsplit(":", 1)[1].split("/")[0])
        assert shopify_post(port, shopify_order(8, "eve@example.com"), delivery="d-8")[0] == 200
        assert eventually(lambda: sent_confirmations(shop)) == ["order-confirmation:order:#W8"]
    finally:
        server.terminate()
        server.wait(10)
