"""What every platform's API source provides to `mailflow pull`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Protocol

from mailflow.config import ApiSettings

if TYPE_CHECKING:  # ssl and email.utils are ~30 ms that a tick without API sources skips
    from mailflow.importing.api.client import HttpClient
from mailflow.importing.records import Record, Rejected

__all__ = ["OVERLAP", "ApiSettings", "Batch", "Platform"]

# Each pull asks again for what changed this long before the watermark: the shop's clock
# and ours differ, and an API may list a change a moment after it is dated.
OVERLAP = timedelta(minutes=10)


@dataclass
class Batch:
    """One page of an API's answer, as records, written in one transaction."""

    what: str  # "orders", "checkouts", "customers": for counts and messages
    records: list[Record | Rejected] = field(default_factory=list)
    newest: datetime | None = None  # the newest `updated_at` among them (the shop's clock)


Sleep = Callable[[float], None]
Clock = Callable[[], datetime]


class Platform(Protocol):
    """A shop platform's API. `fetch` yields every page of what changed since `since`, in
    an order that never skips a record when one changes while it pages (each platform
    says how); `open` makes the client, with the credentials from `env`."""

    name: str

    def open(self, settings: ApiSettings, env: Mapping[str, str], *, sleep: Sleep,
             clock: Clock) -> HttpClient: ...

    def fetch(self, client: HttpClient, settings: ApiSettings, since: datetime,
              tz: tzinfo) -> Iterator[Batch]: ...
