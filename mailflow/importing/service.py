"""`mailflow import`: shop exports into the store, one transaction per file."""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from mailflow.clock import AssumedUTC
from mailflow.errors import MailflowError, NotAnExport
from mailflow.importing.adapter import ParseContext
from mailflow.importing.formats import open_export
from mailflow.importing.source import file_stat, open_source
from mailflow.importing.staging import Batch, Noticed, Rejection, check_people
from mailflow.importing.staging import staged as staged_records
from mailflow.records import (
    Cart,
    Customer,
    ExitCode,
    Order,
    Product,
    Record,
    Rejected,
    Unsubscribe,
)
from mailflow.store import ImportWriter, Store
from mailflow.store.products import ProductCounts, write_products
from mailflow.store.writes import Counts

Progress = Callable[[str, int, int], None]  # (file, bytes done, bytes total)
# The page cache of a big file's transaction: each batch's customers and e-mail index
# entries land on random pages, read again from the file while they do not fit (1M rows:
# 16 MB 21.1 s, 32 MB 20.1, 64 MB 19.8, 128 MB 20.2). Memory stays flat: a fixed bound.
IMPORT_CACHE_MIB = 64


@dataclass
class Tally:
    inserted: int = 0
    updated: int = 0

    def add(self, counts: Counts | ProductCounts) -> None:
        self.inserted += counts.inserted
        self.updated += counts.updated


@dataclass
class FileResult:
    path: str
    format: str | None = None
    kind: str | None = None
    rows: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None  # why the file was not read: already imported
    error: str | None = None  # why the file was refused (nothing changed)
    warnings: list[str] = field(default_factory=list)  # imported, but a human should know


@dataclass
class ImportReport:
    files: list[FileResult] = field(default_factory=list)
    orders: Tally = field(default_factory=Tally)
    carts: Tally = field(default_factory=Tally)
    customers: Tally = field(default_factory=Tally)
    lines: int = 0
    status_changes: int = 0
    unsubscribes: int = 0
    products: Tally = field(default_factory=Tally)

    @property
    def exit_code(self) -> ExitCode:
        if any(f.error for f in self.files):
            return ExitCode.USAGE
        if any(f.rejected or f.warnings for f in self.files):
            return ExitCode.ATTENTION
        return ExitCode.OK

    def as_json(self) -> dict[str, Any]:
        return {
            "files": [{k: v for k, v in asdict(f).items() if v is not None or k in
                       ("format", "kind")} for f in self.files],
            "orders": asdict(self.orders),
            "carts": asdict(self.carts),
            "customers": asdict(self.customers),
            "lines": self.lines,
            "status_changes": self.status_changes,
            "unsubscribes": self.unsubscribes,
            "products": asdict(self.products),
        }


@dataclass
class Expectations:
    """What the shop's rules.yaml makes a human want to hear about a file."""

    consent: str | None = None  # marketing rules are on: shop.consent (optional|required)


def expectations(consent: str, *, sends_marketing: bool) -> Expectations:
    """What this shop's rules make worth saying about an import: consent (`shop.consent`)
    matters only while some marketing rule is on."""
    return Expectations(consent=consent if sends_marketing else None)


def import_files(store: Store, paths: Iterable[str | Path], *, tz: tzinfo | None, now: datetime,
                 fmt: str | None = None, kind: str | None = None,
                 mapping: Path | None = None, progress: Progress | None = None,
                 expect: Expectations | None = None) -> ImportReport:
    """Import each file in its own transaction. A refused file changes nothing and the others
    still import; the report's exit code says the worst that happened. `tz`: the timezone of
    naive timestamps; None when the shop set none (read as UTC, and the file says so)."""
    files = [Path(p) for p in paths]
    for path in files:  # a typo in one name must not leave the others half-done
        if not path.is_file():
            raise MailflowError(f"{path}: no such file")
    report = ImportReport()
    for path in files:
        result = FileResult(str(path))
        report.files.append(result)
        try:
            _import_one(store, path, result, report, tz=tz, now=now, fmt=fmt, kind=kind,
                        mapping=mapping, progress=progress, expect=expect or Expectations())
        except NotAnExport as exc:
            result.error = str(exc)
            result.rows, result.rejected = 0, []
    return report


def _import_one(store: Store, path: Path, result: FileResult, report: ImportReport, *,
                tz: tzinfo | None, now: datetime, fmt: str | None, kind: str | None,
                mapping: Path | None, progress: Progress | None, expect: Expectations) -> None:
    where, options = str(path.absolute()), _read_with(fmt, kind, mapping)
    stat = file_stat(path)
    known = store.recognised_file(where, options, stat) if stat is not None else None
    if known is not None:  # unchanged since it was imported: not even opened
        result.format, result.kind = known
        result.skipped = "already imported"
        return
    source = open_source(path)
    export = open_export(source, fmt=fmt, kind=kind, mapping_path=mapping)
    result.format, result.kind = export.format, export.kind

    def unchanged_since_stat() -> bool:  # a file being written is read again next time
        return stat is not None and file_stat(path) == stat

    try:
        done = store.import_done(source.sha256, export.kind)
        if done:
            result.skipped = "already imported"
            if stat is not None and unchanged_since_stat():  # touched, copied or moved
                with store.transaction():
                    store.remember_file(where, options, stat, done["id"], now)
            return
        zone = tz if tz is not None else AssumedUTC()  # and the file will say so
        assumed = zone if isinstance(zone, AssumedUTC) else None
        ctx = ParseContext(source.name, zone, now)
        staged = ImportReport()  # counted apart, merged only once the file has committed
        cache = store.bulk_cache(IMPORT_CACHE_MIB) if source.size > 8 << 20 else nullcontext()
        with cache, _few_collections(), store.transaction():
            # each batch is written while the next is read; all of it before the commit
            with store.import_writer(path=source.name, sha256=source.sha256,
                                     fmt=export.format, kind=export.kind, now=now) as writer:
                end = None
                for item in staged_records(export, ctx):
                    if isinstance(item, Rejection):
                        result.rejected.append(_rejection(item.line, item.reason))
                    elif isinstance(item, Batch):
                        result.rejected += _flush(writer, item.record_type, item.records,
                                                  staged, now, source.name)
                        if progress and item.bytes_read is not None:
                            progress(source.name, item.bytes_read, source.size)
                    else:
                        end = item
            if end is None:
                raise RuntimeError(f"{source.name}: the records ended without their end")
            staged.customers.add(writer.customers)
            result.rows = end.rows
            result.warnings = [*end.warnings, *_warnings(end.noticed, staged, expect, assumed)]
            store.finish_import(writer.import_id, result.rows, len(result.rejected),
                                json.dumps(staged.as_json()))
            if stat is not None and unchanged_since_stat():
                store.remember_file(where, options, stat, writer.import_id, now)
        if progress:
            progress(source.name, source.size, source.size)
        merge_reports(report, staged)
    finally:
        export.close()


@contextmanager
def _few_collections() -> Iterator[None]:
    """Rarer cyclic garbage collections while a file imports: every row allocates lists and
    records that reference counting frees, yet each 700 allocations started a collection that
    walked the batch in hand (a sixth of the import's CPU on 1M rows); memory stays bounded."""
    before = gc.get_threshold()
    gc.freeze()  # what the process holds already (modules, config) is never walked again
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def _read_with(fmt: str | None, kind: str | None, mapping: Path | None) -> str:
    """The options a file is read with: another --format, --kind or mapping (or a changed
    mapping file) may read the same file differently, so it is recognised only under the same."""
    described = None if mapping is None else [str(mapping.absolute()), file_stat(mapping)]
    return json.dumps([fmt, kind, described])


def _warnings(noticed: Noticed, staged: ImportReport, expect: Expectations,
              assumed: AssumedUTC | None) -> list[str]:
    """What a human should know about a file that imported: each said once, here."""
    found = []
    if expect.consent and noticed.people and not noticed.with_consent:
        found.append(
            f"no marketing consent for any of its {noticed.people} records (no column such as"
            " 'Accepts Email Marketing', no newsletter plugin's order meta, or every one"
            " empty): "
            + ("with shop.consent: optional, marketing e-mails go to them as to customers who"
               " agreed; set shop.consent: required, or import a customers export that says"
               if expect.consent == "optional" else
               "with shop.consent: required, none of them gets a marketing e-mail"))
    new_orders = staged.orders.inserted
    if noticed.without_email_column and new_orders:
        found.append(f"no e-mail column: its {new_orders} new orders have no address, and no"
                     " e-mail goes to them (skipped as missing_email); export it again with the"
                     " Email column")
    if noticed.without_status_column and new_orders:
        found.append(f"no status column: new orders took their status from their dates"
                     f" ({noticed.pending_from_dates} without any now await payment, and get"
                     " the payment-pending e-mail); map the status column, or set"
                     " `defaults: {status: paid}` in the mapping")
    if assumed is not None and assumed.used:
        found.append("its times have no UTC offset and rules.yaml sets no shop.timezone: they"
                     " were read as UTC; set shop.timezone (e.g. Europe/Paris) before the next"
                     " import")
    return found


def _flush(writer: ImportWriter, record_type: type, batch: list, staged: ImportReport,
           now: datetime, name: str) -> list[dict[str, Any]]:
    """Write one batch; returns the records the store could not place, as rejections."""
    if record_type is Customer:
        writer.write_customers(batch, now)
        return []
    if record_type is Unsubscribe:
        staged.unsubscribes += writer.unsubscribes(batch, now, f"import:{name}")
        return []
    if record_type is Product:
        staged.products.add(write_products(writer.conn, batch, writer.import_id, writer.now))
        return []
    if record_type is Order:
        counts = writer.orders(batch)
    elif record_type is Cart:
        counts = writer.carts(batch)
    else:
        counts = writer.fulfillments(batch)
    (staged.carts if record_type is Cart else staged.orders).add(counts)
    staged.lines += counts.lines
    staged.status_changes += counts.status_changes
    return [_rejection(line, reason) for line, reason in counts.rejected]


SHOWN = 80  # characters of a cell a rejection quotes: a 100 MB cell is not a message
_QUOTED = re.compile(r"""(['"])((?:\\.|(?!\1).)*)\1""", re.DOTALL)


def _rejection(line: int | None, reason: str) -> dict[str, Any]:
    """A rejected row for the report: each quoted value cut to SHOWN characters."""
    def cut(match: re.Match[str]) -> str:
        quote, text = match.group(1), match.group(2)
        return match.group(0) if len(text) <= SHOWN else \
            f"{quote}{text[:SHOWN]}{quote}… ({len(text):,} characters)"

    if len(reason) > SHOWN:
        reason = _QUOTED.sub(cut, reason)
        if len(reason) > 4 * SHOWN:
            reason = reason[:4 * SHOWN] + "…"
    return {"line": line, "reason": reason}


def write_records(writer: ImportWriter, records: Iterable[Record | Rejected],
                  staged: ImportReport, now: datetime, name: str) -> list[dict[str, Any]]:
    """Validate and write records that came together (a page of a pull, one webhook): the
    same checks and writes as a file's. Returns what could not be used, as rejections
    named by record (an API has no lines). Call inside `Store.transaction()`."""
    rejected: list[dict[str, Any]] = []
    batches: dict[type, list] = {}
    for record in records:
        if isinstance(record, Rejected):
            rejected.append(_rejection(record.line, record.reason))
            continue
        problem = check_people(record)
        if problem:
            rejected.append(_rejection(record.line, problem))
            continue
        batches.setdefault(type(record), []).append(record)
    for record_type, batch in batches.items():
        rejected += _flush(writer, record_type, batch, staged, now, name)
    staged.customers.add(writer.customers)
    return rejected


def merge_reports(report: ImportReport, staged: ImportReport) -> None:
    """Add `staged`'s files and counts to `report`."""
    report.files += staged.files
    for name in ("orders", "carts", "customers", "products"):
        getattr(report, name).inserted += getattr(staged, name).inserted
        getattr(report, name).updated += getattr(staged, name).updated
    report.lines += staged.lines
    report.status_changes += staged.status_changes
    report.unsubscribes += staged.unsubscribes
