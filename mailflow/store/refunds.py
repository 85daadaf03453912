"""Partial refunds (table order_refunds, migration 0017_refunds): money given back while the
order goes on. Each increase of the refunded amount a source reports is a refund of its own,
numbered per order from 1, and the instance of one `order.refunded` message
(`RULE:order:ID:partially_refunded`, then `…:partially_refunded:2`, `:3`…).

`total` is the money given back so far with that refund, `amount` what that refund gave
(the increase); both NULL when the source said "partially refunded" without an amount. A
refunded amount that stays the same or goes down (the same export again, an older one
imported after a newer one) is no refund: the highest total recorded is the mark to pass.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from typing import Any

from mailflow.store.connected import Connected
from mailflow.values import to_decimal

# (order id, the money given back so far as the record says, or None, at, source)
Said = tuple[str, str | None, str, str]


def record_refunds(conn: sqlite3.Connection, said: list[Said], import_id: int,
                   now: str) -> int:
    """Record the partial refunds these orders' records show that the store has not seen;
    returns how many. Call inside the import's transaction."""
    if not said:
        return 0
    known: dict[str, list[tuple[int, Decimal | None]]] = {}
    for order_id, seq, total in conn.execute(
            "SELECT order_id, seq, total FROM order_refunds WHERE order_id IN"
            " (SELECT value FROM json_each(?)) ORDER BY order_id, seq",
            (json.dumps([s[0] for s in said]),)):
        known.setdefault(order_id, []).append((seq, to_decimal(total)))
    rows: list[tuple] = []
    learnt: list[tuple] = []
    for order_id, text, at, source in said:
        total = to_decimal(text)
        before = known.get(order_id, [])
        if not before:
            rows.append((order_id, 1, text, text, at, source, import_id, now))
            known[order_id] = [(1, total)]
            continue
        if total is None:
            continue
        last = before[-1][0]
        mark = max((t for _, t in before if t is not None), default=None)
        if mark is None:  # the refunds so far said no amount: this one is theirs, now known
            learnt.append((text, text, order_id, last))
            before[-1] = (last, total)
        elif total > mark:
            rows.append((order_id, last + 1, str(total - mark), text, at, source, import_id,
                         now))
            before.append((last + 1, total))
    conn.executemany("UPDATE order_refunds SET amount = ?, total = ? WHERE order_id = ?"
                     " AND seq = ? AND total IS NULL", learnt)
    conn.executemany("INSERT OR IGNORE INTO order_refunds (order_id, seq, amount, total, at,"
                     " source, import_id, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


class RefundQueries(Connected):
    """Mixed into Store: what the rules and preview read of an order's partial refunds."""

    def order_refunds(self, order_id: str) -> list[dict[str, Any]]:
        """The order's partial refunds, first first: seq, amount, total, at."""
        cursor = self.conn.execute("SELECT seq, amount, total, at FROM order_refunds"
                                   " WHERE order_id = ? ORDER BY seq", (order_id,))
        return [{"seq": seq, "amount": amount, "total": total, "at": at}
                for seq, amount, total, at in cursor]
