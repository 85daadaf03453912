"""Opening the store for a command that only reads (status, log, report, send --dry-run,
preview) when this user cannot write the database file or its folder: a backup, a copy on a
read-only mount, another user's store.

SQLite's plain open would need to create `DB-wal` and `DB-shm` beside a WAL database, which a
read-only folder refuses, and would leave them behind in a writable one. Without a `-wal` file
no process is writing the database, so it is opened `immutable` (nothing is created, no lock
is taken); with one, a writer is at work (or died mid-write) and its shared memory is read
(`mode=ro`) so that what it committed is seen. Migrations are never applied: a schema older
than this mailflow is refused with what to do.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import timedelta
from pathlib import Path

from mailflow.errors import ReadOnlyDatabase


def cannot_write(path: Path) -> bool:
    """Whether this user can read the existing database file at `path` but not write it or
    create files in its folder. (A missing file or a folder: the usual open says why.)"""
    if not path.is_file():
        return False
    return not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK)


def read_only_connection(path: Path, timeout: timedelta) -> sqlite3.Connection:
    # a -journal: a writer of a rollback-journal database (not mailflow's) died mid-write
    writer_at_work = any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-journal"))
    uri = path.resolve().as_uri() + ("?mode=ro" if writer_at_work else "?mode=ro&immutable=1")
    conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                           timeout=timeout.total_seconds(), check_same_thread=False)
    conn.execute("PRAGMA query_only = ON")
    return conn


def require_current(conn: sqlite3.Connection, path: Path, migrations: list[str]) -> None:
    """Refuse a read-only store whose schema this mailflow would first have to migrate."""
    has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                             " AND name = 'migrations'").fetchone()
    applied = {row[0] for row in conn.execute("SELECT name FROM migrations")} \
        if has_table else set()
    missing = [name for name in migrations if name not in applied]
    if not applied:
        raise ReadOnlyDatabase(f"{path}: an empty database, and read-only for this user:"
                               " mailflow cannot create its store in it; nothing was changed")
    if missing:
        raise ReadOnlyDatabase(
            f"{path}: read-only for this user, and made by an older mailflow: its schema needs"
            f" migrating first ({', '.join(missing)}); run any mailflow command on it once with"
            " write access to the file and its folder (or on a writable copy); nothing was"
            " changed")
