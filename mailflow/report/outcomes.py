"""`mailflow report`: what the automatic e-mails did, per rule, and what cart reminders
brought back: an order by the same customer within 7 days after the reminder that is, at
report time, neither cancelled, refunded, failed nor still awaiting payment."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from mailflow.clock import iso
from mailflow.config import Config
from mailflow.records import OutboxStatus
from mailflow.report.measured import amount, measured
from mailflow.rules.attribution import RECOVERY
from mailflow.rules.triggers import trigger
from mailflow.store import Store
from mailflow.store.measures import NO_REVENUE

RECOVERY_DAYS = RECOVERY.days
# Orders that brought no money (or not yet): never a recovered cart, never revenue.
NOT_RECOVERED = NO_REVENUE
RECOVERED_MEANS = ("a cart is recovered by an order of the reminded customer placed within"
                   f" {RECOVERY_DAYS} days after the reminder that is, at report time, not"
                   " cancelled, refunded, failed or still unpaid (pending_payment)")


def build_report(store: Store, config: Config, now: datetime, since: timedelta | None
                 ) -> dict[str, Any]:
    start = iso(now - since) if since is not None else None
    cart_rules = [r.name for r in config.rules if trigger(r.on).subject == "cart"]
    rows = store.report_rows(since=start, marketing_rules=[r.name for r in config.rules
                                                           if r.marketing],
                             unsubscribe_window=config.tracking.attribution.after_click,
                             currency=config.shop.currency)
    rules: dict[str, dict[str, Any]] = {}
    sent_per_day: dict[str, int] = defaultdict(int)
    sent_by_rule: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    reminded = 0
    for status, rule, _locale, reason, _tracked, _clicked, _opened, count in rows["messages"]:
        entry = rules.setdefault(rule, {OutboxStatus.SENT: 0, OutboxStatus.SKIPPED: {},
                                        OutboxStatus.DEFERRED: 0, OutboxStatus.FAILED: 0,
                                        OutboxStatus.UNKNOWN: 0})
        if status == OutboxStatus.SKIPPED:
            skipped = entry[OutboxStatus.SKIPPED]
            skipped[reason or "unknown"] = skipped.get(reason or "unknown", 0) + count
        elif status in entry:
            entry[status] += count
        if status == OutboxStatus.SENT and rule in cart_rules:
            reminded += count
    for rule, day, count in rows["sent_per_day"]:
        sent_per_day[day] += count
        sent_by_rule[rule][day] += count
    recovered = rows["recovered"][0][0]
    excluded = {status: 0 for status in NOT_RECOVERED}
    revenue: dict[str, int] = defaultdict(int)
    revenue_days: dict[str, int] = defaultdict(int)
    for status, currency, day, orders, cents in rows["recovering_orders"]:
        if status in excluded:
            excluded[status] += orders
            continue
        revenue[currency] += cents or 0
        if currency == config.shop.currency:  # one currency a chart
            revenue_days[day] += cents or 0
    return {
        "since": start,
        "rules": rules,
        "carts": {"reminded": reminded, "recovered": recovered,
                  "revenue": {c: amount(v) for c, v in sorted(revenue.items())},
                  "excluded": excluded, "recovered_means": RECOVERED_MEANS},
        "per_day": {"sent": dict(sorted(sent_per_day.items())),  # revenue in the shop's currency
                    "recovered_revenue": {d: amount(v) for d, v in sorted(revenue_days.items())},
                    "sent_by_rule": {r: dict(sorted(days.items()))
                                     for r, days in sorted(sent_by_rule.items())}},
        "measured": measured(rows, config),
    }
