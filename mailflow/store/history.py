"""The queries of `mailflow report` over past messages."""

from __future__ import annotations

from mailflow.store.connected import Connected


class HistoryQueries(Connected):
    """Mixed into Store: report's queries over past messages."""

    def outcome_counts(self, since: str | None) -> list[tuple[str, str, str | None, int]]:
        return self.conn.execute(
            "SELECT rule, status, reason, count(*) FROM outbox"
            " WHERE coalesce(sent_at, decided_at) >= ?"
            " GROUP BY rule, status, reason ORDER BY rule, status, reason",
            (since or "",)).fetchall()

    def reminders_and_orders(self, rules: list[str], since: str | None, days: int
                             ) -> list[tuple[str, str, str | None, str | None, str | None,
                                             str | None]]:
        """(reminder key, sent_at, order id, total, currency, order status now) for every cart
        reminder sent since `since`, with each order its recipient placed within `days` after it.
        A cash-on-delivery order not paid yet is still `pending_payment`, shipped or not."""
        marks = ", ".join("?" * len(rules))
        return self.conn.execute(
            f"SELECT r.key, r.sent_at, o.id, o.total, o.currency,"
            f" CASE WHEN o.payment_class = 'on_delivery' AND o.paid_at IS NULL"
            f" AND o.status NOT IN ('cancelled', 'refunded', 'failed') THEN 'pending_payment'"
            f" ELSE o.status END FROM outbox r"
            f" LEFT JOIN orders o ON o.email_key = r.email_key AND o.created_at > r.sent_at"
            f" AND o.created_at <= strftime('%Y-%m-%dT%H:%M:%SZ', r.sent_at, '+{int(days)} days')"
            f" WHERE r.rule IN ({marks}) AND r.status = 'sent' AND r.sent_at >= ?"
            f" ORDER BY r.sent_at, o.created_at", (*rules, since or "")).fetchall()

    def sends_per_day(self, since: str | None) -> list[tuple[str, int]]:
        return self.conn.execute(
            "SELECT substr(sent_at, 1, 10), count(*) FROM outbox WHERE status = 'sent'"
            " AND sent_at >= ? GROUP BY 1 ORDER BY 1", (since or "",)).fetchall()

    def order_day(self, order_id: str) -> str | None:
        row = self.conn.execute("SELECT substr(created_at, 1, 10) FROM orders WHERE id = ?",
                                (order_id,)).fetchone()
        return row[0] if row else None
