"""`status`, `report` and `send --dry-run` on a big store (issue 15, 5): each whole process,
start included, beside the start of `mailflow --help` and of the sqlite3 shell, measured in
the same run (median of --runs), with each command's peak RSS and the query plans of every
statement `status` and `report` run.

The store (2,000,000 orders by default, with their lines, status events, customers, carts,
3 years of sent messages and 100,000 cron runs) is written once by direct inserts and kept in
/tmp for the next run; the first open of a kept store applies the migrations it lacks
(timed and printed, once).

    python bench/status.py                 # 2M orders
    python bench/status.py --orders 200000 --runs 3
    python bench/status.py --compare-with /tmp/old   # also another mailflow's source tree
                                                     # (git archive REV mailflow | tar -x -C /tmp/old)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from plan import MAILFLOW, NOW, RULES  # the same shop and rules as the tick benchmark

from mailflow.clock import iso
from mailflow.store import Store

BUILD = 1  # bump when the generated data changes: a kept store of another build is rebuilt
SPAN = timedelta(days=3 * 365)
DUE = 1_000  # orders placed in the last half hour, not confirmed yet: what the dry run sends
# status by n % 100: most orders of a 3-year history are delivered
STATUSES = ["delivered"] * 70 + ["shipped"] * 10 + ["paid"] * 8 + ["cancelled"] * 5 + \
    ["refunded"] * 3 + ["pending_payment"] * 4
ORDER_COLUMNS = ("id, platform_id, source, email, email_key, email_raw, first_name, last_name,"
                 " locale, accepts_marketing, status, created_at, paid_at, shipped_at,"
                 " delivered_at, cancelled_at, currency, subtotal, shipping, tax, discount, total,"
                 " payment_method, shipping_method, tracking_number, carrier, shipping_address,"
                 " content_hash, first_seen_at, updated_at, import_id, payment_class")
OUTBOX_COLUMNS = ("key, rule, subject_type, subject_id, email, email_key, status, reason,"
                  " due_at, next_attempt_at, decided_at, claimed_at, sent_at, subject,"
                  " message_id, attempts, run_id")


LAUNCH_TREE = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in"
               " repr(f).lower()]; sys.path.insert(0, sys.argv.pop(1)); from mailflow.cli import"
               " main; main()")
MIGRATED_SINCE = "0014_status_indexes"  # what a store must lose for an older tree to open it


def mailflow_of(tree: Path | None) -> list[str]:
    """The command that runs this mailflow, or the one whose source tree is `tree`."""
    return [MAILFLOW] if tree is None else [sys.executable, "-c", LAUNCH_TREE, str(tree)]


def older_copy(db: Path, target: Path) -> Path:
    """A copy of `db` as a mailflow before MIGRATED_SINCE left it (its objects dropped)."""
    if not target.exists():
        shutil.copyfile(db, target)
        conn = sqlite3.connect(target, isolation_level=None)
        dropped = [(kind, name) for kind, name in conn.execute(
            "SELECT type, name FROM sqlite_master WHERE name IN ('order_status_counts',"
            " 'outbox_counts', 'outbox_next_due', 'outbox_awaiting_human')"
            " OR name GLOB '*_counts_*'") if kind in ("table", "index", "trigger")]
        for kind, name in dropped:
            conn.execute(f"DROP {kind.upper()} IF EXISTS {name}")
        conn.execute("DELETE FROM migrations WHERE name >= ?", (MIGRATED_SINCE,))
        conn.close()
    return target


def _marks(columns: str) -> str:
    return ", ".join("?" * len(columns.split(",")))


def _email(n: int, customers: int) -> str:
    return f"client{n % customers}@example.com"


def _orders(orders: int, customers: int):
    end = NOW - timedelta(days=1)
    for n in range(orders):
        created = end - SPAN * (1 - n / orders)
        status = STATUSES[n % 100]
        paid = created + timedelta(minutes=2) if status != "pending_payment" else None
        shipped = created + timedelta(days=1) if status in ("delivered", "shipped") else None
        delivered = created + timedelta(days=3) if status == "delivered" else None
        cancelled = created + timedelta(hours=5) if status == "cancelled" else None
        email = _email(n, customers)
        yield (f"#{n}", str(5_000_000 + n), "shopify", email, email, email, "Ana", "Martin", "fr",
               n % 3 == 0, status, iso(created), iso(paid), iso(shipped), iso(delivered),
               iso(cancelled), "EUR", "38.00", "4.90", "7.60", "0.00", "42.90", "card",
               "Colissimo", f"6A{n:011d}" if shipped else None, "colissimo" if shipped else None,
               '{"city": "Lyon", "zip": "69001", "country": "FR"}', f"{n:064x}", iso(created),
               iso(delivered or shipped or paid or created), 1, "online")


def _events(orders: int):
    end = NOW - timedelta(days=1)
    for n in range(orders):
        created = end - SPAN * (1 - n / orders)
        status = STATUSES[n % 100]
        if status != "pending_payment":
            yield f"#{n}", "paid", iso(created + timedelta(minutes=2))
        if status in ("delivered", "shipped"):
            yield f"#{n}", "shipped", iso(created + timedelta(days=1))
        if status == "delivered":
            yield f"#{n}", "delivered", iso(created + timedelta(days=3))
        if status in ("cancelled", "refunded"):
            yield f"#{n}", status, iso(created + timedelta(hours=5))


def _outbox(orders: int, customers: int):
    """A confirmation for every order, a review request for every delivered one; a few
    skipped, failed, unknown, deferred and queued among them, as a real history has."""
    end = NOW - timedelta(days=1)
    for n in range(orders):
        created = end - SPAN * (1 - n / orders)
        email = _email(n, customers)
        status, reason, sent = "sent", None, iso(created + timedelta(minutes=1))
        if n % 50 == 1:
            status, reason, sent = "skipped", "missing_email", None
        elif n % 5000 == 7:
            status, reason, sent = "failed", "render_error: order_confirmation.html:3: 'x' is undefined", None
        elif n % 20000 == 9:
            status, reason = "unknown", "interrupted while sending"
        yield (f"order-confirmation:order:#{n}", "order-confirmation", "order", f"#{n}", email,
               email, status, reason, iso(created), None, iso(created), sent and iso(created),
               sent, "Merci pour votre commande", f"<{n}@bench.example>", 1, 1 + n // 20)
        if STATUSES[n % 100] == "delivered":
            due = created + timedelta(days=10)
            yield (f"review-request:order:#{n}:delivered", "review-request", "order", f"#{n}",
                   email, email, "sent", None, iso(due), None, iso(due), iso(due), iso(due),
                   "Votre avis", f"<r{n}@bench.example>", 1, 1 + n // 20)
    for n in range(200):  # waiting: SMTP deferrals and quiet hours, due again soon
        due = NOW - timedelta(hours=2)
        email = _email(n, customers)
        yield (f"shipped:order:#{orders - 1 - n}:shipped", "shipped", "order", f"#{orders - 1 - n}",
               email, email, "deferred" if n % 2 else "queued", "quiet_hours", iso(due),
               iso(NOW + timedelta(minutes=5 + n)), iso(due), None, None, None, None, n % 2, None)


def build_store(path: Path, orders: int) -> None:
    customers = max(orders // 3, 1)
    carts = orders // 4
    Store.open(path).close()  # mailflow's own schema, every migration
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO imports (path, sha256, format, kind, imported_at, rows) VALUES"
                 " ('orders.csv', 'bench', 'shopify', 'orders', ?, ?)",
                 (iso(NOW - timedelta(hours=1)), orders))
    conn.executemany(f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES ({_marks(ORDER_COLUMNS)})",
                     _orders(orders, customers))
    conn.executemany("INSERT INTO order_lines (order_id, position, sku, name, quantity, price)"
                     " VALUES (?, ?, ?, ?, 1, ?)",
                     ((f"#{n}", p, f"SKU-{(n + p) % 40}", "Mug bleu", "19.00")
                      for n in range(orders) for p in range(1 + n % 2)))
    conn.executemany("INSERT INTO order_status_events (order_id, status, at, source, import_id,"
                     " recorded_at) VALUES (?, ?, ?, 'export', 1, ?3)", _events(orders))
    end = NOW - timedelta(days=1)
    conn.executemany(
        "INSERT INTO customers (email_key, email, first_name, last_name, locale,"
        " accepts_marketing, created_at, first_seen_at, first_order_at, last_order_at,"
        " updated_at) VALUES (?1, ?1, 'Ana', 'Martin', 'fr', ?2, NULL, ?3, ?3, ?4, ?4)",
        ((_email(c, customers), c % 3 == 0, iso(end - SPAN * (1 - c / orders)),
          iso(end - SPAN * (1 - (orders - customers + c) / orders))) for c in range(customers)))
    conn.executemany(
        "INSERT INTO carts (id, source, email, email_key, created_at, updated_at, completed_at,"
        " currency, total, content_hash, first_seen_at, import_id) VALUES (?, 'shopify', ?2, ?2,"
        " ?3, ?3, ?4, 'EUR', '19.00', ?1, ?3, 1)",
        ((f"C{n}", _email(n * 7, customers), iso(end - SPAN * (1 - n / carts)),
          iso(end - SPAN * (1 - n / carts)) if n % 3 else None) for n in range(carts)))
    conn.executemany("INSERT INTO cart_lines (cart_id, position, sku, name, quantity, price)"
                     " VALUES (?, 0, 'SKU-1', 'Mug bleu', 1, '19.00')",
                     ((f"C{n}",) for n in range(carts)))
    conn.executemany(f"INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES ({_marks(OUTBOX_COLUMNS)})",
                     _outbox(orders, customers))
    conn.executemany("INSERT INTO suppressions (email_key, email, reason, at, source) VALUES"
                     " (?1, ?1, ?2, ?3, 'bench')",
                     ((_email(n * 97, customers), ("unsubscribed", "bounced")[n % 2],
                       iso(end - timedelta(hours=n))) for n in range(customers // 50)))
    runs = 100_000  # a cron tick every 5 minutes for a year
    conn.executemany("INSERT INTO runs (command, now, started_at, finished_at, counts) VALUES"
                     " ('run', ?1, ?1, ?1, '{\"sent\": 3}')",
                     ((iso(NOW - timedelta(minutes=5 * (runs - n))),) for n in range(runs)))
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()


def add_due(path: Path, due: int = DUE) -> None:
    """`due` orders placed in the last half hour: the confirmations the dry run would send."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    rows = []
    for n in range(due):
        created = NOW - timedelta(minutes=30) + timedelta(seconds=n % 1700)
        row = list(next(_orders(1, 1)))
        email = f"new{n}@example.com"
        row[0], row[1], row[3], row[4], row[5] = f"N{n}", str(9_000_000 + n), email, email, email
        row[10], row[11], row[12:16] = "paid", iso(created), [iso(created), None, None, None]
        row[27], row[28], row[29] = f"due{n}", iso(created), iso(created)
        rows.append(row)
    conn.executemany(f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES ({_marks(ORDER_COLUMNS)})", rows)
    conn.executemany("INSERT INTO order_lines (order_id, position, sku, name, quantity, price)"
                     " VALUES (?, 0, 'SKU-1', 'Mug bleu', 1, '19.00')",
                     ((f"N{n}",) for n in range(due)))
    conn.execute("COMMIT")
    conn.close()


def kept_store(orders: int) -> Path:
    path = Path(tempfile.gettempdir()) / f"mailflow-bench-status-{orders}-b{BUILD}.db"
    if not path.exists():
        started = time.perf_counter()
        partial = path.with_suffix(".building")
        partial.unlink(missing_ok=True)
        build_store(partial, orders)
        add_due(partial)
        partial.rename(path)
        print(f"built {path} in {time.perf_counter() - started:.0f} s")
    return path


def timed(command: list[str]) -> tuple[float, int]:
    """Seconds and peak RSS (MB) of one whole process, under /usr/bin/time: a child's
    ru_maxrss starts at its parent's size when forked, and this script's is large."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        started = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *command],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - started
        if done.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(command)}: exit {done.returncode}: {done.stderr}")
        return elapsed, int(rss.read().split()[-1]) // 1024


def plans(db: Path, folder: Path) -> dict[str, list[tuple[str, list[str]]]]:
    """Every statement `status` and `report` run (traced in process), with its query plan."""
    from mailflow.config import load_config
    from mailflow.report.outcomes import build_report
    from mailflow.report.status import store_status

    config = load_config(folder / "rules.yaml")
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for name, run in (("status", lambda s: store_status(s, NOW)),
                      ("report", lambda s: build_report(s, config, NOW, None))):
        store = Store.open(db)
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        run(store)
        store.conn.set_trace_callback(None)
        seen: list[tuple[str, list[str]]] = []
        for sql in dict.fromkeys(statements):
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            plan = [row[3] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            seen.append((sql, plan))
        found[name] = seen
        store.close()
    return found


def print_samples(samples: dict[str, list[tuple[float, int]]], width: int) -> None:
    """Each command's median time, its ratio to `mailflow --help` of the same run, peak RSS."""
    reference = statistics.median(s for s, _ in samples["mailflow --help (reference)"])
    print(f"{'command':<{width}} {'median':>9} {'x --help':>9} {'peak RSS':>9}")
    for name, runs in samples.items():
        median = statistics.median(s for s, _ in runs)
        print(f"{name:<{width}} {median * 1000:>6.0f} ms {median / reference:>8.2f}x"
              f" {max(m for _, m in runs):>6} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-plans", action="store_true", help="Skip printing the query plans.")
    parser.add_argument("--compare-with", type=Path, help="Also time the mailflow of this"
                        " source tree (on a copy of the store without the newer migrations).")
    args = parser.parse_args()
    db = kept_store(args.orders)
    started = time.perf_counter()
    Store.open(db).close()
    opened = time.perf_counter() - started
    print(f"store: {db} ({db.stat().st_size / 1e9:.2f} GB, {args.orders:,} orders, {DUE:,} due);"
          f" first open (migrations it lacked) {opened:.2f} s; {os.cpu_count()} cores,"
          f" load {os.getloadavg()[0]:.1f}")
    folder = Path(tempfile.mkdtemp(prefix="mailflow-status-"))
    try:
        subprocess.run([MAILFLOW, "init", str(folder)], check=True, stdout=subprocess.DEVNULL)
        (folder / "rules.yaml").write_text(RULES)
        commands = {
            "mailflow --help (reference)": [MAILFLOW, "--help"],
            "sqlite3 DB 'select 1' (reference)": ["sqlite3", str(db), "select 1"],
        }
        trees = [("", None, db)]
        if args.compare_with is not None:
            older = older_copy(db, db.with_name(db.stem + "-older.db"))
            trees.append((" [compared]", args.compare_with, older))
        for label, tree, store in trees:
            base = [*mailflow_of(tree), "--db", str(store), "--config", str(folder / "rules.yaml")]
            commands.update({
                f"mailflow status{label}": [*base, "status"],
                f"mailflow status --json{label}": [*base, "status", "--json"],
                f"mailflow report{label}": [*base, "report", "--now", iso(NOW)],
                f"mailflow send --dry-run ({DUE:,} due){label}": [
                    *base, "send", "--dry-run", "--now", iso(NOW)],
            })
        for command in commands.values():  # warm the page cache: every run reads it warm
            timed(command)
        samples: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved: a burst of load hits every command alike
            for name, command in commands.items():
                samples[name].append(timed(command))
        print_samples(samples, 52)
        print("target: status and report <= 0.5 s on 2M orders, process start included")
        if not args.no_plans:
            for name, found in plans(db, folder).items():
                print(f"\n-- query plans of `{name}` ({len(found)} statements)")
                for sql, plan in found:
                    print(f"{sql}\n    " + "\n    ".join(plan))
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
