"""A pull killed with SIGKILL at seeded moments, ten times, then a normal pull: the store
equals what one clean pull gives (issue 12). Real `mailflow pull` processes against the fake
WooCommerce API over real HTTP; the fake itself kills the process while answering its k-th
request, or a few milliseconds after (inside the writing of that page: its next request
waits for the kill)."""

from __future__ import annotations

import copy
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from fakes.woocommerce_api import KEY, SECRET, FakeWooCommerce, fixture

NOW = "2026-03-20T19:00"
VOLATILE = {"import_id", "recorded_at"}  # which pull wrote a row, not what the row says


def shop_data() -> list[dict]:
    """The fixture's eight orders, and 40 more like them: 16 pages of 3."""
    orders = fixture("orders.json")
    for n in range(40):
        order = copy.deepcopy(orders[n % 7])
        order.update(id=2000 + n, number=str(2000 + n))
        order["billing"]["email"] = f"client{n:02d}@example.com"
        order["date_modified_gmt"] = f"2026-03-20T12:{n:02d}:00"
        orders.append(order)
    return orders


def project(folder: Path, url: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "WC_KEY": KEY, "WC_SECRET": SECRET, "MAILFLOW_SECRET": "s"}
    env.pop("MAILFLOW_DB", None)
    env.pop("MAILFLOW_CONFIG", None)
    folder.mkdir()
    (folder / "rules.yaml").write_text(
        "shop: {name: Boutique, url: 'https://b-test.example', timezone: Europe/Paris}\n"
        f"sources:\n  - platform: woocommerce\n    url: {url}\n    key_env: WC_KEY\n"
        "    secret_env: WC_SECRET\n    page_size: 3\n")
    return [sys.executable, "-m", "mailflow", "--db", str(folder / "mailflow.db"), "--config",
            str(folder / "rules.yaml"), "pull", "--now", NOW], env


def contents(db: Path) -> dict[str, list]:
    conn = sqlite3.connect(db)
    try:
        found = {}
        for table in ("orders", "order_lines", "order_status_events", "carts", "cart_lines",
                      "customers"):
            cursor = conn.execute(f"SELECT * FROM {table}")
            keep = [i for i, d in enumerate(cursor.description) if d[0] not in VOLATILE]
            found[table] = sorted(repr([row[i] for i in keep]) for row in cursor)
        found["watermark"] = conn.execute("SELECT watermark FROM sources").fetchall()
        return found
    finally:
        conn.close()


def test_a_pull_killed_ten_times_then_run_again_equals_one_clean_pull(tmp_path):
    with FakeWooCommerce(orders=shop_data()) as fake:
        clean, env = project(tmp_path / "clean", fake.url)
        assert subprocess.run(clean, env=env, capture_output=True).returncode == 0
        expected = contents(tmp_path / "clean" / "mailflow.db")
        requests = len(fake.requests)
        assert expected["watermark"] and len(expected["orders"]) == 47

        command, env = project(tmp_path / "killed", fake.url)
        chance = random.Random(12)
        killed = 0
        for attempt in range(10):
            k = chance.randrange(1, requests - 2)  # before the pull can end
            delay = chance.choice((0.0, 0.002, 0.01, 0.03))
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            seen = [0]

            def kth(_request, seen=seen, k=k) -> bool:
                seen[0] += 1
                return seen[0] == k

            def kill(process=process, delay=delay) -> None:
                threading.Timer(delay, lambda: _kill(process)).start()

            def hold(process=process) -> None:  # no request after the k-th goes anywhere
                process.wait(10)

            fake.before(kth, kill)
            fake.before(lambda _request, seen=seen, k=k: seen[0] >= k, hold)
            process.wait(30)
            fake.hooks.clear()
            assert process.returncode in (-signal.SIGKILL, 0), (attempt, process.returncode)
            killed += process.returncode == -signal.SIGKILL
        assert killed == 10  # each seeded moment falls inside a pull
        assert subprocess.run(command, env=env, capture_output=True).returncode == 0
        assert contents(tmp_path / "killed" / "mailflow.db") == expected


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
