"""Import speed and memory against the sqlite3 shell's own `.import` (CONTRACT §10).

Generates a Shopify "Export orders" CSV (79-column header, one row per line item, order
fields only on each order's first row), then, in the same run, times:
  - `sqlite3 DB ".import --csv FILE t"` (the reference), and
  - `mailflow import FILE` (a fresh store each time),
and prints the medians, the ratio (target: within 2.5x, issue 15; the contract's was 3x)
and mailflow's peak RSS for 100k and 1M rows (target: flat as the file grows).

    python bench/import.py              # 1,000,000 rows / 200,000 orders, and 100,000 rows
    python bench/import.py --rows 200000 --runs 1
"""

from __future__ import annotations

import argparse
import compileall
import csv
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

HEADER = (
    "Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Accepts Marketing,Currency,"
    "Subtotal,Shipping,Taxes,Total,Discount Code,Discount Amount,Shipping Method,Created at,"
    "Lineitem quantity,Lineitem name,Lineitem price,Lineitem compare at price,Lineitem sku,"
    "Lineitem requires shipping,Lineitem taxable,Lineitem fulfillment status,Billing Name,"
    "Billing Street,Billing Address1,Billing Address2,Billing Company,Billing City,Billing Zip,"
    "Billing Province,Billing Country,Billing Phone,Shipping Name,Shipping Street,Shipping Address1,"
    "Shipping Address2,Shipping Company,Shipping City,Shipping Zip,Shipping Province,"
    "Shipping Country,Shipping Phone,Notes,Note Attributes,Cancelled at,Payment Method,"
    "Payment Reference,Refunded Amount,Vendor,Outstanding Balance,Employee,Location,Device ID,Id,"
    "Tags,Risk Level,Source,Lineitem discount,Tax 1 Name,Tax 1 Value,Tax 2 Name,Tax 2 Value,"
    "Tax 3 Name,Tax 3 Value,Tax 4 Name,Tax 4 Value,Tax 5 Name,Tax 5 Value,Phone,Receipt Number,"
    "Duties,Billing Province Name,Shipping Province Name,Payment ID,Payment Terms Name,"
    "Next Payment Due At,Payment References"
).split(",")
PRODUCTS = [("Mug Bleu", "MUG-B", "12.50"), ("Tasse Rouge", "TAS-R", "9.90"),
            ("Théière", "THE-1", "34.00"), ("Sous-tasse", "SOU-1", "4.50"),
            ("Plateau", "PLA-2", "19.00"), ("Cuillère", "CUI-3", "3.20")]
STATES = [("paid", "fulfilled"), ("paid", "unfulfilled"), ("pending", "unfulfilled"),
          ("paid", "partial"), ("refunded", "fulfilled")]


def generate(path: Path, rows: int, lines_per_order: int = 5, seed: int = 7,
             start: datetime = datetime(2024, 1, 1, 8, 0, 0), step_minutes: int = 3) -> None:
    rng = random.Random(seed)
    col = {name: i for i, name in enumerate(HEADER)}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        orders = rows // lines_per_order
        for n in range(orders):
            created = start + timedelta(minutes=step_minutes * n)
            stamp = created.strftime("%Y-%m-%d %H:%M:%S +0100")
            email = f"client{rng.randrange(orders // 2)}@example.com"
            financial, fulfillment = STATES[n % len(STATES)]
            items = [PRODUCTS[rng.randrange(len(PRODUCTS))] for _ in range(lines_per_order)]
            total = sum(float(p) for _, _, p in items)
            for i, (name, sku, price) in enumerate(items):
                row = [""] * len(HEADER)
                row[col["Name"]] = f"#{1000 + n}"
                row[col["Email"]] = email
                row[col["Created at"]] = stamp
                row[col["Lineitem quantity"]] = "1"
                row[col["Lineitem name"]] = name
                row[col["Lineitem price"]] = price
                row[col["Lineitem sku"]] = sku
                row[col["Lineitem requires shipping"]] = "true"
                row[col["Lineitem taxable"]] = "true"
                row[col["Lineitem fulfillment status"]] = "pending"
                row[col["Vendor"]] = "Atelier"
                row[col["Lineitem discount"]] = "0.00"
                if i == 0:
                    row[col["Financial Status"]] = financial
                    row[col["Paid at"]] = stamp if financial != "pending" else ""
                    row[col["Fulfillment Status"]] = fulfillment
                    row[col["Fulfilled at"]] = stamp if fulfillment == "fulfilled" else ""
                    row[col["Accepts Marketing"]] = "yes" if n % 3 else "no"
                    row[col["Currency"]] = "EUR"
                    row[col["Subtotal"]] = f"{total:.2f}"
                    row[col["Shipping"]] = "4.90"
                    row[col["Taxes"]] = f"{total / 6:.2f}"
                    row[col["Total"]] = f"{total + 4.9:.2f}"
                    row[col["Shipping Method"]] = "Colissimo"
                    row[col["Billing Name"]] = row[col["Shipping Name"]] = f"Client {n}"
                    row[col["Shipping Address1"]] = f"{n % 90 + 1} rue des Lilas"
                    row[col["Shipping City"]] = "Lyon"
                    row[col["Shipping Zip"]] = "'69001"
                    row[col["Shipping Country"]] = "FR"
                    row[col["Payment Method"]] = "Shopify Payments"
                    row[col["Id"]] = str(5_000_000_000 + n)
                    row[col["Risk Level"]] = "Low"
                    row[col["Source"]] = "web"
                writer.writerow(row)


CPU: dict[str, list[float]] = {}  # CPU seconds (user + system) of each run, by what ran


def timed(command: list[str], env: dict[str, str] | None = None, what: str = "",
          cwd: Path | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process; its CPU seconds go to CPU[what]
    (on a loaded machine the CPU time says more than the wall time of one run)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                               cwd=cwd)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()}")
    process.stderr.close()
    CPU.setdefault(what, []).append(usage.ru_utime + usage.ru_stime)
    return elapsed, usage.ru_maxrss


def measure(csv_path: Path, work: Path, runs: int, baseline: Path | None = None,
            ) -> dict[str, list]:
    mailflow = shutil.which("mailflow") or str(Path(sys.executable).with_name("mailflow"))
    sqlite3 = shutil.which("sqlite3")
    if sqlite3 is None:
        sys.exit("needs the sqlite3 shell (Debian package sqlite3)")
    results: dict[str, list] = {"sqlite3": [], "mailflow": [], "rss": [], "baseline": []}
    for run in range(runs):
        db = work / f"ref{run}.db"
        results["sqlite3"].append(timed([sqlite3, str(db), f".import --csv {csv_path} orders"],
                                        what="sqlite3")[0])
        db.unlink()
        store = work / f"mf{run}.db"
        seconds, rss = timed([mailflow, "--db", str(store), "--config", str(work / "none.yaml"),
                              "import", "--quiet", str(csv_path)], what="mailflow")
        results["mailflow"].append(seconds)
        results["rss"].append(rss)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
        if baseline is not None:  # another checkout's package, e.g. `git archive main mailflow`
            # run from its folder: `python -m` puts the working directory first on the path,
            # before PYTHONPATH, and from a checkout it would time that checkout's package
            env = {**os.environ, "PYTHONPATH": str(baseline)}
            results["baseline"].append(timed(
                [sys.executable, "-m", "mailflow", "--db", str(store), "--config",
                 str(work / "none.yaml"), "import", "--quiet", str(csv_path)], env=env,
                what="baseline", cwd=baseline)[0])
            for suffix in ("", "-wal", "-shm"):
                Path(f"{store}{suffix}").unlink(missing_ok=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="rows of the memory check")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep the generated files in this folder")
    parser.add_argument("--baseline", type=Path,
                        help="also time the mailflow package in this folder (e.g. main's), same run")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="mailflow-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    # as `pip install` leaves it: an editable install under PYTHONDONTWRITEBYTECODE would
    # compile every module of each timed import (a quarter of a second each run)
    for package in (Path(__file__).resolve().parent.parent / "mailflow",
                    *([args.baseline / "mailflow"] if args.baseline else [])):
        compileall.compile_dir(str(package), quiet=1)
    rss_by_size = {}
    for rows in (args.small, args.rows):
        path = work / f"orders_export_{rows}.csv"
        if not path.exists():
            generate(path, rows)
        size_mb = path.stat().st_size / 1e6
        CPU.clear()
        r = measure(path, work, args.runs, args.baseline)
        ref, ours = statistics.median(r["sqlite3"]), statistics.median(r["mailflow"])
        rss_by_size[rows] = max(r["rss"]) / 1024
        print(f"\n{rows:,} rows ({rows // 5:,} orders, {size_mb:.0f} MB), median of {args.runs}:")
        print(f"  sqlite3 .import    {ref:7.2f} s  {rows / ref:>10,.0f} rows/s   (reference)")
        print(f"  mailflow import    {ours:7.2f} s  {rows / ours:>10,.0f} rows/s")
        print(f"  ratio              {ours / ref:7.2f} x   (target: <= 2.50 x)")
        if r["baseline"]:
            base = statistics.median(r["baseline"])
            print(f"  baseline import    {base:7.2f} s  {rows / base:>10,.0f} rows/s"
                  f"   ratio {base / ref:.2f} x ({args.baseline})")
        cpu = {what: statistics.median(seconds) for what, seconds in CPU.items()}
        print(f"  CPU seconds        sqlite3 {cpu['sqlite3']:.2f}, mailflow {cpu['mailflow']:.2f}"
              f" ({cpu['mailflow'] / cpu['sqlite3']:.2f} x)"
              + (f", baseline {cpu['baseline']:.2f} ({cpu['baseline'] / cpu['sqlite3']:.2f} x)"
                 if "baseline" in cpu else ""))
        print(f"  mailflow peak RSS  {rss_by_size[rows]:7.1f} MB")
    small, big = rss_by_size[args.small], rss_by_size[args.rows]
    print(f"\npeak RSS {args.small:,} rows: {small:.1f} MB; {args.rows:,} rows: {big:.1f} MB;"
          f" growth {big / small:.2f}x for {args.rows / args.small:.0f}x the rows (target: flat;"
          " a big file's page cache is a fixed 64 MB that a small file does not fill:"
          " --rows 2000000 --small 1000000 compares two that do)")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
