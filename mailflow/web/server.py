"""The one module that serves mailflow's web endpoints over HTTP, with waitress.

The standard library's ThreadingHTTPServer reset most of a burst of one-click POSTs (its
listen backlog is 5), never timed a client out, and let a short body hang a thread forever.
waitress reads requests in one event loop, hands only complete ones to a bounded pool of
threads, and closes connections left idle or half-sent past a timeout.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from waitress import wasyncore
from waitress.server import create_server

from mailflow import console
from mailflow.config import Config
from mailflow.errors import UsageError
from mailflow.web.app import App
from mailflow.web.webhooks import MAX_BODY

DEFAULT_TIMEOUT = 30  # seconds a connection may stay idle or half-sent before it is closed
BACKLOG = 1024  # a mailing's clicks come in bursts: the kernel queues them instead of resetting them
THREADS = 8  # SQLite serialises the writes anyway: more threads would only wait on its lock
# waitress's default of 100 would let 100 idle sockets shut everyone out until they time out;
# 500 stays well under the usual limit of 1024 open files
CONNECTION_LIMIT = 500
CLEANUP_INTERVAL = 1  # seconds between sweeps for timed-out connections (waitress: 30)
# waitress answers 413 to a declared length >= this without reading it; the unsubscribe
# endpoint refuses more than its ~30 bytes itself
MAX_REQUEST_BODY = MAX_BODY + 1
# select() cannot watch a descriptor numbered 1024 or more and waitress's loop dies of it (seen
# with 1,000 clients in the server's own process); poll() has no such limit
USE_POLL = True

_PLAIN_WORD = re.compile(r"[\w,;'()!-]+")


class Server:
    """A WSGI application served by waitress on one listening socket: `run()` until `stop()`."""

    def __init__(self, app: Callable, host: str, port: int, timeout: int = DEFAULT_TIMEOUT) -> None:
        _keep_waitress_logs_anonymous()
        self.host = host
        self._map: dict = {}
        self._stopped = False
        self._waitress = create_server(
            app, map=self._map, sockets=[_listen(host, port)], backlog=BACKLOG, threads=THREADS,
            connection_limit=CONNECTION_LIMIT, channel_timeout=timeout,
            cleanup_interval=CLEANUP_INTERVAL, max_request_body_size=MAX_REQUEST_BODY,
            asyncore_use_poll=USE_POLL, expose_tracebacks=False, ident="mailflow",
            log_socket_errors=False)
        # one socket, one server; types-waitress knows neither its effective_port nor its trigger
        self.port: int = self._waitress.effective_port  # type: ignore[union-attr]

    @property
    def url(self) -> str:
        return f"http://{f'[{self.host}]' if ':' in self.host else self.host}:{self.port}"

    def run(self) -> bool:
        """Serve until stop() (True) or ^C (False: waitress catches it to stop its threads)."""
        try:
            self._waitress.run()
        finally:
            wasyncore.close_all(self._map)
            self._waitress.task_dispatcher.shutdown()
        return self._stopped

    def stop(self) -> None:
        """From another thread: the event loop closes every connection itself, which ends run()."""
        self._stopped = True
        with suppress(OSError):  # its wake-up pipe closed: the event loop has already ended
            self._waitress.trigger.pull_trigger(  # type: ignore[union-attr]  # see __init__
                lambda: wasyncore.close_all(self._map))


def serve(config: Config, db: Path, host: str, port: int, timeout: int) -> None:
    """`mailflow serve`: the unsubscribe endpoint and the webhooks until ^C (raised again: exit
    130, as for every command) or a signal; kept webhook events are imported, and what they
    make due is sent, by a background sender under the run lock."""
    from mailflow.web.sender import EventSender

    sender = EventSender(config, db)
    app = App(config, db, sender.wake)
    server = Server(app, host, port, timeout)
    if app.unsubscribe is not None:
        console.warn(f"serving {config.unsubscribe.url} on {server.url}")
    if app.tracking is not None:
        console.warn(f"serving the tracked links{' and the open pixel' * config.tracking.opens}"
                     f" of {config.tracking.url} on {server.url}")
    for name in app.webhooks.sources:
        console.warn(f"serving webhooks of {name} at {server.url}/webhooks/{name}")
    sender.start()
    try:
        if not server.run():
            raise KeyboardInterrupt
    finally:
        sender.stop()


def _listen(host: str, port: int) -> socket.socket:
    # one socket of our own, as before: waitress would listen on every address a name resolves to
    # (it sets SO_REUSEADDR and calls listen() with BACKLOG itself)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
    return sock


class _AnonymousLog(logging.Handler):
    """waitress's warnings and errors on stderr, cut at the first word that could name a client:
    its address (in a connection's repr), a path or URL (tokens), a quoted header."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            words = ["waitress:"]
            for word in record.getMessage().split():
                if not _PLAIN_WORD.fullmatch(word):
                    words.append("…")
                    break
                words.append(word)
            if record.exc_info and record.exc_info[0]:
                words.append(f"({record.exc_info[0].__name__})")
            console.warn(" ".join(words))
        except Exception:
            pass  # logging's handleError would print the raw record


def _keep_waitress_logs_anonymous() -> None:
    logger = logging.getLogger("waitress")
    if any(isinstance(handler, _AnonymousLog) for handler in logger.handlers):
        return
    logger.addHandler(_AnonymousLog(logging.WARNING))
    logger.propagate = False  # nor through any handler of the root logger
    # a burst makes a queue on purpose: a "Task queue depth" line per request is noise
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
