"""One of mailflow's WSGI applications on a free port of 127.0.0.1, in a thread, in waitress
as `mailflow serve` runs it; `sender` (the background EventSender), when given, runs beside it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mailflow.web.sender import EventSender
from mailflow.web.server import Server


@contextmanager
def served(app: Callable, timeout: int = 5, sender: EventSender | None = None) -> Iterator[int]:
    """Yields the port; on leaving, the server has stopped and its thread ended."""
    server = Server(app, "127.0.0.1", 0, timeout)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if sender is not None:
        sender.start()
    try:
        yield server.port
    finally:
        if sender is not None:
            sender.stop()
        server.stop()
        thread.join(10)
        assert not thread.is_alive()
