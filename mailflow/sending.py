"""`mailflow send`: decide what is due at `now`, record every decision once, deliver.

A dry run makes the same decisions and renders the same subjects, and writes nothing.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailflow.clock import iso
from mailflow.config import Config, Rule
from mailflow.delivering import Sender, Transport, deliver_all, render_failed_entry, report_entry
from mailflow.errors import (
    EXIT_ATTENTION,
    EXIT_BLOCKED,
    EXIT_OK,
    ConfigError,
    MailflowError,
    RenderError,
)
from mailflow.rules.engine import Decision, Planner
from mailflow.starter import refuse_placeholders
from mailflow.store import Store
from mailflow.tokens import make_token, secret_from_env
from mailflow.transports import FileTransport


@dataclass
class SendReport:
    now: datetime
    dry_run: bool
    messages: list[dict[str, Any]] = field(default_factory=list)
    blocked: str | None = None  # why delivery stopped (SMTP, TLS, login, 5.7.x): exit 3
    recovered: int = 0  # messages a dead run left mid-send, now `unknown`: exit 1
    # rule -> {status: n}: failed and unknown messages, of this run or earlier ones, that
    # nobody resent or dismissed yet: exit 1 until then
    awaiting: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(m["status"] for m in self.messages))

    @property
    def awaiting_count(self) -> int:
        return sum(n for states in self.awaiting.values() for n in states.values())

    @property
    def exit_code(self) -> int:
        if self.blocked:
            return EXIT_BLOCKED
        needs_human = self.recovered or self.awaiting or {"failed", "unknown"} & set(self.counts)
        return EXIT_ATTENTION if needs_human else EXIT_OK

    def as_json(self) -> dict[str, Any]:
        return {"now": iso(self.now), "dry_run": self.dry_run, "messages": self.messages,
                "counts": self.counts, "blocked": self.blocked,
                "recovered_unknown": self.recovered,
                "awaiting_human": {"count": self.awaiting_count, "rules": self.awaiting}}


def default_transport(config: Config) -> Transport:
    if config.delivery.transport == "smtp" and config.delivery.smtp is not None:
        from mailflow.smtp import SmtpTransport

        return SmtpTransport(config.delivery.smtp)
    return FileTransport(config.folder / config.delivery.dir)


class Composer:
    """Renders and builds the message for a decision (and for `preview`). Made at the first
    message of a run, so that a tick with nothing due never loads Jinja or the email package."""

    def __init__(self, config: Config, planner: Planner | None = None,
                 inliner_name: str | None = None, *, preview: bool = False) -> None:
        from mailflow.message import parse_sender
        from mailflow.render import Renderer

        self.config = config
        self.planner = planner
        self.renderer = Renderer(config.folder / "templates", config.shop, inliner_name)
        self.sender = parse_sender(config.sender.from_) if config.sender.from_ else None
        self._secret: bytes | None = None
        if preview:  # links in a preview need not work: never ask for the secret
            self._secret = os.environ.get(config.unsubscribe.secret_env, "").encode() or \
                b"preview-only, not a valid token"
        elif any(r.enabled and r.marketing for r in config.rules):  # fail before the first send
            self._secret = secret_from_env(config.unsubscribe.secret_env)

    def message_for(self, d: Decision, now: datetime) -> Composed:
        """The message of a decision, from the rows its planner holds, not built yet."""
        return self.message_from_rows(d.key, d.rule, d.email, self.planner.context(d), now)

    def message_from_rows(self, key: str, rule: Rule, email: str | None, rows: dict[str, Any],
                          now: datetime) -> Composed:
        """The message of `rule` about these rows (Planner.context), not built yet."""
        from mailflow.context import cart_view, customer_view, order_view

        return self.message(
            key=key, rule=rule, template=rule.template, marketing=rule.marketing,
            order=order_view(rows["order"]), cart=cart_view(rows["cart"]),
            customer=customer_view(rows["customer"]), to=email or "", now=now)

    def message(self, *, key: str, rule: Rule | None, template: str, marketing: bool,
                order: dict | None, cart: dict | None, customer: dict | None, to: str,
                now: datetime, locale: str | None = None) -> Composed:
        from mailflow.context import message_context, message_locale
        from mailflow.message import message_id

        if self.sender is None:
            raise ConfigError(f"{self.config.path.name}: sender.from is needed to send e-mail")
        unsubscribe_url, extra = self._unsubscribe(to) if marketing else (None, {})
        context = message_context(
            shop=self.config.shop, rule=rule, rule_name=template,
            category="marketing" if marketing else "transactional", order=order, cart=cart,
            customer=customer, unsubscribe_url=unsubscribe_url, now=now)
        rendered = self.renderer.render(
            template, locale or message_locale(order, cart, customer), context,
            campaign=rule.name if rule else template, subject_override=rule.subject if rule else None)
        person = order or cart or customer or {}
        return Composed(rendered.subject, message_id(key, self.sender.domain), rendered, self,
                        to, _full_name(person), now, extra)

    def _unsubscribe(self, email: str) -> tuple[str | None, dict[str, str]]:
        settings = self.config.unsubscribe
        if self._secret is None:
            self._secret = secret_from_env(settings.secret_env)
        token = make_token(email, self._secret)
        links = []
        url = settings.url.replace("{token}", token) if settings.url else None
        if url:
            links.append(f"<{url}>")
        if settings.mailto:
            links.append(f"<mailto:{settings.mailto}?subject=unsubscribe>")
        headers = {"List-Unsubscribe": ", ".join(links)} if links else {}
        if url:
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return url, headers


@dataclass
class Composed:
    subject: str
    message_id: str
    rendered: Any
    composer: Composer
    to: str
    to_name: str | None
    date: datetime
    headers: dict[str, str]

    def build(self) -> bytes:
        """The message's bytes; a failure of the links, the inlining or the text part is this
        message's RenderError."""
        from mailflow.message import build_message
        from mailflow.render import render_failure

        try:
            return build_message(
                sender=self.composer.sender, to=self.to, to_name=self.to_name,
                subject=self.subject, text=self.rendered.text, html=self.rendered.html,
                msg_id=self.message_id, date=self.date,
                reply_to=self.composer.config.sender.reply_to, extra_headers=self.headers)
        except Exception as exc:
            raise render_failure(exc, self.rendered.template) from None


def _full_name(row: dict[str, Any]) -> str | None:
    parts = [row.get("first_name"), row.get("last_name")]
    name = " ".join(p for p in parts if p)
    return name or None


def send_due(store: Store, config: Config, now: datetime, *, dry_run: bool = False,
             only_rule: str | None = None, limit: int | None = None,
             transport: Transport | None = None, recover: bool = False) -> SendReport:
    """`recover`: the caller holds the run lock, so a message still `sending` belongs to a
    run that died; it becomes `unknown` (maybe delivered) and is never resent by itself.
    `transport`: send through this one instead of `delivery.connections` of the config's."""
    if not dry_run and transport is None and config.delivery.transport == "smtp":
        refuse_placeholders(config)  # before anything changes: exit 2
    recovered = store.recover_interrupted(iso(now)) if recover and not dry_run else 0
    planner = Planner(store, config, now)
    decisions = planner.plan(only_rule)
    report = SendReport(now, dry_run, recovered=recovered)
    if config.delivery.rate_limit is not None:
        count, window = config.delivery.rate_limit
        budget = max(count - store.sent_since(iso(now - window)), 0)
        limit = budget if limit is None else min(limit, budget)
    sends = [d for d in decisions if d.action == "send"][:limit]
    chosen = {id(d) for d in sends}  # the others stay due: the next run takes them
    decisions = [d for d in decisions if d.action != "send" or id(d) in chosen]
    composer = Composer(config, planner) if sends else None
    if dry_run:
        report.messages = [_rehearse(d, composer, now) if d.action == "send"
                           else report_entry(d, d.status) for d in decisions]
        report.awaiting = store.awaiting_human()
        return report
    from mailflow.prerender import RenderAhead, worker_count

    connections = 1 if transport is not None or config.delivery.transport != "smtp" else \
        max(min(config.delivery.connections, len(sends)), 1)
    transports = [transport] if transport is not None else \
        [default_transport(config) for _ in range(connections)]
    run_id = store.start_run("send", now, datetime.now(UTC))
    lock = threading.RLock()
    senders = [Sender(store, planner, composer, t, now, run_id, lock) for t in transports]
    entries: dict[int, dict[str, Any]] = {}
    try:
        with RenderAhead(composer, planner, sends, now, worker_count(len(sends))) as ahead:
            report.blocked = deliver_all(decisions, ahead, senders, entries)
    finally:
        report.messages = [entries[n] for n in sorted(entries)]
        try:
            _close_all(senders)
        finally:
            store.finish_run(run_id, datetime.now(UTC), report.counts)
    report.awaiting = store.awaiting_human()
    return report


def _close_all(senders: list[Sender]) -> None:
    """Record each sender's last outcome and end its connection; one failing does not keep
    the others from it (the first failure is raised after)."""
    failure: BaseException | None = None
    for sender in senders:
        try:
            sender.close()
        except BaseException as exc:
            failure = failure or exc
    if failure is not None:
        raise failure


def _rehearse(d: Decision, composer: Composer, now: datetime) -> dict[str, Any]:
    """A dry run renders the subject (its template errors surface) and builds nothing."""
    try:
        message = composer.message_for(d, now)
    except RenderError as exc:
        return render_failed_entry(d, exc)
    except MailflowError:
        raise
    except Exception as exc:  # the data of this one message: the real run fails it alone too
        from mailflow.render import render_failure

        return render_failed_entry(d, render_failure(exc, f"{d.rule.template}.html"))
    return report_entry(d, "would_send", message.subject, message.message_id)
