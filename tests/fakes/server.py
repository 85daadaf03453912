"""What the fake shop APIs share: a real HTTP server on 127.0.0.1 (a port the OS chooses) in a
thread, its own clock (one second per request, in its `Date` header and in the dates it gives
what it changes), a log of the requests, and faults a test scripts in advance."""

from __future__ import annotations

import base64
import email.utils
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

START = datetime(2026, 3, 22, 12, 0, tzinfo=UTC)


@dataclass
class Request:
    path: str
    params: dict[str, str]
    repeated: list[str]  # query parameters given more than once
    user: str | None  # Basic auth
    password: str | None


@dataclass
class Fault:
    """The answer to the next request whose path contains `path`, instead of the real one."""

    kind: str  # "429", "401", "500", "hang", "malformed"
    path: str = ""
    retry_after: str | None = None
    seconds: float = 5.0  # how long a hang lasts (the client gives up before)


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=UTF-8"


def json_answer(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps(data, ensure_ascii=False).encode(), headers or {})


class FakeShop:
    """Subclasses answer `respond(request)`; a test scripts `faults` and `before` hooks."""

    def __init__(self) -> None:
        self.now = START
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        # (does this request match?, what to change first): each runs once, before the answer
        # to the first request it matches that no earlier hook took (an order modified between
        # two pages)
        self.hooks: list[tuple[Callable[[Request], bool], Callable[[], None]]] = []
        self.lock = threading.Lock()
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # --- what a test does -------------------------------------------------------------------

    def fail(self, kind: str, path: str = "", **options: Any) -> None:
        self.faults.append(Fault(kind, path, **options))

    def before(self, matches: Callable[[Request], bool], change: Callable[[], None]) -> None:
        self.hooks.append((matches, change))

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeShop:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # --- what a subclass provides -------------------------------------------------------------

    def respond(self, request: Request) -> Answer:
        raise NotImplementedError

    def refusal(self) -> Answer:
        return json_answer({"message": "refused"}, 401)

    def server_error(self) -> Answer:
        return json_answer({"message": "internal error"}, 500)

    # --- serving --------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> Answer:
        parts = urlsplit(handler.path)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        names = [name for name, _ in pairs]
        user, password = _basic(handler.headers.get("Authorization"))
        request = Request(parts.path, dict(pairs), sorted({n for n in names if names.count(n) > 1}),
                          user, password)
        with self.lock:
            self.now += timedelta(seconds=1)
            self.requests.append(request)
            hook = next((h for h in self.hooks if h[0](request)), None)
            if hook is not None:
                self.hooks.remove(hook)
                hook[1]()
            fault = next((f for f in self.faults if f.path in request.path), None)
            if fault is not None:
                self.faults.remove(fault)
        if fault is None:
            with self.lock:
                return self.respond(request)
        if fault.kind == "hang":
            self._released.wait(fault.seconds)
            with self.lock:
                return self.respond(request)
        if fault.kind == "429":
            answer = json_answer({"message": "Too Many Requests"}, 429)
            if fault.retry_after is not None:
                answer.headers["Retry-After"] = fault.retry_after
            return answer
        if fault.kind == "401":
            return self.refusal()
        if fault.kind == "500":
            return self.server_error()
        if fault.kind == "malformed":
            return Answer(200, b'[{"id": 1001, "status": "processing", "billing": {"email": "lea')
        raise AssertionError(f"unknown fault {fault.kind}")


def _basic(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.startswith("Basic "):
        return None, None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed ACK
    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        fake: FakeShop = self.server.fake  # type: ignore[attr-defined]
        answer = fake._serve(self)
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the timeout tests)

    def date_time_string(self, timestamp: float | None = None) -> str:
        fake: FakeShop = self.server.fake  # type: ignore[attr-defined]
        return email.utils.formatdate(fake.now.timestamp(), usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass
