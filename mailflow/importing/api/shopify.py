"""Shopify's GraphQL Admin API as a live source: what changed since the watermark, as records.

`POST {url}/admin/api/{api_version}/graphql.json` with the `X-Shopify-Access-Token` header; the
version is pinned in rules.yaml. Orders, then abandoned checkouts, then customers, a page at a
time (`Batch`). Each node is put in the shape of the REST Admin JSON and read by the REST
adapter (`importing/shopify.py`), so a pulled order becomes exactly the record the same order's
REST JSON would: one statuses table, one consent rule. GraphQL's upper-case enums are what
that adapter's normalising already reads (`PARTIALLY_REFUNDED` is `partially_refunded`); a
parcel's `displayStatus` is REST's `shipment_status`, its `deliveredAt` (else `updatedAt`) the
time it arrived.

Throttling (cost-based, shopify.dev "GraphQL Admin API rate limits"): every answer says in
`extensions.cost` what the query was priced at and how full the bucket is. Before sending a
query again, mailflow waits until the bucket holds its last requested cost; a `THROTTLED`
answer is waited out likewise and asked again, up to a bound (then `SourceUnavailable`: the
next pull starts from the same watermark). HTTP 429 and 5xx are the client's retries.

Why paging skips nothing while the shop keeps changing:
- Cursors are positions in the sort order, not offsets: the next page is every node after
  the last one returned, as the list is when that page is asked for.
- Orders and customers are sorted by UPDATED_AT and filtered `updated_at >= since`. An update
  only raises `updated_at`, so a node not seen yet can only move further on, never behind the
  cursor, and never out of the filter; one already seen moves to the end and is seen again
  (imports are idempotent). A change after the last page is newer than everything this pull
  returned, so the next pull (from the newest `updatedAt` seen, less base.OVERLAP) gets it.
- `mailflow pull` keeps one watermark a source, the newest `newest` of all its pages. No page
  says a `newest` later than T0, the moment this pull started (our clock): whatever changed
  while it ran, orders, checkouts or customers, the next pull asks for again. (Our clock
  against the shop's: OVERLAP covers the skew.)
- Abandoned checkouts cannot be sorted by update time, only by ID: a checkout updated after
  the cursor passed it would not come again. So their window is closed at T0
  (`updated_at <= T0`): such a checkout leaves the window instead, for the next pull.
- Shopify pages one connection 25,000 nodes deep at most; a sorted pull starts a new
  connection from the newest `updatedAt` it has seen well before that (nodes at exactly that
  time come again).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, NoReturn

from mailflow.clock import iso
from mailflow.errors import ConfigError, RowRejected, SourceError, SourceRefused, SourceUnavailable
from mailflow.importing import build, shopify
from mailflow.importing.api import shopify_queries as q
from mailflow.importing.api.base import ApiSettings, Batch, Clock, Sleep
from mailflow.importing.api.client import HttpClient
from mailflow.records import Record, Rejected

_VERSION = re.compile(r"\d{4}-(?:0[1-9]|1[0-2])|unstable")
THROTTLE_TRIES = 6  # THROTTLED answers in a row to one query before giving up for this run
LONGEST_THROTTLE_WAIT = 60.0
MIN_THROTTLE_WAIT = 1.0
REANCHOR = 20_000  # nodes into one connection before a sorted pull starts a new one
_SCOPE = re.compile(r"\b(?:read|write)_[a-z_]+\b")


class _TooCostly(Exception):
    """The query's requested cost is over Shopify's single-query limit: ask for fewer nodes."""


@dataclass
class _Bucket:
    """What the last answer said of the throttle bucket, and the seconds waited since."""

    maximum: float
    available: float
    rate: float  # points restored a second
    at: datetime
    waited: float = 0.0

    def now(self, clock: datetime) -> float:
        # waits count even when the clock stands still (tests), never twice when it does not
        elapsed = max((clock - self.at).total_seconds(), self.waited, 0.0)
        return min(self.maximum, self.available + self.rate * elapsed)


@dataclass(frozen=True)
class _Kind:
    what: str  # Batch.what
    noun: str  # in messages
    root: str
    query: str
    page: int
    by_update: bool  # sorted by UPDATED_AT (see the module docstring)
    lines: str | None
    make: Callable[[dict, int, tzinfo], Record]


class ShopifyApi:
    """The `base.Platform` of Shopify's GraphQL Admin API."""

    name = "shopify"

    def open(self, settings: ApiSettings, env: Mapping[str, str], *, sleep: Sleep,
             clock: Clock) -> HttpClient:
        version = (settings.api_version or "").strip()
        where = f"rules.yaml:{settings.line}: source {settings.name}"
        if not version:
            raise ConfigError(f"{where}: set api_version, the Admin API version to pin (e.g. 2025-10)")
        if not _VERSION.fullmatch(version):
            raise ConfigError(f"{where}: api_version {version!r} is not a Shopify API version"
                              " (YYYY-MM, e.g. 2025-10)")
        token = settings.secret(settings.token_env, "Admin API access token", env)
        return HttpClient(settings.name, settings.url, headers={"X-Shopify-Access-Token": token},
                          sleep=sleep, clock=clock)

    def fetch(self, client: HttpClient, settings: ApiSettings, since: datetime,
              tz: tzinfo) -> Iterator[Batch]:
        api, started = _Graphql(client, settings), client.clock()
        yield from api.pages(_ORDERS, since, None, started, tz)
        yield from api.pages(_CHECKOUTS, since, started, started, tz)
        yield from api.pages(_CUSTOMERS, since, None, started, tz)


class _Graphql:
    """One pull's queries to one shop, with what the last answers said of the bucket."""

    def __init__(self, client: HttpClient, settings: ApiSettings) -> None:
        self.client, self.source = client, settings.name
        self.version = (settings.api_version or "").strip()
        self.path = f"admin/api/{self.version}/graphql.json"
        self.page_size = max(1, settings.page_size)
        self.costs: dict[tuple[str, object], float] = {}  # last requested cost, by query and page size
        self.bucket: _Bucket | None = None
        self.answered = 0  # answers with data
        self.throttled = 0.0

    def pages(self, kind: _Kind, since: datetime, until: datetime | None, started: datetime,
              tz: tzinfo) -> Iterator[Batch]:
        anchor, after, depth, count = since, None, 0, 0
        first = min(self.page_size, kind.page)
        while True:
            window = f"updated_at:>='{iso(anchor)}'"
            if until is not None:
                window += f" AND updated_at:<='{iso(until)}'"
            try:
                data = self.ask(kind.query, {"first": first, "after": after, "query": window})
            except _TooCostly:
                if first == 1:
                    raise SourceError(f"{self.source}: Shopify prices one {kind.noun} over its"
                                      " single-query limit; nothing was imported from it") from None
                first //= 2
                continue
            connection = data.get(kind.root)
            if not isinstance(connection, dict):
                raise SourceError(f"{self.source}: Shopify's answer has no {kind.root}; nothing was"
                                  " imported from this answer")
            nodes = _objs(connection.get("nodes"))
            batch, newest = Batch(kind.what), None
            for node in nodes:
                count += 1
                batch.records.append(self.record(kind, node, count, tz))
                stamp = _stamp(node.get("updatedAt"), tz)
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
            batch.newest = min(newest, started) if newest is not None else None
            yield batch
            info = _obj(connection.get("pageInfo"))
            if info.get("hasNextPage") is not True:
                return
            after = self.next_cursor(info, after, kind.what)
            depth += len(nodes)
            if kind.by_update and depth >= REANCHOR and newest is not None and newest > anchor:
                anchor, after, depth = newest, None, 0

    def next_cursor(self, info: dict, after: str | None, what: str) -> str:
        cursor = info.get("endCursor")
        if not isinstance(cursor, str) or not cursor or cursor == after:
            raise SourceError(f"{self.source}: Shopify said more {what} follow but gave no new"
                              " cursor; the next pull starts where this one could not")
        return cursor

    def record(self, kind: _Kind, node: dict, count: int, tz: tzinfo) -> Record | Rejected:
        label = build.clean(node.get("name")) or build.clean(node.get("email")) \
            or _tail(node.get("id")) or "?"
        try:
            if kind.lines is not None:
                node = self.all_lines(kind, node)
            return kind.make(node, count, tz)
        except RowRejected as exc:
            return Rejected(count, f"{kind.noun} {label}: {exc.reason}")

    def all_lines(self, kind: _Kind, node: dict) -> dict:
        """The node with every line item: the first page came with it, the rest is asked for."""
        items = _obj(node.get("lineItems"))
        lines, info, after = _objs(items.get("nodes")), _obj(items.get("pageInfo")), None
        while info.get("hasNextPage") is True:
            after = self.next_cursor(info, after, f"lines of {kind.noun} {node.get('name')}")
            data = self.ask(kind.lines or "", {"id": node.get("id"), "after": after})
            more = _obj(data.get("node")).get("lineItems")
            if not isinstance(more, dict):
                raise SourceError(f"{self.source}: Shopify did not give the rest of the lines of"
                                  f" {kind.noun} {node.get('name')}; nothing was imported from it")
            lines = [*lines, *_objs(more.get("nodes"))]
            info = _obj(more.get("pageInfo"))
        return {**node, "lineItems": {"nodes": lines}}

    def ask(self, query: str, variables: dict[str, Any]) -> dict:
        """`data` of the answer to one query; throttling waited out, errors raised."""
        tries = 0
        while True:
            key = (query, variables.get("first"))
            self.make_room(self.costs.get(key))
            body = self.client.post_json(self.path, {"query": query, "variables": variables})
            answer = body.json(self.source)
            if not isinstance(answer, dict):
                raise SourceError(f"{self.source}: {body.url} answered JSON that is not a GraphQL"
                                  " response; nothing was imported from this answer")
            cost = _obj(_obj(answer.get("extensions")).get("cost"))
            requested = _number(cost.get("requestedQueryCost"))
            if requested:
                self.costs[key] = requested
            self.note(_obj(cost.get("throttleStatus")))
            raw = answer.get("errors")
            errors = _objs(raw) if isinstance(raw, list) else [{"message": raw}] if raw else []
            if not errors:
                data = answer.get("data")
                if not isinstance(data, dict):
                    raise SourceError(f"{self.source}: {body.url} answered no data; nothing was"
                                      " imported from this answer")
                self.answered += 1
                return data
            codes = [str(_obj(e.get("extensions")).get("code") or "") for e in errors]
            if "THROTTLED" in codes:
                tries += 1
                self.throttle(requested, tries)
                continue
            self.fail(errors, codes)

    def make_room(self, cost: float | None) -> None:
        """Wait until the bucket, as the last answer left it and refilled since, holds `cost`."""
        bucket = self.bucket
        if cost is None or bucket is None or bucket.rate <= 0:
            return
        now = bucket.now(self.client.clock())
        need = min(cost, bucket.maximum)
        if need > now:
            self.wait(min((need - now) / bucket.rate, LONGEST_THROTTLE_WAIT))

    def note(self, status: dict) -> None:
        maximum, rate = _number(status.get("maximumAvailable")), _number(status.get("restoreRate"))
        available = _number(status.get("currentlyAvailable"))
        if maximum is not None and available is not None and rate is not None:
            self.bucket = _Bucket(maximum, available, rate, self.client.clock())

    def throttle(self, requested: float | None, tries: int) -> None:
        wait, bucket = MIN_THROTTLE_WAIT, self.bucket
        if bucket is not None and bucket.rate > 0:
            need = min(requested or bucket.maximum, bucket.maximum)
            wait = max((need - bucket.now(self.client.clock())) / bucket.rate, MIN_THROTTLE_WAIT)
        wait = min(wait, LONGEST_THROTTLE_WAIT)
        # a few seconds a page: a pull that keeps being throttled past that waits for the next run
        budget = 60.0 + 10.0 * self.answered
        if tries > THROTTLE_TRIES or self.throttled + wait > budget:
            raise SourceUnavailable(
                f"{self.source}: Shopify kept throttling the Admin API (THROTTLED {tries} times,"
                f" {self.throttled:g}s waited): nothing was skipped, the next pull starts where this"
                " one could not")
        self.throttled += wait
        self.wait(wait)

    def wait(self, seconds: float) -> None:
        self.client.wait(seconds)
        if self.bucket is not None:
            self.bucket.waited += seconds

    def fail(self, errors: list[dict], codes: list[str]) -> NoReturn:
        first = _one_line(errors[0].get("message")) or codes[0] or "an error"
        if "MAX_COST_EXCEEDED" in codes:
            raise _TooCostly()
        if "ACCESS_DENIED" in codes:
            denied = errors[codes.index("ACCESS_DENIED")]
            said = _one_line(denied.get("message"))
            scopes = ", ".join(dict.fromkeys(_SCOPE.findall(said))) or "read_orders, read_customers"
            raise SourceRefused(f"{self.source}: Shopify refused the query ({said}): give the app's"
                                f" access token the {scopes} access scope (docs/sources.md)")
        raise SourceError(f"{self.source}: Shopify answered an error (api_version {self.version}):"
                          f" {first}; nothing was imported from this answer")


# ------------------------------------------------------- GraphQL nodes in the REST JSON shape


def _order(o: dict, line: int, tz: tzinfo) -> Record:
    customer, ship = _obj(o.get("customer")), o.get("shippingLine")
    rest = {
        "id": o.get("legacyResourceId") or _tail(o.get("id")), "name": o.get("name"),
        "email": o.get("email"), "created_at": o.get("createdAt"), "updated_at": o.get("updatedAt"),
        "processed_at": o.get("processedAt"), "cancelled_at": o.get("cancelledAt"),
        "financial_status": o.get("displayFinancialStatus"),
        "fulfillment_status": o.get("displayFulfillmentStatus"),
        "payment_gateway_names": o.get("paymentGatewayNames"), "currency": o.get("currencyCode"),
        "customer_locale": o.get("customerLocale"),
        "subtotal_price": _money(o.get("subtotalPriceSet")),
        "total_shipping_price_set": {"shop_money": {"amount": _money(o.get("totalShippingPriceSet"))}},
        "total_tax": _money(o.get("totalTaxSet")), "total_discounts": _money(o.get("totalDiscountsSet")),
        "total_price": _money(o.get("totalPriceSet")),
        "shipping_lines": [{"title": ship.get("title")}] if isinstance(ship, dict) else [],
        "shipping_address": _address(o.get("shippingAddress")),
        "billing_address": _address(o.get("billingAddress")), "customer": _customer(customer),
        "line_items": _lines(o, "name"),
        "fulfillments": [_parcel(f) for f in _objs(o.get("fulfillments"))],
    }
    if "refunds" in o:  # a Refund's total is what its successful transactions gave back
        rest["refunds"] = [{"created_at": r.get("createdAt"), "transactions": [
            {"amount": _money(r.get("totalRefundedSet")), "kind": "refund", "status": "success"}]}
            for r in _objs(o.get("refunds"))]
    return shopify._json_order(rest, line, tz)


def _checkout(c: dict, line: int, tz: tzinfo) -> Record:
    customer, total = _obj(c.get("customer")), _obj(_obj(c.get("totalPriceSet")).get("shopMoney"))
    rest = {
        "id": _tail(c.get("id")), "email": customer.get("email"), "created_at": c.get("createdAt"),
        "updated_at": c.get("updatedAt"), "completed_at": c.get("completedAt"),
        "customer_locale": customer.get("locale"), "currency": total.get("currencyCode"),
        "total_price": total.get("amount"), "abandoned_checkout_url": c.get("abandonedCheckoutUrl"),
        "customer": _customer(customer), "billing_address": _address(c.get("billingAddress")),
        "line_items": _lines(c, "title"),
    }
    return shopify._json_cart(rest, line, tz)


def _customer_record(c: dict, line: int, tz: tzinfo) -> Record:
    return shopify._json_customer({**_customer(c), "locale": c.get("locale"),
                                   "created_at": c.get("createdAt")}, line, tz)


def _customer(c: dict) -> dict:
    consent = _obj(c.get("emailMarketingConsent")).get("marketingState")
    return {"first_name": c.get("firstName"), "last_name": c.get("lastName"), "email": c.get("email"),
            "email_marketing_consent": {"state": consent} if consent else None}


def _address(a: object) -> dict | None:
    if not isinstance(a, dict):
        return None
    keys = ("name", "company", "address1", "address2", "zip", "city", "province", "country")
    return {"first_name": a.get("firstName"), "last_name": a.get("lastName"),
            **{k: a.get(k) for k in keys}}


def _lines(node: dict, name: str) -> list[dict]:
    return [{"sku": li.get("sku"), name: li.get(name), "quantity": li.get("quantity"),
             "price": _money(li.get("originalUnitPriceSet"))}
            for li in _objs(_obj(node.get("lineItems")).get("nodes"))]


def _parcel(f: dict) -> dict:
    tracking = (_objs(f.get("trackingInfo")) or [{}])[0]
    return {"created_at": f.get("createdAt"), "updated_at": f.get("deliveredAt") or f.get("updatedAt"),
            "status": f.get("status"), "shipment_status": f.get("displayStatus"),
            "tracking_number": tracking.get("number"), "tracking_url": tracking.get("url"),
            "tracking_company": tracking.get("company")}


_ORDERS = _Kind("orders", "order", "orders", q.ORDERS, q.ORDER_PAGE, True, q.ORDER_LINES, _order)
_CHECKOUTS = _Kind("checkouts", "checkout", "abandonedCheckouts", q.CHECKOUTS, q.CHECKOUT_PAGE,
                   False, q.CHECKOUT_LINES, _checkout)
_CUSTOMERS = _Kind("customers", "customer", "customers", q.CUSTOMERS, q.CUSTOMER_PAGE, True, None,
                   _customer_record)


def _money(bag: object) -> object:
    return _obj(_obj(bag).get("shopMoney")).get("amount")


def _tail(gid: object) -> str | None:
    """`123` of `gid://shopify/AbandonedCheckout/123`: the id the REST API and exports use."""
    text = build.clean(gid)
    return text.rsplit("/", 1)[-1] if text else None


def _stamp(value: object, tz: tzinfo) -> datetime | None:
    try:
        return build.timestamp(value, "updatedAt", tz)
    except RowRejected:
        return None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _one_line(value: object) -> str:
    text = " ".join(str(value or "").split())
    return text[:300]


def _obj(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _objs(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
