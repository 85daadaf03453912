"""An import's bulk inserts, written beside the reading of the next batch.

Each batch's rows are bound into temp staging tables (in memory) by the importing thread, then
moved into the store with one `INSERT … SELECT` per table. That move is where SQLite
updates the tables' indexes and triggers: a file's move runs in a second thread, which
holds no GIL while SQLite works, so the next batch's parsing goes on beside it. Binding
a row costs the importing thread about a third of what a direct insert did (1M rows:
2.9 s of staging, against 8.3 s of inserts; docs/import.md, "Import speed").

Nothing else touches the connection while a move runs: `conn` waits for it, and the
transaction is only ended once `close` (leaving the writer's `with`) has waited too. The
move checks before each statement that the transaction is still open, so that even a
transaction ended too early could not get a move's rows written outside it (autocommitted).

While moves run beside, the process switches threads every 50 µs rather than 5 ms: the
sqlite3 module gives up the GIL about five times a statement (reset, step, column count…)
and each time waited for the parsing thread's 5 ms to end, 175 ms a batch, so that the
move took longer than the parsing it was to hide (1M rows: 18.7 s; 14.3 s at 50 µs).
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections import Counter
from dataclasses import dataclass

# The staging tables' own page cache, a bound: a batch of 5,000 orders with their lines,
# events and people (a few MB) stays in memory rather than spilling into a temporary file.
STAGING_CACHE_KIB = 16 * 1024
SWITCH_INTERVAL = 50e-6  # seconds, while a move runs beside the parsing


@dataclass(frozen=True)
class Insert:
    """One of an import's bulk inserts: `{verb} INTO {table} ({columns}) … {tail}`."""

    table: str
    columns: tuple[str, ...]
    tail: str = ""  # what follows the rows: an ON CONFLICT clause
    verb: str = "INSERT"

    @property
    def staging(self) -> str:
        return f"staged_{self.table}"

    @property
    def values_sql(self) -> str:
        """The insert of rows bound one by one (a few rows: a fulfillment's events)."""
        return (f"{self.verb} INTO {self.table} ({', '.join(self.columns)})"
                f" VALUES ({', '.join('?' * len(self.columns))}) {self.tail}")

    @property
    def move_sql(self) -> str:
        # `WHERE true`: SQLite reads an ON CONFLICT after a bare SELECT as a join's
        columns = ", ".join(self.columns)
        return (f"{self.verb} INTO {self.table} ({columns}) SELECT {columns}"
                f" FROM temp.{self.staging} WHERE true {self.tail}")


class BulkInserts:
    """The bulk inserts of one writer, moved in a second thread (`beside`) or at once."""

    def __init__(self, conn: sqlite3.Connection, *, beside: bool) -> None:
        self._conn = conn
        self._beside = beside
        self._made: set[Insert] = set()
        self._staged: list[Insert] = []
        self._moving: threading.Event | None = None  # set once the move under way has ended
        self._failure: BaseException | None = None
        self._switching: float | None = None  # the process's own switch interval, to give back
        self.changes: Counter[str] = Counter()  # rows each table's moves changed
        if beside:
            conn.execute(f"PRAGMA temp.cache_size = -{STAGING_CACHE_KIB}")

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection, once the move under way (if any) has ended."""
        self.finish()
        return self._conn

    def stage(self, insert: Insert, rows: list[tuple]) -> None:
        """Bind `rows` for `insert`; they reach the store at the next `move`."""
        if not rows:
            return
        conn = self.conn
        if insert not in self._made:  # DDL is transactional: made again after a rollback
            conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {insert.staging}"
                         f" ({', '.join(insert.columns)})")
            self._made.add(insert)
        conn.executemany(f"INSERT INTO temp.{insert.staging} VALUES"
                         f" ({', '.join('?' * len(insert.columns))})", rows)
        if insert not in self._staged:
            self._staged.append(insert)

    def move(self) -> None:
        """Move what is staged into the store: in the second thread, or now."""
        self.finish()
        staged, self._staged = self._staged, []
        if not staged:
            return
        if not self._beside:
            self._move(staged)
            return
        if self._switching is None:
            self._switching = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL)
        ended = threading.Event()
        self._moving = ended
        threading.Thread(target=self._move_beside, args=(staged, ended),
                         name="mailflow-import-move", daemon=True).start()

    def finish(self) -> None:
        """Wait for the move under way; raise what made it fail."""
        if self._moving is not None:
            _wait_out(self._moving)
            self._moving = None
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def close(self) -> None:
        """Wait for the move under way (raising what made it fail), and give the process
        its own thread switching back."""
        try:
            self.finish()
        finally:
            if self._switching is not None:
                sys.setswitchinterval(self._switching)
                self._switching = None

    def _move_beside(self, staged: list[Insert], ended: threading.Event) -> None:
        try:
            self._move(staged)
        except BaseException as exc:  # raised again in the importing thread, by finish()
            self._failure = exc
        finally:
            ended.set()

    def _move(self, staged: list[Insert]) -> None:
        for insert in staged:
            if not self._conn.in_transaction:
                raise RuntimeError("an import's rows were to be moved outside its transaction")
            before = self._conn.total_changes
            self._conn.execute(insert.move_sql)
            self.changes[insert.table] += self._conn.total_changes - before
            self._conn.execute(f"DELETE FROM temp.{insert.staging}")


def _wait_out(ended: threading.Event) -> None:
    """Wait for a move to end even through Ctrl-C, which is raised once it has: the
    transaction must not be rolled back while the move writes in it. An event the move sets
    last, not `Thread.join`: Python 3.11's join, once interrupted, may take a thread that
    still runs for ended (bpo-45274), and the next join returns at once."""
    interrupted = False
    while True:
        try:
            ended.wait()
            break
        except KeyboardInterrupt:
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt
