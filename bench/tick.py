"""A cron tick with nothing new, beside ~1 GB of exports it already imported (issue 15, 2).

Writes N Shopify "Export orders" CSVs into a `sources:` folder (each ~200 MB: a few
thousand orders whose Notes cells are long, so that building and importing them stays
quick; a tick's cost is per file and per byte, not per row), imports them with
`mailflow import`, then times whole `mailflow run --quiet` processes, process start
included, in the same run:
  - with `sources:` matching those files (the figure: target <= 300 ms), and
  - with `sources:` matching an empty folder (the reference: what a tick costs anyway),
and, for scale, one pass of hashing and decoding every file in-process: what each tick
cost before the files were recognised by their stat.

    python bench/tick.py                  # 5 files, ~1 GB
    python bench/tick.py --files 2 --mb 100 --runs 5
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from importlib import import_module

HEADER = import_module("import").HEADER  # bench/import.py's 79-column header
MAILFLOW = shutil.which("mailflow") or str(Path(sys.executable).with_name("mailflow"))
NOW = "2026-06-15T12:00:00Z"
RULES = """\
shop: {{name: Bench, url: "https://bench.example", timezone: Europe/Paris, locale: fr}}
sender: {{from: "Bench <shop@bench.example>"}}
delivery: {{transport: file, dir: outbox}}
sources:
  - path: {folder}/orders_export_*.csv
rules:
  - {{name: order-confirmation, on: order.placed, template: order_confirmation}}
"""


def write_export(path: Path, megabytes: int, first_order: int) -> None:
    """Orders of one line each, in 2020 (nothing due now), padded by their Notes cell."""
    col = {name: i for i, name in enumerate(HEADER)}
    note = "Merci de laisser le colis chez la voisine. " * 1000  # ~43 KB
    orders = megabytes * 1_000_000 // (len(note) + 400)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(HEADER) + "\n")
        for n in range(first_order, first_order + orders):
            row = [""] * len(HEADER)
            row[col["Name"]], row[col["Email"]] = f"#{n}", f"client{n}@example.com"
            row[col["Financial Status"]], row[col["Fulfillment Status"]] = "paid", "fulfilled"
            stamp = f"2020-03-{n % 28 + 1:02d} 10:00:00 +0100"
            row[col["Created at"]] = row[col["Paid at"]] = row[col["Fulfilled at"]] = stamp
            row[col["Currency"]], row[col["Total"]] = "EUR", "42.00"
            row[col["Lineitem quantity"]], row[col["Lineitem name"]] = "1", "Mug"
            row[col["Lineitem price"]], row[col["Notes"]] = "42.00", f'"{note}"'
            handle.write(",".join(row) + "\n")


def tick(config: Path, db: Path) -> float:
    started = time.perf_counter()
    subprocess.run([MAILFLOW, "--db", str(db), "--config", str(config), "run", "--quiet",
                    "--now", NOW], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def hash_pass(files: list[Path]) -> float:
    """What every tick did before: hash and decode each file to learn it was imported."""
    from mailflow.importing.source import open_source

    started = time.perf_counter()
    for path in files:
        open_source(path)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--mb", type=int, default=200, help="size of each file")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailflow-tick-"))
    try:
        subprocess.run([MAILFLOW, "init", str(work)], check=True, stdout=subprocess.DEVNULL)
        exports, empty = work / "exports", work / "empty"
        exports.mkdir(exist_ok=True)
        empty.mkdir()
        (work / "rules.yaml").write_text(RULES.format(folder=exports))
        (work / "empty.yaml").write_text(RULES.format(folder=empty))
        db = work / "bench.db"
        started = time.perf_counter()
        files = [exports / f"orders_export_{i}.csv" for i in range(args.files)]
        for i, path in enumerate(files):
            write_export(path, args.mb, 1000 + i * 100_000)
        total = sum(p.stat().st_size for p in files)
        subprocess.run([MAILFLOW, "--db", str(db), "--config", str(work / "rules.yaml"),
                        "import", "--quiet", "--now", NOW, *map(str, files)], check=True)
        print(f"sources: {args.files} imported exports, {total / 1e9:.2f} GB (written and"
              f" imported in {time.perf_counter() - started:.0f} s); {os.cpu_count()} cores")
        with_files, without = [], []
        for _ in range(args.runs):  # interleaved: the machine's load hits both alike
            with_files.append(tick(work / "rules.yaml", db))
            without.append(tick(work / "empty.yaml", db))
        ours, reference = statistics.median(with_files), statistics.median(without)
        print(f"median of {args.runs} `mailflow run --quiet`, nothing new:")
        print(f"  sources: empty folder      {reference * 1000:6.0f} ms   (reference)")
        print(f"  sources: {total / 1e9:.2f} GB imported   {ours * 1000:6.0f} ms   (target: <= 300 ms)")
        print(f"  difference                 {(ours - reference) * 1000:+6.0f} ms"
              f"   ({ours / reference:.2f} x the reference)")
        print(f"  one hash + decode pass over the files (what each tick did before):"
              f" {hash_pass(files) * 1000:.0f} ms")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
