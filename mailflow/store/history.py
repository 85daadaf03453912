"""Purging personal data past an age (the queries of `mailflow report` are in measures.py)."""

from __future__ import annotations

from typing import Any

from mailflow.store.connected import Connected

_ORDER_NEWEST = ("max(created_at, coalesce(paid_at, ''), coalesce(shipped_at, ''),"
                 " coalesce(delivered_at, ''), coalesce(cancelled_at, ''))")


class HistoryQueries(Connected):
    """Mixed into Store: purge's deletes."""

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
