"""What a platform's adapter is: a module that recognises its exports and reads them into
records (shopify.py, woocommerce.py, canonical.py). formats.py picks one per file.

To add a platform: a module with these four functions and KIND_FROM_OPTION, its line in
formats.ADAPTERS, its docs/formats/ page and its tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Protocol

from mailflow.importing.source import CsvTable, JsonDocument
from mailflow.records import Record, Rejected


@dataclass(frozen=True)
class ParseContext:
    name: str  # the file, as the user named it
    tz: tzinfo  # the shop's timezone, for naive timestamps
    now: datetime


class Adapter(Protocol):
    # whether `--kind` may turn its "orders" into "carts": Shopify's two CSV exports share
    # one header, so only the option can tell them apart
    KIND_FROM_OPTION: bool

    def detect_csv(self, header: list[str]) -> str | None:
        """The kind of export this header is, if it is this platform's: orders, carts…"""

    def detect_json(self, data: Any) -> str | None:
        """The same for a parsed JSON document."""

    def read_csv(self, table: CsvTable, kind: str, ctx: ParseContext
                 ) -> Iterator[Record | Rejected]: ...

    def read_json(self, doc: JsonDocument, kind: str, ctx: ParseContext
                  ) -> Iterator[Record | Rejected]: ...
