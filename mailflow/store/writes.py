"""Writing one import's records: upserts by batch, change detection by content hash.

A batch first reads what the store already has for its ids (one query), so that an
identical re-import touches nothing, a changed order is updated (its lines replaced)
and a status change becomes an event.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime

from mailflow.clock import from_iso, iso
from mailflow.records import (
    PARTIALLY_REFUNDED,
    STATUS_PROGRESS,
    Cart,
    Customer,
    Fulfillment,
    Line,
    Order,
    Unsubscribe,
    partly_refunded,
    status_from_dates,
)
from mailflow.store.bulk import BulkInserts, Insert
from mailflow.store.digest import content_hash, line_values, same_content
from mailflow.store.refunds import Said, record_refunds

ORDER_COLUMNS = (
    "id", "platform_id", "source", "email", "email_key", "email_raw", "email_problem",
    "first_name", "last_name", "locale", "accepts_marketing", "status", "created_at",
    "paid_at", "shipped_at", "delivered_at", "cancelled_at", "currency", "subtotal",
    "shipping", "tax", "discount", "total", "payment_method", "shipping_method",
    "tracking_number", "tracking_url", "carrier", "pickup_point", "shipping_address",
    "payment_class", "partially_shipped", "platform_updated_at", "refunded_amount",
    "content_hash",
)
CART_COLUMNS = (
    "id", "source", "email", "email_key", "email_raw", "email_problem", "first_name",
    "last_name", "locale", "accepts_marketing", "created_at", "updated_at", "completed_at",
    "order_id", "currency", "total", "recovery_url", "content_hash",
)
_TIMES = ("created_at", "paid_at", "shipped_at", "delivered_at", "cancelled_at")
_EMAIL = ("email", "email_key", "email_raw", "email_problem")
# How far an order has gone; a source that cannot tell "delivered" (an orders CSV, a
# WooCommerce "completed") never takes a stored order back to "shipped".
_ARRIVED = ("at_pickup_point", "delivered")
_PROGRESS = STATUS_PROGRESS

_CUSTOMER_MERGE = {
    "first_name": "coalesce(excluded.first_name, customers.first_name)",
    "last_name": "coalesce(excluded.last_name, customers.last_name)",
    "locale": "coalesce(excluded.locale, customers.locale)",
    "accepts_marketing": "CASE WHEN {newer} THEN excluded.accepts_marketing"
                         " ELSE customers.accepts_marketing END",
    "consent_at": "CASE WHEN {newer} THEN excluded.consent_at ELSE customers.consent_at END",
    "created_at": "coalesce(excluded.created_at, customers.created_at)",
    "first_seen_at": "min(customers.first_seen_at, excluded.first_seen_at)",
    "first_order_at": "coalesce(min(customers.first_order_at, excluded.first_order_at),"
                      " customers.first_order_at, excluded.first_order_at)",
    "last_order_at": "CASE WHEN customers.last_order_at IS NULL"
                     " OR excluded.last_order_at > customers.last_order_at"
                     " THEN coalesce(excluded.last_order_at, customers.last_order_at)"
                     " ELSE customers.last_order_at END",
}
_NEWER_CONSENT = ("excluded.accepts_marketing IS NOT NULL AND (customers.consent_at IS NULL"
                  " OR excluded.consent_at >= customers.consent_at)")
CUSTOMERS = Insert(
    "customers",
    ("email_key", "email", "first_name", "last_name", "locale", "accepts_marketing",
     "consent_at", "created_at", "first_seen_at", "last_order_at", "updated_at",
     "first_order_at", "history_before"),
    "ON CONFLICT(email_key) DO UPDATE SET "
    + ", ".join(f"{c} = {e.format(newer=_NEWER_CONSENT)}" for c, e in _CUSTOMER_MERGE.items())
    + ", updated_at = excluded.updated_at WHERE "
    + " OR ".join(f"({e.format(newer=_NEWER_CONSENT)}) IS NOT customers.{c}"
                  for c, e in _CUSTOMER_MERGE.items()))


def _upsert(table: str, columns: tuple[str, ...]) -> Insert:
    """An insert that replaces the stored row of the same id, which keeps its first sighting."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns
                        if c not in ("id", "first_seen_at", "history_before"))
    return Insert(table, columns, f"ON CONFLICT(id) DO UPDATE SET {updates}")


ORDERS = _upsert("orders", (*ORDER_COLUMNS, "first_seen_at", "updated_at", "import_id",
                            "history_before"))
CARTS = _upsert("carts", (*CART_COLUMNS, "first_seen_at", "import_id", "history_before"))
_LINE = ("position", "sku", "name", "quantity", "price")
ORDER_LINES = Insert("order_lines", ("order_id", *_LINE, "shipped"))
CART_LINES = Insert("cart_lines", ("cart_id", *_LINE))
STATUS_EVENTS = Insert("order_status_events", ("order_id", "status", "at", "source",
                                               "import_id", "recorded_at"),
                       verb="INSERT OR IGNORE")


# Python 3.11's sqlite3 looks for an adapter for each None it binds (a quarter of a
# microsecond each: a fifth of a big import's orders insert), and binds a float at once;
# SQLite stores a NaN as NULL. So the rows of the widest, emptiest inserts bind this.
_NULL = float("nan")


def _bound(row: Iterable) -> tuple:
    """`row` as it is bound: each None as _NULL (stored NULL all the same)."""
    return tuple([_NULL if value is None else value for value in row])


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    lines: int = 0
    status_changes: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


class ImportWriter:
    """Writes one import's records; call only inside `Store.transaction()`. `history_before`:
    this is a first pull's backfill: what it brings in for the first time happened before
    mailflow watched the shop, and no message due before that moment goes out for it.
    `beside`: each batch's rows reach the store in a second thread while the caller reads
    the next batch (a file: store/bulk.py); use it as a context manager then, inside the
    transaction, so that its last batch is written before the transaction ends."""

    def __init__(self, conn: sqlite3.Connection, import_id: int, source: str, now: str,
                 history_before: str | None = None, *, beside: bool = False) -> None:
        self._bulk = BulkInserts(conn, beside=beside)
        self.import_id = import_id
        self.source = source
        self.now = now
        self.history_before = history_before
        self._customers_inserted = 0
        self._listed_before: bool | None = None  # a customers export came before this one

    def __enter__(self) -> ImportWriter:
        return self

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        if error is None:
            self._bulk.close()
            return
        with suppress(BaseException):  # what ended the import is what it says
            self._bulk.close()

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection, once the last batch's rows are in the store."""
        return self._bulk.conn

    @property
    def customers(self) -> Counts:
        """The people this writer added and changed so far."""
        self._bulk.finish()
        changed = self._bulk.changes[CUSTOMERS.table]
        return Counts(inserted=self._customers_inserted,
                      updated=changed - self._customers_inserted)

    def _existing(self, table: str, ids: list[str], columns: str) -> dict[str, tuple]:
        sql = f"SELECT id, {columns} FROM {table} WHERE id IN (SELECT value FROM json_each(?))"
        return {row[0]: row[1:] for row in self.conn.execute(sql, (json.dumps(ids),))}

    def orders(self, batch: list[Order]) -> Counts:
        counts = Counts()
        latest = {o.order_id: o for o in batch}  # the same order twice in one file: last wins
        existing = self._existing("orders", list(latest), "content_hash, status,"
                                  " platform_updated_at")
        stored = self._stored_orders([o for o in latest.values()
                                      if o.carried is not None and o.order_id in existing])
        rows: list[tuple] = []
        lines: list[tuple] = []
        events: list[tuple] = []
        refunds: list[Said] = []
        replaced: list[str] = []  # stored orders whose lines this batch replaces
        people: list[tuple] = []  # as _customers_from takes them
        for o in latest.values():
            before = existing.get(o.order_id)
            if before is not None and o.changed_at is not None and before[2] is not None \
                    and iso(o.changed_at) < before[2]:
                counts.unchanged += 1  # an older version than the stored one
                continue
            if o.order_id in stored:
                o = _merge(o, stored[o.order_id])
            elif o.created_at is None:
                counts.rejected.append((o.line, f"order {o.order_id} is not in the store and"
                                                " this file has no created_at: import it whole"
                                                " first"))
                continue
            values = (
                o.order_id, o.platform_id, self.source, o.email, o.email_key, o.email_raw,
                o.email_problem, o.first_name, o.last_name,
                o.locale, _flag(o.accepts_marketing), o.status, iso(o.created_at), iso(o.paid_at),
                iso(o.shipped_at), iso(o.delivered_at), iso(o.cancelled_at), o.currency,
                o.subtotal, o.shipping, o.tax, o.discount, o.total, o.payment_method,
                o.shipping_method, o.tracking_number, o.tracking_url, o.carrier, o.pickup_point,
                o.shipping_address, o.payment_class, _flag(o.partially_shipped),
                iso(o.changed_at) if o.changed_at else (before[2] if before else None),
            )
            people.append((o.email_key, o.email, o.first_name, o.last_name, o.locale, values[10],
                           values[12], None, values[12], values[12], values[12]))
            # a refund counts only when said, so sources that never say keep their hashes
            refund = (o.refunded_amount, o.partially_refunded)
            said = values if refund == (None, None) else (*values, *refund)
            hashed = line_values(o.lines)
            digest = content_hash(said, hashed)
            if before is not None and same_content(before[0], digest, said, hashed):
                counts.unchanged += 1
                continue
            rows.append(_bound((*values, o.refunded_amount, digest, self.now, self.now,
                                self.import_id, self.history_before)))
            order_id = o.order_id
            if before is not None:
                replaced.append(order_id)
            lines += [(order_id, i, ln.sku, ln.name, ln.quantity, ln.price,
                       None if ln.shipped is None else int(ln.shipped))
                      for i, ln in enumerate(o.lines, 1)]
            entered, given_back = self._status_events(o, values[12:17],
                                                      first_sighting=before is None)
            events.extend(entered)
            if given_back is not None:
                refunds.append((order_id, o.refunded_amount, *given_back))
            if before is None:
                counts.inserted += 1
            else:
                counts.updated += 1
                if before[1] != o.status:
                    counts.status_changes += 1
        record_refunds(self.conn, refunds, self.import_id, self.now)
        self._bulk.stage(ORDERS, rows)
        self._replace_lines(ORDER_LINES, replaced, lines)
        self._bulk.stage(STATUS_EVENTS, events)
        counts.lines = len(lines)
        self._customers_from(people)
        self._bulk.move()
        return counts

    def _stored_orders(self, partial: list[Order]) -> dict[str, dict]:
        """The stored rows (with their lines, when the record carries none) that partial
        records update."""
        if not partial:
            return {}
        ids = json.dumps([o.order_id for o in partial])
        cursor = self.conn.execute("SELECT * FROM orders WHERE id IN (SELECT value FROM"
                                   " json_each(?))", (ids,))
        names = [d[0] for d in cursor.description]
        rows = {row[0]: dict(zip(names, row, strict=True)) for row in cursor}
        for row in rows.values():
            row["lines"] = []
        for order_id, sku, name, quantity, price, shipped in self.conn.execute(
                "SELECT order_id, sku, name, quantity, price, shipped FROM order_lines WHERE"
                " order_id IN (SELECT value FROM json_each(?)) ORDER BY order_id, position",
                (ids,)):
            rows[order_id]["lines"].append(
                Line(sku, name, quantity, price, None if shipped is None else bool(shipped)))
        return rows

    def _status_events(self, o: Order, times: tuple, *, first_sighting: bool
                       ) -> tuple[list[tuple], tuple[str, str] | None]:
        """(order, status, at, source, import, recorded) for every status the order has entered,
        and (at, source) of the partial refund it shows, if it shows one (store/refunds.py).
        `times`: its created, paid, shipped, delivered and cancelled times as stored.

        The export's own timestamp wins. Without one, a status first seen on an order we
        already knew entered it at this import; on an order seen for the first time, it
        entered it no later than the order's newest timestamp, which keeps two years of
        history from looking new.
        """
        created, paid, shipped, delivered, cancelled = times
        known: dict[str, str] = {}  # the status it entered at each of its own times
        if paid:
            known["paid"] = paid
        if shipped:
            known["shipped"] = shipped
        if delivered:
            known["delivered"] = delivered
        if cancelled:
            known["cancelled"] = cancelled
        if o.status_at is not None:
            known[o.status] = iso(o.status_at)
        elif o.status == "refunded" and o.refunded_at is not None:
            known["refunded"] = iso(o.refunded_at)
        partial = partly_refunded(o)
        if partial and o.refunded_at is not None:
            known[PARTIALLY_REFUNDED] = iso(o.refunded_at)
        dated = [(s, at, "export") for s, at in known.items()]
        undated = [s for s in (o.status, PARTIALLY_REFUNDED if partial else None)
                   if s is not None and s not in known]
        for status in undated:
            if first_sighting and created is not None:  # a new order always has it
                # stored times sort as time (clock.py)
                dated.append((status, min(max([created, *known.values()]), self.now),
                              "inferred"))
            else:
                dated.append((status, self.now, "import"))
        refund = next(((at, source) for s, at, source in dated if s == PARTIALLY_REFUNDED), None)
        return [(o.order_id, s, at, source, self.import_id, self.now) for s, at, source in dated
                if s != PARTIALLY_REFUNDED], refund

    def _replace_lines(self, insert: Insert, ids: list[str], lines: list[tuple]) -> None:
        """The stored lines of `ids` dropped now, `lines` staged for the next move."""
        if ids:
            self.conn.execute(f"DELETE FROM {insert.table} WHERE {insert.columns[0]} IN"
                              " (SELECT value FROM json_each(?))", (json.dumps(ids),))
        self._bulk.stage(insert, lines)

    def carts(self, batch: list[Cart]) -> Counts:
        counts = Counts()
        latest = {c.cart_id: c for c in batch}
        existing = self._existing("carts", list(latest), "content_hash, updated_at")
        rows: list[tuple] = []
        lines: list[tuple] = []
        touched: list[str] = []
        for c in latest.values():
            values = (
                c.cart_id, self.source, c.email, c.email_key, c.email_raw,
                c.email_problem, c.first_name, c.last_name, c.locale, _flag(c.accepts_marketing),
                iso(c.created_at), iso(c.updated_at or c.created_at), iso(c.completed_at),
                c.order_id, c.currency, c.total, c.recovery_url,
            )
            hashed = line_values(c.lines)
            digest = content_hash(values, hashed)
            before = existing.get(c.cart_id)
            if before is not None and (same_content(before[0], digest, values, hashed)
                                       or values[11] < before[1]):
                counts.unchanged += 1  # the same, or older than what is stored
                continue
            rows.append(_bound((*values, digest, self.now, self.import_id, self.history_before)))
            touched.append(c.cart_id)
            lines.extend((c.cart_id, i, ln.sku, ln.name, ln.quantity, ln.price)
                         for i, ln in enumerate(c.lines, 1))
            if before is None:
                counts.inserted += 1
            else:
                counts.updated += 1
        self._bulk.stage(CARTS, rows)
        self._replace_lines(CART_LINES, touched, lines)
        counts.lines = len(lines)
        self._customers_from(
            (c.email_key, c.email, c.first_name, c.last_name, c.locale, _flag(c.accepts_marketing),
             iso(c.updated_at or c.created_at), None, iso(c.created_at), None, None)
            for c in latest.values())
        self._bulk.move()
        return counts

    def write_customers(self, batch: list[Customer], now: datetime) -> None:
        """People of a customers export. One that no earlier export listed signed up since
        the last one, if the export itself gives no date (Shopify's does not)."""
        pairs = [(c.email.lower(), c) for c in batch if c.email]
        keys = [key for key, _ in pairs]
        if self._listed_before is None:  # before this file wrote anyone
            self._listed_before = self.conn.execute(
                "SELECT 1 FROM customers WHERE listed_at IS NOT NULL LIMIT 1").fetchone() is not None
        listed = {row[0] for row in self.conn.execute(
            "SELECT email_key FROM customers WHERE listed_at IS NOT NULL"
            " AND email_key IN (SELECT value FROM json_each(?))", (json.dumps(keys),))}
        self._customers_from(
            (key, c.email, c.first_name, c.last_name, c.locale, _flag(c.accepts_marketing),
             iso(now), iso(c.created_at or (now if self._listed_before and key not in listed
                                            else None)),
             iso(c.created_at or now), None, None) for key, c in pairs)
        self._bulk.move()
        self.conn.execute("UPDATE customers SET listed_at = ? WHERE listed_at IS NULL AND"
                          " email_key IN (SELECT value FROM json_each(?))",
                          (self.now, json.dumps(keys)))

    def _customers_from(self, people: Iterable[tuple]) -> None:
        """Merge people seen in this batch: (key, email, first, last, locale, consent as
        stored (1, 0, None), then as stored times: consent_at, created_at, first_seen,
        last_order, first_order)."""
        merged: dict[str, list] = {}
        for (key, email, first, last, locale, consent, consent_at, created, seen, ordered,
             first_order) in people:
            if not key:
                continue
            row = merged.get(key)
            new = [key, email, first, last, locale, consent, consent_at, created, seen, ordered,
                   self.now, first_order, self.history_before]
            if row is None:
                merged[key] = new
                continue
            for i in (2, 3, 4, 7):
                row[i] = new[i] or row[i]
            if new[5] is not None and (row[6] is None or new[6] >= row[6]):
                row[5], row[6] = new[5], new[6]
            row[8] = min(row[8], new[8])
            row[9] = max(filter(None, (row[9], new[9])), default=None)
            row[11] = min(filter(None, (row[11], new[11])), default=None)
        if not merged:
            return
        known = self._known_customers(list(merged))
        self._bulk.stage(CUSTOMERS, [_bound(row) for row in merged.values()])
        self._customers_inserted += len(merged) - known

    def _known_customers(self, keys: list[str]) -> int:
        """How many of these customers the store has already."""
        sql = ("SELECT count(*) FROM customers"
               " WHERE email_key IN (SELECT value FROM json_each(?))")
        return int(self.conn.execute(sql, (json.dumps(keys),)).fetchone()[0])

    def unsubscribes(self, batch: list[Unsubscribe], now: datetime, source: str) -> int:
        before = self.conn.total_changes
        self.conn.executemany(
            "INSERT OR IGNORE INTO suppressions (email_key, email, reason, at, source)"
            " VALUES (?, ?, 'unsubscribed', ?, ?)",
            [(u.email.lower(), u.email, iso(u.at or now), source) for u in batch if u.email])
        return self.conn.total_changes - before

    def fulfillments(self, batch: list[Fulfillment]) -> Counts:
        """Shipments reported apart from their order: mark the stored order shipped, or
        delivered / at the pickup point when the carrier says so."""
        counts = Counts()
        for f in batch:
            row = self.conn.execute(
                "SELECT id, status FROM orders WHERE platform_id = ? OR id = ?",
                (f.platform_order_id, f.platform_order_id)).fetchone()
            if row is None:
                counts.rejected.append((f.line, f"order {f.platform_order_id} is not in the"
                                                " store: import its orders first"))
                continue
            order_id, status = row
            shipped = iso(f.shipped_at) or self.now
            reached = status
            if status in ("pending_payment", "paid", "awaiting_stock", "in_preparation",
                          "invoiced"):
                reached = "shipped"
            arrived = f.shipment_status if reached in ("shipped", "at_pickup_point") else None
            if arrived is not None and _PROGRESS[arrived] > _PROGRESS[reached]:
                reached = arrived
            arrived_at = iso(f.status_at) or self.now
            self.conn.execute(
                "UPDATE orders SET tracking_number = coalesce(?, tracking_number),"
                " tracking_url = coalesce(?, tracking_url), carrier = coalesce(?, carrier),"
                " shipped_at = coalesce(shipped_at, ?), updated_at = ?, import_id = ?,"
                " status = ?, delivered_at = CASE WHEN ? = 'delivered'"
                " THEN coalesce(delivered_at, ?) ELSE delivered_at END WHERE id = ?",
                (f.tracking_number, f.tracking_url, f.carrier, shipped, self.now,
                 self.import_id, reached, reached, arrived_at, order_id))
            events = [("shipped", shipped, "export" if f.shipped_at else "import")]
            if reached in _ARRIVED and reached != status:
                events.append((reached, arrived_at, "export" if f.status_at else "import"))
            self.conn.executemany(
                STATUS_EVENTS.values_sql,
                [(order_id, event, at, source, self.import_id, self.now)
                 for event, at, source in events])
            self._parcel_lines(order_id, f.items)
            counts.updated += 1
            if status != reached:
                counts.status_changes += 1
        return counts

    def _parcel_lines(self, order_id: str, items: list[tuple[str | None, str | None, int]]) -> None:
        """Mark shipped the stored lines a parcel carries whole (found by SKU and name); the
        lines then say which part of the order left, rather than the order's former word."""
        left = list(items)
        whole = []
        for position, sku, name, quantity in self.conn.execute(
                "SELECT position, sku, name, quantity FROM order_lines WHERE order_id = ?"
                " ORDER BY position", (order_id,)):
            found = next((i for i, item in enumerate(left) if item[:2] == (sku, name)), None)
            if found is not None and left.pop(found)[2] >= quantity:
                whole.append(position)
        if whole:
            self.conn.execute(
                "UPDATE order_lines SET shipped = 1 WHERE order_id = ? AND position IN"
                " (SELECT value FROM json_each(?))", (order_id, json.dumps(whole)))
            self.conn.execute("UPDATE orders SET partially_shipped = NULL WHERE id = ?",
                              (order_id,))


def _same_items(new: list[Line], old: list[Line]) -> bool:
    return len(new) == len(old) and all(
        (a.sku, a.name, a.quantity, a.price) == (b.sku, b.name, b.quantity, b.price)
        for a, b in zip(new, old, strict=True))


def _merge(o: Order, row: dict) -> Order:
    """`o` with every field it does not carry taken from the stored order `row`."""
    carried = o.carried or frozenset()
    keep: dict[str, object] = {}
    for name in ("first_name", "last_name", "locale", "currency", "subtotal", "shipping", "tax",
                 "discount", "total", "payment_method", "payment_class", "shipping_method",
                 "tracking_number", "tracking_url", "carrier", "pickup_point",
                 "shipping_address", "platform_id", "refunded_amount"):
        if name not in carried:
            keep[name] = row[name]
    if "partially_shipped" not in carried:
        said = row["partially_shipped"]
        keep["partially_shipped"] = None if said is None else bool(said)
    for name in _TIMES:
        if name not in carried:
            keep[name] = from_iso(row[name])
    if "email" not in carried:
        keep.update({name: row[name] for name in _EMAIL})
    if "accepts_marketing" not in carried:
        keep["accepts_marketing"] = None if row["accepts_marketing"] is None else \
            bool(row["accepts_marketing"])
    if "lines" not in carried:
        keep["lines"] = row["lines"]
    elif _same_items(o.lines, row["lines"]) and all(ln.shipped is None for ln in o.lines):
        # the same items from a source that cannot tell which left (an orders CSV without
        # `Lineitem fulfillment status`): keep what another source said of each line
        keep["lines"] = [dataclasses.replace(new, shipped=old.shipped)
                         for new, old in zip(o.lines, row["lines"], strict=True)]
    stored = row["status"]
    if "status" not in carried:
        keep["status"], keep["status_at"] = stored, None
        dates = (keep.get(t, getattr(o, t)) for t in ("paid_at", "shipped_at", "delivered_at",
                                                    "cancelled_at"))
        shown = status_from_dates(*dates)
        if stored in _PROGRESS and (shown == "cancelled" or _PROGRESS[shown] > _PROGRESS[stored]):
            keep["status"] = shown
    elif o.status == "shipped" and stored in _ARRIVED and "delivered_at" not in carried:
        keep["status"], keep["status_at"] = stored, None
    return dataclasses.replace(o, **keep)  # type: ignore[arg-type]
