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
# amounts are decimal texts: kept and summed in hundredths, exactly, read back as Decimals
CENTS_OF_ORDER = "CAST(round(CAST(o.total AS REAL) * 100) AS INTEGER)"
# the language a message went out in (outbox.locale), '' for messages sent before it was kept
_LOCALE = "coalesce(m.locale, '')"
# a message's group in report_counts (as migration 0012's triggers count it)
_GROUP = ("m.status, m.rule, coalesce(m.locale, ''),"
          " CASE WHEN m.status = 'skipped' THEN coalesce(m.reason, '') ELSE '' END,"
          " coalesce(m.tracked, 0), coalesce(m.clicked, 0), coalesce(m.opened, ''),"
          " coalesce(substr(coalesce(m.sent_at, m.decided_at), 1, 10), '')")


def _marks(prefix: str, names: list[str]) -> tuple[str, dict[str, str]]:
    return (", ".join(f":{prefix}{i}" for i in range(len(names))) or "NULL",
            {f"{prefix}{i}": name for i, name in enumerate(names)})


def _queries(marketing: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """name → (SQL, its parameters beside :since, :window, :currency)."""
    in_marketing, marketing_params = _marks("m", marketing)
    no_revenue = ", ".join(repr(s) for s in NO_REVENUE)
    return {
        "messages": (
            # report_counts: the messages per group and day, kept by triggers (migration 0012),
            # summed over the days in its key's order
            "SELECT status, rule, locale, reason, tracked, clicked, opened, sum(n)"
            " FROM report_counts WHERE day >= substr(:since, 1, 10)"
            " GROUP BY rule, locale, status, reason, tracked, clicked, opened", {}),
        "sent_per_day": (
            "SELECT rule, day, sum(n) FROM report_counts WHERE status = 'sent'"
            " AND day >= substr(:since, 1, 10) GROUP BY rule, day", {}),
        "early": (
            # ... less those of the first day sent before `since` (outbox_when: that day only)
            f"SELECT {_GROUP}, count(*) FROM outbox m WHERE coalesce(m.sent_at, m.decided_at)"
            " >= substr(:since, 1, 10) AND coalesce(m.sent_at, m.decided_at) < :since"
            f" AND m.status NOT IN ('queued', 'sending') GROUP BY {_GROUP}", {}),
        "unsubscribes": (
            # an unsubscribe is the last marketing message's the address was sent within the
            # window (outbox_recipient covers the search)
            f"SELECT m.rule, {_LOCALE}, count(*) FROM suppressions s JOIN outbox m ON m.id = ("
            " SELECT CAST(substr(max(printf('%s%012d', r.sent_at, r.id)), 21) AS INTEGER)"
            " FROM outbox r WHERE r.email_key = s.email_key"
            # (+r.rule: one search of the address's messages, not one per marketing rule)
            f" AND +r.rule IN ({in_marketing}) AND r.sent_at <= s.at"
            f" AND r.sent_at >= strftime({_STAMP}, s.at, :window))"
            " WHERE s.reason = 'unsubscribed' AND s.at >= :since AND m.sent_at >= :since"
            " GROUP BY 1, 2", marketing_params),
        "bounces": (
            # the refusal that put the address on the list failed that message at that moment
            f"SELECT m.rule, {_LOCALE}, count(*) FROM outbox m WHERE m.status = 'failed'"
            " AND coalesce(m.sent_at, m.decided_at) >= :since AND EXISTS (SELECT 1 FROM"
            " suppressions s JOIN outbox_attempts a ON a.outbox_id = m.id AND a.at = s.at"
            " AND a.outcome = 'failed' WHERE s.email_key = m.email_key"
            " AND s.reason = 'hard_bounce' AND s.source = 'smtp') GROUP BY 1, 2", {}),
        "attributed": (
            # what the order is now was copied there, and kept in step by a trigger
            "SELECT a.rule, coalesce(a.locale, ''), a.how, coalesce(a.currency, :currency),"
            " count(*), sum(a.cents) FROM attributions a WHERE a.sent_at >= :since"
            f" AND a.status_now NOT IN ({no_revenue})"
            " GROUP BY a.rule, a.locale, a.how, a.currency", {}),  # attributions_report's order
        "recovered": (
            # the reminders an order that brought money followed, grouped in the key's order
            "SELECT count(*) FROM (SELECT reminder_key FROM cart_recoveries NOT INDEXED"
            f" WHERE sent_at >= :since AND status_now NOT IN ({no_revenue})"
            " GROUP BY reminder_key)", {}),
        "recovering_orders": (
            # each order once, on its latest reminder, however many it follows
            "SELECT status_now, coalesce(currency, :currency), day, count(*), sum(cents)"
            " FROM cart_recoveries WHERE latest AND sent_at >= :since GROUP BY 1, 2, 3", {}),
    }


class ReportQueries(Connected):
    """Mixed into Store: the figures of `mailflow report`, and their query plans."""

    def report_rows(self, *, since: str | None, marketing_rules: list[str],
                    unsubscribe_window: timedelta, currency: str) -> dict[str, list[tuple]]:
        """Each query's rows, by name (see _queries)."""
        common = {"since": since or "", "currency": currency,
                  "window": f"-{int(unsubscribe_window.total_seconds())} seconds"}
        rows = {name: self.conn.execute(sql, {**common, **params}).fetchall()
                for name, (sql, params) in _queries(marketing_rules).items()}
        counts = {row[:-1]: row[-1] for row in rows["messages"]}
        per_day = {row[:-1]: row[-1] for row in rows["sent_per_day"]}
        for status, rule, *group, day, n in rows.pop("early"):
            counts[(status, rule, *group)] -= n
            if status == "sent":
                per_day[rule, day] -= n
        rows["messages"] = [(*group, n) for group, n in counts.items() if n]
        rows["sent_per_day"] = [(*group, n) for group, n in per_day.items() if n]
        return rows

    def report_plans(self, *, since: str | None, marketing_rules: list[str]
                     ) -> dict[str, list[str]]:
        """EXPLAIN QUERY PLAN of each report query: which index serves it (bench/report.py)."""
        common = {"since": since or "", "currency": "EUR", "window": "-86400 seconds"}
        return {name: [row[-1] for row in self.conn.execute(f"EXPLAIN QUERY PLAN {sql}",
                                                            {**common, **params})]
                for name, (sql, params) in _queries(marketing_rules).items()}
