"""The tracked links and the open pixel of `serve`, as a WSGI application (docs/tracking.md).

`GET <tracking.url>/c/<token>` records the click and answers 303 to the URL the token names
(signed: only ever a URL that message contained); a tampered token gets 400 and nothing is
recorded; a good token of a message the store no longer has goes to the shop's home page. A
token names its message by its reference (outbox.reference), or by its key if it was sent
before references.
`GET <tracking.url>/o/<token>.gif` answers a 1×1 GIF and, with `tracking.opens`, records the
first open, as a machine's when a privacy proxy fetched it within seconds of the delivery.
The user agent only classifies the open: it is never stored, nor is any address.
A click is recorded even when the store fails to: the customer still gets the page.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes, urlsplit

from mailflow import console
from mailflow.clock import from_iso, iso
from mailflow.config import Config
from mailflow.consent.tokens import secret_from_env
from mailflow.consent.tracking_tokens import (
    BadTrackingToken,
    NamedMessage,
    read_click_token,
    read_open_token,
)
from mailflow.errors import ConfigError, MailflowError
from mailflow.store import Store
from mailflow.store.tracking import TrackedMessage

Response = tuple[HTTPStatus, list[tuple[str, str]], bytes]

# The smallest valid GIF89a: one transparent pixel (43 bytes).
PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
         b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
# A privacy proxy that opens this soon after the message was handed over is prefetching it for
# the mailbox (Apple Mail Privacy Protection fetches every image as the message arrives): a
# machine's open. The same proxies later fetch for a reader who opened it (Gmail's image proxy
# does so on every open), so a later proxy open is a person's.
MACHINE_WINDOW = timedelta(seconds=60)
PROXY_AGENTS = ("GoogleImageProxy", "YahooMailProxy", "ggpht.com")  # docs/tracking.md: sources
APPLE_PRIVACY_AGENT = "Mozilla/5.0"  # the whole user agent of Apple's prefetches, nothing after
NO_CACHE = [("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0"),
            ("Pragma", "no-cache"), ("Expires", "0")]
_LOCATION_SAFE = "/:?#[]@!$&'()*+,;=%~-._"


def machine_open(user_agent: str, at: datetime, sent_at: datetime | None) -> bool:
    """Whether an open was a machine's (issue 13): a privacy proxy's user agent (or none at all)
    within MACHINE_WINDOW of the delivery."""
    agent = user_agent.strip()
    proxy = not agent or agent == APPLE_PRIVACY_AGENT or any(p in agent for p in PROXY_AGENTS)
    return proxy and sent_at is not None and at - sent_at < MACHINE_WINDOW


class TrackingApp:
    """`TrackingApp(config, db)` answers the paths under `tracking.url`; each request opens the
    store and closes it."""

    def __init__(self, config: Config, db: Path,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if config.tracking.url is None:
            raise ConfigError(f"{config.path.name}: tracking.url is needed to serve tracking")
        self.config, self.db, self.clock = config, db, clock
        self.secret = secret_from_env(config.unsubscribe.secret_env)
        base = unquote_to_bytes(urlsplit(config.tracking.url).path).decode("latin-1").rstrip("/")
        # the reverse proxy may forward the path as it is, or without the prefix
        self.prefixes = tuple(dict.fromkeys((base, "")))
        self.home = config.shop.url
        self._stores = threading.local()

    def handles(self, path: str) -> bool:
        return self._route(path) is not None

    def _route(self, path: str) -> tuple[str, str] | None:
        """("c", token) or ("o", token) for a path of ours."""
        for prefix in self.prefixes:
            for kind in ("c", "o"):
                start = f"{prefix}/{kind}/"
                if path.startswith(start) and "/" not in path[len(start):]:
                    token = path[len(start):]
                    if kind == "o":
                        if not token.endswith(".gif"):
                            return None
                        token = token[:-4]
                    return kind, token
        return None

    def __call__(self, environ: dict, start_response: Callable[..., object]) -> Iterable[bytes]:
        status, headers, body = self.answer(environ)
        start_response(f"{status.value} {status.phrase}", headers)
        return [body] if environ.get("REQUEST_METHOD") != "HEAD" else [b""]

    def answer(self, environ: dict) -> Response:
        route = self._route(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
        if route is None:
            return _empty(HTTPStatus.NOT_FOUND)
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            status, headers, body = _empty(HTTPStatus.METHOD_NOT_ALLOWED)
            return status, [*headers, ("Allow", "GET, HEAD")], body
        kind, token = route
        # link checkers and mail security scanners ask with HEAD: answered, never counted
        counted = method == "GET"
        if kind == "c":
            return self._click(token, counted)
        return self._open(token, environ.get("HTTP_USER_AGENT", ""), counted)

    def _click(self, token: str, counted: bool) -> Response:
        try:
            named, url = read_click_token(token, self.secret)
        except BadTrackingToken:
            return _empty(HTTPStatus.BAD_REQUEST)
        known = self._record(named, lambda store, m, at: store.record_click(m, url, at), counted)
        return _redirect(url if known is not False else self.home)

    def _open(self, token: str, user_agent: str, counted: bool) -> Response:
        try:
            named = read_open_token(token, self.secret)
        except BadTrackingToken:
            return _empty(HTTPStatus.BAD_REQUEST)
        if self.config.tracking.opens:  # turned off since: the pixel still shows, unrecorded
            now = self.clock()

            def record(store: Store, message: TrackedMessage, at: str) -> None:
                sent_at = from_iso(message.sent_at) if message.sent_at else None
                store.record_open(message, at, machine=machine_open(user_agent, now, sent_at))

            self._record(named, record, counted, now)
        return HTTPStatus.OK, [("Content-Type", "image/gif"), ("Content-Length", str(len(PIXEL))),
                               *NO_CACHE], PIXEL

    def _record(self, named: NamedMessage, record: Callable[[Store, TrackedMessage, str], None],
                counted: bool, now: datetime | None = None) -> bool | None:
        """False if the store has no such message; else True (recorded, or not for a
        suppressed recipient), or None if the store failed (the visitor is not kept waiting)."""
        at = iso(now or self.clock())
        try:
            store = self._store()
            with store.transaction():
                message = store.tracked_message(named.key, reference=named.reference)
                if message is None:
                    return False
                if counted and not message.suppressed:
                    record(store, message, at)
        except (sqlite3.Error, MailflowError) as exc:
            self._forget_store()
            console.warn(f"serve: a click or open could not be recorded: {exc}")
            return None
        return True

    def _store(self) -> Store:
        """This server thread's store, kept open: opening one costs ~5 ms, a click's write
        0.1 ms, and a mailing's clicks come in bursts."""
        store = getattr(self._stores, "store", None)
        if store is None:
            store = self._stores.store = Store.open(self.db)
        return store

    def _forget_store(self) -> None:
        store, self._stores.store = getattr(self._stores, "store", None), None
        if store is not None:
            with contextlib.suppress(sqlite3.Error):
                store.close()


def _redirect(url: str) -> Response:
    # a header is latin-1 (PEP 3333): an address with other characters goes percent-encoded
    location = quote(url, safe=_LOCATION_SAFE)
    return HTTPStatus.SEE_OTHER, [("Location", location), ("Content-Length", "0"),
                                  ("Referrer-Policy", "no-referrer"), *NO_CACHE], b""


def _empty(status: HTTPStatus) -> Response:
    return status, [("Content-Length", "0"), ("Cache-Control", "no-store")], b""
