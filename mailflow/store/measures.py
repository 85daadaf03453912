"""The queries of `mailflow report`: each one GROUP BY over an index range, so that the report
costs what the groups cost, not a Python loop over the messages (bench/report.py).

Every figure is about the messages sent (or decided) since `since` and what followed them:
clicks, opens, orders attributed to them, unsubscribes and bounces they caused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mailflow.store.connected import Connected

_STAMP = "'%Y-%m-%dT%H:%M:%SZ'"
# An order that brought no money (or not yet), by its status now: never revenue. A
# cash-on-delivery order is still unpaid until its payment time is known, shipped or not.
NO_REVENUE = ("cancelled", "refunded", "failed", "pending_payment")
STATUS_NOW = ("(CASE WHEN o.payment_class = 'on_delivery' AND o.paid_at IS NULL"
              " AND o.status NOT IN ('cancelled', 'refunded', 'failed') THEN 'pending_payment'"
              " ELSE o.status END)")
_REVENUE = f"{STATUS_NOW} NOT IN ({', '.join(repr(s) for s in NO_REVENUE)})"
# amounts are decimal texts: summed in hundredths, exactly, and read back as Decimals
CENTS = "sum(CAST(round(CAST(o.total AS REAL) * 100) AS INTEGER))"
# the language a message went out in (outbox.locale), '' for messages sent before it was kept
_LOCALE = "coalesce(m.locale, '')"


def _marks(prefix: str, names: list[str]) -> tuple[str, dict[str, str]]:
    return (", ".join(f":{prefix}{i}" for i in range(len(names))) or "NULL",
            {f"{prefix}{i}": name for i, name in enumerate(names)})


def _queries(marketing: list[str], carts: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """name → (SQL, its parameters beside :since, :window, :currency)."""
    in_marketing, marketing_params = _marks("m", marketing)
    in_carts, cart_params = _marks("c", carts)
    return {
        "messages": (
            # outbox_report covers it: one pass over the index, grouped in its order
            "SELECT m.status, m.rule, m.locale, m.reason, m.tracked, substr(m.sent_at, 1, 10),"
            " count(*) FROM outbox m WHERE coalesce(m.sent_at, m.decided_at) >= :since"
            " GROUP BY m.status, m.rule, m.locale, m.reason, m.tracked, substr(m.sent_at, 1, 10)",
            {}),
        "clicked": (
            f"SELECT m.rule, {_LOCALE}, count(*) FROM (SELECT DISTINCT outbox_key FROM clicks) c"
            " JOIN outbox m ON m.key = c.outbox_key WHERE m.sent_at >= :since GROUP BY 1, 2",
            {}),
        "opened": (
            f"SELECT m.rule, {_LOCALE}, count(p.human_at),"
            " count(CASE WHEN p.human_at IS NULL THEN p.machine_at END)"
            " FROM opens p JOIN outbox m ON m.key = p.outbox_key WHERE m.sent_at >= :since"
            " GROUP BY 1, 2", {}),
        "unsubscribes": (
            # an unsubscribe is the last marketing message's the address got within the window
            f"SELECT m.rule, {_LOCALE}, count(*) FROM suppressions s JOIN outbox m ON m.id = ("
            " SELECT r.id FROM outbox r WHERE r.email_key = s.email_key"
            f" AND r.rule IN ({in_marketing}) AND r.status = 'sent' AND r.sent_at <= s.at"
            f" AND r.sent_at >= strftime({_STAMP}, s.at, :window)"
            " ORDER BY r.sent_at DESC, r.id DESC LIMIT 1)"
            " WHERE s.reason = 'unsubscribed' AND s.at >= :since AND m.sent_at >= :since"
            " GROUP BY 1, 2", marketing_params),
        "bounces": (
            # the refusal that put the address on the list failed that message at that moment
            f"SELECT m.rule, {_LOCALE}, count(*) FROM suppressions s JOIN outbox m"
            " ON m.email_key = s.email_key AND m.status = 'failed'"
            " WHERE s.reason = 'hard_bounce' AND s.source = 'smtp' AND s.at >= :since"
            " AND EXISTS (SELECT 1 FROM outbox_attempts a WHERE a.outbox_id = m.id"
            " AND a.at = s.at AND a.outcome = 'failed') GROUP BY 1, 2", {}),
        "attributed": (
            f"SELECT a.rule, {_LOCALE}, a.how, coalesce(o.currency, :currency), count(*),"
            # from the attributions (CROSS JOIN keeps that order), never a scan of the orders
            f" {CENTS} FROM attributions a CROSS JOIN outbox m CROSS JOIN orders o"
            " WHERE m.key = a.outbox_key AND o.id = a.order_id AND m.sent_at >= :since"
            f" AND {_REVENUE}"
            " GROUP BY 1, 2, 3, 4", {}),
        "carts": (
            # each reminder with each order its recipient placed within 7 days after it;
            # an order counts once, however many reminders it follows
            "WITH pairs AS MATERIALIZED (SELECT r.key AS reminder, o.id AS id,"
            " coalesce(o.currency, :currency) AS currency, o.total AS total,"
            f" substr(o.created_at, 1, 10) AS day, {STATUS_NOW} AS status_now,"
            f" {_REVENUE} AS revenue FROM outbox r JOIN orders o ON o.email_key = r.email_key"
            " AND o.created_at > r.sent_at"
            f" AND o.created_at <= strftime({_STAMP}, r.sent_at, '+7 days')"
            f" WHERE r.rule IN ({in_carts}) AND r.status = 'sent' AND r.sent_at >= :since)"
            " SELECT 'recovered', NULL, NULL, count(DISTINCT reminder), NULL FROM pairs"
            " WHERE revenue"
            " UNION ALL SELECT 'excluded', status_now, NULL, count(DISTINCT id), NULL FROM pairs"
            " WHERE NOT revenue GROUP BY status_now"
            " UNION ALL SELECT 'revenue', currency, day, count(*),"
            " sum(CAST(round(CAST(total AS REAL) * 100) AS INTEGER))"
            " FROM (SELECT DISTINCT id, currency, day, total FROM pairs WHERE revenue)"
            " GROUP BY currency, day", cart_params),
    }


class ReportQueries(Connected):
    """Mixed into Store: the figures of `mailflow report`, and their query plans."""

    def report_rows(self, *, since: str | None, marketing_rules: list[str],
                    cart_rules: list[str], unsubscribe_window: timedelta, currency: str
                    ) -> dict[str, list[tuple]]:
        """Each query's rows, by name (see _queries)."""
        common = {"since": since or "", "currency": currency,
                  "window": f"-{int(unsubscribe_window.total_seconds())} seconds"}
        return {name: self.conn.execute(sql, {**common, **params}).fetchall()
                for name, (sql, params) in _queries(marketing_rules, cart_rules).items()}

    def report_plans(self, *, since: str | None, marketing_rules: list[str],
                     cart_rules: list[str]) -> dict[str, list[str]]:
        """EXPLAIN QUERY PLAN of each report query: which index serves it (bench/report.py)."""
        common = {"since": since or "", "currency": "EUR", "window": "-86400 seconds"}
        return {name: [row[-1] for row in self.conn.execute(f"EXPLAIN QUERY PLAN {sql}",
                                                            {**common, **params})]
                for name, (sql, params) in _queries(marketing_rules, cart_rules).items()}
