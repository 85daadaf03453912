"""`mailflow run`, the cron entry point: pull every API source, import every new export
matching `sources:`, then send. A source that fails says why; what the store holds is still
sent (the stale-data guard holds cart reminders while orders are not fresh)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailflow.config import Config
from mailflow.importing.service import (
    ImportReport,
    expectations,
    import_files,
    merge_reports,
    write_records,
)
from mailflow.importing.webhooks import records_of
from mailflow.sending import SendReport, send_due
from mailflow.starter import refuse_placeholders
from mailflow.store import Store


@dataclass
class RunReport:
    imported: ImportReport
    sent: SendReport
    pulled: Any = None  # a PullReport, when rules.yaml has API sources

    @property
    def exit_code(self) -> int:
        pulled = self.pulled.exit_code if self.pulled is not None else 0
        return max(pulled, self.imported.exit_code, self.sent.exit_code)


def source_files(config: Config) -> list[tuple[Path, object]]:
    """Every file matching a source, in name order (exports are usually dated in their name)."""
    found = []
    for source in config.sources:
        pattern = Path(source.path)
        base = pattern if pattern.is_absolute() else config.folder / pattern
        for path in sorted(base.parent.glob(base.name)):
            if path.is_file():
                found.append((path, source))
    return found


def run_once(store: Store, config: Config, now: datetime, *, recover: bool = True) -> RunReport:
    """Import, then send. `recover`: this run holds the lock (see send_due)."""
    if config.delivery.transport == "smtp":
        refuse_placeholders(config)  # before the imports: a refused run changes nothing
    imported = import_events(store, config, now)  # kept while no `serve` sender was running
    pulled = None
    if config.apis:
        from mailflow.importing.api.pull import pull_all

        pulled = pull_all(store, config, now)
    for path, source in source_files(config):
        mapping = None
        if source.mapping:
            mapping = Path(source.mapping)
            mapping = mapping if mapping.is_absolute() else config.folder / mapping
        merge_reports(imported, import_files(store, [path], tz=config.shop.import_tz, now=now,
                                             fmt=source.format, kind=source.kind, mapping=mapping,
                                             expect=expectations(config)))
    return RunReport(imported, send_due(store, config, now, recover=recover), pulled)


def import_events(store: Store, config: Config, now: datetime) -> ImportReport:
    """Import the webhook events `serve` kept and nobody imported yet, each in one transaction
    with its mark: an event is imported once, whoever does it."""
    report = ImportReport()
    events = store.waiting_webhooks()
    if not events:
        return report
    with store.transaction():
        import_id = store.start_webhook_import(now)
    for event in events:
        records, outcome = records_of(event["platform"], event["topic"], event["body"],
                                      config.shop.tz, now)
        staged = ImportReport()
        with store.transaction():
            if not store.webhook_done(event["id"], now, outcome):
                continue
            writer = store.pull_writer(import_id, event["platform"], now)
            write_records(writer, records, staged, now, event["source"])
        merge_reports(report, staged)
    return report


class EventSender:
    """In `serve`: when webhook events were kept, import them and send what they made due at
    once — under the run lock, as cron does, so a message goes out once whoever sends it.
    When cron holds the lock, it tries again a moment later (cron's run imports them too)."""

    RETRY = 1.0  # seconds before trying the run lock again
    IDLE = 60.0  # seconds between looks for events nobody woke it for

    def __init__(self, config: Config, db: Path,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC).replace(microsecond=0)
                 ) -> None:
        self.config, self.db, self.clock = config, db, clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mailflow-events", daemon=True)
        self._thread.start()
        self.wake()  # events kept while no sender ran

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _loop(self) -> None:
        from mailflow import console

        while not self._stop.is_set():
            self._wake.wait(self.IDLE)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                done = self.run_once()
            except Exception as exc:  # a broken store or SMTP: said, and tried again later
                console.warn(f"serve: importing and sending after webhooks failed: {exc}")
                done = False
            if not done:
                self._stop.wait(self.RETRY)
                self._wake.set()

    def run_once(self) -> bool:
        """False when another run holds the lock."""
        from mailflow import console
        from mailflow.lock import run_lock

        with run_lock(self.db) as holding:
            if not holding:
                return False
            store = Store.open(self.db)
            try:
                now = self.clock()
                imported = import_events(store, self.config, now)
                if not any((imported.orders.inserted, imported.orders.updated,
                            imported.carts.inserted, imported.carts.updated,
                            imported.customers.inserted, imported.customers.updated)):
                    return True  # nothing new: nothing newly due either
                sent = send_due(store, self.config, now, recover=True)
            finally:
                store.close()
        for m in sent.messages:
            if m["status"] in ("failed", "unknown"):
                console.warn(f"serve: {m['status']}: {m['rule']} to {m['to']}: {m['reason']}")
        if sent.blocked:
            console.warn(f"serve: {sent.blocked} (due mail stays queued)")
        return True
