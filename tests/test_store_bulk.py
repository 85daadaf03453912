"""An import's rows are moved into the store by a second thread (store/bulk.py): what a
caller reads next sees them, a failed move fails the import it belongs to, a move never
writes outside its transaction, and the process gets its thread switching back."""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading
import time

import pytest

from mailflow.store import Store
from mailflow.store.bulk import SWITCH_INTERVAL, BulkInserts, Insert

PEOPLE = Insert("people", ("id", "name"), "ON CONFLICT(id) DO UPDATE SET name = excluded.name")


@pytest.fixture
def conn(tmp_path):
    store = Store.open(tmp_path / "mailflow.db")
    store.conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    yield store.conn
    store.close()


def _people(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT id, name FROM people ORDER BY id").fetchall()


def test_rows_moved_beside_are_in_the_table_when_the_connection_is_next_reached(conn):
    bulk = BulkInserts(conn, beside=True)
    conn.execute("BEGIN IMMEDIATE")
    for batch in range(3):  # each batch moved while the "next" is staged
        bulk.stage(PEOPLE, [(batch * 10_000 + n, f"p{n}") for n in range(10_000)])
        bulk.move()
        assert bulk.conn.execute("SELECT count(*) FROM people").fetchone()[0] == \
            (batch + 1) * 10_000
    bulk.stage(PEOPLE, [(1, "renamed")])  # an upsert, as an order's second version is
    bulk.move()
    bulk.close()
    conn.execute("COMMIT")
    assert _people(conn)[:2] == [(0, "p0"), (1, "renamed")]
    assert bulk.changes["people"] == 30_001
    assert conn.execute("SELECT count(*) FROM temp.staged_people").fetchone()[0] == 0


def test_a_move_that_fails_in_its_thread_fails_the_import_and_nothing_stays(conn):
    bulk = BulkInserts(conn, beside=True)
    conn.execute("BEGIN IMMEDIATE")
    bulk.stage(PEOPLE, [(1, "Ana")])
    bulk.move()
    bulk.stage(PEOPLE, [(2, "Bo"), (3, None)])  # NOT NULL: the store refuses the batch
    bulk.move()
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
        bulk.close()
    conn.execute("ROLLBACK")
    assert _people(conn) == []


def test_a_move_never_writes_outside_its_transaction(conn):
    bulk = BulkInserts(conn, beside=True)
    conn.execute("BEGIN IMMEDIATE")
    bulk.stage(PEOPLE, [(1, "Ana")])
    conn.execute("COMMIT")  # as if the transaction had ended before the move
    bulk.move()
    with pytest.raises(RuntimeError, match="outside its transaction"):
        bulk.close()
    assert _people(conn) == []


def test_the_process_switches_threads_as_before_once_the_moves_are_done(conn):
    before = sys.getswitchinterval()
    assert before != SWITCH_INTERVAL
    bulk = BulkInserts(conn, beside=True)
    conn.execute("BEGIN IMMEDIATE")
    bulk.stage(PEOPLE, [(1, None)])
    bulk.move()
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    with pytest.raises(sqlite3.IntegrityError):
        bulk.close()
    conn.execute("ROLLBACK")
    assert sys.getswitchinterval() == before


def test_rows_moved_at_once_need_no_thread(conn):
    bulk = BulkInserts(conn, beside=False)  # a webhook's or a pull page's writer
    conn.execute("BEGIN IMMEDIATE")
    bulk.stage(PEOPLE, [(1, "Ana")])
    bulk.move()
    assert _people(conn) == [(1, "Ana")]  # read on the raw connection: already there
    conn.execute("COMMIT")


def test_ctrl_c_while_waiting_for_a_move_is_raised_only_once_the_move_has_ended(conn,
                                                                               monkeypatch):
    """Python 3.11's Thread.join, interrupted, can take a thread that still runs for ended;
    the transaction would then be rolled back while the move writes in it."""
    ended: list[float] = []
    move = BulkInserts._move

    def timed_move(self, staged):
        move(self, staged)
        ended.append(time.monotonic())

    monkeypatch.setattr(BulkInserts, "_move", timed_move)
    main = threading.main_thread().ident

    def ctrl_c_while_waiting() -> None:  # one Ctrl-C, once the caller waits for the move
        while True:
            frame, names = sys._current_frames().get(main), set()
            while frame is not None:
                names.add(frame.f_code.co_name)
                frame = frame.f_back
            if "finish" in names and "wait" in names:
                signal.pthread_kill(main, signal.SIGINT)
                return
            time.sleep(0.0002)  # polling the caller's stack, not a timing assumption

    bulk = BulkInserts(conn, beside=True)
    conn.execute("BEGIN IMMEDIATE")
    bulk.stage(PEOPLE, [(n, f"p{n}") for n in range(300_000)])
    bulk.move()
    threading.Thread(target=ctrl_c_while_waiting, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        bulk.close()
    interrupted = time.monotonic()
    assert ended and ended[0] <= interrupted
    conn.execute("ROLLBACK")
    assert _people(conn) == []
