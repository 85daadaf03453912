"""WooCommerce's REST API `wc/v3` as a live source (woocommerce.github.io/woocommerce-rest-api-docs:
"Authentication", "Pagination", "Orders", "Customers").

A consumer key and secret, HTTP Basic over HTTPS. Three listings, a `Batch` per page:

- orders modified since the watermark, `GET /wp-json/wc/v3/orders?status=any&modified_after=…
  &dates_are_gmt=true&orderby=id&order=asc&per_page=100&page=N`. `modified_after` is read as
  GMT with `dates_are_gmt`; the documented `orderby` values are `date`, `id`, `include`,
  `title` and `slug` (none by modification): id, for the paging below;
- checkout drafts, the same with `status=checkout-draft`, asked for by name: recent
  WooCommerce releases leave them out of `any` (older ones put them in: the orders listing
  then skips them, this one brings them). They become carts;
- customers, `GET /wp-json/wc/v3/customers?orderby=id&order=desc`: the endpoint has no
  modification filter, so the newest accounts come first and the listing stops at the
  first page that reaches accounts created before the watermark. A name changed on an
  older account waits for an orders file or a customers export.

Orders and drafts go through the REST JSON adapter of the file importer
(importing/woocommerce.py: the API answers exactly the shape a saved `GET /orders` file
holds), so a pulled order and an imported one are the same record, `carried` included.

Pages are numbered: mailflow counts pages by `X-WP-TotalPages` and the `Link` header's
`rel="next"`, but asks for page N with its own query rather than following the link, so the
credentials only ever go to the configured URL. Pages by number are windows over a list
that moves while it is read: sorted by id, an order modified mid-pull keeps its place and a
new one comes last (sorted by modification, the modified one would jump to the end and push
an unread one back onto a page already read). An order leaving the list (trashed) or
joining it mid-list still shifts the rest: every page's `X-WP-Total` is compared with the
first page's, and when it changed the listing is read again from page 1 (imports are
idempotent). What changed after its page was read comes in a catch-up round
(importing/api/paging.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from mailflow.errors import RowRejected, SourceError, SourceUnavailable
from mailflow.importing import build
from mailflow.importing import woocommerce as rest
from mailflow.importing.api import paging
from mailflow.importing.api.base import ApiSettings, Batch, Clock, Sleep
from mailflow.importing.api.client import HttpClient, Response
from mailflow.importing.formats import ParseContext
from mailflow.records import Customer, Record, Rejected

API = "wp-json/wc/v3"
LARGEST_PAGE = 100  # the API's maximum `per_page`
RESTARTS = 3  # readings of a listing from page 1 when its total keeps changing
_NEXT = re.compile(r'rel="?next"?')


class WooCommerceApi:
    name = "woocommerce"

    def open(self, settings: ApiSettings, env: Mapping[str, str], *, sleep: Sleep,
             clock: Clock) -> HttpClient:
        key = settings.secret(settings.key_env, "WooCommerce consumer key", env)
        secret = settings.secret(settings.secret_env, "WooCommerce consumer secret", env)
        return HttpClient(settings.name, settings.url, auth=(key, secret), sleep=sleep,
                          clock=clock, error_detail=error_detail)

    def fetch(self, client: HttpClient, settings: ApiSettings, since: datetime,
              tz: tzinfo) -> Iterator[Batch]:
        ctx = ParseContext(settings.name, tz, client.clock())
        size = max(1, min(settings.page_size, LARGEST_PAGE))
        yield from _orders(client, since, ctx, size, drafts=False)
        yield from _orders(client, since, ctx, size, drafts=True)
        yield from _customers(client, since, ctx, size)


def _orders(client: HttpClient, since: datetime, ctx: ParseContext, size: int, *,
            drafts: bool) -> Iterator[Batch]:
    status = rest.DRAFT if drafts else "any"

    def pages(after: datetime) -> Iterator[paging.Page]:
        return _pages(client, f"{API}/orders", {
            "status": status, "modified_after": _gmt(after), "dates_are_gmt": "true",
            "orderby": "id", "order": "asc", "per_page": size})

    position = 0
    for items in paging.changes(pages, since, _version):
        batch = Batch("checkouts" if drafts else "orders")
        for item in items:
            if isinstance(item, dict) and (rest._slug(item.get("status")) == rest.DRAFT) != drafts:
                continue  # a draft in an older WooCommerce's `any`: the drafts listing has it
            position += 1
            batch.records.append(_record(item, position, ctx))
            batch.newest = _newer(batch.newest, _modified(item, ctx))
        if batch.records:
            yield batch


def _record(item: Any, position: int, ctx: ParseContext) -> Record | Rejected:
    if not isinstance(item, dict):
        return Rejected(None, "order entry is not an object")
    try:
        if rest._slug(item.get("status")) == rest.DRAFT:
            return rest._cart(item, position, ctx)
        return rest._order(item, position, ctx)
    except RowRejected as exc:
        number = build.clean(item.get("number")) or build.clean(item.get("id"))
        return Rejected(None, f"order {number}: {exc.reason}" if number else exc.reason)


def _customers(client: HttpClient, since: datetime, ctx: ParseContext,
               size: int) -> Iterator[Batch]:
    position = 0
    pages = _pages(client, f"{API}/customers", {"orderby": "id", "order": "desc",
                                                "per_page": size})
    for items, _served in pages:
        batch = Batch("customers")
        reached_older = False
        for item in items:
            if not isinstance(item, dict):
                batch.records.append(Rejected(None, "customer entry is not an object"))
                continue
            created, modified = _moment(item, "date_created", ctx), _modified(item, ctx)
            reached_older |= created is not None and created < since
            moments = [m for m in (created, modified) if m is not None]
            if not moments or max(moments) < since:
                continue
            position += 1
            meta = rest._meta(item)
            batch.records.append(Customer(
                email=build.clean(item.get("email")), line=position,
                first_name=build.clean(item.get("first_name")),
                last_name=build.clean(item.get("last_name")), locale=rest._locale(meta),
                accepts_marketing=rest._consent(meta), created_at=created))
            batch.newest = _newer(batch.newest, modified or created)
        if batch.records:
            yield batch
        if reached_older:
            return


def _pages(client: HttpClient, path: str, params: dict[str, Any]) -> Iterator[paging.Page]:
    """Every page of a listing from page 1; from page 1 again when its `X-WP-Total` changed."""
    for _ in range(RESTARTS + 1):
        total: int | None = None
        page = 1
        while True:
            answer = client.get(path, {**params, "page": page})
            items = _entries(answer, client.source)
            count = _count(answer, "x-wp-total")
            if page == 1:
                total = count
            elif count != total:
                break
            yield items, paging.served_at(answer, client.clock)
            if not items or not _more(answer, page):
                return
            page += 1
    raise SourceUnavailable(f"{client.source}: {client.url(path)} kept changing its number of"
                            f" entries while mailflow paged through it ({RESTARTS + 1} readings):"
                            " nothing was skipped, the next pull starts where this one could not")


def _entries(answer: Response, source: str) -> list[Any]:
    data = answer.json(source)
    if not isinstance(data, list):
        raise SourceError(f"{source}: {answer.url} answered JSON that is not a list: is the"
                          " source's url the shop's WordPress address?")
    return data


def _more(answer: Response, page: int) -> bool:
    link = paging.header(answer, "link") or ""
    if any(_NEXT.search(part) for part in link.split(",")):
        return True
    pages = _count(answer, "x-wp-totalpages")
    return pages is not None and page < pages


def _count(answer: Response, name: str) -> int | None:
    text = (paging.header(answer, name) or "").strip()
    return int(text) if text.isdigit() else None


def error_detail(body: bytes) -> str | None:
    """WordPress's error document `{"code", "message", "data"}` as one line."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("message"), str):
        return None
    code = data.get("code")
    return f"WooCommerce says: {data['message']}" + (f" ({code})" if isinstance(code, str) else "")


def _version(item: dict) -> object:
    return item.get("date_modified_gmt") or item.get("date_modified")


def _modified(item: Any, ctx: ParseContext) -> datetime | None:
    return _moment(item, "date_modified", ctx) if isinstance(item, dict) else None


def _moment(item: dict, name: str, ctx: ParseContext) -> datetime | None:
    try:
        return rest._when(item, name, ctx)
    except RowRejected:
        return None


def _newer(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _gmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
