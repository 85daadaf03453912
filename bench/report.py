"""`mailflow report` on a big store (issue 13, issue 15 item 5): 2,000,000 orders, 500,000
messages, 100,000 clicks.

Builds the store once (direct inserts, cached under /tmp: delete the file to rebuild), runs the
real attribution pass over it, then times whole `mailflow report` and `report --json`
processes (median of --runs) with their peak memory, beside references measured in the same
run: a Python process that counts the orders (`SELECT count(*) FROM orders`), `mailflow
--help` (the CLI's own start), one that scans the outbox once (`SELECT rule, status, count(*)
FROM outbox GROUP BY 1, 2`), and the same report on a store 100 times smaller. Prints the
query plan of every report query, and what an attribution pass costs when nothing is new and
after an import of 1,000 new orders.

    python bench/report.py                 # full size (building takes a few minutes)
    python bench/report.py --orders 200000 --messages 50000 --clicks 10000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailflow.clock import iso
from mailflow.store import Store

MAILFLOW = shutil.which("mailflow") or str(Path(sys.executable).with_name("mailflow"))
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
SPAN = timedelta(days=365)
RULES = """\
shop: {name: Bench, url: "https://bench.example", timezone: Europe/Paris, locale: fr}
sender: {from: "Bench <shop@bench.example>"}
delivery: {transport: file, dir: outbox}
tracking: {url: "https://bench.example/mf"}
rules:
  - {name: order-confirmation, on: order.placed, template: order_confirmation}
  - {name: shipped, on: order.shipped, template: order_shipped}
  - {name: abandoned-cart, on: cart.abandoned, after: 20m, template: abandoned_cart,
     category: marketing}
  - {name: review-request, on: order.delivered, after: 7d, template: review_request,
     category: marketing}
  - {name: win-back, on: customer.inactive, after: 90d, template: win_back, category: marketing}
"""
# (rule, share of the messages, marketing)
MIX = (("order-confirmation", 0.40, False), ("shipped", 0.24, False),
       ("abandoned-cart", 0.16, True), ("review-request", 0.12, True), ("win-back", 0.08, True))
LOCALES = ("fr",) * 7 + ("en",) * 2 + ("de",)
STATUSES = (("delivered", 80), ("shipped", 6), ("paid", 4), ("cancelled", 4), ("refunded", 3),
            ("pending_payment", 2), ("failed", 1))
ORDER_ROW = ("INSERT INTO orders (id, source, email, email_key, status, created_at, paid_at,"
             " currency, total, payment_class, content_hash, first_seen_at, updated_at,"
             " import_id) VALUES (?, 'bench', ?, ?, ?, ?, ?, ?, ?, 'online', 'h', ?, ?, 1)")


def _at(moment: datetime) -> str:
    return iso(moment.replace(microsecond=0))


def build_store(path: Path, orders: int, messages: int, clicks: int) -> None:
    rnd = random.Random(13)
    people = max(orders // 5, 1)
    start = NOW - SPAN
    store = Store.open(path)
    c = store.conn
    statuses = [s for s, weight in STATUSES for _ in range(weight)]
    with store.transaction():
        c.execute("INSERT INTO imports (id, path, sha256, format, kind, imported_at)"
                  " VALUES (1, 'bench', 'bench', 'mailflow', 'orders', ?)", (_at(start),))
        outbox, marketing_sent = [], []
        n = 0
        for rule, share, marketing in MIX:
            for _ in range(int(messages * share)):
                who = f"c{rnd.randrange(people)}@example.com"
                sent = start + SPAN * rnd.random()
                roll = rnd.random()
                status = ("sent" if roll < 0.96 else "skipped" if roll < 0.98
                          else "failed" if roll < 0.99 else "unknown")
                reason = {"skipped": rnd.choice(("unsubscribed", "no_consent", "cap")),
                          "failed": "RCPT: 550 5.1.1 no such user"}.get(status)
                at = _at(sent)
                outbox.append((f"{rule}:{n}", rule, who, who, status, reason, at, at,
                               at if status in ("sent", "unknown") else None,
                               rnd.choice(LOCALES), int(marketing)))
                if marketing and status == "sent":
                    marketing_sent.append((f"{rule}:{n}", rule, who, sent))
                n += 1
        c.executemany(
            "INSERT INTO outbox (key, rule, subject_type, subject_id, email, email_key, status,"
            " reason, due_at, decided_at, sent_at, locale, tracked, attempts)"
            " VALUES (?, ?, 'order', '-', ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)", outbox)
        rnd.shuffle(marketing_sent)
        click_rows, followers = [], []
        clicked = marketing_sent[:int(clicks * 0.6)]
        for i, (key, rule, who, sent) in enumerate(clicked):
            first = sent + timedelta(minutes=rnd.randrange(1, 2880))
            for link in range(1 if i % 3 else 2):
                click_rows.append((key, f"https://bench.example/p/{link}", who, rule, _at(first),
                                   _at(first + timedelta(minutes=link)), 1 + link))
            if i % 3 == 0:  # a third of the clicked messages bring an order within 4 days
                followers.append((who, first + timedelta(minutes=rnd.randrange(5, 5760))))
        for key, rule, who, sent in marketing_sent[len(clicked):]:
            if len(click_rows) >= clicks:
                break
            first = sent + timedelta(minutes=rnd.randrange(1, 2880))
            click_rows.append((key, "https://bench.example/", who, rule, _at(first), _at(first),
                               1))
        c.executemany("INSERT OR IGNORE INTO clicks (outbox_key, url, email_key, rule, first_at,"
                      " last_at, count) VALUES (?, ?, ?, ?, ?, ?, ?)", click_rows[:clicks])
        for _key, _rule, who, sent in marketing_sent[-len(clicked) // 2:]:  # after receiving
            followers.append((who, sent + timedelta(minutes=rnd.randrange(5, 1400))))
        c.executemany("INSERT OR IGNORE INTO opens (outbox_key, email_key, rule, first_at,"
                      " human_at, machine_at) VALUES (?, ?, ?, ?, ?, ?)",
                      [(key, who, rule, _at(sent + timedelta(seconds=3)),
                        _at(sent + timedelta(hours=2)) if i % 2 else None,
                        None if i % 2 else _at(sent + timedelta(seconds=3)))
                       for i, (key, rule, who, sent) in enumerate(marketing_sent[:clicks])])
        rows = []
        for i in range(orders):
            if i < len(followers):
                who, created = followers[i]
            else:
                who, created = f"c{rnd.randrange(people)}@example.com", start + SPAN * rnd.random()
            at = _at(min(created, NOW))
            rows.append((f"#{i}", who, who, rnd.choice(statuses), at, at,
                         "EUR" if i % 10 else "USD", f"{rnd.randrange(900, 25000) / 100:.2f}",
                         at, at))
            if len(rows) == 50_000:
                c.executemany(ORDER_ROW, rows)
                rows = []
        c.executemany(ORDER_ROW, rows)
        unsubscribed = [(who, who, "unsubscribed", _at(sent + timedelta(hours=3)), "link")
                        for _key, _rule, who, sent in marketing_sent[-messages // 50:]]
        c.executemany("INSERT OR IGNORE INTO suppressions VALUES (?, ?, ?, ?, ?)", unsubscribed)
        bounced = c.execute("SELECT id, email_key, decided_at FROM outbox WHERE status = 'failed'"
                            ).fetchall()
        c.executemany("INSERT INTO outbox_attempts (outbox_id, at, outcome, detail)"
                      " VALUES (?, ?, 'failed', '550 5.1.1')", [(i, at) for i, _, at in bounced])
        c.executemany("INSERT OR IGNORE INTO suppressions VALUES (?, ?, 'hard_bounce', ?, 'smtp')",
                      [(who, who, at) for _, who, at in bounced])
    c.execute("ANALYZE")
    store.close()


def attribute(path: Path, config: Path) -> tuple[float, int]:
    from mailflow.config import load_config
    from mailflow.rules.attribution import attribute_orders

    store, rules = Store.open(path), load_config(config, check_templates=False)
    try:
        started = time.perf_counter()
        done = attribute_orders(store, rules, NOW)
        return time.perf_counter() - started, done
    finally:
        store.close()


def tick_with_new_orders(path: Path, config: Path, count: int) -> tuple[float, int]:
    """The pass after an import of `count` new orders by clicking recipients (then undone)."""
    from mailflow.config import load_config
    from mailflow.rules.attribution import attribute_orders

    store, rules = Store.open(path), load_config(config, check_templates=False)
    c = store.conn
    try:
        state = c.execute("SELECT order_rowid, order_id, at FROM attribution_passes").fetchone()
        clickers = c.execute("SELECT email_key, last_at FROM clicks ORDER BY id DESC LIMIT ?",
                             (count,)).fetchall()
        with store.transaction():
            c.executemany(ORDER_ROW, [(f"tick-{i}", who, who, "paid", at, at, "EUR", "10.00",
                                       _at(NOW), _at(NOW)) for i, (who, at) in
                                      enumerate(clickers)])
        started = time.perf_counter()
        done = attribute_orders(store, rules, NOW)
        elapsed = time.perf_counter() - started
        with store.transaction():
            c.execute("DELETE FROM orders WHERE id LIKE 'tick-%'")
            c.execute("UPDATE attribution_passes SET order_rowid = ?, order_id = ?, at = ?", state)
        return elapsed, done
    finally:
        store.close()


def outbox_write_cost(with_report_schema: bool, messages: int = 10_000) -> float:
    """Seconds per message to record a send (claim, then mark sent) in a fresh store, with or
    without migration 0012's counters and triggers: what the report costs the sender."""
    import sqlite3

    from mailflow.store import _statements
    from mailflow.store.migrations import MIGRATIONS

    c = sqlite3.connect(":memory:", isolation_level=None)
    for name, sql in MIGRATIONS:
        if with_report_schema or name != "0012_report_indexes":
            for statement in _statements(sql):
                c.execute(statement)
    started = time.perf_counter()
    c.execute("BEGIN")
    for i in range(messages):
        c.execute("INSERT INTO outbox (key, rule, subject_type, subject_id, email, email_key,"
                  " status, due_at, decided_at, claimed_at, attempts) VALUES (?, 'r', 'order', ?,"
                  " 'a@x.example', 'a@x.example', 'sending', ?, ?, ?, 1)",
                  (f"r:{i}", str(i), _at(NOW), _at(NOW), _at(NOW)))
        c.execute("UPDATE outbox SET status = 'sent', subject = 's', message_id = 'm',"
                  " sent_at = ?, locale = 'fr', tracked = 1 WHERE key = ?", (_at(NOW), f"r:{i}"))
    c.execute("COMMIT")
    return (time.perf_counter() - started) / messages


def timed(command: list[str]) -> tuple[float, int]:
    """Seconds and peak RSS (MB) of one whole process. The RSS is GNU time's: a child's own
    getrusage figure would count the pages it shared with this big process before its exec."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=True)
    elapsed = time.perf_counter() - started
    return elapsed, int(done.stderr.strip().splitlines()[-1]) // 1024


def median_of(runs: int, command: list[str]) -> tuple[float, int]:
    results = [timed(command) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def cached_store(orders: int, messages: int, clicks: int) -> tuple[Path, Path]:
    work = Path("/tmp") / f"mailflow-bench-report-{orders}-{messages}-{clicks}"
    db, config = work / "store.db", work / "rules.yaml"
    if not db.exists():
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run([MAILFLOW, "init", str(work)], check=True, stdout=subprocess.DEVNULL)
        config.write_text(RULES)
        started = time.perf_counter()
        build_store(work / "building.db", orders, messages, clicks)
        first_pass, attributed = attribute(work / "building.db", config)
        (work / "building.db").rename(db)
        print(f"{orders:,} orders: built in {time.perf_counter() - started:.0f} s; the first"
              f" attribution pass over every order took {first_pass:.2f} s and attributed"
              f" {attributed:,}")
    return db, config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2_000_000)
    parser.add_argument("--messages", type=int, default=500_000)
    parser.add_argument("--clicks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    db, config = cached_store(args.orders, args.messages, args.clicks)
    # the same shape at 1/100 the size: what the report costs beyond its process
    small, _ = cached_store(args.orders // 100, args.messages // 100, args.clicks // 100)
    store = Store.open(db)
    one = store.conn.execute
    print(f"store: {one('SELECT count(*) FROM orders').fetchone()[0]:,} orders,"
          f" {one('SELECT count(*) FROM outbox').fetchone()[0]:,} messages,"
          f" {one('SELECT count(*) FROM clicks').fetchone()[0]:,} clicks,"
          f" {one('SELECT count(*) FROM attributions').fetchone()[0]:,} attributed orders;"
          f" {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    marketing = [rule for rule, _, is_marketing in MIX if is_marketing]
    for name, plan in store.report_plans(since=None, marketing_rules=marketing).items():
        print(f"plan {name}: " + " | ".join(plan))
    store.close()
    idle = statistics.median(attribute(db, config)[0] for _ in range(args.runs))
    base = [MAILFLOW, "--db", str(db), "--config", str(config), "report", "--now", iso(NOW)]
    count = [sys.executable, "-c", "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("
             "'SELECT count(*) FROM orders').fetchone()", str(db)]
    scan = [sys.executable, "-c", "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("
            "'SELECT rule, status, count(*) FROM outbox GROUP BY 1, 2').fetchall()", str(db)]
    small_report = [MAILFLOW, "--db", str(small), "--config", str(config), "report", "--now",
                    iso(NOW), "--json"]
    rows = [("reference: count(*) FROM orders (a Python process)", median_of(args.runs, count)),
            ("reference: mailflow --help (the CLI's start)", median_of(args.runs,
                                                                       [MAILFLOW, "--help"])),
            ("reference: one scan of the outbox (a Python process)", median_of(args.runs, scan)),
            ("mailflow report", median_of(args.runs, base)),
            ("mailflow report --json", median_of(args.runs, [*base, "--json"])),
            ("mailflow report --since 30d --json", median_of(args.runs,
                                                             [*base, "--since", "30d", "--json"])),
            (f"mailflow report --json, {args.orders // 100:,} orders", median_of(args.runs,
                                                                              small_report))]
    reference = rows[0][1][0]
    print(f"{'':<52} {'median':>9} {'× count':>8} {'peak RSS':>9}")
    for label, (seconds, rss) in rows:
        print(f"{label:<52} {seconds * 1000:>6.0f} ms {seconds / reference:>7.2f}× {rss:>6} MB")
    print(f"attribution pass with nothing new (in process): {idle * 1000:.2f} ms")
    passes = [tick_with_new_orders(db, config, 1000) for _ in range(args.runs)]
    print(f"attribution pass after an import of 1,000 new orders (in process):"
          f" {statistics.median(p[0] for p in passes) * 1000:.0f} ms, {passes[0][1]} attributed")
    without = statistics.median(outbox_write_cost(False) for _ in range(args.runs))
    with_counts = statistics.median(outbox_write_cost(True) for _ in range(args.runs))
    print(f"recording a send (claim + mark sent, in memory): {without * 1e6:.1f} µs without the"
          f" report's counters, {with_counts * 1e6:.1f} µs with them"
          f" ({with_counts / without:.2f}×)")
    print("target: report under 0.5 s at 2M orders (issue 15 item 5), under 1 s (issue 13)")


if __name__ == "__main__":
    main()
