"""Purging personal data past an age, and the queries of `mailflow report`."""

from __future__ import annotations

from typing import Any

from mailflow.store.connected import Connected

_ORDER_NEWEST = ("max(created_at, coalesce(paid_at, ''), coalesce(shipped_at, ''),"
                 " coalesce(delivered_at, ''), coalesce(cancelled_at, ''))")


class HistoryQueries(Connected):
    """Mixed into Store: purge's deletes, and report's queries over past messages."""

    def purge_before(self, cutoff: str) -> dict[str, Any]:
        """Delete orders, carts, customers and decided messages older than `cutoff`; keep
        suppressions (they must outlive the people they protect). Returns counts and the keys
        of the messages removed (their .eml files go too)."""
        done: dict[str, Any] = {}
        with self.transaction():
            c = self.conn
            old_orders = f"SELECT id FROM orders WHERE {_ORDER_NEWEST} < :cutoff"
            done["order_lines"] = c.execute(
                f"DELETE FROM order_lines WHERE order_id IN ({old_orders})", {"cutoff": cutoff}
            ).rowcount
            c.execute(f"DELETE FROM order_status_events WHERE order_id IN ({old_orders})",
                      {"cutoff": cutoff})
            done["orders"] = c.execute(f"DELETE FROM orders WHERE {_ORDER_NEWEST} < :cutoff",
                                       {"cutoff": cutoff}).rowcount
            old_carts = "SELECT id FROM carts WHERE updated_at < :cutoff"
            c.execute(f"DELETE FROM cart_lines WHERE cart_id IN ({old_carts})", {"cutoff": cutoff})
            done["carts"] = c.execute("DELETE FROM carts WHERE updated_at < :cutoff",
                                      {"cutoff": cutoff}).rowcount
            done["customers"] = c.execute(
                "DELETE FROM customers WHERE coalesce(last_order_at, first_seen_at) < :cutoff"
                " AND coalesce(created_at, first_seen_at) < :cutoff"
                " AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.email_key = customers.email_key)"
                " AND NOT EXISTS (SELECT 1 FROM carts k WHERE k.email_key = customers.email_key)",
                {"cutoff": cutoff}).rowcount
            finished = ("SELECT id FROM outbox WHERE coalesce(sent_at, decided_at) < :cutoff"
                        " AND status NOT IN ('queued', 'deferred', 'sending')")
            keys = [r[0] for r in c.execute(finished.replace("SELECT id", "SELECT key"),
                                            {"cutoff": cutoff})]
            c.execute(f"DELETE FROM outbox_attempts WHERE outbox_id IN ({finished})",
                      {"cutoff": cutoff})
            # a given code stays given (never reused), but no longer names who got it
            c.execute("UPDATE offer_codes SET outbox_key = 'purged:' || id WHERE outbox_key IN"
                      f" ({finished.replace('SELECT id', 'SELECT key')})", {"cutoff": cutoff})
            done["messages"] = c.execute(f"DELETE FROM outbox WHERE id IN ({finished})",
                                         {"cutoff": cutoff}).rowcount
            done["suppressions_kept"] = c.execute("SELECT count(*) FROM suppressions").fetchone()[0]
        done["keys"] = keys
        return done

    # -- report --------------------------------------------------------------------------------

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
