"""The store: the one place that talks to SQLite.

Opened by every command; applies pending migrations on open. WAL mode, so that a
reader (status, preview) never blocks the cron run. A command that only reads opens a file
this user cannot write read-only instead (readonly.py). Writes that must not interleave
run inside `transaction()`, which takes SQLite's write lock up front (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mailflow.clock import iso
from mailflow.store.attribution import AttributionQueries
from mailflow.store.connected import inserted_id
from mailflow.store.faults import DEFAULT_TIMEOUT, check_ours, db_timeout, translated
from mailflow.store.measures import ReportQueries
from mailflow.store.migrations import MIGRATIONS
from mailflow.store.offers import OfferQueries
from mailflow.store.outbox import OutboxQueries
from mailflow.store.products import ProductQueries
from mailflow.store.purging import PurgeQueries
from mailflow.store.readonly import cannot_write, read_only_connection, require_current
from mailflow.store.refunds import RefundQueries
from mailflow.store.sources import SourceQueries
from mailflow.store.subjects import SubjectQueries
from mailflow.store.tracking import TrackingQueries
from mailflow.store.writes import ImportWriter

__all__ = ["FileStat", "ImportWriter", "Store"]
# (size, mtime_ns, ctime_ns, inode, device) of a file, as os.stat gives them
FileStat = tuple[int, int, int, int, int]
BATCH_CHECKPOINT_PAGES = 8192  # pages of WAL between checkpoints while a batch is sent


class Store(OutboxQueries, SourceQueries, OfferQueries, TrackingQueries, ProductQueries,
            AttributionQueries, ReportQueries, PurgeQueries, RefundQueries, SubjectQueries):
    def __init__(self, conn: sqlite3.Connection, path: str,
                 timeout: timedelta = DEFAULT_TIMEOUT, *, read_only: bool = False) -> None:
        self.conn = conn
        self.path = path
        self.timeout = timeout
        self.read_only = read_only

    @classmethod
    def open(cls, path: str | Path, *, timeout: timedelta | None = None,
             reads_only: bool = False) -> Store:
        """`timeout`: how long to wait for another process's write lock (MAILFLOW_DB_TIMEOUT).
        `reads_only`: the command never writes, so a file or folder this user cannot write
        is opened read-only (readonly.py) rather than refused."""
        path = str(path)
        timeout = db_timeout() if timeout is None else timeout
        if reads_only and cannot_write(Path(path)):
            return cls._open_read_only(Path(path), timeout)
        with translated(path, timeout):
            # a run's sender threads share the connection, one step at a time (delivery/connections.py)
            conn = sqlite3.connect(path, isolation_level=None, timeout=timeout.total_seconds(),
                                   check_same_thread=False)
            try:
                # first: switching to WAL mode writes to the file
                if check_ours(conn, path, {name for name, _ in MIGRATIONS}):
                    # only before the first table: an existing store changes mode by VACUUM alone
                    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                # where SQLite was built without it (Debian's has it on): an updated row's old
                # copy is zeroed too, so that purge's secure_delete leaves none of it behind
                if not conn.execute("PRAGMA secure_delete").fetchone()[0]:
                    conn.execute("PRAGMA secure_delete=FAST")
                store = cls(conn, path, timeout)
                store.migrate()
            except BaseException:
                conn.close()
                raise
        return store

    @classmethod
    def _open_read_only(cls, path: Path, timeout: timedelta) -> Store:
        with translated(path, timeout):
            conn = read_only_connection(path, timeout)
            try:
                check_ours(conn, path, {name for name, _ in MIGRATIONS})
                require_current(conn, path, [name for name, _ in MIGRATIONS])
            except BaseException:
                conn.close()
                raise
        return cls(conn, str(path), timeout, read_only=True)

    def close(self) -> None:
        self.conn.close()

    def migrate(self) -> list[str]:
        """Apply the migrations this database has not seen yet, each in its own transaction."""
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in self.conn.execute("SELECT name FROM migrations")}
        applied = []
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            with self.transaction():
                if self.conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                    continue  # another process applied it while we waited for the lock
                for statement in _statements(sql):
                    self.conn.execute(statement)
                self.conn.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, datetime('now'))", (name,)
                )
            applied.append(name)
        return applied

    @contextmanager
    def bulk_cache(self, mib: int = 16) -> Iterator[None]:
        """A larger page cache for one long transaction, a fixed bound whatever its size
        (an import: docs/import.md, "Import speed"; a purge); the connection's own after it,
        so that a `run`'s sending does not keep it."""
        with self._pragma_for("cache_size", -int(mib) * 1024):
            yield

    @contextmanager
    def spaced_checkpoints(self, pages: int = BATCH_CHECKPOINT_PAGES) -> Iterator[None]:
        """For a batch of small write transactions (a send, a message each): the WAL copied
        back into the file every `pages` pages, not SQLite's 1,000. Each transaction rewrites
        the same index and counter pages, which a checkpoint copies back (and syncs) once
        each: at 1,000 that was every ~60 messages, a tenth of a send's time. The WAL grows
        to `pages` (32 MB) at most, as a big import makes it anyway."""
        with self._pragma_for("wal_autocheckpoint", int(pages)):
            yield

    @contextmanager
    def _pragma_for(self, name: str, value: int) -> Iterator[None]:
        """The connection's setting `name` at `value` for a while, then as it was (a failure
        to give it back does not hide the one that ended the while)."""
        before = self.conn.execute(f"PRAGMA {name}").fetchone()[0]
        self.conn.execute(f"PRAGMA {name} = {int(value)}")
        try:
            yield
        finally:
            with suppress(sqlite3.Error):
                self.conn.execute(f"PRAGMA {name} = {int(before)}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; an sqlite3 error in it is raised as what it means (faults.py)."""
        with translated(self.path, self.timeout):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                # after a full disk or an I/O error SQLite has already rolled back, and a
                # failing ROLLBACK must not hide why
                if self.conn.in_transaction:
                    with suppress(sqlite3.Error):
                        self.conn.execute("ROLLBACK")
                raise

    # -- imports -------------------------------------------------------------------------

    def import_done(self, sha256: str, kind: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT id, path, imported_at FROM imports WHERE sha256 = ? AND kind = ?",
            (sha256, kind)).fetchone()
        return {"id": row[0], "path": row[1], "imported_at": row[2]} if row else None

    def recognised_file(self, path: str, options: str, stat: FileStat) -> tuple[str, str] | None:
        """(format, kind) of the import of the file at `path`, read with `options`, if it
        looks on disk exactly as it did then (size, times, inode and device)."""
        row = self.conn.execute(
            "SELECT i.format, i.kind FROM import_files f JOIN imports i ON i.id = f.import_id"
            " WHERE f.path = ? AND f.options = ? AND f.size = ? AND f.mtime_ns = ?"
            " AND f.ctime_ns = ? AND f.inode = ? AND f.device = ?",
            (path, options, *stat)).fetchone()
        return (row[0], row[1]) if row else None

    def remember_file(self, path: str, options: str, stat: FileStat, import_id: int,
                      now: datetime) -> None:
        """How the file whose content `import_id` imported looks now. Call inside
        `transaction()`."""
        self.conn.execute(
            "INSERT INTO import_files (path, options, size, mtime_ns, ctime_ns, inode, device,"
            " import_id, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path, options)"
            " DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
            " ctime_ns = excluded.ctime_ns, inode = excluded.inode, device = excluded.device,"
            " import_id = excluded.import_id, seen_at = excluded.seen_at",
            (path, options, *stat, import_id, iso(now)))

    def import_writer(self, *, path: str, sha256: str, fmt: str, kind: str, now: datetime,
                      ) -> ImportWriter:
        """Call inside `transaction()`: records the import and returns its writer, which
        writes each batch beside the reading of the next (a context manager: ImportWriter)."""
        cursor = self.conn.execute(
            "INSERT INTO imports (path, sha256, format, kind, imported_at) VALUES (?, ?, ?, ?, ?)",
            (path, sha256, fmt, kind, iso(now)),
        )
        return ImportWriter(self.conn, inserted_id(cursor), fmt, iso(now), beside=True)

    def finish_import(self, import_id: int, rows: int, rejected: int, summary: str) -> None:
        self.conn.execute(
            "UPDATE imports SET rows = ?, rejected = ?, summary = ? WHERE id = ?",
            (rows, rejected, summary, import_id),
        )

    # -- reading -------------------------------------------------------------------------

    def counts(self, *, order_lines: bool = True) -> dict[str, Any]:
        """What status shows of the store; orders per status as SQLite keeps them counted
        (migration 0014), the rest by a scan of each table's narrowest index. `order_lines`:
        also count the lines, a scan of the whole table (0.1-0.2 s on 2M orders)."""
        one = self.conn.execute
        by_status = dict(one("SELECT status, n FROM order_status_counts WHERE n > 0"
                             " ORDER BY status"))
        lines = {"order_lines": one("SELECT count(*) FROM order_lines").fetchone()[0]} \
            if order_lines else {}
        return {
            "orders": sum(by_status.values()),
            **lines,
            "carts": one("SELECT count(*) FROM carts").fetchone()[0],
            "customers": one("SELECT count(*) FROM customers").fetchone()[0],
            "suppressed": one("SELECT count(DISTINCT email_key) FROM suppressions").fetchone()[0],
            "orders_by_status": by_status,
            "newest_import_at": one("SELECT max(imported_at) FROM imports").fetchone()[0],
            "newest_import_by_kind": dict(
                one("SELECT kind, max(imported_at) FROM imports GROUP BY kind ORDER BY kind")
            ),
            "imports": one("SELECT count(*) FROM imports").fetchone()[0],
        }


def _statements(sql: str) -> list[str]:
    """A migration's statements; a `;` inside a trigger's BEGIN … END does not end one."""
    statements, pending = [], ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip()[:-1].strip())
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending.strip(" \n;"))
    return statements
