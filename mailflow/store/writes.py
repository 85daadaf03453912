"""Writing one import's records: upserts by batch, change detection by content hash.

A batch first reads what the store already has for its ids (one query), so that an
identical re-import touches nothing, a changed order is updated (its lines replaced)
and a status change becomes an event.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

from mailflow.clock import iso
from mailflow.importing.records import Cart, Customer, Fulfillment, Line, Order, Unsubscribe

ORDER_COLUMNS = (
    "id", "platform_id", "source", "email", "email_key", "email_raw", "email_problem",
    "first_name", "last_name", "locale", "accepts_marketing", "status", "created_at",
    "paid_at", "shipped_at", "delivered_at", "cancelled_at", "currency", "subtotal",
    "shipping", "tax", "discount", "total", "payment_method", "shipping_method",
    "tracking_number", "tracking_url", "carrier", "pickup_point", "shipping_address",
    "content_hash",
)
CART_COLUMNS = (
    "id", "source", "email", "email_key", "email_raw", "email_problem", "first_name",
    "last_name", "locale", "accepts_marketing", "created_at", "updated_at", "completed_at",
    "order_id", "currency", "total", "recovery_url", "content_hash",
)
# The status an order enters at each of its own timestamps.
MILESTONES = (("paid_at", "paid"), ("shipped_at", "shipped"), ("delivered_at", "delivered"),
              ("cancelled_at", "cancelled"))

_CUSTOMER_MERGE = {
    "first_name": "coalesce(excluded.first_name, customers.first_name)",
    "last_name": "coalesce(excluded.last_name, customers.last_name)",
    "locale": "coalesce(excluded.locale, customers.locale)",
    "accepts_marketing": "CASE WHEN {newer} THEN excluded.accepts_marketing"
                         " ELSE customers.accepts_marketing END",
    "consent_at": "CASE WHEN {newer} THEN excluded.consent_at ELSE customers.consent_at END",
    "created_at": "coalesce(excluded.created_at, customers.created_at)",
    "first_seen_at": "min(customers.first_seen_at, excluded.first_seen_at)",
    "last_order_at": "CASE WHEN customers.last_order_at IS NULL"
                     " OR excluded.last_order_at > customers.last_order_at"
                     " THEN coalesce(excluded.last_order_at, customers.last_order_at)"
                     " ELSE customers.last_order_at END",
}
_NEWER_CONSENT = ("excluded.accepts_marketing IS NOT NULL AND (customers.consent_at IS NULL"
                  " OR excluded.consent_at >= customers.consent_at)")
_CUSTOMER_SQL = (
    "INSERT INTO customers (email_key, email, first_name, last_name, locale, accepts_marketing,"
    " consent_at, created_at, first_seen_at, last_order_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(email_key) DO UPDATE SET "
    + ", ".join(f"{c} = {e.format(newer=_NEWER_CONSENT)}" for c, e in _CUSTOMER_MERGE.items())
    + ", updated_at = excluded.updated_at WHERE "
    + " OR ".join(f"({e.format(newer=_NEWER_CONSENT)}) IS NOT customers.{c}"
                  for c, e in _CUSTOMER_MERGE.items())
)


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    lines: int = 0
    status_changes: int = 0
    missing: list[Fulfillment] = field(default_factory=list)


def _hash(values: tuple, lines: list[Line]) -> str:
    # repr of str/int/None tuples is deterministic and several times cheaper than JSON here
    text = repr((values, [(ln.sku, ln.name, ln.quantity, ln.price) for ln in lines]))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


class ImportWriter:
    """Writes one import's records; call only inside `Store.transaction()`."""

    def __init__(self, conn: sqlite3.Connection, import_id: int, source: str, now: str) -> None:
        self.conn = conn
        self.import_id = import_id
        self.source = source
        self.now = now
        self.customers = Counts()

    def _existing(self, table: str, ids: list[str], columns: str) -> dict[str, tuple]:
        sql = f"SELECT id, {columns} FROM {table} WHERE id IN (SELECT value FROM json_each(?))"
        return {row[0]: row[1:] for row in self.conn.execute(sql, (json.dumps(ids),))}

    def orders(self, batch: list[Order]) -> Counts:
        counts = Counts()
        latest = {o.order_id: o for o in batch}  # the same order twice in one file: last wins
        existing = self._existing("orders", list(latest), "content_hash, status")
        rows, lines, events, touched = [], [], [], []
        for o in latest.values():
            values = (
                o.order_id, o.platform_id, self.source, o.email, o.email_key, o.email_raw,
                o.email_problem, o.first_name, o.last_name,
                o.locale, _flag(o.accepts_marketing), o.status, iso(o.created_at), iso(o.paid_at),
                iso(o.shipped_at), iso(o.delivered_at), iso(o.cancelled_at), o.currency,
                o.subtotal, o.shipping, o.tax, o.discount, o.total, o.payment_method,
                o.shipping_method, o.tracking_number, o.tracking_url, o.carrier, o.pickup_point,
                o.shipping_address,
            )
            digest = _hash(values, o.lines)
            before = existing.get(o.order_id)
            if before is not None and before[0] == digest:
                counts.unchanged += 1
                continue
            rows.append((*values, digest, self.now, self.now, self.import_id))
            touched.append(o.order_id)
            lines.extend((o.order_id, i, ln.sku, ln.name, ln.quantity, ln.price)
                         for i, ln in enumerate(o.lines, 1))
            events.extend(self._status_events(o, first_sighting=before is None))
            if before is None:
                counts.inserted += 1
            else:
                counts.updated += 1
                if before[1] != o.status:
                    counts.status_changes += 1
        columns = (*ORDER_COLUMNS, "first_seen_at", "updated_at", "import_id")
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns
                            if c not in ("id", "first_seen_at"))
        self.conn.executemany(
            f"INSERT INTO orders ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            f" ON CONFLICT(id) DO UPDATE SET {updates}", rows)
        self._replace_lines("order_lines", "order_id", touched, lines)
        self.conn.executemany(
            "INSERT OR IGNORE INTO order_status_events (order_id, status, at, source, import_id,"
            " recorded_at) VALUES (?, ?, ?, ?, ?, ?)", events)
        counts.lines = len(lines)
        self._customers_from(
            (o.email_key, o.email, o.first_name, o.last_name, o.locale, o.accepts_marketing,
             o.created_at, None, o.created_at, o.created_at) for o in latest.values())
        return counts

    def _status_events(self, o: Order, *, first_sighting: bool) -> list[tuple]:
        """(order, status, at, source, import, recorded) for every status the order has entered.

        The export's own timestamp wins. Without one, a status first seen on an order we
        already knew entered it at this import; on an order seen for the first time, it
        entered it no later than the order's newest timestamp, which keeps two years of
        history from looking new.
        """
        known = {status: getattr(o, attr) for attr, status in MILESTONES if getattr(o, attr)}
        if o.status_at is not None:
            known[o.status] = o.status_at
        events = [(o.order_id, s, iso(at), "export", self.import_id, self.now)
                  for s, at in known.items()]
        if o.status not in known:
            if first_sighting:
                newest = max([o.created_at, *known.values()])
                at, source = min(iso(newest), self.now), "inferred"
            else:
                at, source = self.now, "import"
            events.append((o.order_id, o.status, at, source, self.import_id, self.now))
        return events

    def _replace_lines(self, table: str, key: str, ids: list[str], lines: list[tuple]) -> None:
        if ids:
            self.conn.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT value FROM json_each(?))",
                              (json.dumps(ids),))
        self.conn.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?)", lines)

    def carts(self, batch: list[Cart]) -> Counts:
        counts = Counts()
        latest = {c.cart_id: c for c in batch}
        existing = self._existing("carts", list(latest), "content_hash")
        rows, lines, touched = [], [], []
        for c in latest.values():
            values = (
                c.cart_id, self.source, c.email, c.email_key, c.email_raw,
                c.email_problem, c.first_name, c.last_name, c.locale, _flag(c.accepts_marketing),
                iso(c.created_at), iso(c.updated_at or c.created_at), iso(c.completed_at),
                c.order_id, c.currency, c.total, c.recovery_url,
            )
            digest = _hash(values, c.lines)
            before = existing.get(c.cart_id)
            if before is not None and before[0] == digest:
                counts.unchanged += 1
                continue
            rows.append((*values, digest, self.now, self.import_id))
            touched.append(c.cart_id)
            lines.extend((c.cart_id, i, ln.sku, ln.name, ln.quantity, ln.price)
                         for i, ln in enumerate(c.lines, 1))
            if before is None:
                counts.inserted += 1
            else:
                counts.updated += 1
        columns = (*CART_COLUMNS, "first_seen_at", "import_id")
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns
                            if c not in ("id", "first_seen_at"))
        self.conn.executemany(
            f"INSERT INTO carts ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            f" ON CONFLICT(id) DO UPDATE SET {updates}", rows)
        self._replace_lines("cart_lines", "cart_id", touched, lines)
        counts.lines = len(lines)
        self._customers_from(
            (c.email_key, c.email, c.first_name, c.last_name, c.locale, c.accepts_marketing,
             c.updated_at or c.created_at, None, c.created_at, None) for c in latest.values())
        return counts

    def write_customers(self, batch: list[Customer], now: datetime) -> None:
        self._customers_from(
            (c.email.lower(), c.email, c.first_name, c.last_name, c.locale, c.accepts_marketing,
             now, c.created_at, c.created_at or now, None) for c in batch if c.email)

    def _customers_from(self, people) -> None:
        """Merge people seen in this batch: (key, email, first, last, locale, consent,
        consent_at, created_at, first_seen, last_order)."""
        merged: dict[str, list] = {}
        for key, email, first, last, locale, consent, consent_at, created, seen, ordered in people:
            if not key:
                continue
            row = merged.get(key)
            new = [key, email, first, last, locale, _flag(consent), iso(consent_at), iso(created),
                   iso(seen), iso(ordered), self.now]
            if row is None:
                merged[key] = new
                continue
            for i in (2, 3, 4, 7):
                row[i] = new[i] or row[i]
            if new[5] is not None and (row[6] is None or new[6] >= row[6]):
                row[5], row[6] = new[5], new[6]
            row[8] = min(row[8], new[8])
            row[9] = max(filter(None, (row[9], new[9])), default=None)
        if not merged:
            return
        known = self._existing_customers(list(merged))
        before = self.conn.total_changes
        self.conn.executemany(_CUSTOMER_SQL, list(merged.values()))
        changed = self.conn.total_changes - before
        inserted = len(merged) - len(known)
        self.customers.inserted += inserted
        self.customers.updated += changed - inserted

    def _existing_customers(self, keys: list[str]) -> set[str]:
        sql = ("SELECT email_key FROM customers"
               " WHERE email_key IN (SELECT value FROM json_each(?))")
        return {row[0] for row in self.conn.execute(sql, (json.dumps(keys),))}

    def unsubscribes(self, batch: list[Unsubscribe], now: datetime, source: str) -> int:
        before = self.conn.total_changes
        self.conn.executemany(
            "INSERT OR IGNORE INTO suppressions (email_key, email, reason, at, source)"
            " VALUES (?, ?, 'unsubscribed', ?, ?)",
            [(u.email.lower(), u.email, iso(u.at or now), source) for u in batch if u.email])
        return self.conn.total_changes - before

    def fulfillments(self, batch: list[Fulfillment]) -> Counts:
        """Shipments reported apart from their order: mark the stored order shipped."""
        counts = Counts()
        for f in batch:
            row = self.conn.execute(
                "SELECT id, status FROM orders WHERE platform_id = ? OR id = ?",
                (f.platform_order_id, f.platform_order_id)).fetchone()
            if row is None:
                counts.missing.append(f)
                continue
            order_id, status = row
            shipped = iso(f.shipped_at) or self.now
            self.conn.execute(
                "UPDATE orders SET tracking_number = coalesce(?, tracking_number),"
                " tracking_url = coalesce(?, tracking_url), carrier = coalesce(?, carrier),"
                " shipped_at = coalesce(shipped_at, ?), updated_at = ?, import_id = ?,"
                " status = CASE WHEN status IN ('pending_payment', 'paid', 'awaiting_stock',"
                " 'in_preparation', 'invoiced') THEN 'shipped' ELSE status END WHERE id = ?",
                (f.tracking_number, f.tracking_url, f.carrier, shipped, self.now,
                 self.import_id, order_id))
            self.conn.execute(
                "INSERT OR IGNORE INTO order_status_events (order_id, status, at, source,"
                " import_id, recorded_at) VALUES (?, 'shipped', ?, ?, ?, ?)",
                (order_id, shipped, "export" if f.shipped_at else "import", self.import_id,
                 self.now))
            counts.updated += 1
            if status != "shipped":
                counts.status_changes += 1
        return counts
