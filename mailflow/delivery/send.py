"""`mailflow send`: decide what is due at `now`, record every decision once, deliver.

A dry run makes the same decisions and renders the same subjects, and writes nothing. Its
messages are rendered one at a time as the report is printed (`SendReport.each_message`), so
that 10,000 due never sit in memory at once.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailflow.clock import iso
from mailflow.config import Config
from mailflow.delivery.connections import ConnectionWorker, deliver_all, render_failed_entry, report_entry
from mailflow.delivery.transports import FileTransport, Transport
from mailflow.errors import MailflowError, RenderError
from mailflow.records import Action, ExitCode, OutboxStatus
from mailflow.render.compose import Composer
from mailflow.rules.engine import PREFETCH, Decision, Planner
from mailflow.rules.offers import low_pools
from mailflow.starter import refuse_placeholders
from mailflow.store import Store


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
    # offer pools with fewer codes left than their warn_below (rules/offers.py): exit 1
    low_pools: list[dict[str, Any]] = field(default_factory=list)
    # a dry run's entries, each rendered when it is read: read once, by each_message()
    pending: Iterator[dict[str, Any]] | None = None
    _streamed: Counter[str] | None = None

    def each_message(self) -> Iterator[dict[str, Any]]:
        """Every message's entry, in order; a dry run's are made as they are read and then
        only counted (`counts` and `exit_code` are final once this is exhausted)."""
        if self.pending is None:
            yield from self.messages
            return
        pending, self.pending = self.pending, None
        self._streamed = Counter()
        for entry in pending:
            self._streamed[entry["status"]] += 1
            yield entry

    @property
    def counts(self) -> dict[str, int]:
        if self._streamed is not None:
            return dict(self._streamed)
        return dict(Counter(m["status"] for m in self.messages))

    @property
    def awaiting_count(self) -> int:
        return sum(n for states in self.awaiting.values() for n in states.values())

    @property
    def exit_code(self) -> ExitCode:
        if self.blocked:
            return ExitCode.BLOCKED
        needs_human = self.recovered or self.awaiting or self.low_pools or \
            {OutboxStatus.FAILED, OutboxStatus.UNKNOWN} & set(self.counts)
        return ExitCode.ATTENTION if needs_human else ExitCode.OK

    def as_json(self, messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """`messages`: in place of the report's own (console.py streams a dry run's)."""
        return {"now": iso(self.now), "dry_run": self.dry_run,
                "messages": self.messages if messages is None else messages,
                "counts": self.counts, "blocked": self.blocked,
                "recovered_unknown": self.recovered,
                "awaiting_human": {"count": self.awaiting_count, "rules": self.awaiting},
                "low_pools": self.low_pools}


def default_transport(config: Config) -> Transport:
    if config.delivery.transport == "smtp" and config.delivery.smtp is not None:
        from mailflow.delivery.smtp import SmtpTransport

        return SmtpTransport(config.delivery.smtp)
    return FileTransport(config.folder / config.delivery.dir)


def send_due(store: Store, config: Config, now: datetime, *, dry_run: bool = False,
             only_rule: str | None = None, limit: int | None = None,
             transport: Transport | None = None, recover: bool = False) -> SendReport:
    """`recover`: the caller holds the run lock, so a message still `sending` belongs to a
    run that died; it becomes `unknown` (maybe delivered) and is never resent by itself.
    `transport`: send through this one instead of `delivery.connections` of the config's."""
    if not dry_run and transport is None and config.delivery.transport == "smtp":
        refuse_placeholders(config)  # before anything changes: exit 2
    recovered = 0
    if recover and not dry_run:
        files = transport if transport is not None else \
            FileTransport(config.folder / config.delivery.dir) \
            if config.delivery.transport != "smtp" else None
        if isinstance(files, FileTransport):  # it can tell what it wrote: never `unknown`
            recovered = store.recover_interrupted(iso(now), files.written)
            files.sweep()
        else:
            recovered = store.recover_interrupted(iso(now))
    planner = Planner(store, config, now)
    decisions = planner.plan(only_rule)
    report = SendReport(now, dry_run, recovered=recovered)
    if config.delivery.rate_limit is not None:
        count, window = config.delivery.rate_limit
        budget = max(count - store.sent_since(iso(now - window)), 0)
        limit = budget if limit is None else min(limit, budget)
    sends = [d for d in decisions if d.action is Action.SEND][:limit]
    chosen = {id(d) for d in sends}  # the others stay due: the next run takes them
    decisions = [d for d in decisions if d.action is not Action.SEND or id(d) in chosen]
    composer = Composer(config, planner) if sends else None
    if dry_run:  # nothing it renders changes these: known before the messages are
        report.awaiting = store.awaiting_human()
        report.low_pools = low_pools(store, config)
        report.pending = _rehearsals(decisions, planner, composer, now)
        return report
    from mailflow.delivery.lock import held
    from mailflow.render.workers import RenderAhead, worker_count, worker_niceness

    connections = 1 if transport is not None or config.delivery.transport != "smtp" else \
        max(min(config.delivery.connections, len(sends)), 1)
    transports = [transport] if transport is not None else \
        [default_transport(config) for _ in range(connections)]
    run_id = store.start_run("send", now, datetime.now(UTC))
    lock = threading.RLock()
    connection_workers = [ConnectionWorker(store, planner, composer, t, now, run_id, lock)
                          for t in transports]
    entries: dict[int, dict[str, Any]] = {}
    try:
        with store.spaced_checkpoints(), \
                RenderAhead(composer, planner, sends, now, worker_count(len(sends)),
                            inherited=held(), niceness=worker_niceness()) as ahead:
            report.blocked = deliver_all(decisions, ahead, connection_workers, entries)
    finally:
        report.messages = [entries[n] for n in sorted(entries)]
        try:
            _close_all(connection_workers)
        finally:
            store.finish_run(run_id, datetime.now(UTC), report.counts)
    report.awaiting = store.awaiting_human()
    report.low_pools = low_pools(store, config)
    return report


def _close_all(workers: list[ConnectionWorker]) -> None:
    """Record each worker's last outcome and end its connection; one failing does not keep
    the others from it (the first failure is raised after)."""
    failure: BaseException | None = None
    for worker in workers:
        try:
            worker.close()
        except BaseException as exc:
            failure = failure or exc
    if failure is not None:
        raise failure


def _rehearsals(decisions: list[Decision], planner: Planner, composer: Composer | None,
                now: datetime) -> Iterator[dict[str, Any]]:
    """A dry run's entries, made as they are read; the rows of each PREFETCH decisions read
    together (planning kept only the latest)."""
    for start in range(0, len(decisions), PREFETCH):
        window = decisions[start:start + PREFETCH]
        planner.prefetch([d for d in window if d.action is Action.SEND])
        for d in window:
            yield _rehearse(d, composer, now) if d.action is Action.SEND \
                else report_entry(d, d.status)


def _rehearse(d: Decision, composer: Composer | None, now: datetime) -> dict[str, Any]:
    """A dry run renders the subject (its template errors surface) and builds nothing."""
    assert composer is not None and composer.planner is not None, \
        "a run with messages to send makes a Composer with its planner"
    rows = composer.planner.context(d)  # outside the try: a damaged store is not this message's
    try:
        message = composer.message_from_rows(d.key, d.rule, d.email, rows, now)
    except RenderError as exc:
        return render_failed_entry(d, exc)
    except MailflowError:
        raise
    except Exception as exc:  # the data of this one message: the real run fails it alone too
        from mailflow.render.templates import render_failure

        return render_failed_entry(d, render_failure(exc, f"{d.rule.template}.html"))
    offer = composer.planner.offers.view(d)
    return report_entry(d, OutboxStatus.WOULD_SEND, message.subject, message.message_id,
                        offer_code=(offer or {}).get("code"))
