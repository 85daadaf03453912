"""The outbox: one row per logical message, keyed by (rule, trigger instance).

The unique `key` is what makes "at most once" hold: a decision is recorded with
INSERT OR IGNORE, and a message is claimed for sending inside BEGIN IMMEDIATE, so two
processes can never both own it. Candidate queries are bounded by the rules' time
windows and skip instances the outbox already has.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from mailflow.clock import from_iso, iso
from mailflow.records import OutboxStatus
from mailflow.store.connected import Connected, inserted_id
from mailflow.store.subjects import CART_LINES_FROM, ORDER_LINES_FROM

# What a message a dead run left `sending` becomes: (status, reason, attempt outcome, detail),
# by what its transport can tell (None: nothing, as SMTP; True/False: written or not).
_RECOVERED: dict[bool | None, tuple[str, str | None, str, str]] = {
    None: ("unknown", "interrupted while sending", "unknown", "the run died while sending"),
    True: ("sent", None, "sent", "the run died after writing it"),
    False: ("queued", "the run died before writing it", "requeued", "never written"),
}


class Selection(StrEnum):
    """The queries that find trigger instances; rules/triggers.py says which trigger runs which."""

    CART_EPISODES = "cart_episodes"  # a cart with lines, at its last activity
    ORDERS_PLACED = "orders_placed"
    STATUS_ENTERED = "status_entered"  # an order entering a status (its status event)
    REFUNDS = "refunds"  # an order refunded in full (its status event), or in part (order_refunds)
    CUSTOMERS_CREATED = "customers_created"  # signed up, or first ordered
    CUSTOMERS_LAST_ORDER = "customers_last_order"  # a customer and their last order


_CANDIDATES = {
    Selection.CART_EPISODES: (
        "SELECT 'cart:' || c.id || '@' || c.updated_at AS instance, 'cart' AS subject_type,"
        " c.id AS subject_id, c.updated_at AS trigger_at, c.email, c.email_key, c.email_problem"
        " FROM carts c WHERE c.updated_at > :lo AND c.updated_at <= :hi"
        " AND EXISTS (SELECT 1 FROM cart_lines l WHERE l.cart_id = c.id)"
        " AND NOT EXISTS (SELECT 1 FROM outbox x"
        "   WHERE x.key = :rule || ':cart:' || c.id || '@' || c.updated_at)"
    ),
    Selection.ORDERS_PLACED: (
        "SELECT 'order:' || o.id AS instance, 'order' AS subject_type, o.id AS subject_id,"
        " o.created_at AS trigger_at, o.email, o.email_key, o.email_problem"
        " FROM orders o WHERE o.created_at > :lo AND o.created_at <= :hi"
        " AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.key = :rule || ':order:' || o.id)"
    ),
    Selection.STATUS_ENTERED: (
        "SELECT 'order:' || e.order_id || ':' || e.status AS instance, 'order' AS subject_type,"
        " e.order_id AS subject_id, e.at AS trigger_at, o.email, o.email_key, o.email_problem"
        " FROM order_status_events e JOIN orders o ON o.id = e.order_id"
        " WHERE e.status = :status AND e.at > :lo AND e.at <= :hi"
        " AND NOT EXISTS (SELECT 1 FROM outbox x"
        "   WHERE x.key = :rule || ':order:' || e.order_id || ':' || e.status)"
    ),
    # a full refund (its status event), and each partial refund (store/refunds.py): the first
    # is `…:partially_refunded`, as before there could be more than one, the next `…:2`, `…:3`
    Selection.REFUNDS: (
        "SELECT 'order:' || e.order_id || ':refunded' AS instance, 'order' AS subject_type,"
        " e.order_id AS subject_id, e.at AS trigger_at, o.email, o.email_key, o.email_problem"
        " FROM order_status_events e JOIN orders o ON o.id = e.order_id"
        " WHERE e.status = 'refunded' AND e.at > :lo AND e.at <= :hi"
        " AND NOT EXISTS (SELECT 1 FROM outbox x"
        "   WHERE x.key = :rule || ':order:' || e.order_id || ':refunded')"
        " UNION ALL"
        " SELECT 'order:' || r.order_id || ':partially_refunded'"
        "   || CASE WHEN r.seq > 1 THEN ':' || r.seq ELSE '' END AS instance,"
        " 'order' AS subject_type, r.order_id AS subject_id, r.at AS trigger_at, o.email,"
        " o.email_key, o.email_problem"
        " FROM order_refunds r JOIN orders o ON o.id = r.order_id"
        " WHERE r.at > :lo AND r.at <= :hi"
        " AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.key = :rule || ':order:' || r.order_id"
        "   || ':partially_refunded' || CASE WHEN r.seq > 1 THEN ':' || r.seq ELSE '' END)"
    ),
    # a customer who signed up (a customers export's created_at) or first ordered; never a
    # visitor known only from a cart
    Selection.CUSTOMERS_CREATED: (
        "SELECT 'customer:' || c.email_key AS instance, 'customer' AS subject_type,"
        " c.email_key AS subject_id, coalesce(c.created_at, c.first_order_at) AS trigger_at,"
        " c.email, c.email_key, NULL AS email_problem FROM customers c"
        " WHERE coalesce(c.created_at, c.first_order_at) > :lo"
        " AND coalesce(c.created_at, c.first_order_at) <= :hi"
        " AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.key = :rule || ':customer:' || c.email_key)"
    ),
    Selection.CUSTOMERS_LAST_ORDER: (
        "SELECT 'customer:' || c.email_key || '@' || c.last_order_at AS instance,"
        " 'customer' AS subject_type, c.email_key AS subject_id, c.last_order_at AS trigger_at,"
        " c.email, c.email_key, NULL AS email_problem FROM customers c"
        " WHERE c.last_order_at > :lo AND c.last_order_at <= :hi"
        " AND NOT EXISTS (SELECT 1 FROM outbox x"
        "   WHERE x.key = :rule || ':customer:' || c.email_key || '@' || c.last_order_at)"
    ),
}
# Selection.STATUS_ENTERED for `delivered` with assume_delivered_after: a delivery the data
# reports, unless the assumed one (the shipment + :shift) came first, which is then the
# trigger; one instance either way
_DELIVERED_OR_ASSUMED = (
    (
        "SELECT 'order:' || e.order_id || ':delivered' AS instance, 'order' AS subject_type,"
        " e.order_id AS subject_id, e.at AS trigger_at, o.email, o.email_key, o.email_problem"
        " FROM order_status_events e JOIN orders o ON o.id = e.order_id"
        " WHERE e.status = 'delivered' AND e.at > :lo AND e.at <= :hi"
        " AND NOT EXISTS (SELECT 1 FROM order_status_events s WHERE s.order_id = e.order_id"
        "   AND s.status = 'shipped' AND strftime('%Y-%m-%dT%H:%M:%SZ', s.at, :shift) < e.at)"
        " AND NOT EXISTS (SELECT 1 FROM outbox x"
        "   WHERE x.key = :rule || ':order:' || e.order_id || ':delivered')"
    ),
    (
        "SELECT 'order:' || s.order_id || ':delivered' AS instance, 'order' AS subject_type,"
        " s.order_id AS subject_id, strftime('%Y-%m-%dT%H:%M:%SZ', s.at, :shift) AS trigger_at,"
        " o.email, o.email_key, o.email_problem"
        " FROM order_status_events s JOIN orders o ON o.id = s.order_id"
        " WHERE s.status = 'shipped' AND s.at > :shipped_lo AND s.at <= :shipped_hi"
        " AND NOT EXISTS (SELECT 1 FROM order_status_events e WHERE e.order_id = s.order_id"
        "   AND e.status = 'delivered'"
        "   AND e.at <= strftime('%Y-%m-%dT%H:%M:%SZ', s.at, :shift))"
        " AND NOT EXISTS (SELECT 1 FROM outbox x"
        "   WHERE x.key = :rule || ':order:' || s.order_id || ':delivered')"
    ),
)
CLAIMABLE = (OutboxStatus.QUEUED, OutboxStatus.DEFERRED)  # what a run may take
FOLLOW_UP = (OutboxStatus.UNKNOWN, OutboxStatus.FAILED)  # what `resend` and `dismiss` act on
# what went to the server, or may have: what caps and the marketing gap count
HANDED_OVER = (OutboxStatus.SENT, OutboxStatus.SENDING, OutboxStatus.UNKNOWN)


def _among(statuses: tuple[OutboxStatus, ...]) -> str:
    """A group of statuses as SQL text: `('queued', 'deferred')`."""
    return "(" + ", ".join(f"'{status}'" for status in statuses) + ")"


_CLAIMABLE, _FOLLOW_UP, _HANDED_OVER = _among(CLAIMABLE), _among(FOLLOW_UP), _among(HANDED_OVER)
LOG_COLUMNS = ("key", "rule", "email AS \"to\"", "status", "reason", "subject", "due_at",
               "decided_at", "sent_at", "message_id", "attempts", "dismissed_at", "offer_code")
# Failed or unknown messages that keep `send` and `run` at exit 1 until resent or dismissed:
# a template or a where: to fix, or maybe delivered. An SMTP refusal is the server's answer
# (a hard bounce also suppresses the address): it makes only its own run exit 1.
_AWAITING_HUMAN = ("dismissed_at IS NULL AND (status = 'unknown' OR (status = 'failed'"
                   " AND (reason GLOB 'render_error*' OR reason GLOB 'where_error*')))")
_FOLLOW_UP_COLUMNS = ("key, rule, email AS \"to\", status, reason, dismissed_at,"
                      " coalesce(claimed_at, decided_at) AS at")


class OutboxQueries(Connected):
    """Mixed into Store; every method here is SQL about rules and the outbox."""

    def rows(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def one(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    # -- what is due ---------------------------------------------------------------------

    def trigger_candidates(self, rule: str, selects: Selection, lo: str, hi: str, *,
                           status: str | None = None,
                           assume_delivered_after: timedelta | None = None) -> list[dict]:
        """Trigger instances whose time lies in (lo, hi] and that this rule never decided;
        `status`: the one STATUS_ENTERED selects."""
        params: dict[str, Any] = {"rule": rule, "lo": lo, "hi": hi}
        if selects is Selection.STATUS_ENTERED:
            if status is None:
                raise ValueError("Selection.STATUS_ENTERED needs the status entered")
            if status == "delivered" and assume_delivered_after is not None:
                params["shift"] = f"+{int(assume_delivered_after.total_seconds())} seconds"
                params["shipped_lo"] = iso(from_iso(lo) - assume_delivered_after)
                params["shipped_hi"] = iso(from_iso(hi) - assume_delivered_after)
                return [row for sql in _DELIVERED_OR_ASSUMED for row in self.rows(sql, params)]
            params["status"] = status
        return self.rows(_CANDIDATES[selects], params)

    def pending(self, rule: str, now: str) -> list[dict]:
        """Messages decided earlier that wait (quiet hours, data age, SMTP deferral) and are due."""
        return self.rows(
            f"SELECT * FROM outbox WHERE rule = ? AND status IN {_CLAIMABLE}"
            " AND coalesce(next_attempt_at, due_at) <= ? ORDER BY due_at, id", (rule, now))

    # -- facts the conditions need --------------------------------------------------------

    def order(self, order_id: str) -> dict | None:
        order = self.one("SELECT * FROM orders WHERE id = ?", (order_id,))
        if order is not None:
            order["lines"] = self.rows(f"SELECT {ORDER_LINES_FROM} WHERE l.order_id = ?"
                                       " ORDER BY l.position", (order_id,))
        return order

    def cart(self, cart_id: str) -> dict | None:
        cart = self.one("SELECT * FROM carts WHERE id = ?", (cart_id,))
        if cart is not None:
            cart["lines"] = self.rows(f"SELECT {CART_LINES_FROM} WHERE cart_id = ?"
                                      " ORDER BY position", (cart_id,))
        return cart

    def customer(self, email_key: str | None) -> dict | None:
        if not email_key:
            return None
        return self.one("SELECT * FROM customers WHERE email_key = ?", (email_key,))

    def ordered_since(self, email_key: str, since: str) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM orders WHERE email_key = ? AND created_at >= ? LIMIT 1",
            (email_key, since)).fetchone() is not None

    def ordered_again(self, email_key: str, order_id: str, since: str) -> bool:
        """Whether this customer placed another order at or after `since`."""
        return self.conn.execute(
            "SELECT 1 FROM orders WHERE email_key = ? AND created_at >= ? AND id != ? LIMIT 1",
            (email_key, since, order_id)).fetchone() is not None

    def suppression_reasons(self, email_key: str, at: str) -> set[str]:
        return {row[0] for row in self.conn.execute(
            "SELECT reason FROM suppressions WHERE email_key = ? AND at <= ?", (email_key, at))}

    def status_event_time(self, order_id: str, status: str) -> str | None:
        """When the order entered `status`, if it did."""
        row = self.conn.execute("SELECT at FROM order_status_events WHERE order_id = ?"
                                " AND status = ?", (order_id, status)).fetchone()
        return row[0] if row else None

    def status_event_source(self, order_id: str, status: str) -> str | None:
        """How the store learnt that the order entered `status`: export, import, inferred."""
        row = self.conn.execute("SELECT source FROM order_status_events WHERE order_id = ?"
                                " AND status = ?", (order_id, status)).fetchone()
        return row[0] if row else None

    def sent_any_since(self, rules: list[str], email_key: str, since: str) -> bool:
        """Whether a message of one of these rules went (or may have gone) to this person."""
        marks = ", ".join("?" * len(rules))
        return self.conn.execute(
            f"SELECT 1 FROM outbox WHERE email_key = ? AND rule IN ({marks})"
            f" AND status IN {_HANDED_OVER} AND sent_at > ? LIMIT 1",
            (email_key, *rules, since)).fetchone() is not None

    def sends_since(self, rule: str, email_key: str, since: str) -> int:
        """Messages of this rule that went (or may have gone) to this person since `since`."""
        return self.conn.execute(
            "SELECT count(*) FROM outbox WHERE email_key = ? AND rule = ?"
            f" AND status IN {_HANDED_OVER} AND sent_at > ?",
            (email_key, rule, since)).fetchone()[0]

    def newest_import(self, kind: str) -> str | None:
        return self.conn.execute(
            "SELECT max(imported_at) FROM imports WHERE kind = ?", (kind,)).fetchone()[0]

    # -- recording decisions ----------------------------------------------------------------

    def record_decision(self, d: dict[str, Any]) -> bool:
        """A skip or a postponement, recorded once: False if the key was already decided."""
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO outbox (key, rule, subject_type, subject_id, email, email_key,"
            " status, reason, due_at, next_attempt_at, decided_at, run_id)"
            " VALUES (:key, :rule, :subject_type, :subject_id, :email, :email_key, :status,"
            " :reason, :due_at, :next_attempt_at, :decided_at, :run_id)", d)
        return cursor.rowcount == 1

    def update_decision(self, key: str, status: str, reason: str | None,
                        next_attempt_at: str | None, now: str) -> None:
        self.conn.execute(
            "UPDATE outbox SET status = ?, reason = ?, next_attempt_at = ?, decided_at = ?"
            f" WHERE key = ? AND status IN {_CLAIMABLE}",
            (status, reason, next_attempt_at, now, key))

    def claim(self, d: dict[str, Any]) -> int | None:
        """Take the message for sending; None if another run has it or it was decided.
        `d["reference"]`, if given: what its tracked links name it by, stored before it goes
        out (a click may come before its outcome is recorded). Call inside `transaction()`:
        the check and the claim are one step."""
        d = {"reference": None, **d}
        row = self.conn.execute("SELECT id, status FROM outbox WHERE key = ?",
                                (d["key"],)).fetchone()
        if row is None:
            cursor = self.conn.execute(
                "INSERT INTO outbox (key, rule, subject_type, subject_id, email, email_key,"
                " status, due_at, decided_at, claimed_at, attempts, run_id, reference)"
                " VALUES (:key, :rule, :subject_type, :subject_id, :email, :email_key,"
                " 'sending', :due_at, :decided_at, :decided_at, 1, :run_id, :reference)", d)
            return inserted_id(cursor)
        if row[1] not in CLAIMABLE:
            return None
        self.conn.execute(
            "UPDATE outbox SET status = 'sending', claimed_at = ?, attempts = attempts + 1,"
            " reason = NULL, run_id = ?, reference = coalesce(?, reference) WHERE id = ?",
            (d["decided_at"], d["run_id"], d["reference"], row[0]))
        return row[0]

    def mark(self, outbox_id: int, status: str, now: str, *, reason: str | None = None,
             subject: str | None = None, message_id: str | None = None,
             next_attempt_at: str | None = None, detail: str | None = None,
             locale: str | None = None, tracked: bool | None = None) -> None:
        """The outcome of a claimed message, and its line in the attempt log; `locale` and
        `tracked`: how it was rendered (the report groups by them). Call inside
        `transaction()`."""
        self.conn.execute(
            "UPDATE outbox SET status = ?, reason = ?, subject = coalesce(?, subject),"
            " message_id = coalesce(?, message_id), next_attempt_at = ?,"
            " sent_at = CASE WHEN ? IN ('sent', 'unknown') THEN ? ELSE sent_at END,"
            " locale = coalesce(?, locale), tracked = coalesce(?, tracked)"
            " WHERE id = ?",
            (status, reason, subject, message_id, next_attempt_at, status, now, locale,
             None if tracked is None else int(tracked), outbox_id))
        self.conn.execute(
            "INSERT INTO outbox_attempts (outbox_id, at, outcome, detail) VALUES (?, ?, ?, ?)",
            (outbox_id, now, status, detail or reason))

    def attempts(self, outbox_id: int) -> int:
        return self.conn.execute("SELECT attempts FROM outbox WHERE id = ?",
                                 (outbox_id,)).fetchone()[0]

    def sent_since(self, since: str) -> int:
        """Messages handed to the server since `since` (for delivery.rate_limit)."""
        return self.conn.execute(
            "SELECT count(*) FROM outbox WHERE status IN ('sent', 'unknown') AND sent_at > ?",
            (since,)).fetchone()[0]

    def add_suppression(self, email: str, reason: str, at: str, source: str) -> bool:
        """False if the address already had this suppression (the first one is kept)."""
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO suppressions (email_key, email, reason, at, source)"
            " VALUES (?, ?, ?, ?, ?)", (email.lower(), email, reason, at, source))
        return cursor.rowcount == 1

    def remove_suppression(self, email: str, reason: str) -> bool:
        cursor = self.conn.execute(
            "DELETE FROM suppressions WHERE email_key = ? AND reason = ?", (email.lower(), reason))
        return cursor.rowcount > 0

    def recover_interrupted(self, now: str, written: Callable[[str], bool] | None = None) -> int:
        """Messages a dead run left mid-send: they may have gone out, so `unknown`, never resent
        by themselves; with `written(key)`, a transport that can tell (`file`): `sent` if it holds
        the message, else back in the queue. Call holding the run lock. Returns the unknowns."""
        unknown = 0
        with self.transaction():
            for outbox_id, key in self.conn.execute(
                    "SELECT id, key FROM outbox WHERE status = 'sending'").fetchall():
                said = None if written is None else written(key)
                unknown += said is None
                status, reason, outcome, detail = _RECOVERED[said]
                self.conn.execute(
                    "UPDATE outbox SET status = ?, reason = ?, next_attempt_at = CASE WHEN ?"
                    " = 'queued' THEN ? ELSE next_attempt_at END, sent_at = CASE WHEN ? = 'queued'"
                    " THEN sent_at ELSE coalesce(sent_at, claimed_at) END WHERE id = ?",
                    (status, reason, status, now, status, outbox_id))
                self.conn.execute("INSERT INTO outbox_attempts (outbox_id, at, outcome, detail)"
                                  " VALUES (?, ?, ?, ?)", (outbox_id, now, outcome, detail))
        return unknown

    def messages_by_key(self, keys: list[str]) -> list[dict]:
        marks = ", ".join("?" * len(keys))
        return self.rows(f"SELECT {_FOLLOW_UP_COLUMNS} FROM outbox WHERE key IN ({marks})",
                         tuple(keys))

    def to_follow_up(self, *, rule: str | None, since: str | None) -> list[dict]:
        """Failed and unknown messages nobody dismissed, of this rule, failed since `since`."""
        clauses, params = [f"status IN {_FOLLOW_UP}", "dismissed_at IS NULL"], []
        if rule:
            clauses.append("rule = ?")
            params.append(rule)
        if since:
            clauses.append("coalesce(claimed_at, decided_at) >= ?")
            params.append(since)
        return self.rows(f"SELECT {_FOLLOW_UP_COLUMNS} FROM outbox WHERE {' AND '.join(clauses)}"
                         " ORDER BY at, id", tuple(params))

    def requeue(self, keys: list[str], now: str) -> int:
        """Send unknown or failed messages again, on purpose (with the same Message-ID)."""
        with self.transaction():
            return sum(self.conn.execute(
                "UPDATE outbox SET status = 'queued', reason = 'resend requested', due_at = ?,"
                " next_attempt_at = ?, decided_at = ?, dismissed_at = NULL"
                f" WHERE key = ? AND status IN {_FOLLOW_UP}",
                (now, now, now, key)).rowcount for key in keys)

    def dismiss(self, keys: list[str], now: str) -> int:
        """A human saw these failed or unknown messages: they no longer hold exit 1."""
        with self.transaction():
            return sum(self.conn.execute(
                "UPDATE outbox SET dismissed_at = ? WHERE key = ?"
                f" AND status IN {_FOLLOW_UP} AND dismissed_at IS NULL",
                (now, key)).rowcount for key in keys)

    def awaiting_human(self) -> dict[str, dict[str, int]]:
        """rule -> {status: count} of the messages that wait for a human."""
        counts: dict[str, dict[str, int]] = {}
        # INDEXED BY: without statistics SQLite prefers outbox_pending, then reads every
        # failed message of the store's history (the partial index holds only these)
        for rule, status, n in self.conn.execute(
                "SELECT rule, status, count(*) FROM outbox INDEXED BY outbox_awaiting_human"
                f" WHERE status IN {_FOLLOW_UP} AND {_AWAITING_HUMAN} GROUP BY rule, status"
                " ORDER BY 1, 2"):
            counts.setdefault(rule, {})[status] = n
        return counts

    # -- runs, status and log ----------------------------------------------------------------

    def start_run(self, command: str, now: datetime, started_at: datetime) -> int:
        cursor = self.conn.execute(
            "INSERT INTO runs (command, now, started_at) VALUES (?, ?, ?)",
            (command, iso(now), iso(started_at)))
        return inserted_id(cursor)

    def finish_run(self, run_id: int, finished_at: datetime, counts: dict[str, int]) -> None:
        self.conn.execute("UPDATE runs SET finished_at = ?, counts = ? WHERE id = ?",
                          (iso(finished_at), json.dumps(counts), run_id))

    def last_run(self) -> dict | None:
        return self.one("SELECT command, now, started_at, finished_at, counts FROM runs"
                        " WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1")

    def outbox_counts(self) -> dict[str, dict[str, int]]:
        """rule -> {status: messages}, as SQLite keeps them counted (migration 0014)."""
        counts: dict[str, dict[str, int]] = {}
        for rule, status, n in self.conn.execute(
                "SELECT rule, status, n FROM outbox_counts WHERE n > 0 ORDER BY 1, 2"):
            counts.setdefault(rule, {})[status] = n
        return counts

    def next_due(self) -> str | None:
        return self.conn.execute(  # one step down the partial index (migration 0014)
            "SELECT min(coalesce(next_attempt_at, due_at)) FROM outbox INDEXED BY outbox_next_due"
            f" WHERE status IN {_CLAIMABLE}").fetchone()[0]

    def log(self, *, email: str | None, rule: str | None, since: str | None) -> list[dict]:
        clauses, params = [], []
        if email:
            clauses.append("email_key = ?")
            params.append(email.strip().lower())
        if rule:
            clauses.append("rule = ?")
            params.append(rule)
        if since:  # a message deferred yesterday and sent today belongs to today
            clauses.append("coalesce(sent_at, decided_at) >= ?")
            params.append(since)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return self.rows(f"SELECT {', '.join(LOG_COLUMNS)} FROM outbox{where}"
                         " ORDER BY decided_at, id", tuple(params))
