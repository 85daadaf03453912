"""The canonical `mailflow` format (CONTRACT §5), CSV or JSON; also the builder that
`--mapping` exports go through once their columns are renamed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from mailflow.errors import NotAnExport, RowRejected
from mailflow.importing import build
from mailflow.importing.catalogue import PRODUCT_FIELDS
from mailflow.importing.columns import Columns, group_rows
from mailflow.importing.source import CsvTable, JsonDocument
from mailflow.records import (
    PAYMENT_CLASSES,
    UPDATABLE_FIELDS,
    Cart,
    Customer,
    Order,
    Record,
    Rejected,
    Unsubscribe,
)

ORDER_FIELDS = (
    "order_id", "email", "first_name", "last_name", "locale", "accepts_marketing", "status",
    "created_at", "paid_at", "shipped_at", "delivered_at", "cancelled_at", "currency",
    "subtotal", "shipping", "tax", "discount", "total", "payment_method", "payment_class",
    "shipping_method", "tracking_number", "tracking_url", "carrier", "pickup_point",
    "refunded_amount",
)
CART_FIELDS = (
    "cart_id", "email", "first_name", "last_name", "locale", "accepts_marketing", "created_at",
    "updated_at", "completed_at", "order_id", "currency", "total", "recovery_url",
)
LINE_FIELDS = ("line_sku", "line_name", "line_quantity", "line_price")
CUSTOMER_FIELDS = ("email", "first_name", "last_name", "locale", "accepts_marketing",
                   "created_at")
UNSUBSCRIBE_FIELDS = ("email", "at")
PEOPLE_KINDS = ("customers", "unsubscribes")
KIND_FROM_OPTION = False  # its header says orders or carts (importing/adapter.py)
# A people file may come from anywhere: accept the usual names of its columns (Shopify's
# Customers export of every vintage, PrestaShop's customers list, French re-saves).
_EMAIL_NAMES = ("email", "e-mail", "email address", "e-mail address", "adresse e-mail",
                "adresse email", "courriel", "mail")
CONSENT_NAMES = ("accepts_marketing", "Accepts Email Marketing", "Accepts Marketing",
                 "Buyer Accepts Marketing", "Email Marketing Consent",
                 "Email Marketing Consent State", "Marketing Consent", "Email Marketing",
                 "Newsletter", "Opt-in", "Optin", "Abonné newsletter", "Inscrit à la newsletter",
                 "Consentement marketing")
_PEOPLE_NAMES = {"first_name": ("first_name", "First Name", "Prénom", "Prenom"),
                 "last_name": ("last_name", "Last Name", "Nom"),
                 "locale": ("locale", "Language", "Langue"),
                 "created_at": ("created_at", "Created At", "Date d'inscription", "Inscription")}
FIELDS_BY_KIND = {"orders": ORDER_FIELDS + LINE_FIELDS, "carts": CART_FIELDS + LINE_FIELDS,
                  "customers": CUSTOMER_FIELDS, "unsubscribes": UNSUBSCRIBE_FIELDS,
                  "products": PRODUCT_FIELDS}

Get = Callable[[str], Any]
StatusMap = Callable[[str], str]


def _aliases(kind: str) -> dict[str, tuple[str, ...]]:
    aliases: dict[str, tuple[str, ...]] = {f: (f,) for f in FIELDS_BY_KIND[kind]}
    aliases["email"] = _EMAIL_NAMES
    if "accepts_marketing" in aliases:
        aliases["accepts_marketing"] = CONSENT_NAMES
    if kind == "customers":
        aliases.update(_PEOPLE_NAMES)
    if kind == "unsubscribes":
        aliases["at"] = ("at", "unsubscribed_at", "date")
    return aliases


def carried_by(fields: object) -> frozenset[str]:
    """The order fields a source with these canonical fields carries (line_* → lines)."""
    names = set(fields)  # type: ignore[call-overload]
    carried = names & set(UPDATABLE_FIELDS)
    if names & set(LINE_FIELDS):
        carried.add("lines")
    if "payment_method" in carried:
        carried.add("payment_class")
    return frozenset(carried)


def detect_csv(header: list[str]) -> str | None:
    names = {h.strip().lower() for h in header}
    if "order_id" in names and "cart_id" not in names and "created_at" in names:
        return "orders"
    if "order_id" in names and len(names) > 1 and names <= set(ORDER_FIELDS + LINE_FIELDS):
        return "orders"  # a partial update of stored orders: only canonical columns
    if "cart_id" in names:
        return "carts"
    return None


def detect_json(data: Any) -> str | None:
    if isinstance(data, dict):
        for kind, key in (("orders", "order_id"), ("carts", "cart_id")):
            items = data.get(kind)
            if isinstance(items, list) and all(isinstance(i, dict) and key in i for i in items):
                return kind
        for kind in PEOPLE_KINDS:
            if isinstance(data.get(kind), list):
                return kind
        return None
    if isinstance(data, list) and data and all(isinstance(i, dict) for i in data):
        if all("order_id" in i for i in data) and not any("cart_id" in i for i in data):
            return "orders"
        if all("cart_id" in i for i in data):
            return "carts"
    return None


def build_order(get: Get, line: int, ctx, lines: list, status_map: StatusMap | None = None,
                carried: frozenset[str] | None = None) -> Order:
    """`carried`: the fields the source has (None: all of them); a stored order keeps the
    others, and a source without `created_at` can only update stored orders."""
    tz = ctx.tz
    order_id = build.clean(get("order_id"))
    if order_id is None:
        raise RowRejected("no order id")
    dates: dict[str, Any] = {f: build.timestamp(get(f), f, tz)
                             for f in ("paid_at", "shipped_at", "delivered_at", "cancelled_at")}
    raw_status = build.clean(get("status"))
    if raw_status is None:
        status = build.status_from_dates(*dates.values())
    else:
        status = (status_map or build.vocabulary)(raw_status)
    if carried is None or "created_at" in carried:
        created = build.required_timestamp(get("created_at"), "created_at", tz)
    else:
        created = None
    method = build.clean(get("payment_method"))
    amounts: dict[str, Any] = {f: build.amount(get(f), f)
                               for f in ("subtotal", "shipping", "tax", "discount", "total")}
    return Order(
        order_id=order_id, line=line, email=build.clean(get("email")), status=status,
        created_at=created,
        first_name=build.clean(get("first_name")), last_name=build.clean(get("last_name")),
        locale=build.clean(get("locale")),
        accepts_marketing=build.consent(get("accepts_marketing")),
        **dates,
        currency=build.clean(get("currency")),
        **amounts,
        payment_method=method, payment_class=_payment_class(get("payment_class"), method),
        shipping_method=build.clean(get("shipping_method")),
        tracking_number=build.clean(get("tracking_number")),
        tracking_url=build.clean(get("tracking_url")), carrier=build.clean(get("carrier")),
        pickup_point=build.clean(get("pickup_point")), lines=lines, carried=carried,
        refunded_amount=build.given_back(build.amount(get("refunded_amount"), "refunded_amount")),
    )



def _payment_class(given: object, method: str | None) -> str | None:
    text = build.clean(given)
    if text is None:
        return build.payment_class_of(method)
    word = text.lower().replace("-", "_").replace(" ", "_")
    if word not in PAYMENT_CLASSES:
        raise RowRejected(f"payment_class {text!r}: use one of {', '.join(PAYMENT_CLASSES)}")
    return word


def build_cart(get: Get, line: int, ctx, lines: list) -> Cart:
    tz = ctx.tz
    cart_id = build.clean(get("cart_id"))
    if cart_id is None:
        raise RowRejected("no cart id")
    return Cart(
        cart_id=cart_id, line=line, email=build.clean(get("email")),
        created_at=build.required_timestamp(get("created_at"), "created_at", tz),
        updated_at=build.timestamp(get("updated_at"), "updated_at", tz),
        completed_at=build.timestamp(get("completed_at"), "completed_at", tz),
        order_id=build.clean(get("order_id")), first_name=build.clean(get("first_name")),
        last_name=build.clean(get("last_name")), locale=build.clean(get("locale")),
        accepts_marketing=build.consent(get("accepts_marketing")),
        currency=build.clean(get("currency")), total=build.amount(get("total"), "total"),
        recovery_url=build.clean(get("recovery_url")), lines=lines,
    )


def build_person(kind: str, get: Get, line: int, ctx) -> Customer | Unsubscribe:
    if kind == "unsubscribes":
        return Unsubscribe(build.clean(get("email")), line, build.timestamp(get("at"), "at", ctx.tz))
    return Customer(
        email=build.clean(get("email")), line=line, first_name=build.clean(get("first_name")),
        last_name=build.clean(get("last_name")), locale=build.clean(get("locale")),
        accepts_marketing=build.consent(get("accepts_marketing")),
        created_at=build.timestamp(get("created_at"), "created_at", ctx.tz),
    )


def _csv_lines(columns: Columns, group: list[list[str]]) -> list:
    lines = []
    for row in group:
        get = columns.reader(row)
        if get("line_name") or get("line_sku"):
            lines.append(build.line_item(get("line_sku"), get("line_name"),
                                         get("line_quantity"), get("line_price")))
    return lines


def read_grouped_csv(table: CsvTable, kind: str, columns: Columns, ctx,
                     status_map: StatusMap | None = None,
                     defaults: dict[str, str] | None = None) -> Iterator[Record | Rejected]:
    """Orders or carts, one CSV row per line item, the record's fields on its first row;
    `defaults`: a constant for a field the file leaves empty or has no column for."""
    key = "order_id" if kind == "orders" else "cart_id"
    if key not in columns.at:
        raise _missing_column(table, key)
    carried = carried_by([*columns.at, *(defaults or {})])
    for item in group_rows(table.rows(), columns.at[key], key.replace("_", " ")):
        if isinstance(item, Rejected):
            yield item
            continue
        start, group = item
        try:
            lines = _csv_lines(columns, group)
            get = _with_defaults(_first_filled(columns, group), defaults)
            if kind == "orders":
                yield build_order(get, start, ctx, lines, status_map, carried)
            else:
                yield build_cart(get, start, ctx, lines)
        except RowRejected as exc:
            yield Rejected(start, exc.reason)


def _with_defaults(get: Get, defaults: dict[str, str] | None) -> Get:
    if not defaults:
        return get
    return lambda field: (value if (value := get(field)) is not None else defaults.get(field))


def _first_filled(columns: Columns, group: list[list[str]]) -> Get:
    """A field's value from the first row of the group that has it."""
    readers = [columns.reader(row) for row in group]
    if len(readers) == 1:
        return readers[0]

    def get(field: str) -> str | None:
        for read in readers:
            value = read(field)
            if value is not None:
                return value
        return None

    return get


def read_csv(table: CsvTable, kind: str, ctx) -> Iterator[Record | Rejected]:
    columns = Columns(table.header, _aliases(kind))
    if kind in PEOPLE_KINDS:
        if "email" not in columns.at:
            raise _missing_column(table, "email")
        for line, row in table.rows():
            try:
                yield build_person(kind, columns.reader(row), line, ctx)
            except RowRejected as exc:
                yield Rejected(line, exc.reason)
        return
    yield from read_grouped_csv(table, kind, columns, ctx)


def _missing_column(table: CsvTable, name: str) -> NotAnExport:
    return NotAnExport(f"{table.source.name}:1: no {name!r} column in the header")


def read_json(doc: JsonDocument, kind: str, ctx) -> Iterator[Record | Rejected]:
    data = doc.data
    key = kind if isinstance(data, dict) else None
    items = data.get(kind, []) if isinstance(data, dict) else data
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            yield Rejected(doc.item_line(key, index), f"{kind} entry is not an object")
            continue
        get, line = item.get, doc.item_line(key, index)
        try:
            if kind in PEOPLE_KINDS:
                yield build_person(kind, get, line, ctx)
                continue
            raw_lines = item.get("lines") or []
            if not isinstance(raw_lines, list) or not all(isinstance(li, dict) for li in raw_lines):
                raise RowRejected("lines: expected a list of objects (sku, name, quantity, price)")
            lines = [build.line_item(li.get("sku"), li.get("name"), li.get("quantity"),
                                     li.get("price")) for li in raw_lines]
            if kind == "orders":
                keys = [*item, *LINE_FIELDS] if "lines" in item else list(item)
                yield build_order(get, line, ctx, lines, carried=carried_by(keys))
            else:
                yield build_cart(get, line, ctx, lines)
        except RowRejected as exc:
            yield Rejected(line, exc.reason)
