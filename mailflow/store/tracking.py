"""Clicks and opens, as `serve` records them (web/tracking.py).

A click is one row per (message, URL): a repeat adds to `count` and moves `last_at`. An open is
one row per message: `first_at` and the first human or machine open. Both copy the message's
`email_key` and `rule` from the outbox, so the report reads them without a join. Nothing is
recorded for a recipient on the suppression list: an unsubscribe stops the tracking too.
Neither table has a column for an address, a user agent or an IP."""

from __future__ import annotations

from dataclasses import dataclass

from mailflow.store.connected import Connected


@dataclass(frozen=True)
class TrackedMessage:
    """What a click or an open needs of its message's outbox row."""

    key: str
    email_key: str | None
    rule: str
    sent_at: str | None
    suppressed: bool  # the recipient is on the suppression list: record nothing


class TrackingQueries(Connected):
    """Mixed into Store: the `clicks` and `opens` tables."""

    def tracked_message(self, key: str | None = None, *,
                        reference: str | None = None) -> TrackedMessage | None:
        """The message of a click or open token, by its reference (outbox.reference) or, for a
        token sent before references, its key; None if the outbox has no such message (purged)."""
        column, value = ("reference", reference) if reference is not None else ("key", key)
        row = self.conn.execute(
            "SELECT o.key, o.email_key, o.rule, o.sent_at, EXISTS (SELECT 1 FROM suppressions s"
            f" WHERE s.email_key = o.email_key) FROM outbox o WHERE o.{column} = ?",
            (value,)).fetchone()
        if row is None:
            return None
        return TrackedMessage(row[0], row[1], row[2], row[3], bool(row[4]))

    def record_click(self, message: TrackedMessage, url: str, at: str) -> None:
        """Call inside `transaction()`."""
        self.conn.execute(
            "INSERT INTO clicks (outbox_key, url, email_key, rule, first_at, last_at, count)"
            " VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (outbox_key, url) DO UPDATE SET"
            " count = count + 1, last_at = max(last_at, excluded.last_at),"
            " first_at = min(first_at, excluded.first_at)",
            (message.key, url, message.email_key, message.rule, at, at))

    def record_open(self, message: TrackedMessage, at: str, *, machine: bool) -> None:
        """The first open, and the first human and machine ones. Call inside `transaction()`."""
        human_at, machine_at = (None, at) if machine else (at, None)
        self.conn.execute(
            "INSERT INTO opens (outbox_key, email_key, rule, first_at, human_at, machine_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (outbox_key) DO UPDATE SET"
            " first_at = min(first_at, excluded.first_at),"
            " human_at = coalesce(human_at, excluded.human_at),"
            " machine_at = coalesce(machine_at, excluded.machine_at)",
            (message.key, message.email_key, message.rule, at, human_at, machine_at))
