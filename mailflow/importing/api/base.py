"""What every platform's API source provides to `mailflow pull`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

from mailflow.errors import ConfigError
from mailflow.importing.api.client import HttpClient
from mailflow.importing.records import Record, Rejected

PLATFORMS = ("shopify", "woocommerce", "prestashop")
BACKFILL = timedelta(days=30)
# Each pull asks again for what changed this long before the watermark: the shop's clock
# and ours differ, and an API may list a change a moment after it is dated.
OVERLAP = timedelta(minutes=10)


@dataclass
class ApiSettings:
    """One `sources:` entry with `platform:` (docs/sources.md)."""

    name: str  # what `pull --source` and messages call it; the platform's name by default
    platform: str
    url: str
    line: int = 0  # its line in rules.yaml, for messages
    api_version: str | None = None  # Shopify: pinned, e.g. "2025-10"
    token_env: str | None = None  # Shopify: the Admin API access token
    key_env: str | None = None  # WooCommerce consumer key, PrestaShop webservice key
    secret_env: str | None = None  # WooCommerce consumer secret
    webhook_secret_env: str | None = None  # signs the platform's webhooks to `serve`
    backfill: timedelta = BACKFILL
    page_size: int = 100

    def secret(self, env_name: str | None, what: str, env: Mapping[str, str]) -> str:
        """A credential from the environment; never from rules.yaml, never printed."""
        if not env_name:
            raise ConfigError(f"rules.yaml:{self.line}: source {self.name}: name the environment"
                              f" variable that holds its {what}")
        value = env.get(env_name)
        if not value:
            raise ConfigError(f"source {self.name}: the environment variable {env_name} ({what})"
                              " is not set")
        return value


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
