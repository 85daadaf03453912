"""Purge at scale (issue 15, 4): time, peak memory, WAL peak and file size, 200k and 2M orders.

A store of N orders (two lines each), N/2 customers, N/4 carts, one sent message per order
with a click and an open for one in four, spread evenly over the three years before NOW, is
generated with SQL (fast; cached in /tmp/mailflow-bench-purge/, `--fresh` rebuilds it); then,
on a copy each time:

  - mailflow: the whole `mailflow purge --older-than 365d` process (two thirds of everything
    goes): wall time, peak RSS (wait4), the -wal file's peak size (polled every 5 ms from a
    thread) and the file's size before and after;
  - reference, same run: the sqlite3 shell deleting the same rows in one transaction, one
    `DELETE ... WHERE ... IN (SELECT ...)` a table (what purge did before batches).

Each time is the median of `--runs`; RSS and WAL peaks the largest seen.

    python bench/purge.py                      # 200,000 and 2,000,000 orders, 3 runs
    python bench/purge.py --sizes 200000 --runs 1
    python bench/purge.py --old-store          # also a store made before 0015 (auto_vacuum
                                               # off): purge, then purge --vacuum
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from mailflow.store import Store

MAILFLOW = shutil.which("mailflow", path=str(Path(sys.executable).parent)) or shutil.which("mailflow")
SQLITE3 = shutil.which("sqlite3")
CACHE = Path("/tmp/mailflow-bench-purge")
GENERATION = "v1"  # bump when the generated data changes
NOW = "2026-06-15T12:00:00Z"
SPAN_SECONDS = 3 * 365 * 86400
RULES = """\
shop: {name: Bench, url: "https://bench.example", timezone: UTC, locale: fr}
sender: {from: "Bench <shop@bench.example>"}
delivery: {transport: file, dir: outbox}
rules:
  - {name: order-confirmation, on: order.placed, template: order_confirmation}
"""

# :n rows, the i-th placed i/n of three years after NOW - 3y (rowid order is time order)
_AT = "strftime('%Y-%m-%dT%H:%M:%SZ', '2023-06-16T12:00:00Z', '+' || (i * {span} / {n}) || ' seconds')"
_SERIES = "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})"
GENERATE = [
    """INSERT INTO orders (id, platform_id, source, email, email_key, email_raw, first_name,
         last_name, locale, accepts_marketing, status, created_at, paid_at, currency, subtotal,
         total, payment_method, shipping_method, shipping_address, content_hash, first_seen_at,
         updated_at)
       {series} SELECT '#' || i, i, 'bench', 'client' || (i / 2) || '@example.com',
         'client' || (i / 2) || '@example.com', 'Client' || (i / 2) || '@Example.com',
         'Prénom' || (i / 2), 'Nom-de-famille' || (i / 2), 'fr', 1, 'paid', {at}, {at}, 'EUR',
         '42.00', '49.90', 'card', 'colissimo',
         '{{"address1": "' || i || ' rue de la Paix", "city": "Lyon", "zip": "69001"}}',
         hex(randomblob(16)), {at}, {at} FROM s""",
    """INSERT INTO order_lines (order_id, position, sku, name, quantity, price)
       {series} SELECT '#' || i, p.position, 'MUG-' || p.position, 'Mug émaillé ' || p.position, 1,
         '21.00' FROM s, (SELECT 1 AS position UNION ALL SELECT 2) p""",
    """INSERT INTO customers (email_key, email, first_name, last_name, locale, accepts_marketing,
         first_seen_at, last_order_at, first_order_at, updated_at)
       {series} SELECT 'client' || (i / 2) || '@example.com', 'client' || (i / 2) || '@example.com',
         'Prénom' || (i / 2), 'Nom-de-famille' || (i / 2), 'fr', 1, {at}, {at}, {at}, {at}
       FROM s WHERE i % 2 = 1 OR i = 0
       ON CONFLICT (email_key) DO UPDATE SET last_order_at = excluded.last_order_at""",
    """INSERT INTO carts (id, source, email, email_key, created_at, updated_at, currency, total,
         recovery_url, content_hash, first_seen_at)
       {series} SELECT 'C' || i, 'bench', 'client' || (i / 2) || '@example.com',
         'client' || (i / 2) || '@example.com', {at}, {at}, 'EUR', '21.00',
         'https://bench.example/cart/' || hex(randomblob(8)), hex(randomblob(16)), {at}
       FROM s WHERE i % 4 = 0""",
    """INSERT INTO cart_lines (cart_id, position, sku, name, quantity, price)
       {series} SELECT 'C' || i, 1, 'MUG-1', 'Mug émaillé', 1, '21.00' FROM s WHERE i % 4 = 0""",
    """INSERT INTO outbox (key, rule, subject_type, subject_id, email, email_key, status, due_at,
         decided_at, sent_at, subject, message_id, attempts)
       {series} SELECT 'order-confirmation:order:#' || i, 'order-confirmation', 'order', '#' || i,
         'client' || (i / 2) || '@example.com', 'client' || (i / 2) || '@example.com', 'sent',
         {at}, {at}, {at}, 'Merci pour votre commande n° ' || i,
         '<' || hex(randomblob(16)) || '@bench.example>', 1 FROM s""",
    """INSERT INTO outbox_attempts (outbox_id, at, outcome, detail)
       SELECT id, sent_at, 'sent', '250 2.0.0 Ok: queued as ' || hex(randomblob(5)) FROM outbox""",
    """INSERT INTO clicks (outbox_key, url, email_key, rule, first_at, last_at)
       SELECT key, 'https://bench.example/p/mug', email_key, rule, sent_at, sent_at FROM outbox
       WHERE id % 4 = 0""",
    """INSERT INTO opens (outbox_key, email_key, rule, first_at, human_at)
       SELECT key, email_key, rule, sent_at, sent_at FROM outbox WHERE id % 4 = 0""",
]

# what purge did before batches: the same rows, one statement a table, one transaction
_NEWEST = ("max(created_at, coalesce(paid_at, ''), coalesce(shipped_at, ''),"
           " coalesce(delivered_at, ''), coalesce(cancelled_at, ''))")
_ORDERS = f"SELECT id FROM orders WHERE {_NEWEST} < '{{cutoff}}'"
_CARTS = "SELECT id FROM carts WHERE updated_at < '{cutoff}'"
_MESSAGES = ("SELECT {col} FROM outbox WHERE coalesce(sent_at, decided_at) < '{{cutoff}}'"
             " AND status NOT IN ('queued', 'deferred', 'sending')")
REFERENCE = "\n".join([
    "BEGIN IMMEDIATE;",
    f"DELETE FROM order_lines WHERE order_id IN ({_ORDERS});",
    f"DELETE FROM order_status_events WHERE order_id IN ({_ORDERS});",
    f"DELETE FROM attributions WHERE order_id IN ({_ORDERS});",
    f"DELETE FROM orders WHERE {_NEWEST} < '{{cutoff}}';",
    f"DELETE FROM cart_lines WHERE cart_id IN ({_CARTS});",
    "DELETE FROM carts WHERE updated_at < '{cutoff}';",
    f"DELETE FROM outbox_attempts WHERE outbox_id IN ({_MESSAGES.format(col='id')});",
    f"DELETE FROM clicks WHERE outbox_key IN ({_MESSAGES.format(col='key')});",
    f"DELETE FROM opens WHERE outbox_key IN ({_MESSAGES.format(col='key')});",
    f"DELETE FROM outbox WHERE id IN ({_MESSAGES.format(col='id')});",
    "DELETE FROM customers WHERE coalesce(last_order_at, first_seen_at) < '{cutoff}'"
    " AND coalesce(created_at, first_seen_at) < '{cutoff}'"
    " AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.email_key = customers.email_key)"
    " AND NOT EXISTS (SELECT 1 FROM carts k WHERE k.email_key = customers.email_key);",
    "COMMIT;",
    "PRAGMA wal_checkpoint(TRUNCATE);",
])
CUTOFF = "2025-06-15T12:00:00Z"  # NOW - 365d


@dataclass
class Measure:
    seconds: float
    cpu: float  # user + system seconds: steadier than wall time on a loaded machine
    rss_kib: int
    wal_peak: int
    size_before: int
    size_after: int
    output: str = ""


@dataclass
class Runs:
    items: list[Measure] = field(default_factory=list)

    def median_seconds(self) -> float:
        return statistics.median(m.seconds for m in self.items)

    def median_cpu(self) -> float:
        return statistics.median(m.cpu for m in self.items)

    def peak(self, name: str) -> int:
        return max(getattr(m, name) for m in self.items)


def store_for(orders: int, fresh: bool, old_store: bool = False) -> Path:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"store-{orders}-{GENERATION}{'-old' if old_store else ''}.db"
    if path.exists() and not fresh:
        return path
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    print(f"generating {path} ({orders:,} orders) ...", file=sys.stderr)
    started = time.perf_counter()
    building = path.with_suffix(".building")
    building.unlink(missing_ok=True)
    # in a child: this process stays small, and so do the children it forks (their peak RSS)
    subprocess.run([sys.executable, __file__, "--generate", str(orders), str(building),
                    *(["--old-store"] if old_store else [])], check=True)
    building.rename(path)
    print(f"  {time.perf_counter() - started:.0f} s, {path.stat().st_size / 1e6:,.0f} MB", file=sys.stderr)
    return path


def generate(orders: int, building: Path, old_store: bool) -> None:
    store = Store.open(building)
    conn = store.conn
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("PRAGMA secure_delete = OFF")
    with store.transaction():
        for statement in GENERATE:
            conn.execute(statement.format(series=_SERIES.format(n=orders),
                                          at=_AT.format(span=SPAN_SECONDS, n=orders)))
    conn.execute("ANALYZE")
    if old_store:
        conn.execute("PRAGMA auto_vacuum = NONE")
        conn.execute("VACUUM")
    conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file to copy
    store.close()


def size_on_disk(db: Path) -> int:
    return sum(Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists())


def timed(command: list[str], db: Path) -> Measure:
    """Wall time, peak RSS and the -wal file's peak size of one child process."""
    wal = Path(f"{db}-wal")
    peak = [0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            with suppress(FileNotFoundError):
                peak[0] = max(peak[0], wal.stat().st_size)
            stop.wait(0.005)

    before = size_on_disk(db)
    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out, err = Path(f"{db}.out"), Path(f"{db}.err")
    with out.open("wb") as stdout, err.open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command[:6])} ...\n{err.read_text(errors='replace')[-2000:]}")
    return Measure(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, peak[0], before,
                   size_on_disk(db), out.read_text(errors="replace"))


def run_once(pristine: Path, work: Path, which: str, vacuum: bool = False) -> Measure:
    db = work / f"{which}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(pristine, db)
    if which == "mailflow":
        command = [MAILFLOW, "--db", str(db), "--config", str(work / "rules.yaml"), "purge",
                   "--older-than", "365d", "--now", NOW, *(["--vacuum"] if vacuum else [])]
    else:
        command = [SQLITE3, str(db), "PRAGMA journal_mode=WAL;", REFERENCE.format(cutoff=CUTOFF)]
    return timed(command, db)


def measure_size(orders: int, runs: int, fresh: bool, work: Path, old_store: bool) -> None:
    pristine = store_for(orders, fresh)
    results = {"sqlite3 one transaction": Runs(), "mailflow purge": Runs()}
    for _ in range(runs):  # interleaved: the machine's load falls on both alike
        results["sqlite3 one transaction"].items.append(run_once(pristine, work, "reference"))
        results["mailflow purge"].items.append(run_once(pristine, work, "mailflow"))
    print(f"\n{orders:,} orders ({pristine.stat().st_size / 1e6:,.0f} MB store), purge --older-than"
          f" 365d (two thirds go), median of {runs}:")
    for name, r in results.items():
        m = r.items[-1]
        print(f"  {name:25s} {r.median_seconds():7.2f} s (CPU {r.median_cpu():6.2f} s)"
              f"   peak RSS {r.peak('rss_kib') / 1024:7.1f} MB"
              f"   WAL peak {r.peak('wal_peak') / 1e6:8.1f} MB   file {m.size_before / 1e6:7.1f} ->"
              f" {m.size_after / 1e6:7.1f} MB")
    ratio = results["mailflow purge"].median_seconds() / results["sqlite3 one transaction"].median_seconds()
    cpu_ratio = results["mailflow purge"].median_cpu() / results["sqlite3 one transaction"].median_cpu()
    print(f"  mailflow / reference: time {ratio:.2f}x, CPU {cpu_ratio:.2f}x")
    print(f"  mailflow said: {results['mailflow purge'].items[-1].output.strip()}")
    if old_store:
        old = store_for(orders, fresh, old_store=True)
        kept = run_once(old, work, "mailflow")
        print(f"  store made before 0015 (auto_vacuum off): purge {kept.seconds:.2f} s"
              f" (CPU {kept.cpu:.2f} s),"
              f" WAL peak {kept.wal_peak / 1e6:.1f} MB, file"
              f" {kept.size_before / 1e6:.1f} -> {kept.size_after / 1e6:.1f} MB")
        vacuumed = run_once(old, work, "mailflow", vacuum=True)
        print(f"    purge --vacuum {vacuumed.seconds:.2f} s (CPU {vacuumed.cpu:.2f} s),"
              f" WAL peak {vacuumed.wal_peak / 1e6:.1f} MB,"
              f" file {vacuumed.size_before / 1e6:.1f} -> {vacuumed.size_after / 1e6:.1f} MB")
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200000,2000000", help="orders per store (200000,2000000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each; the median is kept (3)")
    parser.add_argument("--fresh", action="store_true", help="regenerate the cached stores")
    parser.add_argument("--old-store", action="store_true",
                        help="also a store made before 0015_purge: purge, then purge --vacuum")
    parser.add_argument("--generate", nargs=2, metavar=("ORDERS", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(int(args.generate[0]), Path(args.generate[1]), args.old_store)
        return 0
    if MAILFLOW is None or SQLITE3 is None:
        sys.exit("needs the `mailflow` command (pip install -e .) and the sqlite3 shell (Debian: sqlite3)")
    work = CACHE / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "rules.yaml").write_text(RULES, encoding="utf-8")
    shutil.copytree(Path(__file__).resolve().parent.parent / "mailflow" / "data" / "templates",
                    work / "templates")
    try:
        for orders in (int(s) for s in args.sizes.split(",")):
            measure_size(orders, args.runs, args.fresh, work, args.old_store)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
