"""`mailflow pull`: what changed in each shop's API since its watermark, into the store.

Gap-free and idempotent: a pull asks for everything updated since the source's watermark
minus an overlap, writes each page in its own transaction through the same writer as
files (an order seen twice is updated once, then unchanged), and moves the watermark (to
the newest update time the shop reported) only when the whole pull went through. A pull
that stops midway — an API down, killed — keeps the old watermark: the next one asks for
the same window again, and nothing is skipped.

A source's first pull reads `backfill` (30 days) of history. What it brings in for the
first time happened before mailflow watched the shop: no message due before that pull
goes out for it (skipped as `history`); what happens next (a shipment tomorrow) does.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from mailflow.clock import from_iso, iso
from mailflow.errors import MailflowError, SourceError, UsageError
from mailflow.importing.api.base import OVERLAP, ApiSettings, Platform
from mailflow.importing.service import ImportReport, merge_reports, write_records
from mailflow.records import ExitCode
from mailflow.store import Store

Sleep = Callable[[float], None]
Clock = Callable[[], datetime]


@dataclass
class SourcePull:
    """What one source's pull did."""

    name: str
    platform: str
    since: str | None = None
    watermark: str | None = None  # after the pull (unchanged when it failed)
    fetched: dict[str, int] = field(default_factory=dict)  # per kind: orders, checkouts…
    rejected: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    exit_code: ExitCode = ExitCode.OK
    first: bool = False
    waited: float = 0.0  # seconds spent on retries and the API's throttling
    skipped: str | None = None  # why it was not pulled at all

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "platform": self.platform, "since": self.since,
                "watermark": self.watermark, "fetched": self.fetched, "first": self.first,
                "rejected": self.rejected, "error": self.error, "skipped": self.skipped,
                "waited_seconds": round(self.waited, 3)}


@dataclass
class PullReport:
    dry_run: bool = False
    sources: list[SourcePull] = field(default_factory=list)
    written: ImportReport = field(default_factory=ImportReport)

    @property
    def exit_code(self) -> ExitCode:
        codes = [s.exit_code for s in self.sources]
        if any(s.rejected for s in self.sources):
            codes.append(ExitCode.ATTENTION)
        return max(codes, default=ExitCode.OK)

    def as_json(self) -> dict[str, Any]:
        written = self.written.as_json()
        return {"dry_run": self.dry_run, "sources": [s.as_json() for s in self.sources],
                **{k: written[k] for k in ("orders", "carts", "customers", "status_changes")}}


# platform -> (module, class): imported when a pull needs it (httpx and each adapter cost
# start-up time a tick without API sources should not pay)
API_ADAPTERS = {"shopify": ("mailflow.importing.api.shopify", "ShopifyApi"),
             "woocommerce": ("mailflow.importing.api.woocommerce", "WooCommerceApi"),
             "prestashop": ("mailflow.importing.api.prestashop", "PrestaShopApi")}


def platform_named(name: str) -> Platform:
    """The platform's API adapter."""
    import importlib

    if name not in API_ADAPTERS:
        raise UsageError(f"no API platform named {name!r}")
    module, cls = API_ADAPTERS[name]
    return getattr(importlib.import_module(module), cls)()


def chosen(apis: list[ApiSettings], only: str | None) -> list[ApiSettings]:
    if only is None:
        return list(apis)
    found = [a for a in apis if a.name == only]
    if not found:
        names = ", ".join(a.name for a in apis) or "none in rules.yaml"
        raise UsageError(f"--source {only!r}: no such API source ({names})")
    return found


def pull_all(store: Store, apis: list[ApiSettings], tz: tzinfo, now: datetime, *,
             only: str | None = None,
             dry_run: bool = False, since: timedelta | None = None,
             env: Mapping[str, str] = os.environ, sleep: Sleep = time.sleep,
             clock: Clock = lambda: datetime.now(UTC),
             platforms: Callable[[str], Platform] = platform_named) -> PullReport:
    """Pull each API source in turn; one that fails says why and the others still pull."""
    report = PullReport(dry_run=dry_run)
    for settings in chosen(apis, only):
        result = SourcePull(settings.name, settings.platform)
        report.sources.append(result)
        if not settings.pulls:
            result.skipped = "webhooks only: it names no credentials to pull with"
            continue
        try:
            _pull_one(store, settings, platforms(settings.platform), result, report.written,
                      now=now, tz=tz, dry_run=dry_run, since=since, env=env,
                      sleep=sleep, clock=clock)
        except MailflowError as exc:  # a source's credentials, its API: this source only
            result.error, result.exit_code = str(exc), exc.exit_code
            if not dry_run:
                with store.transaction():
                    store.fail_pull(settings.name, settings.platform, now, str(exc))
    return report


def _pull_one(store: Store, settings: ApiSettings, platform: Platform, result: SourcePull,
              written: ImportReport, *, now: datetime, tz: tzinfo, dry_run: bool,
              since: timedelta | None, env: Mapping[str, str], sleep: Sleep,
              clock: Clock) -> None:
    state = store.source_state(settings.name) or {}
    watermark = from_iso(state.get("watermark"))
    result.first = not state.get("first_pulled_at")
    if since is not None:
        start = now - since
    elif watermark is not None:
        start = watermark - OVERLAP
    else:
        start = now - settings.backfill
    result.since = iso(start)
    history = now if result.first else None
    newest = watermark
    staged = ImportReport()
    client = platform.open(settings, env, sleep=sleep, clock=clock)
    try:
        import_id = None
        if not dry_run:
            with store.transaction():
                import_id = store.start_pull(settings.name, settings.platform, now)
        for batch in platform.fetch(client, settings, start, tz):
            result.fetched[batch.what] = result.fetched.get(batch.what, 0) + len(batch.records)
            if batch.newest is not None and (newest is None or batch.newest > newest):
                newest = batch.newest
            if dry_run or import_id is None:
                continue
            with store.transaction():
                writer = store.pull_writer(import_id, settings.platform, now, history)
                result.rejected += [
                    {**r, "line": None, "reason": f"{batch.what}: {r['reason']}"}
                    for r in write_records(writer, batch.records, staged, now, settings.name)]
        result.watermark = iso(newest) if newest is not None else None
        if import_id is not None:
            with store.transaction():
                store.finish_pull(settings.name, settings.platform, import_id, result.watermark,
                                  now, sum(result.fetched.values()),
                                  json.dumps(staged.as_json()))
    except SourceError:
        result.watermark = iso(watermark)
        raise
    finally:
        result.waited = client.waited
        client.close()
        merge_reports(written, staged)

