"""`mailflow run`, the cron entry point: import every new export matching `sources:`, then send."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mailflow.config import Config, Source
from mailflow.delivery.send import SendReport, send_due
from mailflow.importing.service import ImportReport, expectations, import_files, merge_reports
from mailflow.records import ExitCode
from mailflow.starter import refuse_placeholders
from mailflow.store import Store


@dataclass
class RunReport:
    imported: ImportReport
    sent: SendReport

    @property
    def exit_code(self) -> ExitCode:
        return max(self.imported.exit_code, self.sent.exit_code)


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
    imported = ImportReport()
    expect = expectations(config.shop.consent, sends_marketing=config.sends_marketing)
    for path, source in source_files(config):
        mapping = None
        if source.mapping:
            mapping = Path(source.mapping)
            mapping = mapping if mapping.is_absolute() else config.folder / mapping
        merge_reports(imported, import_files(store, [path], tz=config.shop.import_tz, now=now,
                                             fmt=source.format, kind=source.kind, mapping=mapping,
                                             expect=expect))
    return RunReport(imported, send_due(store, config, now, recover=recover))
