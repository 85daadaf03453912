"""What each rule's e-mails did, per language: sent, delivered, clicked, opened, the
unsubscribes and bounces they caused, and the orders and revenue attributed to them.

Built from the grouped rows of the store's report queries (store/measures.py): the work here
is proportional to the number of groups (rules × languages × currencies), never to messages."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

from mailflow.config import Config
from mailflow.records import OutboxStatus

UNRECORDED = "unrecorded"  # messages sent before mailflow kept the language they went out in
HOW = ("click", "received")
MEANS = {
    "sent": "messages handed to the mail server (accepted, maybe delivered, or refused for the"
            " address itself: a bounce)",
    "delivered": "messages the mail server accepted",
    "tracked": "delivered messages whose links go through `serve` (tracking.url)",
    "clicked": "tracked messages with at least one click; click_rate = clicked / tracked",
    "opens": "messages opened by a person (human), and messages opened only by a mail"
             " provider's machine (machine, as serve tells them apart: docs/tracking.md);"
             " null while tracking.opens is off",
    "unsubscribes": "unsubscribes within after_click of the last marketing message the address"
                    " got, counted to that message",
    "bounces": "messages refused for the address itself (5.1.x, 5.2.1), which put it on the"
               " suppression list",
    "orders": "orders attributed to the messages: click = within after_click after a click on"
              " the last clicked message; received = no click, within after_receiving after a"
              " delivered marketing message (counted apart: it shows timing, not cause);"
              " cancelled, refunded, failed and unpaid orders are left out, by their status now",
    "revenue": "the totals of those orders, per currency",
    "revenue_per_email": "click-attributed revenue divided by messages sent",
}


def duration_text(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def amount(hundredths: int) -> str:
    return f"{Decimal(hundredths) / 100:.2f}"


class _Figures:
    """The counts of one rule in one language (or of all its languages)."""

    def __init__(self) -> None:
        self.sent = self.delivered = self.tracked = self.clicked = 0
        self.human = self.machine = self.unsubscribes = self.bounces = 0
        self.orders = {how: 0 for how in HOW}
        self.revenue: dict[str, dict[str, int]] = {how: defaultdict(int) for how in HOW}

    def as_json(self, opens: bool) -> dict[str, Any]:
        rate = round(self.clicked / self.tracked, 4) if self.tracked else None
        per_email = {currency: f"{Decimal(cents) / 100 / self.sent:.2f}"
                     for currency, cents in sorted(self.revenue["click"].items())
                     } if self.sent else {}
        return {
            "sent": self.sent, "delivered": self.delivered, "tracked": self.tracked,
            "clicked": self.clicked, "click_rate": rate,
            "opens": {"human": self.human, "machine": self.machine} if opens else None,
            "unsubscribes": self.unsubscribes, "bounces": self.bounces,
            "orders": dict(self.orders),
            "revenue": {how: {c: amount(v) for c, v in sorted(self.revenue[how].items())}
                        for how in HOW},
            "revenue_per_email": per_email,
        }


def measured(rows: dict[str, list[tuple]], config: Config) -> dict[str, Any]:
    """The `measured` part of the report, from `Store.report_rows`."""
    cells: dict[tuple[str, str], _Figures] = defaultdict(_Figures)

    def cell(rule: str, locale: str | None) -> _Figures:
        return cells[rule, locale or UNRECORDED]

    for status, rule, locale, _reason, tracked, clicked, opened, count in rows["messages"]:
        if status not in (OutboxStatus.SENT, OutboxStatus.UNKNOWN):
            continue
        figures = cell(rule, locale)
        figures.sent += count
        if status == OutboxStatus.SENT:
            figures.delivered += count
            figures.tracked += count if tracked else 0
            figures.clicked += count if clicked else 0
            figures.human += count if opened == "human" else 0
            figures.machine += count if opened == "machine" else 0
    for rule, locale, count in rows["unsubscribes"]:
        cell(rule, locale).unsubscribes += count
    for rule, locale, count in rows["bounces"]:
        cell(rule, locale).bounces += count
        cell(rule, locale).sent += count  # handed to the server, refused there
    for rule, locale, how, currency, count, cents in rows["attributed"]:
        cell(rule, locale).orders[how] += count
        cell(rule, locale).revenue[how][currency] += cents or 0
    categories = {r.name: r.category for r in config.rules}
    opens = config.tracking.opens
    result: dict[str, Any] = {}
    for rule in sorted({rule for rule, _ in cells}):
        total = _Figures()
        languages = {}
        for (name, locale), figures in sorted(cells.items()):
            if name != rule:
                continue
            _add(total, figures)
            languages[locale] = figures.as_json(opens)
        result[rule] = {"category": categories.get(rule), **total.as_json(opens),
                        "languages": languages}
    return {
        "attribution": {"after_click": duration_text(config.tracking.attribution.after_click),
                        "after_receiving":
                            duration_text(config.tracking.attribution.after_receiving)},
        "tracking": config.tracking.enabled, "opens": opens,
        "rules": result, "means": MEANS,
    }


def _add(total: _Figures, part: _Figures) -> None:
    for name in ("sent", "delivered", "tracked", "clicked", "human", "machine", "unsubscribes",
                 "bounces"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    for how in HOW:
        total.orders[how] += part.orders[how]
        for currency, cents in part.revenue[how].items():
            total.revenue[how][currency] += cents
