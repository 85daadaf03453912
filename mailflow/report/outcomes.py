"""`mailflow report`: what the automatic e-mails did, per rule, and what cart reminders
brought back: an order by the same customer within 7 days after the reminder that is, at
report time, neither cancelled, refunded, failed nor still awaiting payment."""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mailflow.clock import iso
from mailflow.config import Config
from mailflow.records import OutboxStatus
from mailflow.report.measured import amount, measured
from mailflow.rules.triggers import trigger
from mailflow.store import Store
from mailflow.store.measures import NO_REVENUE

RECOVERY_DAYS = 7
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
                             cart_rules=cart_rules,
                             unsubscribe_window=config.tracking.attribution.after_click,
                             currency=config.shop.currency)
    rules: dict[str, dict[str, Any]] = {}
    sent_per_day: dict[str, int] = defaultdict(int)
    sent_by_rule: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    reminded = 0
    for status, rule, _locale, reason, _tracked, day, count in rows["messages"]:
        entry = rules.setdefault(rule, {OutboxStatus.SENT: 0, OutboxStatus.SKIPPED: {},
                                        OutboxStatus.DEFERRED: 0, OutboxStatus.FAILED: 0,
                                        OutboxStatus.UNKNOWN: 0})
        if status == OutboxStatus.SKIPPED:
            skipped = entry[OutboxStatus.SKIPPED]
            skipped[reason or "unknown"] = skipped.get(reason or "unknown", 0) + count
        elif status in entry:
            entry[status] += count
        if status == OutboxStatus.SENT:
            sent_per_day[day] += count
            sent_by_rule[rule][day] += count
            reminded += count if rule in cart_rules else 0
    recovered = 0
    excluded = {status: 0 for status in NOT_RECOVERED}
    revenue: dict[str, int] = defaultdict(int)
    revenue_days: dict[str, int] = defaultdict(int)
    for what, name, day, count, cents in rows["carts"] if cart_rules else []:
        if what == "recovered":
            recovered = count
        elif what == "excluded":
            excluded[name] = count
        else:
            revenue[name] += cents or 0
            if name == config.shop.currency:  # one currency a chart
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


def write_html(report: dict[str, Any], config: Config, target: Path) -> Path:
    """One self-contained page: the tables, and a chart drawn by pygal as inline SVG."""
    import pygal
    from pygal.style import Style

    days = sorted(set(report["per_day"]["sent"]) | set(report["per_day"]["recovered_revenue"]))
    chart = pygal.Bar(js=[], width=900, height=360, legend_at_bottom=True, x_label_rotation=30,
                      secondary_range=None, style=Style(colors=("#1e40af", "#059669")),
                      title="E-mails sent and revenue recovered per day")
    chart.x_labels = days or ["-"]
    chart.add("e-mails sent", [report["per_day"]["sent"].get(d, 0) for d in days] or [0])
    chart.add(f"recovered revenue ({config.shop.currency})",
              [float(report["per_day"]["recovered_revenue"].get(d, 0))
                                    for d in days] or [0], secondary=True)
    rows = []
    for rule, counts in sorted(report["rules"].items()):
        skipped = ", ".join(f"{html.escape(r)} {n}" for r, n in sorted(counts["skipped"].items()))
        rows.append(f"<tr><td>{html.escape(rule)}</td><td>{counts['sent']}</td>"
                    f"<td>{sum(counts['skipped'].values())}</td><td>{skipped}</td>"
                    f"<td>{counts['deferred']}</td><td>{counts['failed']}</td>"
                    f"<td>{counts['unknown']}</td></tr>")
    carts = report["carts"]
    revenue = ", ".join(f"{v} {html.escape(c)}" for c, v in carts["revenue"].items()) or "0"
    excluded = ", ".join(f"{n} {html.escape(s.replace('_', ' '))}"
                         for s, n in carts["excluded"].items() if n) or "none"
    since = html.escape(report["since"] or "the beginning")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(config.shop.name)}: e-mail report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#1f2937}}
table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #d1d5db;padding:.4rem .7rem;
text-align:right}}td:first-child,th:first-child{{text-align:left}}</style></head>
<body><h1>{html.escape(config.shop.name)}: automatic e-mails since {since}</h1>
<table><thead><tr><th>rule</th><th>sent</th><th>skipped</th><th>skipped by reason</th>
<th>deferred</th><th>failed</th><th>unknown</th></tr></thead><tbody>{''.join(rows)}</tbody></table>
<h2>Cart reminders</h2>
<table><tr><th>carts reminded</th><td>{carts['reminded']}</td></tr>
<tr><th>carts recovered (an order within {RECOVERY_DAYS} days)</th><td>{carts['recovered']}</td></tr>
<tr><th>revenue of those orders</th><td>{revenue}</td></tr>
<tr><th>orders not counted (cancelled, refunded, failed, still unpaid)</th><td>{excluded}</td></tr>
</table>
<p id="recovered-means">A cart counts as recovered when the customer it reminded placed an order
within {RECOVERY_DAYS} days after the reminder, and that order is, today, neither cancelled,
refunded, failed nor still awaiting payment. Those orders are left out of the carts recovered and
of the revenue.</p>
<figure id="chart">{chart.render(is_unicode=True).split("?>", 1)[-1]}</figure>
</body></html>
"""
    target.write_text(page, encoding="utf-8")
    return target

