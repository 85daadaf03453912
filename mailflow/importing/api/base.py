"""What every platform's API source provides to `mailflow pull`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Protocol

from mailflow.errors import ConfigError

if TYPE_CHECKING:  # ssl and email.utils are ~30 ms that a tick without API sources skips
    from mailflow.importing.api.client import HttpClient
from mailflow.records import Record, Rejected

__all__ = ["OVERLAP", "PLATFORMS", "ApiSettings", "Batch", "Platform"]

PLATFORMS = ("shopify", "woocommerce", "prestashop")


@dataclass
class ApiSettings:
    """A `sources:` entry with `platform:`: a shop's API that `pull` and `run` fetch
    (docs/sources.md)."""

    name: str  # what `pull --source` and messages call it; the platform's name by default
    platform: str
    url: str
    line: int = 0  # its line in rules.yaml, for messages
    api_version: str | None = None  # Shopify: pinned, e.g. "2025-10"
    token_env: str | None = None  # Shopify: the Admin API access token
    key_env: str | None = None  # WooCommerce consumer key, PrestaShop webservice key
    secret_env: str | None = None  # WooCommerce consumer secret
    webhook_secret_env: str | None = None  # signs the platform's webhooks to `serve`
    backfill: timedelta = timedelta(days=30)  # how far back a first pull reads
    page_size: int = 100

    @property
    def pulls(self) -> bool:
        """It names the credentials a pull needs (else it only receives webhooks)."""
        return all(getattr(self, key) for key in PULL_CREDENTIALS[self.platform])

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


# the credentials a pull needs; a source without them only receives webhooks
PULL_CREDENTIALS = {"shopify": ("token_env",), "woocommerce": ("key_env", "secret_env"),
                    "prestashop": ("key_env",)}

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
