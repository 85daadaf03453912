"""Attribution: which message an order is owed to, decided once, when the order is first seen.

One set-based pass over the orders the store got since the last pass (their rowids: an update
keeps an order's rowid, so each order is looked at once), each joined by its recipient to the
last click within `after_click` before it (how = 'click'), else to the last marketing message
delivered within `after_receiving` before it (how = 'received'); and to every cart reminder
sent within the recovery window before it (cart_recoveries). The row copies what the report
needs of the message and the order; the order's later status, total and currency follow by
trigger (migration 0012), the attribution itself never changes."""

from __future__ import annotations

from datetime import timedelta

from mailflow.store.connected import Connected
from mailflow.store.measures import CENTS_OF_ORDER, STATUS_NOW

_STAMP = "'%Y-%m-%dT%H:%M:%SZ'"
# the newest click on that link of that message at or before the order (a later click is
# no reason for an order placed before it)
_CLICK_AT = "(CASE WHEN k.last_at <= o.created_at THEN k.last_at ELSE k.first_at END)"
_ATTRIBUTION = ("INSERT OR IGNORE INTO attributions (order_id, outbox_key, rule, how,"
                " attributed_at, locale, sent_at, currency, cents, status_now)")
_OF_ORDER = f"o.currency, {CENTS_OF_ORDER}, {STATUS_NOW}"


def _new(alias: str, fallback: bool) -> str:
    """The orders of this pass: past the last pass's rowid, or, when that row is gone (a purge
    removed the newest orders, and SQLite may give their rowids again), first seen since it."""
    seen = f"{alias}.first_seen_at >= :last_at" if fallback else f"{alias}.rowid > :lo"
    return f"{seen} AND {alias}.rowid <= :hi AND {alias}.email_key IS NOT NULL"


def _orders(fallback: bool, candidates: str | None) -> str:
    """The new orders, as `o`: all of them, probing each recipient's clicks or messages (a
    tick's few orders), or only those a click or message came before (`candidates`, joining
    them from the clicks' or messages' side: an import of many orders)."""
    if candidates is None:
        chosen = f"SELECT n.rowid AS id FROM orders n WHERE {_new('n', fallback)}"
    else:
        chosen = f"SELECT DISTINCT n.rowid AS id FROM {candidates} AND {_new('n', fallback)}"
    return f"({chosen}) x JOIN orders o ON o.rowid = x.id"


def _messages_before(marks: str, ahead: str) -> str:
    return (f"outbox r2 JOIN orders n ON r2.rule IN ({marks}) AND r2.status = 'sent'"
            " AND n.email_key = r2.email_key AND n.created_at >= r2.sent_at"
            f" AND n.created_at <= strftime({_STAMP}, r2.sent_at, {ahead})")


def _after_click(fallback: bool, from_clicks: bool) -> str:
    candidates = ("clicks k2 JOIN orders n ON n.email_key = k2.email_key"
                  " AND n.created_at >= k2.first_at"
                  f" AND n.created_at <= strftime({_STAMP}, k2.last_at, :click_ahead)"
                  if from_clicks else None)
    return (
        f"{_ATTRIBUTION} SELECT o.id, c.outbox_key, c.rule, 'click', :now, m.locale, m.sent_at,"
        f" {_OF_ORDER} FROM {_orders(fallback, candidates)}"
        # SQLite refuses the outer order in a subquery's ORDER BY: the newest click is the
        # max of its time followed by its id (a time is always 20 characters)
        " JOIN clicks c ON c.id = (SELECT CAST(substr(max(printf('%s%012d', "
        f"{_CLICK_AT}, k.id)), 21) AS INTEGER) FROM clicks k WHERE k.email_key = o.email_key"
        f" AND k.first_at <= o.created_at AND {_CLICK_AT} >= strftime({_STAMP}, o.created_at,"
        " :click_back)) JOIN outbox m ON m.key = c.outbox_key")


def _after_receiving(fallback: bool, from_messages: bool, marks: str) -> str:
    candidates = _messages_before(marks, ":received_ahead") if from_messages else None
    return (
        f"{_ATTRIBUTION} SELECT o.id, m.key, m.rule, 'received', :now, m.locale, m.sent_at,"
        f" {_OF_ORDER} FROM {_orders(fallback, candidates)}"
        " JOIN outbox m ON m.id = (SELECT CAST(substr(max(printf('%s%012d', r.sent_at, r.id)),"
        " 21) AS INTEGER) FROM outbox r WHERE r.email_key = o.email_key"
        # +r.rule: one search of the recipient's messages, not one per rule
        f" AND +r.rule IN ({marks}) AND r.sent_at <= o.created_at"
        f" AND r.sent_at >= strftime({_STAMP}, o.created_at, :received_back)"
        # +r.status: the recipient's messages (outbox_recipient), not every sent one (the
        # store is never ANALYZEd, so SQLite would take outbox_pending for status = 'sent')
        " AND +r.status = 'sent')")


def _cart_recoveries(fallback: bool, from_messages: bool, marks: str) -> str:
    candidates = _messages_before(marks, ":recovery_ahead") if from_messages else None
    return (
        "INSERT OR IGNORE INTO cart_recoveries (reminder_key, order_id, sent_at, day, currency,"
        f" cents, status_now, latest) SELECT r.key, o.id, r.sent_at, substr(o.created_at, 1, 10),"
        # an order counts once, on its latest reminder: the one any --since keeps longest
        f" {_OF_ORDER}, row_number() OVER (PARTITION BY o.id ORDER BY r.sent_at DESC,"
        f" r.key DESC) = 1 FROM {_orders(fallback, candidates)}"
        f" JOIN outbox r ON r.email_key = o.email_key AND +r.rule IN ({marks})"
        " AND +r.status = 'sent' AND r.sent_at < o.created_at"
        f" AND r.sent_at >= strftime({_STAMP}, o.created_at, :recovery_back)")


def _marks(prefix: str, names: list[str]) -> tuple[str, dict[str, str]]:
    return (", ".join(f":{prefix}{i}" for i in range(len(names))),
            {f"{prefix}{i}": name for i, name in enumerate(names)})


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
                             marketing_rules: list[str], cart_rules: list[str],
                             recovery: timedelta, now: str) -> int:
        """Attribute the orders first seen since the last pass; how many were. Costs two
        indexed lookups when nothing is new (no write, no lock)."""
        lo, _, hi, fallback = self._pass_state()
        if hi == lo and not fallback:
            return 0
        in_marketing, marketing = _marks("m", marketing_rules)
        in_carts, carts = _marks("c", cart_rules)
        windows = {"click": after_click, "received": after_receiving, "recovery": recovery}
        with self.transaction():
            lo, last_at, hi, fallback = self._pass_state()
            params: dict[str, object] = {"lo": lo, "hi": hi, "last_at": last_at, "now": now,
                                         **marketing, **carts}
            for name, window in windows.items():
                params[f"{name}_back"] = f"-{int(window.total_seconds())} seconds"
                params[f"{name}_ahead"] = f"+{int(window.total_seconds())} seconds"
            # probe from the smaller side: a tick's few orders, or the clicks and messages
            new = hi if fallback else hi - lo
            clicks, messages = (self.conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {t}")
                                .fetchone()[0] for t in ("clicks", "outbox"))
            done = self.conn.execute(_after_click(fallback, new > clicks), params).rowcount
            if marketing_rules:
                done += self.conn.execute(
                    _after_receiving(fallback, new > messages, in_marketing), params).rowcount
            if cart_rules:
                self.conn.execute(_cart_recoveries(fallback, new > messages, in_carts), params)
            newest = self.conn.execute("SELECT id FROM orders WHERE rowid = ?", (hi,)).fetchone()
            self.conn.execute(
                "UPDATE attribution_passes SET order_rowid = ?, order_id = ?, at = ? WHERE id = 1",
                (hi, newest[0] if newest else None, now))
        return done
