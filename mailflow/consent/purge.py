"""`mailflow purge --older-than DURATION`: forget personal data past an age (GDPR storage
limitation). Suppressions are kept: an unsubscribe must outlive the data it protects."""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

from mailflow.clock import iso
from mailflow.config import Config
from mailflow.errors import UsageError
from mailflow.records import eml_name
from mailflow.rules.engine import STALE_LOOKBACK
from mailflow.store import Store


def shortest_safe_age(config: Config) -> timedelta:
    """History younger than this still decides things: the outbox keys inside a rule's window
    stop a message from going twice, and a cap counts the sends of its own window, so purge
    never goes below the longest of them."""
    windows = [max(r.after + r.expire_after, r.cap[1] if r.cap else timedelta(0))
               for r in config.rules] or [timedelta(days=2)]
    return max(windows) + STALE_LOOKBACK + timedelta(days=1)


def purge_older_than(store: Store, config: Config, age: timedelta, now: datetime) -> dict[str, Any]:
    floor = shortest_safe_age(config)
    if age < floor:
        raise UsageError(f"--older-than must be at least {floor.days}d with these rules: younger"
                         " history still keeps messages from being sent twice")
    done = store.purge_before(iso(now - age))
    folder = config.folder / config.delivery.dir
    files = 0
    for key in done.pop("keys"):
        with suppress(FileNotFoundError):
            (folder / eml_name(key)).unlink()
            files += 1
    done["message_files"] = files
    done["cutoff"] = iso(now - age)
    return done
