"""`mailflow run`, the cron entry point: pull every API source, import every new export
matching `sources:`, then send. A source that fails says why; what the store holds is still
sent (the stale-data guard holds cart reminders while orders are not fresh)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mailflow.config import Config, Source
from mailflow.delivery.send import SendReport, send_due
from mailflow.importing.service import ImportReport, expectations, import_files, merge_reports
from mailflow.importing.webhooks import import_events
from mailflow.records import ExitCode
from mailflow.rules.attribution import attribute_orders
from mailflow.starter import refuse_placeholders
from mailflow.store import Store

if TYPE_CHECKING:
    from mailflow.importing.api.pull import PullReport


@dataclass
class RunReport:
    imported: ImportReport
    sent: SendReport
    pulled: PullReport | None = None  # when rules.yaml has API sources

    @property
    def exit_code(self) -> ExitCode:
        pulled = self.pulled.exit_code if self.pulled is not None else ExitCode.OK
        return max(pulled, self.imported.exit_code, self.sent.exit_code)


def source_files(config: Config) -> list[tuple[Path, Source]]:
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
    imported = import_events(store, config.shop.tz, now)  # kept while no `serve` sender ran
    pulled = None
    if config.apis:  # imported only then: a tick without API sources loads none of it
        from mailflow.importing.api.pull import pull_all

        pulled = pull_all(store, config.apis, config.shop.tz, now)
    expect = expectations(config.shop.consent, sends_marketing=config.sends_marketing)
    for path, source in source_files(config):
        mapping = None
        if source.mapping:
            mapping = Path(source.mapping)
            mapping = mapping if mapping.is_absolute() else config.folder / mapping
        merge_reports(imported, import_files(store, [path], tz=config.shop.import_tz, now=now,
                                             fmt=source.format, kind=source.kind, mapping=mapping,
                                             expect=expect))
    attribute_orders(store, config, now)
    return RunReport(imported, send_due(store, config, now, recover=recover), pulled)

