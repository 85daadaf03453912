"""A cron tick's cost against the size of history (CONTRACT §10, issue "rules and the outbox").

Builds a store with 200,000 orders, 200,000 carts and 50,000 past sends (through the
library's own import writer), then times whole `mailflow send --dry-run` processes,
process start included, when nothing is due and when 1,000 and 10,000 order
confirmations are due. Beside each, in the same run, a naive evaluation of the same rules:
every order and cart read into Python and checked row by row.

    python bench/plan.py               # full size
    python bench/plan.py --orders 20000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailflow.clock import iso
from mailflow.records import Cart, Line, Order
from mailflow.store import Store

MAILFLOW = shutil.which("mailflow") or str(Path(sys.executable).with_name("mailflow"))
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
RULES = """\
shop: {name: Bench, url: "https://bench.example", timezone: Europe/Paris, locale: fr}
sender: {from: "Bench <shop@bench.example>"}
delivery: {transport: file, dir: outbox}
rules:
  - {name: abandoned-cart, on: cart.abandoned, after: 20m, template: abandoned_cart, cap: 1 per 24h}
  - {name: order-confirmation, on: order.placed, template: order_confirmation}
  - {name: shipped, on: order.shipped, template: order_shipped}
  - {name: review-request, on: order.delivered, after: 7d, template: review_request}
"""


def _order(n: int, created: datetime) -> Order:
    email = f"client{n % 90_000}@example.com"
    o = Order(order_id=f"#{n}", line=n, email=email, status="delivered", created_at=created,
              paid_at=created, shipped_at=created + timedelta(days=1),
              delivered_at=created + timedelta(days=3), total="42.00", currency="EUR",
              lines=[Line("MUG", "Mug", 1, "42.00")])
    o.email_key, o.email_raw = email, email
    return o


def build_store(path: Path, orders: int, carts: int, sends: int) -> None:
    store = Store.open(path)
    span = timedelta(days=365)
    old_end = NOW - timedelta(days=30)  # history ends before every window (after + expire + lookback)
    with store.transaction():
        writer = store.import_writer(path="bench", sha256="bench", fmt="mailflow", kind="orders",
                                     now=NOW - timedelta(minutes=5))
        batch = []
        for n in range(orders):
            batch.append(_order(n, old_end - span * (n / orders)))
            if len(batch) == 5000:
                writer.orders(batch)
                batch = []
        writer.orders(batch)
        cart_batch = []
        for n in range(carts):
            at = old_end - span * (n / carts)
            c = Cart(cart_id=f"C{n}", line=n, email=f"client{n % 90_000}@example.com",
                     created_at=at, updated_at=at, total="10.00", lines=[Line("T", "Tea", 1, "10")])
            c.email_key = c.email
            cart_batch.append(c)
            if len(cart_batch) == 5000:
                writer.carts(cart_batch)
                cart_batch = []
        writer.carts(cart_batch)
        store.conn.executemany(
            "INSERT INTO outbox (key, rule, subject_type, subject_id, email, email_key, status,"
            " due_at, decided_at, sent_at, attempts) VALUES (?, 'order-confirmation', 'order', ?,"
            " ?, ?, 'sent', ?, ?, ?, 1)",
            [(f"order-confirmation:order:#{n}", f"#{n}", f"client{n % 90_000}@example.com",
              f"client{n % 90_000}@example.com", iso(old_end - span * (n / orders)),
              iso(old_end - span * (n / orders)), iso(old_end - span * (n / orders)))
             for n in range(sends)])
    store.conn.execute("ANALYZE")
    store.close()


def add_due(path: Path, count: int, first: int) -> None:
    store = Store.open(path)
    with store.transaction():
        writer = store.import_writer(path=f"due{first}", sha256=f"due{first}", fmt="mailflow",
                                     kind="orders", now=NOW - timedelta(minutes=1))
        batch = [_order(first + n, NOW - timedelta(minutes=30) + timedelta(seconds=n % 1700))
                 for n in range(count)]
        for o in batch:
            o.status, o.shipped_at, o.delivered_at = "paid", None, None
        writer.orders(batch)
    store.close()


def tick(folder: Path, db: Path) -> float:
    started = time.perf_counter()
    subprocess.run([MAILFLOW, "--db", str(db), "--config", str(folder / "rules.yaml"), "send",
                    "--dry-run", "--quiet", "--now", iso(NOW)], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def naive(db: Path) -> tuple[float, int]:
    """Every row through Python: the evaluation the SQL windows replace."""
    import sqlite3

    started = time.perf_counter()
    conn = sqlite3.connect(db)
    sent = {row[0] for row in conn.execute("SELECT key FROM outbox")}
    due = 0
    for order_id, created, email in conn.execute("SELECT id, created_at, email_key FROM orders"):
        at = datetime.fromisoformat(created)
        if at <= NOW and NOW - at <= timedelta(days=2) and email and \
                f"order-confirmation:order:{order_id}" not in sent:
            due += 1
    for status, rule, after in (("shipped", "shipped", timedelta(0)),
                                ("delivered", "review-request", timedelta(days=7))):
        for order_id, at_text in conn.execute(
                "SELECT order_id, at FROM order_status_events WHERE status = ?", (status,)):
            at = datetime.fromisoformat(at_text) + after
            if at <= NOW and NOW - at <= timedelta(days=2) and \
                    f"{rule}:order:{order_id}:{status}" not in sent:
                due += 1
    for _cart, updated, created, email in conn.execute(
            "SELECT id, updated_at, created_at, email_key FROM carts"):
        at = datetime.fromisoformat(updated) + timedelta(minutes=20)
        if at <= NOW and NOW - at <= timedelta(days=2):
            ordered = conn.execute("SELECT 1 FROM orders WHERE email_key = ? AND created_at >= ?",
                                   (email, created)).fetchone()
            due += ordered is None
    conn.close()
    return time.perf_counter() - started, due


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--carts", type=int, default=200_000)
    parser.add_argument("--sends", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailflow-plan-"))
    try:
        subprocess.run([MAILFLOW, "init", str(work)], check=True,
                       stdout=subprocess.DEVNULL)
        (work / "rules.yaml").write_text(RULES)
        db = work / "bench.db"
        started = time.perf_counter()
        build_store(db, args.orders, args.carts, args.sends)
        print(f"store: {args.orders:,} orders, {args.carts:,} carts, {args.sends:,} past sends"
              f" (built in {time.perf_counter() - started:.0f} s); {os.cpu_count()} cores")
        print(f"{'due':>7} | {'mailflow send --dry-run':>24} | {'naive per-row (in process)':>27}")
        added = 0
        for due in (0, 1_000, 10_000):
            if due > added:
                add_due(db, due - added, args.orders + 10 + added)
                added = due
            ticks = [tick(work, db) for _ in range(args.runs)]
            naive_s, naive_due = naive(db)
            print(f"{due:>7,} | {statistics.median(ticks) * 1000:>19.0f} ms   |"
                  f" {naive_s * 1000:>18.0f} ms ({naive_due:,} due)")
        print("target: nothing due under 300 ms, process start included; time grows with what"
              " is due, not with history")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
