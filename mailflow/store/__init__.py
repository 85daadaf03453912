"""The store: the one place that talks to SQLite.

Opened by every command; applies pending migrations on open. WAL mode, so that a
reader (status, preview) never blocks the cron run. Writes that must not interleave
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
from mailflow.store.connected import inserted_id
from mailflow.store.faults import DEFAULT_TIMEOUT, check_ours, db_timeout, translated
from mailflow.store.history import HistoryQueries
from mailflow.store.migrations import MIGRATIONS
from mailflow.store.offers import OfferQueries
from mailflow.store.outbox import OutboxQueries
from mailflow.store.purging import PurgeQueries
from mailflow.store.sources import SourceQueries
from mailflow.store.writes import ImportWriter

__all__ = ["ImportWriter", "Store"]


class Store(OutboxQueries, HistoryQueries, PurgeQueries, SourceQueries, OfferQueries):
    def __init__(self, conn: sqlite3.Connection, path: str,
                 timeout: timedelta = DEFAULT_TIMEOUT) -> None:
        self.conn = conn
        self.path = path
        self.timeout = timeout

    @classmethod
    def open(cls, path: str | Path, *, timeout: timedelta | None = None) -> Store:
        """`timeout`: how long to wait for another process's write lock (MAILFLOW_DB_TIMEOUT)."""
        path = str(path)
        timeout = db_timeout() if timeout is None else timeout
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

    def bulk_cache(self) -> None:
        """A larger page cache for a big import's transaction: 16 MB, a fixed bound (4 s of 27 on 1M rows)."""
        self.conn.execute("PRAGMA cache_size = -16384")

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
            "SELECT path, imported_at FROM imports WHERE sha256 = ? AND kind = ?", (sha256, kind)
        ).fetchone()
        return {"path": row[0], "imported_at": row[1]} if row else None

    def import_writer(self, *, path: str, sha256: str, fmt: str, kind: str, now: datetime,
                      ) -> ImportWriter:
        """Call inside `transaction()`: records the import and returns its writer."""
        cursor = self.conn.execute(
            "INSERT INTO imports (path, sha256, format, kind, imported_at) VALUES (?, ?, ?, ?, ?)",
            (path, sha256, fmt, kind, iso(now)),
        )
        return ImportWriter(self.conn, inserted_id(cursor), fmt, iso(now))

    def finish_import(self, import_id: int, rows: int, rejected: int, summary: str) -> None:
        self.conn.execute(
            "UPDATE imports SET rows = ?, rejected = ?, summary = ? WHERE id = ?",
            (rows, rejected, summary, import_id),
        )

    # -- reading -------------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        one = self.conn.execute
        return {
            "orders": one("SELECT count(*) FROM orders").fetchone()[0],
            "order_lines": one("SELECT count(*) FROM order_lines").fetchone()[0],
            "carts": one("SELECT count(*) FROM carts").fetchone()[0],
            "customers": one("SELECT count(*) FROM customers").fetchone()[0],
            "suppressed": one("SELECT count(DISTINCT email_key) FROM suppressions").fetchone()[0],
            "orders_by_status": dict(
                one("SELECT status, count(*) FROM orders GROUP BY status ORDER BY status")
            ),
            "newest_import_at": one("SELECT max(imported_at) FROM imports").fetchone()[0],
            "newest_import_by_kind": dict(
                one("SELECT kind, max(imported_at) FROM imports GROUP BY kind ORDER BY kind")
            ),
            "imports": one("SELECT count(*) FROM imports").fetchone()[0],
        }


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]
