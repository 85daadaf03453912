"""The API sources' state: each one's watermark, and how its last pull went."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from mailflow.clock import iso
from mailflow.store.writes import ImportWriter


class SourceQueries:
    """Mixed into Store; SQL about `mailflow pull`."""

    conn: sqlite3.Connection

    def source_state(self, name: str) -> dict[str, Any] | None:
        cursor = self.conn.execute("SELECT * FROM sources WHERE name = ?", (name,))
        row = cursor.fetchone()
        return dict(zip([d[0] for d in cursor.description], row, strict=True)) if row else None

    def start_pull(self, name: str, platform: str, now: Any) -> int:
        """The imports row the pull's writes point at (one per pull, whatever it brings)."""
        cursor = self.conn.execute(
            "INSERT INTO imports (path, sha256, format, kind, imported_at) VALUES (?, ?, ?,"
            " 'pull', ?)", (name, f"pull:{uuid.uuid4().hex}", platform, iso(now)))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def pull_writer(self, import_id: int, platform: str, now: Any,
                    history_before: Any = None) -> ImportWriter:
        """Call inside `transaction()`: the writer of one page of a pull."""
        return ImportWriter(self.conn, import_id, platform, iso(now) or "", iso(history_before))

    def finish_pull(self, name: str, platform: str, import_id: int, watermark: str | None,
                    now: Any, rows: int, summary: str) -> None:
        """The pull went through: its watermark and time. Call inside `transaction()`."""
        at = iso(now)
        self.conn.execute(
            "INSERT INTO sources (name, platform, watermark, first_pulled_at, pulled_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET platform = excluded.platform,"
            " watermark = coalesce(excluded.watermark, sources.watermark),"
            " first_pulled_at = coalesce(sources.first_pulled_at, excluded.first_pulled_at),"
            " pulled_at = excluded.pulled_at, failed_at = NULL, failure = NULL",
            (name, platform, watermark, at, at))
        self.conn.execute("UPDATE imports SET rows = ?, summary = ? WHERE id = ?",
                          (rows, summary, import_id))

    def fail_pull(self, name: str, platform: str, now: Any, failure: str) -> None:
        """The pull stopped: the watermark stays where it was (nothing is skipped)."""
        self.conn.execute(
            "INSERT INTO sources (name, platform, failed_at, failure) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET failed_at = excluded.failed_at,"
            " failure = excluded.failure", (name, platform, iso(now), failure))

    def sources(self) -> list[dict[str, Any]]:
        cursor = self.conn.execute("SELECT * FROM sources ORDER BY name")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def newest_orders_data(self) -> str | None:
        """When the store last learnt the orders as they are: an orders file, or a pull."""
        return self.conn.execute(
            "SELECT max(coalesce((SELECT max(imported_at) FROM imports WHERE kind = 'orders'), ''),"
            " coalesce((SELECT max(pulled_at) FROM sources), ''))").fetchone()[0] or None

    # -- webhooks ------------------------------------------------------------------------

    def record_webhook(self, source: str, platform: str, delivery_id: str, topic: str | None,
                       body: bytes, now: Any) -> bool:
        """Keep a verified event before answering it; False for a delivery already kept (the
        platform sends it again when an answer was late). Call inside `transaction()`."""
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO webhook_events (source, platform, delivery_id, topic,"
            " received_at, body) VALUES (?, ?, ?, ?, ?, ?)",
            (source, platform, delivery_id, topic, iso(now), body))
        return cursor.rowcount == 1

    def webhooks_waiting(self) -> int:
        """How many kept webhook events are not imported yet (a partial index holds them)."""
        return self.conn.execute("SELECT count(*) FROM webhook_events WHERE processed_at IS NULL"
                                 ).fetchone()[0]

    def waiting_webhooks(self, limit: int = 500) -> list[dict[str, Any]]:
        cursor = self.conn.execute(
            "SELECT id, source, platform, delivery_id, topic, body FROM webhook_events"
            " WHERE processed_at IS NULL ORDER BY id LIMIT ?", (limit,))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def webhook_done(self, event_id: int, now: Any, outcome: str) -> bool:
        """Mark an event imported; False if another process did first. Call inside
        `transaction()`, with the event's writes: both happen or neither."""
        cursor = self.conn.execute(
            "UPDATE webhook_events SET processed_at = ?, outcome = ? WHERE id = ?"
            " AND processed_at IS NULL", (iso(now), outcome, event_id))
        return cursor.rowcount == 1

    def start_webhook_import(self, now: Any) -> int:
        """The imports row the writes of a batch of webhook events point at."""
        cursor = self.conn.execute(
            "INSERT INTO imports (path, sha256, format, kind, imported_at) VALUES"
            " ('webhooks', ?, 'webhook', 'webhook', ?)", (f"webhooks:{uuid.uuid4().hex}", iso(now)))
        assert cursor.lastrowid is not None
        return cursor.lastrowid
