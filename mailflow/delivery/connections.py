"""Delivering a run's messages: one ConnectionWorker per connection, each sending one message
at a time and recording each outcome in the transaction that claims its next message, so
`sent` is committed before the next message's content leaves (or QUIT), in one write
transaction a message. A worker knows its next message while it sends one, so that the
next envelope leaves behind this message (delivery/smtp.py): it delivers nothing until that
message is claimed and its content sent.

With `delivery.connections` above 1, workers run in threads, one SMTP connection each: a
slow server's replies are waited for side by side. Everything but the SMTP exchange (the
store, the planner, rendering) runs under one lock, so the threads never share a step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mailflow.clock import iso
from mailflow.delivery.transports import Transport
from mailflow.errors import DeliveryBlocked, MailflowError, RenderError
from mailflow.records import Action, OutboxStatus
from mailflow.rules.engine import Decision, Planner
from mailflow.rules.offers import NO_CODE_LEFT
from mailflow.store import Store

if TYPE_CHECKING:
    from mailflow.render.compose import Composer
    from mailflow.render.workers import Built, Prepared, RenderAhead


def report_entry(d: Decision, status: OutboxStatus, subject: str | None = None,
                 msg_id: str | None = None, reason: str | None = None,
                 offer_code: str | None = None) -> dict[str, Any]:
    """One line of the report; `reason` overrides the decision's own (an SMTP reply);
    `offer_code`: the code the message carries (or would, in a dry run)."""
    if reason is None:
        reason = d.reason
        if status is OutboxStatus.DEFERRED and d.next_attempt_at is not None:
            reason = f"{d.reason} until {iso(d.next_attempt_at)}"
    return {"rule": d.rule.name, "to": d.email, "subject": subject, "status": status,
            "reason": reason, "message_id": msg_id, "key": d.key, "due_at": iso(d.due_at),
            "offer_code": offer_code}


def render_failed_entry(d: Decision, exc: RenderError) -> dict[str, Any]:
    return report_entry(d, OutboxStatus.FAILED, reason=f"render_error: {exc}")


def _record(store: Store, d: Decision, now: datetime, run_id: int | None) -> None:
    row = d.row(now, run_id)
    if d.recorded:
        store.update_decision(d.key, row["status"], d.reason, row["next_attempt_at"], iso(now))
    else:
        store.record_decision(row)


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff for a deferred message: 5 min, 10, 20… at most 6 hours."""
    return min(timedelta(minutes=5) * 2 ** max(attempts - 1, 0), timedelta(hours=6))


@dataclass
class _Pending:
    """What happened to a claimed message, not yet recorded: it goes in with the next claim."""

    outbox_id: int
    d: Decision
    status: OutboxStatus
    reason: str | None = None
    detail: str | None = None
    subject: str | None = None
    message_id: str | None = None
    suppress: bool = False
    locale: str | None = None
    tracked: bool | None = None


class ConnectionWorker:
    """The worker of one connection (its transport): sends one message at a time and records
    each outcome in the transaction that claims the next message, so `sent` is committed
    before the next SMTP command (or QUIT), and a message costs one write transaction."""

    def __init__(self, store: Store, planner: Planner, composer: Composer | None,
                 transport: Transport, now: datetime, run_id: int,
                 lock: threading.RLock | None = None) -> None:
        self.store, self.planner, self.composer = store, planner, composer
        self.transport, self.now, self.run_id = transport, now, run_id
        self.lock = lock or threading.RLock()  # shared by the workers of one run
        self.unrecorded: _Pending | None = None

    @contextmanager
    def _step(self) -> Iterator[None]:
        """A write transaction that first records the previous outcome. If it rolls back,
        everything in it is undone (a claim too: nothing was sent) and that outcome is
        still to be recorded."""
        with self.lock:
            previous, self.unrecorded = self.unrecorded, None
            try:
                with self.store.transaction():
                    if previous is not None:
                        self._record_outcome(previous)
                    yield
            except BaseException:
                self.unrecorded = previous
                raise

    def skip(self, d: Decision) -> dict[str, Any]:
        with self._step():
            self._record(d)
        return report_entry(d, d.status)

    def _record(self, d: Decision) -> None:
        """A decision not to send now; a message that will not go gives its code back."""
        _record(self.store, d, self.now, self.run_id)
        if d.action in (Action.SKIP, Action.FAIL):
            self.planner.offers.give_back(d)

    def send(self, d: Decision, prepared: Prepared | None,
             then: Decision | None = None,
             while_waiting: Callable[[], None] | None = None) -> dict[str, Any] | None:
        """Re-check and claim (one transaction), render unless rendered ahead from rows still
        current, send. Only the SMTP exchange runs outside the lock shared by the workers.
        `then`: the message this worker sends next, whose envelope may go out ahead;
        `while_waiting`: run while the server answers, if the message leaves (Transport)."""
        with self._step():
            self.planner.decide(d, None)  # the conditions once more, at the moment of sending
            if d.action is not Action.SEND:
                self._record(d)
                return report_entry(d, d.status)
            # the reference its tracked links name it by: computed from the key alone, as the
            # render workers did ahead
            claim = d.row(self.now, self.run_id) | {
                "reference": self._composer().reference(d.key, d.rule)}
            outbox_id = self.store.claim(claim)
            if outbox_id is None:
                return None  # another run owns it or already decided it
            if not self.planner.offers.take(d, outbox_id):  # its code, in the claim's transaction
                self.store.mark(outbox_id, OutboxStatus.SKIPPED, iso(self.now), reason=NO_CODE_LEFT)
                return report_entry(d, OutboxStatus.SKIPPED, reason=NO_CODE_LEFT)
            rows = self.planner.context(d)  # what the store says now
        try:
            subject, msg_id, data, locale, tracked = self._message(d, prepared, rows)
        except RenderError as exc:  # this message only: the run goes on with the others
            entry = render_failed_entry(d, exc)
            self.unrecorded = _Pending(outbox_id, d, OutboxStatus.FAILED, entry["reason"], str(exc))
            return entry
        except BaseException as exc:  # nothing was sent: give the message back
            self._give_back(outbox_id, "error", repr(exc))
            raise
        try:
            mail_from = self._composer().mail_from
            outcome = self.transport.deliver(
                data, mail_from=mail_from, recipient=d.email or "", key=d.key,
                then=(mail_from, then.email) if then is not None and then.email else None,
                while_waiting=while_waiting)
        except Exception as exc:  # not handed over: back in the queue, and the batch stops
            blocked = exc if isinstance(exc, DeliveryBlocked) else DeliveryBlocked(
                f"delivery failed: {type(exc).__name__}: {exc}")
            self._give_back(outbox_id, "blocked", str(blocked))
            raise blocked from None
        reason = None if outcome.status is OutboxStatus.SENT else outcome.detail
        self.unrecorded = _Pending(outbox_id, d, outcome.status, reason, outcome.detail,
                                   subject, msg_id, outcome.suppress, locale, tracked)
        if outcome.suppress:  # another connection's next re-check must see the bounce
            self.settle()
        code = (rows.get("offer") or {}).get("code")
        return report_entry(d, outcome.status, subject, msg_id, reason=reason,
                            offer_code=None if outcome.status is OutboxStatus.FAILED else code)

    def _message(self, d: Decision, prepared: Prepared | None, rows: dict[str, Any]
                 ) -> Built:
        """Rendered ahead, if from the rows the store still has; else rendered now (outside
        the transaction: SQLite's write lock is not held while a message renders)."""
        if prepared is not None and prepared.rows == rows:
            return prepared.built()
        with self.lock:
            try:
                message = self._composer().message_from_rows(d.key, d.rule, d.email, rows,
                                                             self.now)
                return (message.subject, message.message_id, message.build(), message.locale,
                        message.tracked)
            except MailflowError:  # a RenderError, or a config problem that stops the run
                raise
            except Exception as exc:  # this message's data (a view, a date): it fails alone
                from mailflow.render.templates import render_failure

                raise render_failure(exc, f"{d.rule.template}.html") from None

    def _composer(self) -> Composer:
        assert self.composer is not None, "a run with messages to send makes a Composer"
        return self.composer

    def _give_back(self, outbox_id: int, reason: str, detail: str) -> None:
        now = iso(self.now)
        with self._step():
            self.store.mark(outbox_id, OutboxStatus.DEFERRED, now, reason=reason, detail=detail,
                            next_attempt_at=now)

    def _record_outcome(self, o: _Pending) -> None:
        now = iso(self.now)
        next_attempt = None
        if o.status is OutboxStatus.DEFERRED:
            next_attempt = iso(self.now + retry_delay(self.store.attempts(o.outbox_id)))
        self.store.mark(o.outbox_id, o.status, now, reason=o.reason, subject=o.subject,
                        message_id=o.message_id, next_attempt_at=next_attempt, detail=o.detail,
                        locale=o.locale, tracked=o.tracked)
        if o.suppress and o.d.email:
            self.store.add_suppression(o.d.email, "hard_bounce", now, "smtp")
        if o.status is OutboxStatus.FAILED:  # refused or never built: nobody saw its code
            self.planner.offers.give_back(o.d)

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


def deliver_all(decisions: list[Decision], ahead: RenderAhead,
                workers: list[ConnectionWorker],
                entries: dict[int, dict[str, Any]]) -> str | None:
    """Record the skips of `decisions`, then send its sends, in order, over `workers` (which
    share one lock). Fills `entries` (report lines by position in `decisions`) as it goes;
    returns why delivery stopped (DeliveryBlocked), if it did. Each worker records its last
    outcome as soon as it runs out of work."""
    queue: list[tuple[int, Decision]] = []
    for number, d in enumerate(decisions):
        if d.action is Action.SEND:
            queue.append((number, d))
        else:
            entries[number] = workers[0].skip(d)
    work = iter(queue)
    stop = threading.Event()
    problems: list[BaseException] = []
    lock = workers[0].lock

    def take() -> tuple[int, Decision, Prepared | None] | None:
        with lock:
            item = next(work, None)
            return None if item is None else (*item, ahead.take(item[1]))

    def run(worker: ConnectionWorker) -> None:
        try:  # each worker takes its next message before sending one: its envelope goes ahead
            item = take()
            while item is not None and not stop.is_set():
                number, d, prepared = item
                item = take()
                entry = worker.send(d, prepared, then=None if item is None else item[1])
                if entry is not None:
                    entries[number] = entry
            worker.settle()
        except BaseException as exc:
            problems.append(exc)
            stop.set()

    def run_alone(worker: ConnectionWorker) -> None:
        """One connection: the next message's rendering is fetched from the workers while
        the server answers this one's dot, not after."""
        try:
            item = next(work, None)
            prepared = None if item is None else ahead.take(item[1])
            while item is not None:
                number, d = item
                item = next(work, None)
                following = None if item is None else _Following(ahead, item[1])
                entry = worker.send(d, prepared, then=None if item is None else item[1],
                                    while_waiting=following)
                if entry is not None:
                    entries[number] = entry
                prepared = None if following is None else following.result()
            worker.settle()
        except BaseException as exc:
            problems.append(exc)

    if len(workers) == 1:
        run_alone(workers[0])
    else:
        threads = [threading.Thread(target=run, args=(s,), daemon=True) for s in workers]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        except BaseException:  # Ctrl-C: each connection ends its message, then all stop
            stop.set()
            for thread in threads:
                thread.join()
            raise
    other = next((p for p in problems if not isinstance(p, DeliveryBlocked)), None)
    if other is not None:
        raise other
    return next((str(p) for p in problems if isinstance(p, DeliveryBlocked)), None)


class _Following:
    """The next message's `RenderAhead.take`, called while the server answers the message
    before it (Transport's while_waiting, which must not raise), or else after it: once."""

    def __init__(self, ahead: RenderAhead, d: Decision) -> None:
        self.ahead, self.d = ahead, d
        self.taken = False
        self.prepared: Prepared | None = None
        self.error: BaseException | None = None

    def __call__(self) -> None:
        if not self.taken:
            self.taken = True
            try:
                self.prepared = self.ahead.take(self.d)
            except BaseException as exc:  # raised once the message sent meanwhile is recorded
                self.error = exc

    def result(self) -> Prepared | None:
        self()
        if self.error is not None:
            raise self.error
        return self.prepared
