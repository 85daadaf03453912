"""Purge's deletes, in bounded batches (`mailflow purge`, consent/purge.py).

Each table is walked once in rowid order, one window of `batch` rows per transaction: a
window's rows past the cutoff and everything hanging off them (lines, events, attempts,
clicks, opens, attributions) go in one commit, so a kill between two leaves a consistent
store and the next purge finishes the job. Every statement is a range of the table's rowid
or a search of an index (EXPLAIN QUERY PLAN in tests/test_purge.py), so the time is linear in
the store's size, and the memory and the WAL are bounded by one window: the WAL is
checkpointed (TRUNCATE) after each. `secure_delete` zeroes what is deleted, and in a store
with `auto_vacuum=INCREMENTAL` (every store created since 0015) each batch's commit gives its
freed pages back (the store is switched to FULL for the purge).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mailflow.store.connected import Connected
from mailflow.store.faults import translated

DEFAULT_BATCH = 10_000
VACUUM_STEP_BYTES = 16 * 1024 * 1024

_ORDER_NEWEST = ("max(created_at, coalesce(paid_at, ''), coalesce(shipped_at, ''),"
                 " coalesce(delivered_at, ''), coalesce(cancelled_at, ''))")
_WINDOW = "rowid > :after AND rowid <= :upto"

_OLD_ORDERS = f"SELECT id FROM orders WHERE {_WINDOW} AND {_ORDER_NEWEST} < :cutoff"
_OLD_CARTS = f"SELECT id FROM carts WHERE {_WINDOW} AND updated_at < :cutoff"
_OLD_CUSTOMERS = (
    f"FROM customers WHERE {_WINDOW} AND coalesce(last_order_at, first_seen_at) < :cutoff"
    " AND coalesce(created_at, first_seen_at) < :cutoff"
    " AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.email_key = customers.email_key)"
    " AND NOT EXISTS (SELECT 1 FROM carts k WHERE k.email_key = customers.email_key)")
_OLD_MESSAGES = (f"FROM outbox WHERE {_WINDOW} AND coalesce(sent_at, decided_at) < :cutoff"
                 " AND status NOT IN ('queued', 'deferred', 'sending')")
_OLD_EVENTS = (f"FROM webhook_events WHERE {_WINDOW} AND processed_at IS NOT NULL"
               " AND received_at < :cutoff")

# (table walked, what a window deletes in order: (the count it adds to, statement)); each
# statement's parameters are :after, :upto and :cutoff
PURGE_STEPS: list[tuple[str, list[tuple[str | None, str]]]] = [
    ("outbox", [
        (None, f"DELETE FROM outbox_attempts WHERE outbox_id IN (SELECT id {_OLD_MESSAGES})"),
        # a given code stays given (never reused), but no longer names who got it
        (None, "UPDATE offer_codes SET outbox_key = 'purged:' || id"
               f" WHERE outbox_key IN (SELECT key {_OLD_MESSAGES})"),
        (None, f"DELETE FROM clicks WHERE outbox_key IN (SELECT key {_OLD_MESSAGES})"),
        (None, f"DELETE FROM opens WHERE outbox_key IN (SELECT key {_OLD_MESSAGES})"),
        (None, f"DELETE FROM attributions WHERE outbox_key IN (SELECT key {_OLD_MESSAGES})"),
        (None, f"DELETE FROM cart_recoveries WHERE reminder_key IN (SELECT key {_OLD_MESSAGES})"),
        ("messages", f"DELETE {_OLD_MESSAGES}"),
    ]),
    ("orders", [
        ("order_lines", f"DELETE FROM order_lines WHERE order_id IN ({_OLD_ORDERS})"),
        (None, f"DELETE FROM order_status_events WHERE order_id IN ({_OLD_ORDERS})"),
        (None, f"DELETE FROM order_refunds WHERE order_id IN ({_OLD_ORDERS})"),
        (None, f"DELETE FROM attributions WHERE order_id IN ({_OLD_ORDERS})"),
        ("orders", f"DELETE FROM orders WHERE {_WINDOW} AND {_ORDER_NEWEST} < :cutoff"),
    ]),
    ("carts", [
        (None, f"DELETE FROM cart_lines WHERE cart_id IN ({_OLD_CARTS})"),
        ("carts", f"DELETE FROM carts WHERE {_WINDOW} AND updated_at < :cutoff"),
    ]),
    # after orders and carts: a customer goes with the last of theirs (their clicks and opens
    # went with their messages: those of a message still kept stay with it)
    ("customers", [
        ("customers", f"DELETE {_OLD_CUSTOMERS}"),
    ]),
    ("webhook_events", [("webhook_events", f"DELETE {_OLD_EVENTS}")]),
]


class PurgeQueries(Connected):
    """Mixed into Store: purge's batched deletes and giving the freed space back."""

    def purge_before(self, cutoff: str, forget_files: Callable[[list[str]], None],
                     batch: int = DEFAULT_BATCH,
                     after_batch: Callable[[], None] | None = None) -> dict[str, Any]:
        """Delete orders, carts, customers, decided messages and processed webhook deliveries
        older than `cutoff`, with their clicks, opens and attributions; keep suppressions (they
        must outlive the people they protect). `forget_files(keys)` is called inside each
        batch's transaction with the keys of the messages it removes (their .eml files go too:
        if that fails, the batch is rolled back). `after_batch` is called after each commit.
        Returns the counts."""
        self.conn.execute("PRAGMA secure_delete = ON")
        shrinks = self.auto_vacuum() != "none"  # "full": a purge killed before it switched back
        if shrinks:  # each commit gives its batch's pages back (incremental_vacuum: quadratic)
            self._set_auto_vacuum("FULL")
        try:
            return self._purge_batches(cutoff, forget_files, batch, after_batch)
        finally:
            if shrinks:
                self._set_auto_vacuum("INCREMENTAL")

    def _set_auto_vacuum(self, mode: str) -> None:
        """Between FULL and INCREMENTAL a store can switch at any time (a header write):
        FULL moves the free pages to the end and cuts them off at every commit, cheaply;
        `PRAGMA incremental_vacuum` looks each page it frees up in the free list, so its time
        grows with the square of the free pages (4 minutes of CPU for 2 GB freed)."""
        with translated(self.path, self.timeout):
            self.conn.execute(f"PRAGMA auto_vacuum = {mode}")

    def _purge_batches(self, cutoff: str, forget_files: Callable[[list[str]], None],
                       batch: int, after_batch: Callable[[], None] | None) -> dict[str, Any]:
        done: dict[str, Any] = {"orders": 0, "order_lines": 0, "carts": 0, "customers": 0,
                                "messages": 0, "webhook_events": 0, "batches": 0}
        for table, statements in PURGE_STEPS:
            after = 0
            while (upto := self._window_end(table, after, batch)) is not None:
                window = {"after": after, "upto": upto, "cutoff": cutoff}
                with self.transaction() as c:
                    if table == "outbox":
                        keys = [r[0] for r in c.execute(f"SELECT key {_OLD_MESSAGES}", window)]
                        if keys:
                            forget_files(keys)
                    changed = 0
                    for counted, statement in statements:
                        rows = c.execute(statement, window).rowcount
                        changed += rows
                        if counted:
                            done[counted] += rows
                if changed:
                    done["batches"] += 1
                    self.checkpoint()
                    if after_batch is not None:
                        after_batch()
                after = upto
        done["suppressions_kept"] = self.conn.execute(
            "SELECT count(*) FROM suppressions").fetchone()[0]
        return done

    def _window_end(self, table: str, after: int, size: int) -> int | None:
        """The rowid that ends the next window of `size` rows after `after`; None at the end."""
        row = self.conn.execute(
            f"SELECT max(rowid) FROM (SELECT rowid FROM {table} WHERE rowid > ?"
            " ORDER BY rowid LIMIT ?)", (after, size)).fetchone()
        return row[0] if row else None

    def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it to 0 bytes. Where a reader still
        needs part of it, SQLite copies what it can and leaves the rest for the next one: it
        does not wait for the reader (it would, up to MAILFLOW_DB_TIMEOUT, after every batch)."""
        with translated(self.path, self.timeout):
            self.conn.execute("PRAGMA busy_timeout = 0")
            try:
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                self.conn.execute(f"PRAGMA busy_timeout = {int(self.timeout.total_seconds() * 1000)}")

    def auto_vacuum(self) -> str:
        mode = self.conn.execute("PRAGMA auto_vacuum").fetchone()[0]
        return {0: "none", 1: "full", 2: "incremental"}.get(mode, str(mode))

    def file_pages(self) -> tuple[int, int, int]:
        """(pages in the file, of them free, bytes a page)."""
        one = self.conn.execute
        return (one("PRAGMA page_count").fetchone()[0], one("PRAGMA freelist_count").fetchone()[0],
                one("PRAGMA page_size").fetchone()[0])

    def give_back_free_pages(self, step_bytes: int = VACUUM_STEP_BYTES) -> None:
        """With auto_vacuum=INCREMENTAL: move the free pages left (a purge that deleted nothing
        commits nothing) to the end and cut the file there, `step_bytes` at a time with a
        checkpoint after each, so that the WAL stays that small."""
        with translated(self.path, self.timeout):
            _, free, page_size = self.file_pages()
            step = max(step_bytes // page_size, 1)
            while free:
                # each step frees one page and execute() steps once: executescript runs it out
                self.conn.executescript(f"PRAGMA incremental_vacuum({step});")
                self.checkpoint()
                left = self.file_pages()[1]
                if left >= free:
                    break
                free = left

    def vacuum_incremental(self) -> None:
        """Rebuild the file without its free pages and switch it to auto_vacuum=INCREMENTAL, so
        that later purges shrink it by themselves. Holds the write lock while it runs and needs
        about the store's size in free disk space (and in the WAL, truncated at the end)."""
        with translated(self.path, self.timeout):
            self.conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            self.conn.execute("VACUUM")
            self.checkpoint()
