"""`mailflow report --html FILE`: one self-contained page (no script, style or font from
elsewhere), the report's tables and charts drawn by pygal as inline SVG."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from mailflow.config import Config
from mailflow.report.outcomes import RECOVERY_DAYS
from mailflow.report.text import money, rate

STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2937}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem}td,th{border:1px solid #d1d5db;
padding:.3rem .5rem;text-align:right}th{background:#f3f4f6}
td:first-child,th:first-child{text-align:left}tr.language td:first-child
{padding-left:1.6rem;color:#4b5563}figure{margin:1rem 0}"""
COLORS = ("#1e40af", "#059669", "#b45309", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f")


def _svg(chart: Any) -> str:
    return chart.render(is_unicode=True).split("?>", 1)[-1]


def _charts(report: dict[str, Any], config: Config) -> dict[str, str]:
    import pygal
    from pygal.style import Style

    per_day = report["per_day"]
    days = sorted(set(per_day["sent"]) | set(per_day["recovered_revenue"]))
    daily = pygal.Bar(js=[], width=900, height=360, legend_at_bottom=True, x_label_rotation=30,
                      style=Style(colors=COLORS[:2]),
                      title="E-mails sent and revenue recovered per day")
    daily.x_labels = days or ["-"]
    daily.add("e-mails sent", [per_day["sent"].get(d, 0) for d in days] or [0])
    daily.add(f"recovered revenue ({config.shop.currency})",
              [float(per_day["recovered_revenue"].get(d, 0)) for d in days] or [0],
              secondary=True)
    sent_days = sorted({d for days_of in per_day["sent_by_rule"].values() for d in days_of})
    over_time = pygal.Line(js=[], width=900, height=360, legend_at_bottom=True,
                           x_label_rotation=30, show_minor_x_labels=False,
                           style=Style(colors=COLORS), title="E-mails sent per day, per rule")
    over_time.x_labels = sent_days or ["-"]
    over_time.x_labels_major_count = 12
    for rule, days_of in per_day["sent_by_rule"].items():
        over_time.add(rule, [days_of.get(d, 0) for d in sent_days])
    funnel = pygal.Bar(js=[], width=900, height=360, legend_at_bottom=True,
                       style=Style(colors=COLORS),
                       title="Funnel per rule: sent → clicked → ordered after a click")
    funnel.x_labels = ["sent", "clicked", "ordered"]
    for rule, f in report["measured"]["rules"].items():
        funnel.add(rule, [f["sent"], f["clicked"], f["orders"]["click"]])
    return {"chart": _svg(daily), "over-time": _svg(over_time), "funnel": _svg(funnel)}


def _measured_rows(measured: dict[str, Any]) -> str:
    rows = []
    for rule, total in measured["rules"].items():
        parts = [(rule, "rule", rule, total)]
        parts += [(f"{rule}/{locale}", "language", locale, f)
                  for locale, f in total["languages"].items()]
        for key, kind, label, f in parts:
            opens = (f"{f['opens']['human']} / {f['opens']['machine']}"
                     if f["opens"] is not None else "off")
            cells = {"sent": f["sent"], "delivered": f["delivered"], "clicked": f["clicked"],
                     "click_rate": rate(f), "opens": opens, "unsubscribes": f["unsubscribes"],
                     "bounces": f["bounces"], "orders_click": f["orders"]["click"],
                     "revenue_click": money(f["revenue"]["click"]),
                     "orders_received": f["orders"]["received"],
                     "revenue_received": money(f["revenue"]["received"]),
                     "revenue_per_email": money(f["revenue_per_email"])}
            tds = "".join(f'<td data-figure="{html.escape(key)}/{name}">{html.escape(str(v))}'
                          "</td>" for name, v in cells.items())
            rows.append(f'<tr class="{kind}"><td>{html.escape(label)}</td>{tds}</tr>')
    return "".join(rows)


def write_html(report: dict[str, Any], config: Config, target: Path) -> Path:
    rows = []
    for rule, counts in sorted(report["rules"].items()):
        skipped = ", ".join(f"{html.escape(r)} {n}" for r, n in sorted(counts["skipped"].items()))
        rows.append(f"<tr><td>{html.escape(rule)}</td><td>{counts['sent']}</td>"
                    f"<td>{sum(counts['skipped'].values())}</td><td>{skipped}</td>"
                    f"<td>{counts['deferred']}</td><td>{counts['failed']}</td>"
                    f"<td>{counts['unknown']}</td></tr>")
    carts = report["carts"]
    revenue = html.escape(money(carts["revenue"]))
    excluded = ", ".join(f"{n} {html.escape(s.replace('_', ' '))}"
                         for s, n in carts["excluded"].items() if n) or "none"
    since = html.escape(report["since"] or "the beginning")
    measured = report["measured"]
    windows = measured["attribution"]
    charts = _charts(report, config)
    means = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>"
                    for k, v in measured["means"].items())
    shop = html.escape(config.shop.name)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{shop}: e-mail report</title>
<style>{STYLE}</style></head>
<body><h1>{shop}: automatic e-mails since {since}</h1>
<table><thead><tr><th>rule</th><th>sent</th><th>skipped</th><th>skipped by reason</th>
<th>deferred</th><th>failed</th><th>unknown</th></tr></thead><tbody>{''.join(rows)}</tbody></table>
<h2>What the e-mails did</h2>
<p>An order counts for a message when its recipient placed it within {windows['after_click']}
after clicking in it (the last message clicked), or, without a click, within
{windows['after_receiving']} after receiving a marketing e-mail (“after receiving”, counted apart:
it says when, not why). Cancelled, refunded, failed and unpaid orders are left out.</p>
<table id="measured"><thead><tr><th>rule / language</th><th>sent</th><th>delivered</th>
<th>clicked</th><th>click rate</th><th>opens (person / machine)</th><th>unsubscribes</th>
<th>bounces</th><th>orders after a click</th><th>their revenue</th><th>orders after receiving</th>
<th>their revenue</th><th>revenue per e-mail</th></tr></thead>
<tbody>{_measured_rows(measured)}</tbody></table>
<figure id="funnel">{charts['funnel']}</figure>
<figure id="over-time">{charts['over-time']}</figure>
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
<figure id="chart">{charts['chart']}</figure>
<h2>What each figure means</h2><dl>{means}</dl>
</body></html>
"""
    target.write_text(page, encoding="utf-8")
    return target
