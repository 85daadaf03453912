"""A database that is busy, full, damaged, another application's, newer or read-only: one line
on stderr, a documented exit code, and nothing changed in it. Real SQLite files, a real
second process holding the write lock, a real file size limit."""

from __future__ import annotations

import ctypes
import gc
import os
import random
import re
import resource
import signal
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from mailflow.records import ExitCode

CANONICAL = (
    "order_id,email,status,created_at,total,line_sku,line_name,line_quantity,line_price\n"
    "A-1,ana@example.com,paid,2026-03-01 10:00,10.00,S1,Mug,1,10.00\n"
)

HOLD_WRITE_LOCK = """\
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
sys.stdin.read()
"""


@contextmanager
def write_lock_held(db: Path):
    """Another process holding SQLite's write lock on `db` until the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK, str(db)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


def one_line(stderr: str) -> str:
    assert stderr.count("\n") == 1, stderr
    assert "internal error" not in stderr
    assert "Traceback" not in stderr
    return stderr


def mailflow_process(mf, *args: str, preexec_fn=None, env=None) -> subprocess.CompletedProcess:
    """The CLI in its own process (for a process-wide limit, or fewer privileges)."""
    return subprocess.run(
        [sys.executable, "-m", "mailflow", "--db", str(mf.db), "--config", str(mf.config), *args],
        capture_output=True, text=True, preexec_fn=preexec_fn, env=env, cwd=mf.folder, timeout=120)


def test_a_busy_database_exits_4_and_the_same_import_succeeds_once_it_is_free(mailflow, monkeypatch):
    orders = mailflow.write("o.csv", CANONICAL)
    assert mailflow("status").exit_code == 0
    monkeypatch.setenv("MAILFLOW_DB_TIMEOUT", "1s")
    with write_lock_held(mailflow.db):
        busy = mailflow("import", orders)
    assert busy.exit_code == ExitCode.UNAVAILABLE == 4
    line = one_line(busy.stderr)
    assert f"{mailflow.db}: database busy: another process is writing to it" in line
    assert "nothing was changed or lost, the next run tries again" in line
    again = mailflow("import", orders)
    assert again.exit_code == 0, again.stderr
    assert "already imported" not in again.stdout
    assert mailflow.scalar("SELECT count(*) FROM orders") == 1


def test_status_log_and_a_dry_run_read_while_another_process_writes(mailflow, monkeypatch):
    mailflow("init", mailflow.folder / "project")
    mailflow.config = mailflow.folder / "project" / "rules.yaml"
    monkeypatch.setenv("MAILFLOW_SECRET", "test")
    mailflow("import", mailflow.write("o.csv", CANONICAL), "--now", "2026-03-01T10:01")
    monkeypatch.setenv("MAILFLOW_DB_TIMEOUT", "1s")  # a command that needed the lock would fail
    with write_lock_held(mailflow.db):
        status = mailflow("status", "--json")
        log = mailflow("log")
        dry = mailflow("send", "--dry-run", "--json", "--now", "2026-03-01T10:02")
    assert (status.exit_code, log.exit_code, dry.exit_code) == (0, 0, 0), \
        status.stderr + log.stderr + dry.stderr
    assert status.json()["orders"] == 1
    assert "would_send" in {m["status"] for m in dry.json()["messages"]}


# 2,000 orders fill the disk at the commit; 12,000 (three batches) while a batch's rows are
# moved into the store by the second thread (store/bulk.py), beside the parsing
@pytest.mark.parametrize("orders_count", [2000, 12_000])
def test_a_full_disk_exits_4_and_leaves_the_database_as_it_was(mailflow, orders_count):
    assert mailflow("status").exit_code == 0
    before = mailflow.dump()
    rows = "".join(f"B-{n},c{n}@example.com,paid,2026-03-01 10:00,10.00,S1,Mug,1,10.00\n"
                   for n in range(orders_count))
    orders = mailflow.write("big.csv", CANONICAL + rows)
    limit = 64 << 10  # room for the 32 KB shared-memory file, not for the import's WAL frames

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so write() fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full = mailflow_process(mailflow, "import", str(orders), preexec_fn=small_files)
    assert full.returncode == ExitCode.UNAVAILABLE, full.stderr
    line = one_line(full.stderr)
    # EFBIG reaches SQLite as SQLITE_IOERR_WRITE (only ENOSPC becomes SQLITE_FULL)
    assert f"{mailflow.db}: cannot write to the disk (disk I/O error;" in line
    assert f"ulimit -f limits files to {limit} bytes here): free disk space" in line
    assert "nothing was half-written, the next run tries again" in line
    assert mailflow.scalar("PRAGMA integrity_check") == "ok"
    assert mailflow.dump() == before
    again = mailflow("import", orders)
    assert again.exit_code == 0, again.stderr
    assert mailflow.scalar("SELECT count(*) FROM orders") == orders_count + 1


def _mailflow_db(mailflow) -> bytes:
    """A real mailflow store with one order, closed as at the end of a run: all in the file."""
    assert mailflow("import", mailflow.write("o.csv", CANONICAL)).exit_code == 0
    gc.collect()  # the in-process CLI's connection sits in a reference cycle: close it now
    assert not Path(f"{mailflow.db}-wal").exists()
    return mailflow.db.read_bytes()


def _damage(data: bytes, page: int, start: int = 0) -> bytes:
    """`data` with page `page` (1-based, 4 KB pages) overwritten from `start` by noise."""
    size = 4096
    noise = random.Random(page).randbytes(size - start)
    offset = (page - 1) * size + start
    return data[:offset] + noise + data[offset + len(noise):]


@pytest.mark.parametrize("make, says", [
    (lambda mf: random.Random(1).randbytes(20000), "not an SQLite database"),
    (lambda mf: _damage(_mailflow_db(mf), 1), "not an SQLite database"),
    (lambda mf: _damage(_mailflow_db(mf), 1, start=100), "the database is damaged (database disk"
                                                         " image is malformed)"),
], ids=["random-bytes", "header-page-overwritten", "schema-page-overwritten"])
def test_a_corrupt_file_exits_2_and_is_left_untouched(mailflow, make, says):
    data = make(mailflow)
    mailflow.db.write_bytes(data)
    for command in (("status",), ("import", mailflow.write("o.csv", CANONICAL))):
        result = mailflow(*command)
        assert result.exit_code == ExitCode.USAGE
        assert f"{mailflow.db}: {says}" in one_line(result.stderr)
        assert mailflow.db.read_bytes() == data


def test_a_damaged_table_found_while_reading_exits_2_and_is_left_untouched(mailflow):
    data = _mailflow_db(mailflow)
    page = mailflow.scalar("SELECT rootpage FROM sqlite_master WHERE name = 'orders'")
    assert mailflow.scalar("PRAGMA page_size") == 4096
    data = _damage(data, page)
    mailflow.db.write_bytes(data)
    # opens fine: the damage is in the orders table (status reads their counts, not them;
    # test_store_damage.py has the commands that read orders)
    for command in (("import", mailflow.write("again.csv", CANONICAL.replace("paid", "shipped"))),):
        result = mailflow(*command)
        assert result.exit_code == ExitCode.USAGE, result.stderr
        assert f"{mailflow.db}: the database is damaged" in one_line(result.stderr)
        assert "mailflow never repairs or overwrites it" in result.stderr
    assert mailflow.db.read_bytes() == data


def _sqlite_file(path: Path, *statements: str) -> bytes:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("statements, tables", [
    (["CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)",
      "CREATE TABLE moz_bookmarks (id INTEGER PRIMARY KEY, fk INTEGER)",
      "INSERT INTO moz_places (url) VALUES ('https://example.com')"], "moz_bookmarks, moz_places"),
    (["CREATE TABLE migrations (id INTEGER PRIMARY KEY, migration TEXT, batch INTEGER)",
      "CREATE TABLE users (id INTEGER PRIMARY KEY)"], "migrations, users"),
    (["CREATE TABLE migrations (name TEXT PRIMARY KEY)",
      "INSERT INTO migrations VALUES ('2019_create_users')"], "migrations"),
], ids=["firefox", "laravel-migrations", "foreign-migration-names"])
def test_another_applications_database_is_refused_and_left_byte_identical(mailflow, statements,
                                                                          tables):
    data = _sqlite_file(mailflow.db, *statements)
    result = mailflow("import", mailflow.write("o.csv", CANONICAL))
    assert result.exit_code == ExitCode.USAGE
    line = one_line(result.stderr)
    assert (f"{mailflow.db}: an SQLite database of another application (tables {tables}), not"
            " mailflow's: point --db at mailflow's own file") in line
    assert mailflow.db.read_bytes() == data
    assert sorted(p.name for p in mailflow.folder.iterdir()) == ["mailflow.db", "o.csv",
                                                                 "rules.yaml"]


def test_an_empty_file_becomes_a_mailflow_database(mailflow):
    mailflow.db.write_bytes(b"")
    assert mailflow("import", mailflow.write("o.csv", CANONICAL)).exit_code == 0
    assert mailflow.scalar("SELECT count(*) FROM orders") == 1


def test_a_db_path_in_a_missing_folder_or_naming_a_folder_is_one_line(mailflow):
    mailflow.db = mailflow.folder / "nowhere" / "mailflow.db"
    missing = mailflow("status")
    assert missing.exit_code == ExitCode.USAGE
    assert f"the folder {mailflow.folder / 'nowhere'} does not exist" in one_line(missing.stderr)
    mailflow.db = mailflow.folder
    folder = mailflow("status")
    assert folder.exit_code == ExitCode.USAGE
    assert f"{mailflow.folder}: is a folder, not a database file" in one_line(folder.stderr)


def test_a_database_of_a_newer_mailflow_is_refused(mailflow):
    _mailflow_db(mailflow)
    conn = sqlite3.connect(mailflow.db)
    conn.execute("INSERT INTO migrations VALUES ('0099_from_the_future', '2030-01-01 00:00:00')")
    conn.commit()
    conn.close()
    before = mailflow.dump()
    result = mailflow("status")
    assert result.exit_code == ExitCode.USAGE
    assert (f"{mailflow.db}: made by a newer mailflow (its schema has 0099_from_the_future"
            in one_line(result.stderr))
    assert mailflow.dump() == before


def test_a_bad_wait_in_the_environment_is_a_usage_error(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_DB_TIMEOUT", "soon")
    result = mailflow("status")
    assert result.exit_code == ExitCode.USAGE
    assert "MAILFLOW_DB_TIMEOUT: bad duration 'soon'" in one_line(result.stderr)


def _bound_by_file_modes():
    """A preexec_fn that makes file modes bind the CLI even as root: CAP_DAC_OVERRIDE dropped
    from the bounding set, so the exec'd process never has it."""
    if os.geteuid() != 0:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override = 24, 1

    def drop() -> None:
        if libc.prctl(pr_capbset_drop, cap_dac_override, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    try:
        subprocess.run(["true"], preexec_fn=drop, check=True)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("root without CAP_SETPCAP: chmod cannot make a file read-only for root")
    return drop


@pytest.fixture
def folder_mode(mailflow):
    """Restores the tmp folder's mode after a test made it read-only, for its clean-up."""
    yield mailflow.folder
    mailflow.folder.chmod(0o755)


def test_a_write_to_a_read_only_database_in_a_read_only_folder_is_one_line(mailflow,
                                                                          folder_mode):
    """(The commands that only read work there: test_store_read_only.py.)"""
    preexec = _bound_by_file_modes()
    _mailflow_db(mailflow)
    data = mailflow.db.read_bytes()
    mailflow.db.chmod(0o444)
    folder_mode.chmod(0o555)
    for command in (("unsubscribe", "ana@example.com"), ("import", str(mailflow.folder / "o.csv"))):
        result = mailflow_process(mailflow, *command, preexec_fn=preexec)
        assert result.returncode == ExitCode.USAGE
        line = one_line(result.stderr)
        assert f"{mailflow.db}: its folder {mailflow.folder} is read-only" in line
        assert "make the folder writable by this user; nothing was changed" in line
    assert mailflow.db.read_bytes() == data


def test_a_read_only_file_still_reads_and_refuses_writes_in_one_line(mailflow):
    preexec = _bound_by_file_modes()
    _mailflow_db(mailflow)
    mailflow.db.chmod(0o444)
    status = mailflow_process(mailflow, "status", "--json", preexec_fn=preexec)
    assert status.returncode == 0, status.stderr
    more = mailflow.write("more.csv", CANONICAL.replace("A-1", "A-2"))
    write = mailflow_process(mailflow, "import", str(more), preexec_fn=preexec)
    assert write.returncode == ExitCode.USAGE
    assert f"{mailflow.db}: the database is read-only" in one_line(write.stderr)
    assert mailflow.scalar("SELECT count(*) FROM orders") == 1


def test_every_exit_code_is_in_the_readme_table():
    """Exit codes are public API: each one of records.ExitCode has its row in the README."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Exit codes"):].split("\n## ")[0]
    rows = {int(code) for code in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)}
    assert rows == {int(code) for code in ExitCode}
