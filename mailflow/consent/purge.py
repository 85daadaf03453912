"""`mailflow purge --older-than DURATION [--vacuum]`: forget personal data past an age (GDPR
storage limitation). Suppressions are kept: an unsubscribe must outlive the data it protects.

The deletes run in batches (store/purging.py); the .eml files of a batch's messages go inside
its transaction. Then the space is given back: with auto_vacuum=INCREMENTAL (new stores) the
free pages are cut off the file; an older store keeps its size (the freed pages are zeroed)
until one `--vacuum` rebuilds it as incremental."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mailflow.clock import iso
from mailflow.config import Config
from mailflow.errors import UsageError
from mailflow.records import eml_name
from mailflow.rules.engine import STALE_LOOKBACK
from mailflow.store import Store
from mailflow.store.purging import DEFAULT_BATCH


def shortest_safe_age(config: Config) -> timedelta:
    """History younger than this still decides things: the outbox keys inside a rule's window
    stop a message from going twice, and a cap counts the sends of its own window, so purge
    never goes below the longest of them."""
    windows = [max(r.after + r.expire_after, r.cap[1] if r.cap else timedelta(0))
               for r in config.rules] or [timedelta(days=2)]
    return max(windows) + STALE_LOOKBACK + timedelta(days=1)


@dataclass
class MessageFiles:
    """The `file` transport's outbox folder: purge unlinks a batch's .eml files, and counts them."""

    folder: Path
    removed: int = 0

    def forget(self, keys: list[str]) -> None:
        for key in keys:
            with suppress(FileNotFoundError):
                (self.folder / eml_name(key)).unlink()
                self.removed += 1


def purge_older_than(store: Store, config: Config, age: timedelta, now: datetime, *,
                     vacuum: bool = False, batch: int = DEFAULT_BATCH) -> dict[str, Any]:
    floor = shortest_safe_age(config)
    if age < floor:
        raise UsageError(f"--older-than must be at least {floor.days}d with these rules: younger"
                         " history still keeps messages from being sent twice")
    pages, _, page_size = store.file_pages()
    files = MessageFiles(config.folder / config.delivery.dir)
    with store.bulk_cache():  # a fixed 16 MB: index pages shared by a batch's rows are read once
        done = store.purge_before(iso(now - age), files.forget, batch)
        if vacuum:
            store.vacuum_incremental()
        elif store.auto_vacuum() == "incremental":
            store.give_back_free_pages()
    done["message_files"] = files.removed
    done["cutoff"] = iso(now - age)
    after, free, page_size_after = store.file_pages()
    done["auto_vacuum"] = store.auto_vacuum()
    done["vacuumed"] = vacuum
    done["bytes_before"] = pages * page_size
    done["bytes_after"] = after * page_size_after
    done["bytes_free_inside"] = free * page_size_after
    return done
