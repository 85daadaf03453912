"""Reading a listing the shop changes while mailflow reads it, without missing a record.

Shops' APIs page by number or offset: each page is a window over a list that moves. The
platforms sort by id, ascending, and filter by modification time: a record modified
mid-pull keeps its place and a new one comes last, so neither pushes an unread record
back onto a page already read. (Sorting by modification time would: the modified record
jumps to the end and the one after it slides into the page just read, never to be seen.)
Two cases remain:

- a record that leaves the list (trashed, deleted) shifts the rest back by one: each
  platform notices (WooCommerce's `X-WP-Total` changes, PrestaShop's ids list names one
  it did not bring) and reads again; imports are idempotent;
- a record modified after its page was read: once a round is read, a catch-up round asks
  for what changed since that round began (by the server's `Date`), and so on until a round
  brings nothing new. A record already yielded at the same version is not yielded again.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from mailflow.importing.api.client import Response

ROUNDS = 4  # the first, then catch-ups; a shop busier than that is caught by the next pull
# A catch-up asks from this long before the previous round began: the server's `Date` and
# the dates it gives records may come from clocks a little apart.
MARGIN = timedelta(minutes=1)

Page = tuple[list[Any], datetime]  # a page's entries, and when the server answered it
Pages = Callable[[datetime], Iterator[Page]]  # every page of what changed since a moment
_UNSEEN = object()


def changes(pages: Pages, since: datetime, version: Callable[[dict], object]) -> Iterator[list[Any]]:
    """Pages of entries changed since `since`, each entry at its newest version read, with
    catch-up rounds (see the module docstring); `version` tells two versions apart."""
    seen: dict[object, object] = {}
    window = since
    for _ in range(ROUNDS):
        began: datetime | None = None
        brought = False
        for items, served in pages(window):
            began = served if began is None else began
            fresh = [item for item in items if not isinstance(item, dict)
                     or seen.get(item.get("id"), _UNSEEN) != version(item)]
            seen.update((item.get("id"), version(item)) for item in fresh if isinstance(item, dict))
            if fresh:
                brought = True
                yield fresh
        if not brought or began is None:
            return
        window = max(since, began - MARGIN)


def served_at(answer: Response, clock: Callable[[], datetime]) -> datetime:
    """When the server answered, by its own `Date` header (our clock without one)."""
    text = header(answer, "date")
    if text:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            moment = None
        if moment is not None:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return clock()


def header(answer: Response, name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in answer.headers.items() if key.lower() == wanted), None)
