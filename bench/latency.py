"""From order to confirmation: how long a customer waits for the e-mail (issue 12).

A real `mailflow serve` (subprocess) with a Shopify source receiving webhooks, SMTP to a
local sink (aiosmtpd on 127.0.0.1) that notes when each message arrives. 200 `orders/create`
webhooks are replayed at a steady rate (a busy sale); for each order, the time from the
webhook's POST to the sink receiving its confirmation. Printed beside the reference of a
cron-only setup: with `mailflow run` every 5 minutes, an order waits half the interval on
average for the next tick (2.5 min), up to the whole interval.

    python bench/latency.py                     # 200 webhooks at 20/s
    python bench/latency.py --orders 500 --rate 50

Goal: p95 under 5 s on the 2-core reference machine.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-webhook-secret"
DOMAIN = "boutique-bench.example"
RULES = f"""\
shop: {{name: Boutique Bench, url: "https://{DOMAIN}", address: "1 rue du Banc, 75001 Paris",
        timezone: Europe/Paris, locale: fr, currency: EUR}}
sender: {{from: "Boutique Bench <bonjour@{DOMAIN}>"}}
delivery:
  transport: smtp
  smtp: {{host: 127.0.0.1, port: {{port}}, security: none, timeout: 10s}}
unsubscribe: {{url: "https://{DOMAIN}/u?token={{{{token}}}}"}}
sources:
  - platform: shopify
    url: https://bench.myshopify.com
    api_version: "2025-10"
    webhook_secret_env: BENCH_WEBHOOK_SECRET
rules:
  - {{name: order-confirmation, on: order.placed, template: order_confirmation}}
"""


class Sink:
    """Keeps the arrival time of every message, by Message-ID."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        when = time.monotonic()
        for line in envelope.content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                with self.lock:
                    self.arrived[line.split(b":", 1)[1].strip().decode()] = when
                break
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def order(number: int) -> dict:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    return {"id": 7000000 + number, "name": f"#B{number}", "email": f"client{number}@example.com",
            "created_at": at, "updated_at": at, "financial_status": "paid",
            "fulfillment_status": None, "currency": "EUR", "total_price": "42.00",
            "subtotal_price": "42.00", "total_tax": "7.00",
            "payment_gateway_names": ["shopify_payments"],
            "customer": {"first_name": "Camille", "last_name": "Martin",
                         "email": f"client{number}@example.com"},
            "line_items": [{"sku": "MUG", "name": "Mug bleu", "quantity": 1, "price": "42.00"}]}


def message_id(key: str) -> str:
    from mailflow.render.mime import message_id as make

    return make(key, DOMAIN)


def post(port: int, body: bytes, delivery: str) -> int:
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/webhooks/shopify", body=body, headers={
        "Content-Type": "application/json", "X-Shopify-Hmac-Sha256": signature.decode(),
        "X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": delivery})
    status = conn.getresponse().status
    conn.close()
    return status


def run(orders: int, rate: float) -> list[float]:
    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    folder = Path(tempfile.mkdtemp(prefix="mailflow-latency-"))
    env = {**os.environ, "BENCH_WEBHOOK_SECRET": SECRET, "MAILFLOW_SECRET": "bench",
           "MAILFLOW_INLINER": "css-inline"}
    subprocess.run([sys.executable, "-m", "mailflow", "init", str(folder)], check=True, env=env,
                   capture_output=True)
    (folder / "rules.yaml").write_text(RULES.replace("{port}", str(smtp_port)))
    base = [sys.executable, "-m", "mailflow", "--db", str(folder / "mailflow.db"),
            "--config", str(folder / "rules.yaml")]
    server = subprocess.Popen([*base, "serve", "--port", "0"], stderr=subprocess.PIPE,
                              text=True, env=env)
    try:
        line = ""
        while "/webhooks/shopify" not in line:
            line = server.stderr.readline()
            if not line:
                raise SystemExit("serve did not start")
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        posted: dict[str, float] = {}
        for n in range(orders):
            body = json.dumps(order(n)).encode()
            posted[message_id(f"order-confirmation:order:#B{n}")] = time.monotonic()
            assert post(port, body, f"bench-{n}") == 200
            time.sleep(1 / rate)
        deadline = time.monotonic() + 120
        while len(sink.arrived) < orders and time.monotonic() < deadline:
            time.sleep(0.05)
        missing = set(posted) - set(sink.arrived)
        if missing:
            raise SystemExit(f"{len(missing)} confirmations never arrived")
        return [sink.arrived[m] - posted[m] for m in posted]
    finally:
        server.terminate()
        server.wait(10)
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="webhooks per second (20)")
    parser.add_argument("--cron-interval", type=float, default=300.0, help="seconds (300)")
    args = parser.parse_args()
    waits = sorted(run(args.orders, args.rate))
    p95 = waits[max(int(len(waits) * 0.95) - 1, 0)]
    print(f"webhook → confirmation received, {args.orders} orders at {args.rate:g}/s:"
          f" median {statistics.median(waits):.2f} s, p95 {p95:.2f} s, max {waits[-1]:.2f} s"
          f" (goal: p95 < 5 s)")
    interval = timedelta(seconds=args.cron_interval)
    print(f"cron only, `mailflow run` every {interval.total_seconds() / 60:g} min: median"
          f" {args.cron_interval / 2 / 60:.1f} min, max {args.cron_interval / 60:g} min"
          f" (the wait for the next tick)")


if __name__ == "__main__":
    main()
