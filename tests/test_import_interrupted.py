"""An import killed (SIGKILL) or interrupted (Ctrl-C) while its batches are written, each
beside the parsing of the next by a second thread (store/bulk.py): the store is as it was
before the import, and the next import of the file gives what one clean import gives.
Real `mailflow import` processes on a real SQLite file; the signal comes once the import
has written a seeded amount of its transaction to the WAL (its rows, not yet committed)."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from mailflow.records import ExitCode

HEADER = "order_id,email,status,created_at,paid_at,total,line_sku,line_name,line_quantity,line_price\n"
NOW = "2026-03-20T19:00"


def big_export() -> str:
    """20,000 orders of two lines (four batches), people who come back, all the statuses."""
    statuses = ("paid", "pending_payment", "shipped", "cancelled", "refunded")
    rows = []
    for n in range(20_000):
        status = statuses[n % 5]
        paid = "" if status == "pending_payment" else "2026-03-01 10:05"
        for sku, price in (("S1", "10.00"), ("S2", "4.50")):
            rows.append(f"B-{n},client{n % 7000}@example.com,{status},2026-03-01 10:00,"
                        f"{paid},14.50,{sku},Mug {sku},1,{price}\n")
    return HEADER + "".join(rows)


EARLIER = HEADER + (  # already in the store: the big file changes two of them
    "B-1,client1@example.com,pending_payment,2026-03-01 10:00,,14.50,S1,Mug S1,1,10.00\n"
    "B-2,client2@example.com,paid,2026-03-01 10:00,2026-03-01 10:05,14.50,S1,Mug S1,1,10.00\n"
    "A-9,other@example.com,paid,2026-02-01 10:00,2026-02-01 10:05,20.00,S9,Vase,1,20.00\n")


def command(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mailflow", "--db", str(db), "--config",
            str(db.parent / "rules.yaml"), *args, "--now", NOW]


def contents(db: Path) -> dict[str, list]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'migrations'")]
        return {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}"))) for t in tables}
    finally:
        conn.close()


def a_store(folder: Path, earlier: Path) -> Path:
    folder.mkdir()
    (folder / "rules.yaml").write_text("shop: {name: Boutique, url: 'https://b.example',"
                                       " timezone: Europe/Paris}\n")
    db = folder / "mailflow.db"
    done = subprocess.run(command(db, "import", str(earlier)), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return db


def signalled(db: Path, export: Path, sig: int, wal_bytes: int) -> subprocess.Popen:
    """An import of `export`, sent `sig` once its WAL holds `wal_bytes`."""
    process = subprocess.Popen(command(db, "import", str(export)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wal = Path(f"{db}-wal")
    while process.poll() is None:
        if wal.exists() and wal.stat().st_size >= wal_bytes:
            process.send_signal(sig)
            break
        time.sleep(0.001)  # polling the file, not a timing assumption
    process.wait(timeout=120)
    return process


def test_an_import_killed_or_interrupted_mid_file_changes_nothing_and_the_next_one_is_whole(
        tmp_path):
    export = tmp_path / "orders_export.csv"
    export.write_text(big_export())
    earlier = tmp_path / "earlier.csv"
    earlier.write_text(EARLIER)

    clean_db = a_store(tmp_path / "clean", earlier)
    before = contents(clean_db)
    done = subprocess.run(command(clean_db, "import", str(export)), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    clean = contents(clean_db)
    assert len(clean["orders"]) == 20_001 and len(clean["order_lines"]) == 40_001
    size = clean_db.stat().st_size

    db = a_store(tmp_path / "killed", earlier)
    assert contents(db) == before
    seeded = random.Random(15)
    as_before = 0
    for attempt in range(8):
        sig = signal.SIGINT if attempt % 4 == 3 else signal.SIGKILL
        process = signalled(db, export, sig, seeded.randrange(64 << 10, size // 2))
        stderr = process.stderr.read() if process.stderr else ""
        now = contents(db)
        assert now in (before, clean), f"attempt {attempt}: half an import stayed"
        if now == before:
            as_before += 1
            if sig == signal.SIGINT:  # Ctrl-C: one line, the documented code, no traceback
                assert process.returncode == ExitCode.INTERRUPTED, stderr
                assert stderr.strip().endswith("interrupted") and "Traceback" not in stderr
        else:
            break  # the signal came after the commit: the import is whole already
    assert as_before >= 4, "the signals should land inside the import"

    again = subprocess.run(command(db, "import", str(export)), capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    assert contents(db) == clean
