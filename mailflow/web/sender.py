"""`serve`'s background sender: when webhook events were kept, import them and send what they
made due at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from mailflow import console
from mailflow.config import Config
from mailflow.delivery.lock import run_lock
from mailflow.delivery.send import send_due
from mailflow.importing.webhooks import import_events
from mailflow.rules.attribution import attribute_orders
from mailflow.store import Store


class EventSender:
    """In `serve`: when webhook events were kept, import them and send what they made due at
    once — under the run lock, as cron does, so a message goes out once whoever sends it.
    When cron holds the lock, it tries again a moment later (cron's run imports them too)."""

    RETRY = 1.0  # seconds before trying the run lock again
    IDLE = 60.0  # seconds between looks for events nobody woke it for

    def __init__(self, config: Config, db: Path,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC).replace(microsecond=0)
                 ) -> None:
        self.config, self.db, self.clock = config, db, clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mailflow-events", daemon=True)
        self._thread.start()
        self.wake()  # events kept while no sender ran

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.IDLE)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                done = self.run_once()
            except Exception as exc:  # a broken store or SMTP: said, and tried again later
                console.warn(f"serve: importing and sending after webhooks failed: {exc}")
                done = False
            if not done:
                self._stop.wait(self.RETRY)
                self._wake.set()

    def run_once(self) -> bool:
        """False when another run holds the lock."""
        with run_lock(self.db) as holding:
            if not holding:
                return False
            store = Store.open(self.db)
            try:
                now = self.clock()
                imported = import_events(store, self.config.shop.tz, now)
                attribute_orders(store, self.config, now)
                if not any((imported.orders.inserted, imported.orders.updated,
                            imported.carts.inserted, imported.carts.updated,
                            imported.customers.inserted, imported.customers.updated)):
                    return True  # nothing new: nothing newly due either
                sent = send_due(store, self.config, now, recover=True)
            finally:
                store.close()
        for m in sent.messages:
            if m["status"] in ("failed", "unknown"):
                console.warn(f"serve: {m['status']}: {m['rule']} to {m['to']}: {m['reason']}")
        if sent.blocked:
            console.warn(f"serve: {sent.blocked} (due mail stays queued)")
        return True
