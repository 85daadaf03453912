"""`mailflow status`: what the store holds and how fresh it is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailflow.clock import from_iso
from mailflow.store import Store


def store_status(store: Store, now: datetime, *, order_lines: bool = True) -> dict[str, Any]:
    """`order_lines`: also count them (the one figure that costs a scan of a big table; the
    text status does not show it, --json does)."""
    summary = store.counts(order_lines=order_lines)
    summary["outbox"] = store.outbox_counts()
    awaiting = store.awaiting_human()
    summary["awaiting_human"] = {"count": sum(n for states in awaiting.values()
                                              for n in states.values()), "rules": awaiting}
    summary["sources"] = store.sources()  # each API source: watermark, last pull, failure
    summary["webhooks_waiting"] = store.webhooks_waiting()
    summary["next_due_at"] = store.next_due()
    summary["last_run"] = store.last_run()
    newest = from_iso(summary["newest_import_at"])
    summary["newest_import_age"] = _age(now - newest) if newest else None
    return summary


def _age(delta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
