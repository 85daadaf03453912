"""`mailflow send`: decide what is due at `now`, record every decision once, deliver.

A dry run makes the same decisions and renders the same subjects, and writes nothing.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from mailflow.clock import iso
from mailflow.config import Config, Rule
from mailflow.errors import EXIT_ATTENTION, EXIT_BLOCKED, EXIT_OK, ConfigError, DeliveryBlocked, RenderError
from mailflow.rules.engine import Decision, Planner
from mailflow.store import Store
from mailflow.tokens import make_token, secret_from_env
from mailflow.transports import FileTransport, Outcome

if TYPE_CHECKING:
    from mailflow.prerender import Prepared


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
        message = self.composed(d.key, d.rule, d.email, self.planner.context(d), now)
        if not build:
            return message.subject, message.message_id, None
        return message.subject, message.message_id, message.build()

    def composed(self, key: str, rule: Rule, email: str | None, rows: dict[str, Any],
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
        for d in decisions:
            report.messages.append(_rehearse(d, composer, now) if d.action == "send"
                                   else _entry(d, d.status))
        return report
    from mailflow.prerender import RenderAhead, worker_count

    run_id = store.start_run("send", now, datetime.now(UTC))
    sender = Sender(store, planner, composer, transport or default_transport(config), now, run_id)
    try:
        with RenderAhead(composer, planner, sends, now, worker_count(len(sends))) as ahead:
            for d in decisions:
                entry = sender.send(d, ahead.take(d)) if d.action == "send" else sender.skip(d)
                if entry is not None:
                    report.messages.append(entry)
            sender.settle()
    except DeliveryBlocked as exc:
        report.blocked = str(exc)
    finally:
        sender.close()
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


@dataclass
class _Outcome:
    """What happened to a claimed message, to be recorded with the next claim."""

    outbox_id: int
    d: Decision
    status: str
    reason: str | None = None
    detail: str | None = None
    subject: str | None = None
    message_id: str | None = None
    suppress: bool = False

    def entry(self) -> dict[str, Any]:
        reason = self.reason if self.status != "failed" or self.reason != "render_error" \
            else f"render_error: {self.detail}"
        return _entry(self.d, self.status, self.subject, self.message_id, reason=reason)


class Sender:
    """Sends one message at a time and records each outcome in the transaction that claims
    the next message: `sent` is committed before the next SMTP command (or QUIT), and a
    message costs one write transaction instead of two."""

    def __init__(self, store: Store, planner: Planner, composer: Composer | None,
                 transport: Transport, now: datetime, run_id: int) -> None:
        self.store, self.planner, self.composer = store, planner, composer
        self.transport, self.now, self.run_id = transport, now, run_id
        self.unrecorded: _Outcome | None = None

    @contextmanager
    def _step(self) -> Iterator[None]:
        """A write transaction that first records the previous outcome."""
        with self.store.transaction():
            if self.unrecorded is not None:
                self._record_outcome(self.unrecorded)
            yield
        self.unrecorded = None

    def skip(self, d: Decision) -> dict[str, Any]:
        with self._step():
            _record(self.store, d, self.now, self.run_id)
        return _entry(d, d.status)

    def send(self, d: Decision, prepared: Prepared | None) -> dict[str, Any] | None:
        with self._step():
            self.planner.decide(d, None)  # the conditions once more, at the moment of sending
            if d.action != "send":
                _record(self.store, d, self.now, self.run_id)
                return _entry(d, d.status)
            outbox_id = self.store.claim(d.row(self.now, self.run_id))
        if outbox_id is None:
            return None  # another run owns it or already decided it
        try:
            subject, msg_id, data = self._message(d, prepared)
        except RenderError as exc:
            self.unrecorded = _Outcome(outbox_id, d, "failed", "render_error", str(exc))
            return self.unrecorded.entry()
        except BaseException as exc:  # nothing was sent: give the message back to the queue
            self._give_back(outbox_id, "error", repr(exc))
            raise
        try:
            outcome = self.transport.deliver(data, sender=self.composer.sender.addr_spec,
                                             recipient=d.email, key=d.key)
        except Exception as exc:  # not handed over: back in the queue, and the batch stops
            blocked = exc if isinstance(exc, DeliveryBlocked) else DeliveryBlocked(
                f"delivery failed: {type(exc).__name__}: {exc}")
            self._give_back(outbox_id, "blocked", str(blocked))
            raise blocked from None
        self.unrecorded = _Outcome(
            outbox_id, d, outcome.status, None if outcome.status == "sent" else outcome.detail,
            outcome.detail, subject, msg_id, outcome.suppress)
        return self.unrecorded.entry()

    def _message(self, d: Decision, prepared: Prepared | None) -> tuple[str, str, bytes]:
        """Rendered ahead from the rows planning read, if the store still says the same;
        else rendered now."""
        if prepared is not None and prepared.rows == self.planner.context(d):
            if prepared.error is not None:
                raise RenderError(prepared.error)
            return prepared.subject, prepared.message_id, prepared.data
        return self.composer.compose(d, self.now)

    def _give_back(self, outbox_id: int, reason: str, detail: str) -> None:
        now = iso(self.now)
        with self._step():
            self.store.mark(outbox_id, "deferred", now, reason=reason, detail=detail,
                            next_attempt_at=now)

    def _record_outcome(self, o: _Outcome) -> None:
        now = iso(self.now)
        next_attempt = None
        if o.status == "deferred":
            next_attempt = iso(self.now + retry_delay(self.store.attempts(o.outbox_id)))
        self.store.mark(o.outbox_id, o.status, now, reason=o.reason, subject=o.subject,
                        message_id=o.message_id, next_attempt_at=next_attempt, detail=o.detail)
        if o.suppress and o.d.email:
            self.store.add_suppression(o.d.email, "hard_bounce", now, "smtp")

    def settle(self) -> None:
        """Record the last outcome."""
        if self.unrecorded is not None:
            with self._step():
                pass

    def close(self) -> None:
        try:
            self.settle()
        finally:
            self.transport.close()
