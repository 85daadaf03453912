"""One file's records, checked and grouped in batches for the store's writer.

A big file is read in a second process while this one writes the batches it has already
received: parsing a big export and writing it into SQLite take about as long as each other,
and each has a core of its own. The second process only reads the file and sends what it
made through a pipe; every write, and the transaction, stay in this process, so an import
is still one transaction: it commits only after the reader said it reached the end.
"""

from __future__ import annotations

import multiprocessing
import sys
import traceback
from collections.abc import Generator
from contextlib import suppress
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

from mailflow.clock import AssumedUTC
from mailflow.errors import MailflowError
from mailflow.importing.addresses import check_address
from mailflow.importing.formats import OpenedExport, ParseContext
from mailflow.records import Cart, Customer, Fulfillment, Line, Order, Rejected, Unsubscribe

BATCH = 5000
READ_APART_BYTES = 8 << 20  # from this size on, a file is read in a second process


@dataclass
class Noticed:
    """What one file's records showed, for its warnings."""

    people: int = 0
    with_consent: int = 0
    without_email_column: bool = False
    without_status_column: bool = False
    pending_from_dates: int = 0


@dataclass
class Batch:
    record_type: type
    records: list
    bytes_read: int | None  # how far into the file, for progress; None for the last ones


@dataclass
class Rejection:
    line: int | None
    reason: str


@dataclass
class End:
    """The reader reached the end of the file."""

    records: int
    rows: int  # CSV data rows, or records
    warnings: list[str] = field(default_factory=list)  # what reading the file itself found
    noticed: Noticed = field(default_factory=Noticed)
    assumed_utc: bool = False  # some of its times had no offset and the shop sets no timezone


Staged = Batch | Rejection | End


def can_read_apart() -> bool:
    return sys.platform == "linux"  # fork: the reader inherits the open file as it is


def staged(export: OpenedExport, ctx: ParseContext) -> Generator[Staged, None, None]:
    """Every record of the file, in order: rejections one by one, the rest in batches of
    one record type; End last."""
    noticed = Noticed()
    batches: dict[type, list] = {Order: [], Cart: [], Customer: [], Unsubscribe: [],
                                 Fulfillment: []}
    records = 0
    for record in export.records(ctx):
        records += 1
        if isinstance(record, Rejected):
            yield Rejection(record.line, record.reason)
            continue
        problem = check_people(record)
        if problem:
            yield Rejection(record.line, problem)
            continue
        notice(noticed, record)
        batch = batches[type(record)]
        batch.append(record)
        if len(batch) >= BATCH:
            batches[type(record)] = []
            yield Batch(type(record), batch, export.bytes_read())
    for record_type, batch in batches.items():
        if batch:
            yield Batch(record_type, batch, None)
    rows = export.rows_read() if export.rows_read else records
    assumed = isinstance(ctx.tz, AssumedUTC) and ctx.tz.used
    yield End(records, rows, export.warnings(), noticed, assumed)


def read_apart(export: OpenedExport, ctx: ParseContext, name: str,
               ) -> Generator[Staged, None, None]:
    """`staged(export, ctx)`, made by a second process. Close the iterator when done with it
    (contextlib.closing): closing it early stops that process."""
    fork = multiprocessing.get_context("fork")
    receiving, sending = fork.Pipe(duplex=False)
    reader = fork.Process(target=_read, args=(sending, receiving, export, ctx), daemon=True)
    reader.start()
    sending.close()
    try:
        while True:
            try:
                item = receiving.recv()
            except EOFError:
                raise RuntimeError(f"{name}: the process reading the file stopped before"
                                   " its end") from None
            if isinstance(item, _Failed):
                raise item.error()
            yield item.unpacked() if isinstance(item, _Packed) else item
            if isinstance(item, End):
                return
    finally:
        receiving.close()
        if reader.is_alive():
            reader.kill()
        reader.join()


@dataclass
class _Failed:
    """What stopped the reader, to be raised again here: a MailflowError as it was (its
    one-line message), anything else as the bug it is, with the reader's traceback."""

    kind: type[MailflowError] | None
    args: tuple
    details: tuple[str, ...]
    trace: str

    def error(self) -> Exception:
        if self.kind is None:
            return RuntimeError(f"in the process reading the file:\n{self.trace}")
        failure = self.kind(*self.args)
        failure.details = self.details
        return failure


class _Packing:
    """A batch's records as tuples of their fields (a line as a tuple of its own): pickled
    and unpickled by C code alone, three times cheaper than the dataclasses themselves."""

    def __init__(self, record_type: type) -> None:
        self.record_type = record_type
        names = [f.name for f in fields(record_type)]
        self.values = attrgetter(*names)
        self.lines_at = names.index("lines") if "lines" in names else None

    def pack(self, records: list) -> list[tuple]:
        values = self.values
        if self.lines_at is None:
            return [values(r) for r in records]
        at = self.lines_at
        packed = []
        for record in records:
            fields_ = list(values(record))
            fields_[at] = [_LINE(ln) for ln in fields_[at]]
            packed.append(tuple(fields_))
        return packed

    def unpack(self, packed: list[tuple]) -> list:
        make = self.record_type
        if self.lines_at is None:
            return [make(*values) for values in packed]
        at = self.lines_at
        records = []
        for values in packed:
            record = make(*values)
            record.lines = [Line(*ln) for ln in values[at]]
            records.append(record)
        return records


_LINE = attrgetter(*(f.name for f in fields(Line)))
_PACKINGS: dict[type, _Packing] = {t: _Packing(t) for t in (Order, Cart, Customer, Unsubscribe,
                                                            Fulfillment)}


@dataclass
class _Packed:
    record_type: type
    records: list[tuple]
    bytes_read: int | None

    def unpacked(self) -> Batch:
        return Batch(self.record_type, _PACKINGS[self.record_type].unpack(self.records),
                     self.bytes_read)


def _read(sending: Any, receiving: Any, export: OpenedExport, ctx: ParseContext) -> None:
    receiving.close()  # or the pipe would outlive a killed import, and this process with it
    try:
        for item in staged(export, ctx):
            if isinstance(item, Batch):
                packing = _PACKINGS[item.record_type]
                sending.send(_Packed(item.record_type, packing.pack(item.records),
                                     item.bytes_read))
            else:
                sending.send(item)
    except (KeyboardInterrupt, BrokenPipeError):
        pass  # this process stopped: it says why itself
    except BaseException as exc:  # sent, to be raised where it is handled
        if isinstance(exc, MailflowError):
            failure = _Failed(type(exc), exc.args, exc.details, "")
        else:
            failure = _Failed(None, (), (), traceback.format_exc())
        with suppress(OSError, ValueError):
            sending.send(failure)
    finally:
        sending.close()


def check_people(record: object) -> str | None:
    """Validate the address in place; customers and unsubscribes cannot exist without one."""
    if isinstance(record, Order | Cart):
        checked = check_address(record.email)
        record.email_raw = record.email
        record.email, record.email_key, record.email_problem = (
            checked.email, checked.key, checked.problem)
        return None
    if isinstance(record, Customer | Unsubscribe):
        checked = check_address(record.email)
        if checked.problem:
            return checked.problem.replace("_", " ", 1)
        record.email = checked.email
    return None


def notice(noticed: Noticed, record: object) -> None:
    # who a file introduces (with an address) should come with their consent; a file that
    # only updates stored orders' statuses need not
    introduces = not isinstance(record, Order) or record.carried is None or \
        "email" in record.carried
    if isinstance(record, Order | Cart | Customer) and introduces:
        noticed.people += 1
        noticed.with_consent += record.accepts_marketing is not None
    if isinstance(record, Order) and record.carried is not None:
        noticed.without_email_column |= "email" not in record.carried
        if "status" not in record.carried:
            noticed.without_status_column = True
            noticed.pending_from_dates += record.status == "pending_payment"
