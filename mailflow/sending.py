"""`mailflow send`: decide what is due at `now`, record every decision once, deliver.

A dry run makes the same decisions and renders the same subjects, and writes nothing.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from mailflow.clock import iso
from mailflow.config import Config, Rule
from mailflow.errors import EXIT_ATTENTION, EXIT_BLOCKED, EXIT_OK, ConfigError, DeliveryBlocked, RenderError
from mailflow.rules.engine import Decision, Planner
from mailflow.store import Store
from mailflow.tokens import make_token, secret_from_env
from mailflow.transports import FileTransport, Outcome


class Transport(Protocol):
    def deliver(self, data: bytes, *, sender: str, recipient: str, key: str) -> Outcome: ...
    def close(self) -> None: ...


@dataclass
class SendReport:
    now: datetime
    dry_run: bool
    messages: list[dict[str, Any]] = field(default_factory=list)
    blocked: str | None = None  # why delivery stopped (SMTP, TLS, login, 5.7.x): exit 3
    recovered: int = 0  # messages a dead run left mid-send, now `unknown`: exit 1

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(m["status"] for m in self.messages))

    @property
    def exit_code(self) -> int:
        if self.blocked:
            return EXIT_BLOCKED
        needs_human = self.recovered or {"failed", "unknown"} & set(self.counts)
        return EXIT_ATTENTION if needs_human else EXIT_OK

    def as_json(self) -> dict[str, Any]:
        return {"now": iso(self.now), "dry_run": self.dry_run, "messages": self.messages,
                "counts": self.counts, "blocked": self.blocked,
                "recovered_unknown": self.recovered}


def default_transport(config: Config) -> Transport:
    if config.delivery.transport == "smtp" and config.delivery.smtp is not None:
        from mailflow.smtp import SmtpTransport

        return SmtpTransport(config.delivery.smtp)
    return FileTransport(config.folder / config.delivery.dir)


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff for a deferred message: 5 min, 10, 20… at most 6 hours."""
    return min(timedelta(minutes=5) * 2 ** max(attempts - 1, 0), timedelta(hours=6))


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

    def compose(self, d: Decision, now: datetime, *, build: bool = True
                ) -> tuple[str, str, bytes | None]:
        """(subject, message id, bytes). A rehearsal renders everything but builds no bytes."""
        from mailflow.context import cart_view, customer_view, order_view

        rows = self.planner.context(d)
        message = self.message(
            key=d.key, rule=d.rule, template=d.rule.template, marketing=d.rule.marketing,
            order=order_view(rows["order"]), cart=cart_view(rows["cart"]),
            customer=customer_view(rows["customer"]), to=d.email or "", now=now)
        if not build:
            return message.subject, message.message_id, None
        return message.subject, message.message_id, message.build()

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
        from mailflow.message import build_message

        return build_message(
            sender=self.composer.sender, to=self.to, to_name=self.to_name, subject=self.subject,
            text=self.rendered.text, html=self.rendered.html, msg_id=self.message_id,
            date=self.date, reply_to=self.composer.config.sender.reply_to,
            extra_headers=self.headers)


def _full_name(row: dict[str, Any]) -> str | None:
    parts = [row.get("first_name"), row.get("last_name")]
    name = " ".join(p for p in parts if p)
    return name or None


def send_due(store: Store, config: Config, now: datetime, *, dry_run: bool = False,
             only_rule: str | None = None, limit: int | None = None,
             transport: Transport | None = None, recover: bool = False) -> SendReport:
    """`recover`: the caller holds the run lock, so a message still `sending` belongs to a
    run that died; it becomes `unknown` (maybe delivered) and is never resent by itself."""
    recovered = store.recover_interrupted(iso(now)) if recover and not dry_run else 0
    planner = Planner(store, config, now)
    decisions = planner.plan(only_rule)
    composer: Composer | None = None
    report = SendReport(now, dry_run, recovered=recovered)
    sends = 0
    if config.delivery.rate_limit is not None:
        count, window = config.delivery.rate_limit
        budget = max(count - store.sent_since(iso(now - window)), 0)
        limit = budget if limit is None else min(limit, budget)
    transport = None if dry_run else (transport or default_transport(config))
    run_id = None if dry_run else store.start_run("send", now, datetime.now(UTC))
    try:
        for d in decisions:
            if d.action == "send":
                if limit is not None and sends >= limit:
                    continue  # still due: the next run takes it
                sends += 1
                composer = composer or Composer(config, planner)
                entry = (_rehearse(d, composer, now) if dry_run
                         else _deliver(d, store, planner, composer, transport, now, run_id))
            else:
                entry = _entry(d, d.status)
                if not dry_run:
                    _record(store, d, now, run_id)
            if entry is not None:
                report.messages.append(entry)
    except DeliveryBlocked as exc:
        report.blocked = str(exc)
    finally:
        if transport is not None:
            transport.close()
        if run_id is not None:
            store.finish_run(run_id, datetime.now(UTC), report.counts)
    return report


def _entry(d: Decision, status: str, subject: str | None = None, msg_id: str | None = None,
           reason: str | None = None) -> dict[str, Any]:
    """One line of the report; `reason` overrides the decision's own (an SMTP reply)."""
    if reason is None:
        reason = d.reason
        if status == "deferred" and d.next_attempt_at is not None:
            reason = f"{d.reason} until {iso(d.next_attempt_at)}"
    return {"rule": d.rule.name, "to": d.email, "subject": subject, "status": status,
            "reason": reason, "message_id": msg_id, "key": d.key, "due_at": iso(d.due_at)}


def _record(store: Store, d: Decision, now: datetime, run_id: int | None) -> None:
    row = d.row(now, run_id)
    if d.recorded:
        store.update_decision(d.key, row["status"], d.reason, row["next_attempt_at"], iso(now))
    else:
        store.record_decision(row)


def _rehearse(d: Decision, composer: Composer, now: datetime) -> dict[str, Any]:
    try:
        subject, msg_id, _ = composer.compose(d, now, build=False)
    except RenderError as exc:
        return _entry(d, "failed", reason=f"render_error: {exc}")
    return _entry(d, "would_send", subject, msg_id)


def _deliver(d: Decision, store: Store, planner: Planner, composer: Composer,
             transport: Transport, now: datetime, run_id: int | None) -> dict[str, Any] | None:
    planner.decide(d, None)  # the conditions once more, at the moment of sending
    if d.action != "send":
        _record(store, d, now, run_id)
        return _entry(d, d.status)
    outbox_id = store.claim(d.row(now, run_id))
    if outbox_id is None:
        return None  # another run owns it or already decided it
    try:
        subject, msg_id, data = composer.compose(d, now)
    except RenderError as exc:
        store.mark(outbox_id, "failed", iso(now), reason="render_error", detail=str(exc))
        return _entry(d, "failed", reason=f"render_error: {exc}")
    except BaseException as exc:  # nothing was sent: give the message back to the queue
        store.mark(outbox_id, "deferred", iso(now), reason="error", next_attempt_at=iso(now),
                   detail=repr(exc))
        raise
    try:
        outcome = transport.deliver(data, sender=composer.sender.addr_spec, recipient=d.email,
                                    key=d.key)
    except Exception as exc:  # not handed over: back in the queue, and the batch stops
        blocked = exc if isinstance(exc, DeliveryBlocked) else DeliveryBlocked(
            f"delivery failed: {type(exc).__name__}: {exc}")
        store.mark(outbox_id, "deferred", iso(now), reason="blocked", detail=str(blocked),
                   next_attempt_at=iso(now))
        raise blocked from None
    next_attempt = None
    if outcome.status == "deferred":
        next_attempt = iso(now + retry_delay(store.attempts(outbox_id)))
    store.mark(outbox_id, outcome.status, iso(now), subject=subject, message_id=msg_id,
               detail=outcome.detail, next_attempt_at=next_attempt,
               reason=None if outcome.status == "sent" else outcome.detail)
    if outcome.suppress and d.email:
        store.add_suppression(d.email, "hard_bounce", iso(now), "smtp")
    return _entry(d, outcome.status, subject, msg_id,
                  reason=None if outcome.status == "sent" else outcome.detail)
