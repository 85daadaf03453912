"""Deciding: for each enabled rule, what is due at `now`, and for each message, send, skip
(with its reason) or wait. The same function serves a real run, a dry run and the re-check
made at the moment of sending, so a dry run shows exactly what a real run would do."""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mailflow.clock import from_iso, iso
from mailflow.config import Config, Rule
from mailflow.records import Action, OutboxStatus
from mailflow.rules.offers import NO_CODE_LEFT, OfferBook
from mailflow.rules.suggestions import Suggestions
from mailflow.rules.timing import add_after, quiet_until
from mailflow.rules.triggers import condition, trigger
from mailflow.rules.where import numeric_amounts, where_holds
from mailflow.store import Store
from mailflow.store.outbox import Selection

# Besides the rules' own windows, messages that became stale this recently are still
# recorded as `stale` (so `log` shows what a stopped cron missed); older history is not read.
STALE_LOOKBACK = timedelta(days=7)
# Calendar-day `after`s move by an hour across DST: widen the SQL window, filter exactly.
MARGIN = timedelta(hours=2)
# What an order.placed confirmation waits for: an online payment still under way or failed
# (the customer may pay again) is no order yet to thank anyone for.
AWAITING_PAYMENT = "awaiting_payment"
AWAITING_PAYMENT_LIMIT = timedelta(days=14)  # a payment that has not come by then never will
# Rows read while planning, kept for the messages' rendering: the most recent ones only, so
# that 10,000 due do not hold 10,000 orders and customers (~50 MB; at most ~20 MB so); the
# others are read again to render. A tick with up to ~2,000 due reads each row once.
SEEN_ROWS = 4096
PREFETCH = 500  # decisions whose rows planning reads together (2 rows each: within SEEN_ROWS)


@dataclass
class Decision:
    key: str
    rule: Rule
    subject_type: str
    subject_id: str
    email: str | None
    email_key: str | None
    due_at: datetime
    action: Action
    reason: str | None = None
    next_attempt_at: datetime | None = None
    recorded: bool = False  # the outbox already has this key (a postponed message)

    @property
    def status(self) -> OutboxStatus:
        """The outbox status this decision records."""
        return self.action.records

    @property
    def step(self) -> tuple[str | None, int]:
        """What an order message's instance is about, from its key `RULE:order:ID:STEP[:N]`:
        the status entered (`partially_refunded` for a partial refund) and which one of
        them (N, 1 without); (None, 1) for `order.placed` and other subjects."""
        prefix = f"{self.rule.name}:order:{self.subject_id}:"
        if self.subject_type != "order" or not self.key.startswith(prefix):
            return None, 1
        step, _, number = self.key[len(prefix):].partition(":")
        return step, int(number) if number.isdigit() else 1

    def row(self, now: datetime, run_id: int | None) -> dict[str, Any]:
        return {"key": self.key, "rule": self.rule.name, "subject_type": self.subject_type,
                "subject_id": self.subject_id, "email": self.email, "email_key": self.email_key,
                "status": self.status, "reason": self.reason, "due_at": iso(self.due_at),
                "next_attempt_at": iso(self.next_attempt_at), "decided_at": iso(now),
                "run_id": run_id}


class Planner:
    def __init__(self, store: Store, config: Config, now: datetime) -> None:
        self.store = store
        self.config = config
        self.now = now
        self.tz = config.shop.tz
        self.sends_this_run: Counter[tuple[str, str]] = Counter()
        self._seen: OrderedDict[tuple[str, str | None], dict | None] = OrderedDict()
        self._seen_as_of = store.data_version()  # every row in _seen was read since
        self.offers = OfferBook(store, now, self.tz)
        self.suggestions = Suggestions(store, now)
        self._products: dict[str, list[dict[str, Any]]] = {}  # per message, read once

    def plan(self, only_rule: str | None = None) -> list[Decision]:
        rules = [self.config.rule(only_rule)] if only_rule else self.config.rules
        decisions: list[Decision] = []
        for rule in rules:
            if rule.enabled:
                decisions.extend(self._rule_decisions(rule))
        decisions.sort(key=lambda d: (d.due_at, d.rule.name, d.key))
        self._keep_marketing_gap(decisions)
        self.offers.reserve(decisions)
        return decisions

    def _keep_marketing_gap(self, decisions: list[Decision]) -> None:
        """One marketing e-mail per customer per run and per `delivery.marketing_gap`: the
        first due wins; the store's side (sends before this run) is `_verdict`'s."""
        if not self.config.delivery.marketing_gap:
            return
        reached: set[str] = set()
        for d in decisions:
            if d.action is not Action.SEND or not d.rule.marketing or not d.email_key:
                continue
            if d.email_key in reached:
                d.action, d.reason = Action.SKIP, "marketing_gap"
            reached.add(d.email_key)

    def _rule_decisions(self, rule: Rule) -> list[Decision]:
        now = self.now
        hi = now - rule.after + MARGIN
        lo = now - rule.after - rule.expire_after - STALE_LOOKBACK - MARGIN
        waiting: list[tuple[Decision, str | None]] = []
        for row in self.store.pending(rule.name, iso(now)):
            waiting.append((Decision(row["key"], rule, row["subject_type"], row["subject_id"],
                                     row["email"], row["email_key"], from_iso(row["due_at"]),
                                     Action.SEND, recorded=True), None))
        on = trigger(rule.on)
        for c in self.store.trigger_candidates(rule.name, on.selects, iso(lo), iso(hi),
                                               status=on.status,
                                               assume_delivered_after=rule.assume_delivered_after):
            due = add_after(from_iso(c["trigger_at"]), rule.after, self.tz)
            if due > now or now - due > rule.expire_after + STALE_LOOKBACK:
                continue
            waiting.append((Decision(f"{rule.name}:{c['instance']}", rule, c["subject_type"],
                                     c["subject_id"], c["email"], c["email_key"], due, Action.SEND),
                            c["email_problem"]))
        waiting.sort(key=lambda pair: (pair[0].due_at, pair[0].key))
        decisions = []
        for number, (d, problem) in enumerate(waiting):
            if number % PREFETCH == 0:
                self.prefetch([d for d, _ in waiting[number:number + PREFETCH]])
            self.decide(d, problem, planning=True)
            if d.action is Action.SEND:  # a cap counts what this run will send before it is sent
                self.sends_this_run[(rule.name, d.email_key or "")] += 1
            decisions.append(d)
        return decisions

    def prefetch(self, decisions: list[Decision]) -> None:
        """The subjects and customers of `decisions` not held yet, read a few queries for
        all, as `_subject` and `_customer` would one by one (planning, and rendering ahead
        the rows planning no longer holds)."""
        wanted: dict[str, set[str]] = {"order": set(), "cart": set(), "customer": set()}
        for d in decisions:
            if d.subject_id is not None and (d.subject_type, d.subject_id) not in self._seen:
                wanted.setdefault(d.subject_type, set()).add(d.subject_id)
            if d.subject_type != "customer" and d.email_key and \
                    ("customer", d.email_key) not in self._seen:
                wanted["customer"].add(d.email_key)
        reads = {"order": self.store.orders_by_id, "cart": self.store.carts_by_id,
                 "customer": self.store.customers_by_key}
        for kind, keys in wanted.items():
            if kind in reads and keys:
                found = reads[kind](sorted(keys))
                for key in keys:
                    self._remember((kind, key), found.get(key))

    def decide(self, d: Decision, email_problem: str | None, *, planning: bool = False) -> Decision:
        """Set d.action/reason from the store as it is now. Also the re-check at the moment of
        sending (planning=False), when this run's earlier sends are already in the store."""
        d.action, d.reason, d.next_attempt_at = Action.SEND, None, None
        if not planning:
            self._forget_if_written()
        reason, wait = self._verdict(d, email_problem, planning)
        if reason is not None and reason.startswith("where_error"):
            d.action, d.reason = Action.FAIL, reason
        elif reason is not None:
            d.action, d.reason = Action.SKIP, reason
        elif wait is not None:
            d.action, d.reason, d.next_attempt_at = Action.DEFER, wait[0], wait[1]
        return d

    def _forget_if_written(self) -> None:
        """Drop the rows held once another connection has committed since they were read:
        an import, a webhook, `serve`'s unsubscribe (the sending connection itself writes
        no order, cart or customer while a batch is sent). When nothing was committed, the
        rows held are the store's, and the re-check at the moment of sending reads none
        again (a quarter of the send process's CPU otherwise; docs/delivery.md, "Speed")."""
        version = self.store.data_version()
        if version != self._seen_as_of:
            self._seen.clear()
            self._seen_as_of = version

    def _verdict(self, d: Decision, email_problem: str | None, planning: bool
                 ) -> tuple[str | None, tuple[str, datetime] | None]:
        rule, now, store = d.rule, self.now, self.store
        on = trigger(rule.on)
        if now - d.due_at > rule.expire_after and not on.waits_for_payment:
            return "stale", None
        subject = self._subject(d)
        if subject is None:
            return "subject_gone", None
        if on.waits_for_payment and now - self._paid_due(d, subject) > (
                AWAITING_PAYMENT_LIMIT if _awaiting_payment(subject) else rule.expire_after):
            return "stale", None
        started = subject.get("history_before")
        if started and iso(d.due_at) < started:  # due before a first pull saw it: history
            return "history", None
        if not d.email:
            problem = email_problem or subject.get("email_problem") or "missing_email"
            return problem.split(":", 1)[0], None
        email_key = d.email_key or ""  # an address always has its key
        suppressed = store.suppression_reasons(email_key, iso(now))
        if suppressed - {"unsubscribed"}:
            return "suppressed", None
        customer = self._customer(d, subject)
        if rule.marketing:
            if "unsubscribed" in suppressed:
                return "unsubscribed", None
            consent = (customer or {}).get("accepts_marketing")
            if consent is None:
                consent = subject.get("accepts_marketing")
            if consent == 0 or (consent is None and self.config.shop.consent == "required"):
                return "no_consent", None
        for name in rule.skip_if:
            skip = condition(name)
            if d.subject_type == skip.about and skip.holds(store, subject, d.email_key,
                                                           d.step[0] or on.status):
                return name, None
        if rule.where:
            try:
                holds = where_holds(rule.where, self._where_context(d, subject, customer))
            except Exception as exc:  # a where that cannot be evaluated needs a human
                return f"where_error: {type(exc).__name__}: {exc}", None
            if not holds:
                return "where", None
        if rule.cap is not None:
            count, window = rule.cap
            sent = store.sends_since(rule.name, email_key, iso(now - window))
            in_run = self.sends_this_run[(rule.name, email_key)] if planning else 0
            if sent + in_run >= count:
                return "capped", None
        gap = self.config.delivery.marketing_gap
        if rule.marketing and gap and store.sent_any_since(
                [r.name for r in self.config.rules if r.marketing], email_key, iso(now - gap)):
            return "marketing_gap", None
        if not planning and not self.offers.available(d):  # planning: OfferBook.reserve
            return NO_CODE_LEFT, None
        if on.waits_for_payment and _awaiting_payment(subject):
            return None, (AWAITING_PAYMENT, now)
        if on.needs_fresh_orders and self.config.delivery.max_data_age is not None:
            newest = store.newest_orders_data()
            if newest is None or now - from_iso(newest) > self.config.delivery.max_data_age:
                return None, ("stale_data", now)
        until = quiet_until(now, rule.quiet_hours, self.tz)
        if until is not None:
            return None, ("quiet_hours", until)
        return None, None

    def _paid_due(self, d: Decision, subject: dict) -> datetime:
        """A confirmation waits for an online payment under way: once it went through, the
        message is due from then (a SEPA debit clears days after the order)."""
        if subject.get("payment_class") != "online":
            return d.due_at
        paid = from_iso(self.store.status_event_time(subject["id"], "paid"))
        return max(d.due_at, paid) if paid is not None else d.due_at

    def _customer(self, d: Decision, subject: dict) -> dict | None:
        """The recipient's customer row, read once per run like the subject."""
        if d.subject_type == "customer":
            return subject
        key = ("customer", d.email_key)
        if key not in self._seen:
            self._remember(key, self.store.customer(d.email_key))
        return self._seen[key]

    def _subject(self, d: Decision) -> dict | None:
        key = (d.subject_type, d.subject_id)
        if key not in self._seen:
            read = {"order": self.store.order, "cart": self.store.cart}.get(d.subject_type,
                                                                          self.store.customer)
            self._remember(key, read(d.subject_id))
        return self._seen[key]

    def _remember(self, key: tuple[str, str | None], row: dict | None) -> None:
        self._seen[key] = row
        if len(self._seen) > SEEN_ROWS:
            self._seen.popitem(last=False)

    def _where_context(self, d: Decision, subject: dict, customer: dict | None) -> dict[str, Any]:
        return self._context(d, numeric_amounts(subject), customer)

    def _context(self, d: Decision, subject: dict | None, customer: dict | None
                 ) -> dict[str, Any]:
        return {"order": subject if d.subject_type == "order" else None,
                "cart": subject if d.subject_type == "cart" else None,
                "customer": customer, "now": self.now}

    def context(self, d: Decision) -> dict[str, Any]:
        """What a template of this message sees about its subject, its offer and the products
        it suggests."""
        subject = self._subject(d) or {}
        context = {**self._context(d, subject, self._customer(d, subject)),
                   "offer": self.offers.view(d), "products": self._suggested(d, subject)}
        if trigger(d.rule.on).selects is Selection.REFUNDS \
                and d.subject_type == "order":  # which refund it is about (render/context.py)
            context["refund"] = {"step": d.step[0], "seq": d.step[1],
                                 "refunds": self.store.order_refunds(d.subject_id)}
        if self.config.tracking.enabled:  # an unsubscribed customer is no longer tracked
            context["suppressed"] = bool(self.store.suppression_reasons(d.email_key or "",
                                                                        iso(self.now)))
        return context

    def _suggested(self, d: Decision, subject: dict) -> list[dict[str, Any]]:
        """Read when the message is rendered, never while planning: a tick with nothing due
        never pays for it."""
        if d.rule.products is None:
            return []
        if d.key not in self._products:
            self._products[d.key] = self.suggestions.for_subject(
                d.rule.products, d.subject_type, subject or None, d.email_key)
        return self._products[d.key]


def _awaiting_payment(order: dict) -> bool:
    return order.get("status") == "failed" or (
        order.get("status") == "pending_payment" and order.get("payment_class") == "online")
