"""One file's records, checked and grouped in batches for the store's writer, in the order
the file gives them: rejections one by one, the rest by record type."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

from mailflow.importing.addresses import check_address
from mailflow.importing.formats import OpenedExport, ParseContext
from mailflow.records import Cart, Customer, Fulfillment, Order, Product, Rejected, Unsubscribe

BATCH = 5000


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
    """The end of the file was reached."""

    records: int
    rows: int  # CSV data rows, or records
    warnings: list[str] = field(default_factory=list)  # what reading the file itself found
    noticed: Noticed = field(default_factory=Noticed)


Staged = Batch | Rejection | End


def staged(export: OpenedExport, ctx: ParseContext) -> Generator[Staged, None, None]:
    """Every record of the file, in order: rejections one by one, the rest in batches of
    one record type; End last."""
    noticed = Noticed()
    batches: dict[type, list] = {Order: [], Cart: [], Customer: [], Unsubscribe: [],
                                 Fulfillment: [], Product: []}
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
            batch.clear()  # written by now: not kept while the next batch fills
    for record_type, batch in batches.items():
        if batch:
            yield Batch(record_type, batch, None)
    rows = export.rows_read() if export.rows_read else records
    yield End(records, rows, export.warnings(), noticed)


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
