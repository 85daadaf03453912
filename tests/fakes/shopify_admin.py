"""A fake Shopify GraphQL Admin API: a real HTTP server on 127.0.0.1 (port chosen by the OS).

It checks the versioned path and the `X-Shopify-Access-Token` header, reads the incoming query
just enough (its root field, `first`, `after`, the `updated_at` window of `query`, the line
items' `first`) and answers from in-memory nodes shaped like the documented payloads in
tests/fixtures/api/shopify/, with `pageInfo` and `extensions.cost`. Cursors are positions in
the sort order (as Shopify's are): a node updated between two pages moves behind the cursor.
`faults` are answered one per request, before any normal answer.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "api" / "shopify"
TOKEN = "shpat_fake_0123456789abcdef"
VERSION = "2025-10"
_ROOTS = ("abandonedCheckouts", "customers", "orders", "node")
_WINDOW = re.compile(r"updated_at:(>=|<=)'([^']+)'")
_LINES_FIRST = re.compile(r"lineItems\(first:\s*(\d+)")
# Points a node costs in our queries, for a believable requestedQueryCost.
_NODE_COST = {"orders": 99, "abandonedCheckouts": 69, "customers": 2, "node": 3}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def nodes_of(name: str, root: str) -> list[dict]:
    return fixture(name)["data"][root]["nodes"]


@dataclass
class Fault:
    """One misbehaving answer: `kind` is throttled, 429, status, hang, malformed, json, or
    access_denied."""

    kind: str
    status: int = 200
    seconds: float = 0.0  # hang: how long; 429: Retry-After
    available: float = 0.0  # throttled: currentlyAvailable
    body: Any = None  # json: the document to answer


@dataclass
class Request:
    root: str
    variables: dict
    query: str


@dataclass
class FakeShopifyAdmin:
    orders: list[dict] = field(default_factory=lambda: nodes_of("orders.json", "orders"))
    checkouts: list[dict] = field(
        default_factory=lambda: nodes_of("abandoned_checkouts.json", "abandonedCheckouts"))
    customers: list[dict] = field(default_factory=lambda: nodes_of("customers.json", "customers"))
    token: str = TOKEN
    version: str = VERSION
    maximum: float = 2000.0
    available: float = 2000.0  # what throttleStatus says (not drained: tests set it)
    restore: float = 100.0
    faults: list[Fault] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    # called after each page is answered, with the root field and that root's page number
    after_page: Callable[[FakeShopifyAdmin, str, int], None] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._pages: dict[str, int] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeShopifyAdmin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def update(self, name: str, **fields: Any) -> None:
        """Change an order in the shop (as the merchant would): it gets a new updatedAt."""
        for node in self.orders:
            if node["name"] == name:
                node.update(fields)

    # ------------------------------------------------------------------ answering

    def answer(self, path: str, token: str | None, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        if path != f"/admin/api/{self.version}/graphql.json":
            return _json(404, {"errors": "Not Found"})
        if token != self.token:
            return _json(401, {"errors": "[API] Invalid API key or access token (unrecognized login"
                                         " or wrong password)"})
        body = json.loads(raw)
        query, variables = body["query"], body.get("variables") or {}
        root = min(_ROOTS, key=lambda r: _position(query, r))
        with self._lock:
            self.requests.append(Request(root, variables, query))
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            return self.misbehave(fault, root, variables)
        if root == "node":
            data = {"node": self.more_lines(variables, query)}
        else:
            data = {root: self.page(root, variables, query)}
        requested = 2 + int(variables.get("first") or 1) * _NODE_COST[root]
        answer = {"data": data, "extensions": self.cost(requested, min(requested, 10))}
        with self._lock:
            number = self._pages[root] = self._pages.get(root, 0) + 1
        if self.after_page is not None:
            self.after_page(self, root, number)
        return _json(200, answer)

    def misbehave(self, fault: Fault, root: str, variables: dict) -> tuple[int, dict[str, str], bytes]:
        requested = 2 + int(variables.get("first") or 1) * _NODE_COST[root]
        if fault.kind == "throttled":
            body = fixture("throttled.json")
            body["extensions"] = self.cost(requested, None, fault.available)
            return _json(200, body)
        if fault.kind == "429":
            status, headers, content = _json(429, fixture("throttled.json"))
            return status, {**headers, "Retry-After": f"{fault.seconds:g}"}, content
        if fault.kind == "status":
            return fault.status, {"Content-Type": "text/plain"}, b"Internal Server Error"
        if fault.kind == "hang":
            time.sleep(fault.seconds)
            return _json(200, {"data": None})
        if fault.kind == "malformed":
            return 200, {"Content-Type": "application/json"}, b'{"data": {"orders": {"nodes": [{"id": '
        if fault.kind == "access_denied":
            return _json(200, fixture("access_denied.json"))
        return _json(fault.status, fault.body)

    def cost(self, requested: int, actual: int | None, available: float | None = None) -> dict:
        return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                         "throttleStatus": {"maximumAvailable": self.maximum,
                                            "currentlyAvailable": self.available if available is None
                                            else available, "restoreRate": self.restore}}}

    def page(self, root: str, variables: dict, query: str) -> dict:
        nodes = {"orders": self.orders, "abandonedCheckouts": self.checkouts,
                 "customers": self.customers}[root]
        window = dict((op, text) for op, text in _WINDOW.findall(variables.get("query") or ""))
        key = _by_id if root == "abandonedCheckouts" else _by_update
        with self._lock:
            chosen = sorted((n for n in nodes if _in(n, window)), key=key)
            after = _decode(variables.get("after"))
            if after is not None:
                chosen = [n for n in chosen if key(n) > tuple(after)]
            first = int(variables["first"])
            shown = [self.trimmed(copy.deepcopy(n), query) for n in chosen[:first]]
            end = _encode(list(key(chosen[first - 1] if len(chosen) >= first else chosen[-1]))) \
                if chosen else None
        return {"nodes": shown, "pageInfo": {"hasNextPage": len(chosen) > first, "endCursor": end}}

    def trimmed(self, node: dict, query: str) -> dict:
        """The node with only the first lines the query asks for, as Shopify pages them."""
        found = _LINES_FIRST.search(query)
        items = node.get("lineItems")
        if found and isinstance(items, dict):
            first, lines = int(found.group(1)), items["nodes"]
            more = len(lines) > first
            node["lineItems"] = {"nodes": lines[:first], "pageInfo": {
                "hasNextPage": more, "endCursor": _encode([first]) if more else None}}
        return node

    def more_lines(self, variables: dict, query: str) -> dict | None:
        with self._lock:
            node = next((n for n in [*self.orders, *self.checkouts] if n["id"] == variables["id"]), None)
            if node is None:
                return None
            lines = node["lineItems"]["nodes"]
        start = (_decode(variables.get("after")) or [0])[0]
        first = int(_LINES_FIRST.search(query).group(1))  # type: ignore[union-attr]
        rest = lines[start:start + first]
        more = len(lines) > start + first
        return {"lineItems": {"nodes": copy.deepcopy(rest), "pageInfo": {
            "hasNextPage": more, "endCursor": _encode([start + first]) if more else None}}}


def _handler(fake: FakeShopifyAdmin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, headers, content = fake.answer(self.path, self.headers.get("X-Shopify-Access-Token"), raw)
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
            except OSError:
                pass  # the client gave up waiting (the hang fault)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _position(query: str, root: str) -> int:
    found = re.search(rf"\b{root}\(", query)
    return found.start() if found else len(query) + 1


def _by_update(node: dict) -> tuple:
    return (node["updatedAt"], node["id"])


def _by_id(node: dict) -> tuple:
    return (int(node["id"].rsplit("/", 1)[-1]),)


def _in(node: dict, window: dict[str, str]) -> bool:
    stamp = node["updatedAt"]
    return (">=" not in window or stamp >= window[">="]) and ("<=" not in window or stamp <= window["<="])


def _encode(value: list) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def _decode(cursor: str | None) -> list | None:
    return json.loads(base64.b64decode(cursor)) if cursor else None
