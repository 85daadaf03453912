"""PrestaShop's Webservice API as a live source (devdocs.prestashop-project.org/8/webservice:
"Getting Started", "Cheat sheet", "Additional list parameters", "Testing access", the
resources `orders`, `order_states`, `customers`, `carts`, `products`, `currencies`,
`languages`).

The webservice key is the HTTP Basic user name, with an empty password; `output_format=JSON`
on every request. The key needs GET on the seven resources above. Three listings, a `Batch`
per page, each `GET /api/<resource>?display=full&filter[date_upd]=[A,B]&date=1
&sort=[id_ASC]&limit=offset,count` (`date=1` is what allows a date filter; the interval's
dates are the shop's local time without an offset, read and written in `tz`):

- orders, with their state's name from `order_states` (every language's name; the table of
  importing/prestashop_states.py gives the status), the customer's e-mail, names and
  newsletter consent from `customers` (an order only holds `id_customer`), the currency's
  ISO code and the language from `currencies` and `languages`;
- carts of known customers (a visitor's cart has no address to remind), lines with names
  and references from `products` (cart rows hold only ids and quantities; one bounded
  lookup per page, for the products it names, in the cart's language), the order a cart
  became from `orders?filter[id_cart]` (a cart does not say);
- customers, consent from `newsletter` (`optin` is the partners' offers box, not the
  shop's own mail); a guest's `date_add` is not an account's creation, so it is left out.

Lookups by id go `filter[id]=[1|2|…]`, CHUNK ids at a time. Listings are sorted by id, not
by `date_upd`: a record modified mid-pull keeps its place and a new one comes last, where
sorting by modification would move it to the end and push an unread one back onto a page
already read. A record leaving the list (deleted) still shifts the rest back, and
PrestaShop gives no total count: after a listing of several pages, the ids the same filter
lists (`display=[id]`, one request) are compared with those read, and any the shift hid is
fetched by id. What changed after its page was read comes in a catch-up round
(importing/api/paging.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from mailflow.errors import RowRejected, SourceError
from mailflow.importing import build, prestashop_states
from mailflow.importing.api import paging
from mailflow.importing.api.base import ApiSettings, Batch, Clock, Sleep
from mailflow.importing.api.client import HttpClient, Response
from mailflow.records import Cart, Customer, Order, Rejected

CHUNK = 50  # ids in one `filter[id]=[…]`: keeps the URL short
PEOPLE = "[id,email,firstname,lastname,newsletter,id_lang,is_guest,deleted,date_add]"
# what a pulled order always says; the rest only when the shop gives it
_ALWAYS = frozenset({"status", "created_at", "subtotal", "shipping", "tax", "discount", "total",
                     "payment_method", "payment_class", "platform_id", "lines"})
_FROM_CUSTOMER = frozenset({"email", "first_name", "last_name", "accepts_marketing"})


class PrestaShopApi:
    name = "prestashop"

    def open(self, settings: ApiSettings, env: Mapping[str, str], *, sleep: Sleep,
             clock: Clock) -> HttpClient:
        key = settings.secret(settings.key_env, "PrestaShop webservice key", env)
        return HttpClient(settings.name, settings.url, auth=(key, ""), sleep=sleep, clock=clock,
                          error_detail=error_detail)

    def fetch(self, client: HttpClient, settings: ApiSettings, since: datetime,
              tz: tzinfo) -> Iterator[Batch]:
        shop = _Shop(client, tz, max(1, settings.page_size))
        yield from shop.orders(since)
        yield from shop.carts(since)
        yield from shop.customers(since)


class _Shop:
    def __init__(self, client: HttpClient, tz: tzinfo, size: int) -> None:
        self.client, self.tz, self.size = client, tz, size
        # far enough ahead for what is modified while the pull runs, whatever the clocks say
        self.until = client.clock() + timedelta(days=1)
        self.people: dict[str, dict] = {}
        self.products: dict[str, dict] = {}
        self._states: dict[str, list[str]] | None = None
        self._codes: dict[str, dict[str, str]] = {}

    # --- the three listings -----------------------------------------------------------------

    def orders(self, since: datetime) -> Iterator[Batch]:
        position = 0
        for items in self._changes("orders", since):
            self._know("customers", self.people, _ids(items, "id_customer"), PEOPLE)
            batch = Batch("orders")
            for item in items:
                position += 1
                batch.records.append(self._record(item, position))
                batch.newest = _newer(batch.newest, self._updated(item))
            yield batch

    def carts(self, since: datetime) -> Iterator[Batch]:
        position = 0
        for items in self._changes("carts", since):
            items = [i for i in items if not isinstance(i, dict) or _id(i.get("id_customer"))]
            carts = [i for i in items if isinstance(i, dict)]
            self._know("customers", self.people, _ids(carts, "id_customer"), PEOPLE)
            rows = [r for c in carts for r in _rows(c, "cart_rows")]
            self._know("products", self.products, _ids(rows, "id_product"), "[id,reference,name]")
            placed = {build.clean(o.get("id_cart")): o for o in
                      self._by_id("orders", _ids(carts, "id"), "[id,id_cart,date_add]", "id_cart")}
            batch = Batch("checkouts")
            for item in items:
                position += 1
                batch.records.append(self._cart(item, position, placed))
                batch.newest = _newer(batch.newest, self._updated(item))
            if batch.records:
                yield batch

    def customers(self, since: datetime) -> Iterator[Batch]:
        position = 0
        for items in self._changes("customers", since):
            batch = Batch("customers")
            for item in items:
                if isinstance(item, dict) and build.flag(item.get("deleted")):
                    continue
                position += 1
                batch.records.append(self._person(item, position))
                batch.newest = _newer(batch.newest, self._updated(item))
            if batch.records:
                yield batch

    # --- records ----------------------------------------------------------------------------

    def _record(self, item: Any, position: int) -> Order | Rejected:
        if not isinstance(item, dict):
            return Rejected(None, "order entry is not an object")
        try:
            return self._order(item, position)
        except RowRejected as exc:
            number = build.clean(item.get("id"))
            return Rejected(None, f"order {number}: {exc.reason}" if number else exc.reason)

    def _order(self, item: dict, position: int) -> Order:
        order_id = build.clean(item.get("id"))
        if order_id is None:
            raise RowRejected("no order id")
        person = self.people.get(_id(item.get("id_customer")) or "")
        locale = self._code("languages", item.get("id_lang"))
        currency = self._code("currencies", item.get("id_currency"))
        tracking = build.clean(item.get("shipping_number"))
        payment = build.clean(item.get("payment"))
        module = (build.clean(item.get("module")) or "").lower()
        carried = set(_ALWAYS)
        carried |= _FROM_CUSTOMER if person else set()
        carried |= {name for name, value in (("locale", locale), ("currency", currency),
                                              ("tracking_number", tracking)) if value}
        person = person or {}
        return Order(
            order_id=order_id, line=position, email=build.clean(person.get("email")),
            status=self._status(item.get("current_state")),
            created_at=build.required_timestamp(item.get("date_add"), "date_add", self.tz),
            first_name=build.clean(person.get("firstname")),
            last_name=build.clean(person.get("lastname")), locale=locale,
            accepts_marketing=build.consent(person.get("newsletter")) if person else None,
            currency=currency,
            subtotal=_money(item.get("total_products_wt"), "total_products_wt"),
            shipping=_money(item.get("total_shipping_tax_incl"), "total_shipping_tax_incl"),
            tax=_tax(item), discount=_money(item.get("total_discounts"), "total_discounts"),
            total=_money(item.get("total_paid_tax_incl"), "total_paid_tax_incl"),
            payment_method=payment,
            payment_class=prestashop_states.PAYMENT_MODULES.get(module)
            or build.payment_class_of(payment, module),
            tracking_number=tracking, platform_id=order_id,
            lines=[build.line_item(r.get("product_reference"), r.get("product_name"),
                                   r.get("product_quantity"), _money(r.get("unit_price_tax_incl"),
                                                                     "unit_price_tax_incl"))
                   for r in _rows(item, "order_rows")],
            carried=frozenset(carried))

    def _status(self, state_id: Any) -> str:
        if self._states is None:
            self._states = {build.clean(s.get("id")) or "": _names(s.get("name")) for s in
                            self._entries(self._get("order_states", {"display": "full"}),
                                          "order_states") if isinstance(s, dict)}
        names = self._states.get(_id(state_id) or "")
        if not names:
            raise RowRejected(f"its state (id {state_id}) is not among the shop's order_states")
        for name in names:
            status = prestashop_states.status_of(name)
            if status is not None:
                return status
        raise RowRejected(f"PrestaShop order state {names[0]!r} is not one of the standard states"
                          " mailflow knows (docs/formats/mapping.md lists them): a module's state,"
                          " to be added to mailflow/importing/prestashop_states.py")

    def _cart(self, item: Any, position: int, placed: dict[str | None, dict]) -> Cart | Rejected:
        if not isinstance(item, dict):
            return Rejected(None, "cart entry is not an object")
        cart_id = build.clean(item.get("id"))
        try:
            if cart_id is None:
                raise RowRejected("no cart id")
            person = self.people.get(_id(item.get("id_customer")) or "", {})
            order = placed.get(cart_id, {})
            language = _id(item.get("id_lang"))
            lines = []
            for row in _rows(item, "cart_rows"):
                product = self.products.get(_id(row.get("id_product")) or "", {})
                lines.append(build.line_item(product.get("reference"),
                                             _in(product.get("name"), language),
                                             row.get("quantity"), None))
            return Cart(
                cart_id=cart_id, line=position, email=build.clean(person.get("email")),
                created_at=build.required_timestamp(item.get("date_add"), "date_add", self.tz),
                updated_at=build.timestamp(item.get("date_upd"), "date_upd", self.tz),
                completed_at=build.timestamp(order.get("date_add"), "date_add", self.tz),
                order_id=build.clean(order.get("id")),
                first_name=build.clean(person.get("firstname")),
                last_name=build.clean(person.get("lastname")),
                locale=self._code("languages", language),
                accepts_marketing=build.consent(person.get("newsletter")),
                currency=self._code("currencies", item.get("id_currency")), lines=lines)
        except RowRejected as exc:
            return Rejected(None, f"cart {cart_id}: {exc.reason}" if cart_id else exc.reason)

    def _person(self, item: Any, position: int) -> Customer | Rejected:
        if not isinstance(item, dict):
            return Rejected(None, "customer entry is not an object")
        try:
            guest = build.flag(item.get("is_guest"))
            return Customer(
                email=build.clean(item.get("email")), line=position,
                first_name=build.clean(item.get("firstname")),
                last_name=build.clean(item.get("lastname")),
                locale=self._code("languages", item.get("id_lang")),
                accepts_marketing=build.consent(item.get("newsletter")),
                created_at=None if guest else build.timestamp(item.get("date_add"), "date_add",
                                                              self.tz))
        except RowRejected as exc:
            return Rejected(None, f"customer {build.clean(item.get('id'))}: {exc.reason}")

    def _code(self, resource: str, wanted: Any) -> str | None:
        """A currency's or language's ISO code, from one request for all of them."""
        if resource not in self._codes:
            self._codes[resource] = {
                build.clean(e.get("id")) or "": build.clean(e.get("iso_code")) or "" for e in
                self._entries(self._get(resource, {"display": "[id,iso_code]"}), resource)
                if isinstance(e, dict)}
        return self._codes[resource].get(_id(wanted) or "") or None

    def _updated(self, item: Any) -> datetime | None:
        try:
            return build.timestamp(item.get("date_upd"), "date_upd", self.tz)
        except (RowRejected, AttributeError):
            return None

    # --- requests ---------------------------------------------------------------------------

    def _changes(self, resource: str, since: datetime) -> Iterator[list[Any]]:
        def pages(after: datetime) -> Iterator[paging.Page]:
            window = {"filter[date_upd]": f"[{self._local(after)},{self._local(self.until)}]",
                      "date": "1"}
            read: set[str] = set()
            offset, served = 0, self.client.clock()
            while True:
                answer = self._get(resource, {"display": "full", **window, "sort": "[id_ASC]",
                                              "limit": f"{offset},{self.size}"})
                items = self._entries(answer, resource)
                served = paging.served_at(answer, self.client.clock)
                read |= set(_ids(items, "id"))
                yield items, served
                if len(items) < self.size:
                    break
                offset += self.size
            if offset:  # several pages: did a record leaving the list shift one out of them?
                listed = _ids(self._entries(self._get(resource, {"display": "[id]", **window}),
                                            resource), "id")
                missed = [i for i in listed if i not in read]
                if missed:
                    yield self._by_id(resource, missed, "full"), served

        return paging.changes(pages, since, lambda item: item.get("date_upd"))

    def _know(self, resource: str, known: dict[str, dict], ids: list[str], display: str) -> None:
        wanted = [i for i in dict.fromkeys(ids) if i not in known]
        for entry in self._by_id(resource, wanted, display):
            known[build.clean(entry.get("id")) or ""] = entry

    def _by_id(self, resource: str, ids: list[str], display: str, field: str = "id") -> list[dict]:
        found: list[dict] = []
        wanted = list(dict.fromkeys(ids))
        for start in range(0, len(wanted), CHUNK):
            chunk = "|".join(wanted[start:start + CHUNK])
            answer = self._get(resource, {"display": display, f"filter[{field}]": f"[{chunk}]",
                                          "sort": "[id_ASC]"})
            found += [e for e in self._entries(answer, resource) if isinstance(e, dict)]
        return found

    def _get(self, resource: str, params: dict[str, str]) -> Response:
        return self.client.get(f"api/{resource}", {"output_format": "JSON", **params})

    def _entries(self, answer: Response, resource: str) -> list[Any]:
        data = answer.json(self.client.source)
        if data == []:  # how the webservice writes an empty list
            return []
        if isinstance(data, dict) and isinstance(data.get(resource), list):
            return data[resource]
        said = error_detail(answer.body)
        raise SourceError(f"{self.client.source}: {answer.url} answered "
                          + (said if said else f"JSON without a list of {resource}"))

    def _local(self, moment: datetime) -> str:
        return moment.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")


def error_detail(body: bytes) -> str | None:
    """The webservice's error document `{"errors": [{"code", "message"}]}` as one line."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list) or not errors:
        return None
    said = [f"[{e.get('code')}] {e.get('message')}" if e.get("code") is not None else
            str(e.get("message")) for e in errors if isinstance(e, dict)]
    return "PrestaShop says: " + "; ".join(said) if said else None


def _rows(item: dict, name: str) -> list[dict]:
    associations = item.get("associations")
    rows = associations.get(name) if isinstance(associations, dict) else None
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _names(value: Any) -> list[str]:
    """A multilingual field's values: a list of {id, value}, or a string in a one-language shop."""
    if isinstance(value, list):
        return [v["value"] for v in value if isinstance(v, dict) and build.clean(v.get("value"))]
    return [value] if build.clean(value) else []


def _in(value: Any, language: str | None) -> str | None:
    if isinstance(value, list):
        chosen = [v for v in value if isinstance(v, dict) and str(v.get("id")) == language]
        names = _names(chosen) or _names(value)
        return names[0] if names else None
    return build.clean(value)


def _id(value: Any) -> str | None:
    text = build.clean(value)
    return text if text and text != "0" else None


def _ids(items: list[Any], field: str) -> list[str]:
    return [i for i in (_id(e.get(field)) for e in items if isinstance(e, dict)) if i]


def _money(value: Any, field: str) -> str | None:
    """An amount; PrestaShop writes six decimals (`52.400000`): cents are enough when exact."""
    text = build.amount(value, field)
    if text is None:
        return None
    amount = Decimal(text).normalize()
    if amount.as_tuple().exponent >= -2:  # type: ignore[operator]
        amount = amount.quantize(Decimal("0.01"))
    return format(amount, "f")


def _tax(item: dict) -> str | None:
    incl = _money(item.get("total_paid_tax_incl"), "total_paid_tax_incl")
    excl = _money(item.get("total_paid_tax_excl"), "total_paid_tax_excl")
    return None if incl is None or excl is None else _money(Decimal(incl) - Decimal(excl), "tax")


def _newer(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)
