"""Attribution: which message an order is owed to, decided once, when the order is first seen.

One set-based pass over the orders the store got since the last pass (their rowids: an update
keeps an order's rowid, so each order is looked at once), each joined by its recipient to the
last click within `after_click` before it (how = 'click'), else to the last marketing message
delivered within `after_receiving` before it (how = 'received'). What the order's status later
becomes is the report's business: attribution never changes."""

from __future__ import annotations

from datetime import timedelta

from mailflow.store.connected import Connected

_STAMP = "'%Y-%m-%dT%H:%M:%SZ'"
# the newest click on that link of that message at or before the order (a later click is
# no reason for an order placed before it)
_CLICK_AT = "(CASE WHEN k.last_at <= o.created_at THEN k.last_at ELSE k.first_at END)"


def _new_orders(fallback: bool) -> str:
    """The orders of this pass: past the last pass's rowid, or, when that row is gone (a purge
    removed the newest orders, and SQLite may give their rowids again), first seen since it."""
    seen = "o.first_seen_at >= :last_at" if fallback else "o.rowid > :lo"
    return f"{seen} AND o.rowid <= :hi AND o.email_key IS NOT NULL"


def _after_click(fallback: bool) -> str:
    return (
        "INSERT OR IGNORE INTO attributions (order_id, outbox_key, rule, how, attributed_at)"
        " SELECT o.id, c.outbox_key, c.rule, 'click', :now FROM orders o"
        " JOIN clicks c ON c.id = (SELECT k.id FROM clicks k WHERE k.email_key = o.email_key"
        f" AND k.first_at <= o.created_at AND {_CLICK_AT} >= strftime({_STAMP}, o.created_at,"
        f" :click_back) ORDER BY {_CLICK_AT} DESC, k.id DESC LIMIT 1)"
        f" WHERE {_new_orders(fallback)}")


def _after_receiving(fallback: bool, rules: int) -> str:
    marks = ", ".join(f":rule{i}" for i in range(rules))
    return (
        "INSERT OR IGNORE INTO attributions (order_id, outbox_key, rule, how, attributed_at)"
        " SELECT o.id, m.key, m.rule, 'received', :now FROM orders o"
        " JOIN outbox m ON m.id = (SELECT r.id FROM outbox r WHERE r.email_key = o.email_key"
        f" AND r.rule IN ({marks}) AND r.sent_at <= o.created_at"
        f" AND r.sent_at >= strftime({_STAMP}, o.created_at, :received_back)"
        " AND r.status = 'sent' ORDER BY r.sent_at DESC, r.id DESC LIMIT 1)"
        f" WHERE {_new_orders(fallback)}")


class AttributionQueries(Connected):
    """Mixed into Store: the attribution pass run after every import, pull and webhook batch."""

    def _pass_state(self) -> tuple[int, str, int, bool]:
        lo, last_id, last_at = self.conn.execute(
            "SELECT order_rowid, order_id, at FROM attribution_passes WHERE id = 1").fetchone()
        hi = self.conn.execute("SELECT coalesce(max(rowid), 0) FROM orders").fetchone()[0]
        still = lo == 0 or self.conn.execute(
            "SELECT 1 FROM orders WHERE rowid = ? AND id = ?", (lo, last_id)).fetchone()
        return lo, last_at, hi, not still

    def attribute_new_orders(self, *, after_click: timedelta, after_receiving: timedelta,
                             marketing_rules: list[str], now: str) -> int:
        """Attribute the orders first seen since the last pass; how many were. Costs two
        indexed lookups when nothing is new (no write, no lock)."""
        lo, _, hi, fallback = self._pass_state()
        if hi == lo and not fallback:
            return 0
        with self.transaction():
            lo, last_at, hi, fallback = self._pass_state()
            params: dict[str, object] = {
                "lo": lo, "hi": hi, "last_at": last_at, "now": now,
                "click_back": f"-{int(after_click.total_seconds())} seconds",
                "received_back": f"-{int(after_receiving.total_seconds())} seconds",
                **{f"rule{i}": name for i, name in enumerate(marketing_rules)}}
            done = self.conn.execute(_after_click(fallback), params).rowcount
            if marketing_rules:
                done += self.conn.execute(_after_receiving(fallback, len(marketing_rules)),
                                          params).rowcount
            newest = self.conn.execute("SELECT id FROM orders WHERE rowid = ?", (hi,)).fetchone()
            self.conn.execute(
                "UPDATE attribution_passes SET order_rowid = ?, order_id = ?, at = ? WHERE id = 1",
                (hi, newest[0] if newest else None, now))
        return done
