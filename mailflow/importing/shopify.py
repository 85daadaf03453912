"""Shopify: the Admin "Export orders" and "Export abandoned checkouts" CSVs (any vintage of
the header, and the Transporter template), and REST Admin JSON. The status table and
the column map are in docs/formats/shopify.md."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any

from mailflow.errors import NotAnExport, RowRejected
from mailflow.importing import build, canonical
from mailflow.importing.columns import Columns, normalize, strip_excel_guard
from mailflow.importing.source import CsvTable, JsonDocument
from mailflow.records import (
    UPDATABLE_FIELDS,
    Cart,
    Customer,
    Fulfillment,
    Line,
    Order,
    Record,
    Rejected,
)
from mailflow.values import parse_quantity

# Shopify's two CSV exports share one header (no recovery URL column since at least 2023),
# so `--kind carts` may turn an "orders" detection into carts.
KIND_FROM_OPTION = True

_CSV_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("Name",), "id": ("Id",), "email": ("Email",),
    "financial": ("Financial Status",), "fulfillment": ("Fulfillment Status",),
    "created_at": ("Created at", "Processed At"), "paid_at": ("Paid at",),
    "fulfilled_at": ("Fulfilled at",), "cancelled_at": ("Cancelled at",),
    "updated_at": ("Updated at",), "completed_at": ("Completed at",),
    "accepts_marketing": ("Accepts Marketing", "Buyer Accepts Marketing",
                          "Accepts Email Marketing"),
    "locale": ("Locale", "Customer Locale"), "currency": ("Currency",),
    "subtotal": ("Subtotal",), "shipping": ("Shipping",), "tax": ("Taxes", "Total Tax"),
    "discount": ("Discount Amount",), "total": ("Total",),
    "payment_method": ("Payment Method",), "payment_terms": ("Payment Terms Name",),
    "shipping_method": ("Shipping Method",),
    "ship_line_title": ("Shipping line title",), "ship_line_price": ("Shipping line price",),
    "recovery_url": ("Abandoned Checkout URL", "Recovery URL", "Checkout URL"),
    "billing_name": ("Billing Name",), "billing_first": ("Billing First Name",),
    "billing_last": ("Billing Last Name",), "ship_name": ("Shipping Name",),
    "ship_first": ("Shipping First Name",), "ship_last": ("Shipping Last Name",),
    "ship_company": ("Shipping Company",), "ship_address1": ("Shipping Address1",),
    "ship_address2": ("Shipping Address2",), "ship_street": ("Shipping Street",),
    "ship_zip": ("Shipping Zip",), "ship_city": ("Shipping City",),
    "ship_province": ("Shipping Province Name", "Shipping Province"),
    "ship_country": ("Shipping Country",),
    "line_name": ("Lineitem name",), "line_sku": ("Lineitem sku",),
    "line_quantity": ("Lineitem quantity",), "line_price": ("Lineitem price",),
    "line_fulfillment": ("Lineitem fulfillment status",),
    "refunded": ("Refunded Amount",),
}
_CART_COLUMNS = {"abandoned checkout url", "recovery url", "checkout url"}

# Financial Status → the status it gives an order that is neither cancelled nor shipped.
_FINANCIAL = {"pending": "pending_payment", "authorized": "paid", "partially_paid": "paid",
              "paid": "paid", "partially_refunded": "paid", "refunded": "refunded",
              "voided": "cancelled", "expired": "failed"}
# Fulfillment Status → whether at least one parcel has left.
_FULFILLMENT = {"fulfilled": True, "partial": True, "partially_fulfilled": True, "shipped": True,
                "": False, "null": False, "unfulfilled": False, "restocked": False,
                "pending": False, "open": False, "in_progress": False, "on_hold": False,
                "scheduled": False, "pending_fulfillment": False, "request_declined": False}
_PARTIAL = {"partial", "partially_fulfilled"}
# A line's fulfillment status (CSV `Lineitem fulfillment status`, JSON
# `line_items[].fulfillment_status`) → whether the whole line has left: a line only part of
# whose quantity left is not shipped (the rest follows). Other values (`restocked`,
# `not_eligible`…): not known.
_LINE_SHIPPED = {"fulfilled": True, "pending": False, "": False, "null": False,
                 "unfulfilled": False, "partial": False, "partially_fulfilled": False}
_FAILED_FULFILLMENT = {"cancelled", "error", "failure"}
# What a fulfillment's `shipment_status` (the carrier's last word) means for the order.
_SHIPMENT = {"delivered": "delivered", "picked_up": "delivered", "ready_for_pickup": "at_pickup_point"}
# The order fields an orders CSV can hold, by the columns that hold them (absent columns:
# not carried, so a re-import never wipes what a fulfillment file or an API told us).
_CSV_CARRIES = {
    "email": ("email",), "locale": ("locale",), "accepts_marketing": ("accepts_marketing",),
    "paid_at": ("paid_at",), "shipped_at": ("fulfilled_at",), "cancelled_at": ("cancelled_at",),
    "currency": ("currency",), "subtotal": ("subtotal",), "tax": ("tax",),
    "discount": ("discount",), "total": ("total",), "platform_id": ("id",),
    "payment_method": ("payment_method",), "payment_class": ("payment_method", "payment_terms"),
    "shipping": ("shipping", "ship_line_price"), "partially_shipped": ("fulfillment",),
    "refunded_amount": ("refunded",),
    "shipping_method": ("shipping_method", "ship_line_title"),
    "first_name": ("billing_first", "billing_name", "ship_first", "ship_name"),
    "last_name": ("billing_last", "billing_name", "ship_last", "ship_name"),
    "shipping_address": ("ship_name", "ship_company", "ship_address1", "ship_address2",
                         "ship_street", "ship_zip", "ship_city", "ship_province", "ship_country"),
}
_CSV_NEVER = frozenset({"delivered_at", "tracking_number", "tracking_url", "carrier",
                        "pickup_point"})
# A REST order says nothing of these (its fulfillments may say delivered: then it carries it)
_JSON_NEVER = frozenset({"paid_at", "pickup_point"})
_PLAIN_AMOUNT = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?").fullmatch


def _word(value: object) -> str:
    if isinstance(value, str):
        return _cell_word(value)
    return "" if value is None else _cell_word(str(value))


@lru_cache(maxsize=1024)  # a status column holds a handful of spellings
def _cell_word(text: str) -> str:
    return text.strip().lower().replace(" ", "_").replace("-", "_")


@lru_cache(maxsize=256)
def _line_shipped(cell: str) -> bool | None:
    return _LINE_SHIPPED.get(_cell_word(cell))


@lru_cache(maxsize=4096)
def _status(financial: str | None, fulfillment: str | None, cancelled: bool, method: str | None,
            paid: bool) -> tuple[str, str | None]:
    """(status, the order date that says when it entered it: paid/shipped/cancelled or None).
    `financial` None means the export has no such column: the dates decide."""
    fin = None if financial is None else _word(financial)
    if fin is not None and fin not in _FINANCIAL:
        raise RowRejected(f"unknown financial status {financial!r}")
    ful = _word(fulfillment)
    if ful not in _FULFILLMENT:
        raise RowRejected(f"unknown fulfillment status {fulfillment!r}")
    if cancelled:
        return ("refunded" if fin == "refunded" else "cancelled"), "cancelled"
    if fin in ("refunded", "voided", "expired"):
        return _FINANCIAL[fin], None
    if _FULFILLMENT[ful]:
        return "shipped", "shipped"
    # an authorization of an offline method is a promise to pay, not money a gateway holds
    offline = build.payment_class_of(method) in ("offline", "on_delivery")
    if fin == "pending" or (fin == "authorized" and offline):
        return "pending_payment", None
    if fin is None:
        return ("paid", "paid") if paid else ("pending_payment", None)
    return _FINANCIAL[fin], "paid"


# ---------------------------------------------------------------------------- CSV


def detect_csv(header: list[str]) -> str | None:
    names = {normalize(h) for h in header}
    if {"name", "lineitem name"} <= names and names & {"financial status", "fulfillment status"}:
        return "carts" if names & _CART_COLUMNS else "orders"
    if "email" in names and names & {"total spent", "total orders"} \
            and names & {"accepts email marketing", "accepts marketing", "first name"}:
        return "customers"  # the Customers export, of any vintage
    return None


class _Layout:
    """Each field's cell index, found once per file; an absent field points at an always-empty
    cell that every row gets appended. Also the file's few conversions, with their caches."""

    def __init__(self, header: list[str], tz: tzinfo) -> None:
        at = Columns(header, _CSV_ALIASES).at
        self.width = len(header)
        self.present = at
        self.label = {f: header[i] for f, i in at.items()}
        self.tz = tz
        self._stamps: dict[str, datetime | None] = {}
        for field in _CSV_ALIASES:
            setattr(self, field, at.get(field, self.width))
        self.address_cells = itemgetter(*(at.get(f, self.width) for f in (
            "ship_name", "ship_company", "ship_address1", "ship_address2", "ship_street",
            "ship_zip", "ship_city", "ship_province", "ship_country")))
        absent = {f for f, columns in _CSV_CARRIES.items() if not any(c in at for c in columns)}
        self.carried = frozenset(UPDATABLE_FIELDS) - _CSV_NEVER - absent

    def __getattr__(self, field: str) -> int:  # for type checkers: __init__ sets every field
        raise AttributeError(field)

    def stamp(self, value: str, field: str) -> datetime | None:
        """An order's dates repeat (Created at = Paid at, and on every row): parse each once."""
        if not value:
            return None
        stamps = self._stamps
        if value not in stamps:
            if len(stamps) >= 1024:
                stamps.clear()
            stamps[value] = build.timestamp(value, self.label[field], self.tz)
        return stamps[value]

    def amount(self, value: str, field: str) -> str | None:
        if not value:
            return None
        return value if _PLAIN_AMOUNT(value) else build.amount(value, self.label[field])

    def names(self, cells: list[str]) -> tuple[str | None, str | None]:
        for first_i, last_i, full_i in ((self.billing_first, self.billing_last, self.billing_name),
                                        (self.ship_first, self.ship_last, self.ship_name)):
            first, last = cells[first_i].strip() or None, cells[last_i].strip() or None
            if first or last:
                return first, last
            full = cells[full_i].strip()
            if full:
                first, _, rest = full.partition(" ")
                return first, rest.strip() or None
        return None, None

    def address(self, cells: list[str]) -> str | None:
        """The Shipping cells as the lines of a label; Street is Address1 + 2 in one cell."""
        name, company, line1, line2, street, zip_code, city, province, country = [
            cell.strip() for cell in self.address_cells(cells)]
        town = f"{strip_excel_guard(zip_code) or ''} {city}".strip()
        parts = (name, company, *((line1, line2) if line1 or line2 else (street,)), town,
                 province, country)
        return "\n".join(filter(None, parts)) or None


def _csv_order(c: _Layout, cells: list[str], key: str, line: int) -> Order:
    created = c.stamp(cells[c.created_at], "created_at")
    if created is None:
        raise RowRejected(f"{c.label['created_at']} is empty")
    paid, shipped = c.stamp(cells[c.paid_at], "paid_at"), c.stamp(cells[c.fulfilled_at], "fulfilled_at")
    cancelled = c.stamp(cells[c.cancelled_at], "cancelled_at")
    financial = cells[c.financial].strip() if "financial" in c.present else None
    if financial == "":
        raise RowRejected(f"{c.label['financial']} is empty: not an order"
                          " (Shopify's abandoned checkouts export imports with --kind carts)")
    method = cells[c.payment_method].strip() or None
    status, entered = _status(financial, cells[c.fulfillment], cancelled is not None, method,
                              paid is not None)
    partial = _word(cells[c.fulfillment]) in _PARTIAL if "fulfillment" in c.present else None
    first, last = c.names(cells)
    marketing = cells[c.accepts_marketing]
    return Order(
        order_id=key, line=line, email=cells[c.email].strip() or None, status=status,
        created_at=created, first_name=first, last_name=last,
        locale=cells[c.locale].strip() or None,
        accepts_marketing=build.consent(marketing) if marketing else None,
        paid_at=paid, shipped_at=shipped, cancelled_at=cancelled,
        status_at=paid if entered == "paid" else shipped if entered == "shipped" else
        cancelled if entered == "cancelled" else None,
        currency=cells[c.currency].strip() or None, subtotal=c.amount(cells[c.subtotal], "subtotal"),
        shipping=c.amount(cells[c.shipping], "shipping"), tax=c.amount(cells[c.tax], "tax"),
        discount=c.amount(cells[c.discount], "discount"), total=c.amount(cells[c.total], "total"),
        payment_method=method, shipping_method=cells[c.shipping_method].strip() or None,
        payment_class=build.payment_class_of(method, cells[c.payment_terms]),
        shipping_address=c.address(cells), platform_id=cells[c.id].strip() or None,
        partially_shipped=partial, carried=c.carried,
        refunded_amount=build.given_back(c.amount(cells[c.refunded], "refunded")),
        partially_refunded=_word(financial) == "partially_refunded" or None,
    )



def _json_refunds(o: dict, tz: tzinfo) -> tuple[str | None, datetime | None]:
    """(the money given back, when the last refund was made) from `refunds[]`: the successful
    `refund` transactions of each."""
    refunds = _objs(o.get("refunds"))
    amounts = [build.amount(t.get("amount"), "refunds transactions amount")
               for r in refunds for t in _objs(r.get("transactions"))
               if _word(t.get("kind")) == "refund" and _word(t.get("status")) in ("success", "")]
    total = sum((Decimal(a) for a in amounts if a), Decimal(0))
    times = [build.timestamp(r.get("processed_at") or r.get("created_at"), "refunds created_at", tz)
             for r in refunds]
    return build.given_back(str(total)), max((t for t in times if t), default=None)


def _csv_cart(c: _Layout, cells: list[str], key: str, line: int) -> Cart:
    created = c.stamp(cells[c.created_at], "created_at")
    if created is None:
        raise RowRejected(f"{c.label['created_at']} is empty")
    first, last = c.names(cells)
    marketing = cells[c.accepts_marketing]
    return Cart(
        cart_id=cells[c.id].strip() or key, line=line, email=cells[c.email].strip() or None,
        created_at=created, updated_at=c.stamp(cells[c.updated_at], "updated_at"),
        completed_at=c.stamp(cells[c.completed_at], "completed_at"), first_name=first, last_name=last,
        locale=cells[c.locale].strip() or None,
        accepts_marketing=build.consent(marketing) if marketing else None,
        currency=cells[c.currency].strip() or None, total=c.amount(cells[c.total], "total"),
        recovery_url=cells[c.recovery_url].strip() or None,
    )


def read_csv(table: CsvTable, kind: str, ctx: Any) -> Iterator[Record | Rejected]:
    """One row per line item; an order's (or checkout's) fields on the first row of its Name.
    The Customers export is one row per customer, read as the canonical customers file."""
    if kind == "customers":
        yield from canonical.read_csv(table, "customers", ctx)
        return
    c = _Layout(table.header, ctx.tz)
    for field in ("name", "created_at"):
        if field not in c.present:
            wanted = _CSV_ALIASES[field][0]
            raise NotAnExport(f"{table.source.name}:1: no {wanted!r} column in the header")
    make = _csv_order if kind == "orders" else _csv_cart
    width = c.width
    i_key, i_name, i_sku = c.name, c.line_name, c.line_sku
    i_qty, i_price = c.line_quantity, c.line_price
    # which lines left: an order's, never a checkout's
    i_shipped = c.line_fulfillment if kind == "orders" and "line_fulfillment" in c.present \
        else None
    # The Transporter template puts the shipping line on a row of its own.
    tail = [(attr, c.present[field], field) for attr, field in (
        ("shipping_method", "ship_line_title"), ("shipping", "ship_line_price"))
        if kind == "orders" and field in c.present and attr not in c.present]
    prices: set[str] = set()  # a catalogue has few prices: check each spelling once
    current_raw: str | None = None
    current: str | None = None
    record: Order | Cart | None = None
    lines: list[Line] = []
    first = True
    for line, cells in table.rows():
        if len(cells) == width:
            cells.append("")
        else:
            cells = [*cells[:width], *[""] * (width - len(cells)), ""]
        raw = cells[i_key]
        if raw != current_raw and raw.strip() != current:
            if record is not None:
                yield record
            record, current_raw, current = None, raw, raw.strip()
            if not current:
                yield Rejected(line, f"no order number ({c.label['name']} is empty)")
                current_raw = current = None
                continue
            # Shopify's abandoned checkouts export: no Financial Status, and Name is # + Id
            if first and kind == "orders" and "financial" in c.present \
                    and not cells[c.financial].strip() and current == f"#{cells[c.id].strip()}":
                raise NotAnExport(f"{table.source.name}: this is Shopify's abandoned checkouts"
                                  " export (no Financial Status): import it with --kind carts")
            first = False
            try:
                record = make(c, cells, current, line)
            except RowRejected as exc:
                yield Rejected(line, exc.reason)
                continue
            lines = record.lines
        elif record is None:
            continue  # the rest of a rejected order
        name, sku = cells[i_name], cells[i_sku]
        try:
            if name or sku:
                quantity, price = cells[i_qty], cells[i_price]
                lines.append(Line(
                    sku.strip() or None, name.strip() or None,
                    _COUNTS.get(quantity) or _quantity(quantity),
                    price if price in prices else _line_price(price, prices),
                    None if i_shipped is None else _line_shipped(cells[i_shipped])))
            for attr, i, field in tail:
                if cells[i] and getattr(record, attr) is None:
                    setattr(record, attr, c.amount(cells[i], field) if attr == "shipping"
                            else cells[i].strip())
        except RowRejected as exc:
            yield Rejected(line, f"order {current} not imported: {exc.reason}")
            record = None
    if record is not None:
        yield record


_COUNTS = {str(n): n for n in range(1, 100)}


def _line_price(price: str, plain: set[str]) -> str | None:
    if not _PLAIN_AMOUNT(price):
        return build.amount(price, "Lineitem price")
    if len(plain) >= 4096:
        plain.clear()
    plain.add(price)
    return price


def _quantity(value: str) -> int:
    try:
        return parse_quantity(value)
    except ValueError as exc:
        raise RowRejected(f"Lineitem quantity: {exc}") from None


# ---------------------------------------------------------------------------- JSON

_JSON_ROOTS = {"orders": "orders", "order": "orders", "fulfillments": "orders",
               "fulfillment": "orders", "checkouts": "carts", "checkout": "carts",
               "customers": "customers", "customer": "customers"}


def _root(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    for key in _JSON_ROOTS:
        value = data.get(key)
        if key.endswith("s"):
            if isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
                return key
        elif isinstance(value, dict):
            return key
    return None


def detect_json(data: Any) -> str | None:
    key = _root(data)
    return _JSON_ROOTS[key] if key else None


def read_json(doc: JsonDocument, kind: str, ctx: Any) -> Iterator[Record | Rejected]:
    key = _root(doc.data)
    if key is None:
        raise NotAnExport(f"{doc.source.name}: not a Shopify REST Admin document")
    if _JSON_ROOTS[key] != kind:
        raise NotAnExport(f"{doc.source.name}: --kind {kind} does not fit a Shopify {key!r} file")
    makers: dict[str, Callable[[dict, int, tzinfo], Record]] = {
        "order": _json_order, "checkout": _json_cart, "fulfillment": _json_fulfillment,
        "customer": _json_customer}
    make = makers[key.removesuffix("s")]
    value = doc.data[key]
    if isinstance(value, dict):
        found = re.search(f'"{key}"\\s*:', doc.text)
        items = [(doc.text.count("\n", 0, found.end()) + 1 if found else 1, value)]
    else:
        items = [(doc.item_line(key, n), item) for n, item in enumerate(value)]
    for line, item in items:
        try:
            yield make(item, line, ctx.tz)
        except RowRejected as exc:
            yield Rejected(line, exc.reason)


def _obj(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _objs(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _consent(o: dict) -> bool | None:
    customer = _obj(o.get("customer"))
    for value in (o.get("buyer_accepts_marketing"),
                  _obj(o.get("email_marketing_consent")).get("state"),
                  _obj(customer.get("email_marketing_consent")).get("state"),
                  customer.get("accepts_marketing"), o.get("accepts_marketing")):
        flag = build.consent(value)
        if flag is not None:
            return flag
    return None


def _json_names(o: dict) -> tuple[str | None, str | None]:
    for holder in (o.get("customer"), o.get("billing_address"), o.get("shipping_address"), o):
        holder = _obj(holder)
        first, last = build.clean(holder.get("first_name")), build.clean(holder.get("last_name"))
        if first or last:
            return first, last
    return None, None


def _json_lines(o: dict) -> list[Line]:
    return [build.line_item(li.get("sku"), li.get("name") or li.get("title"), li.get("quantity"),
                            li.get("price")) for li in _objs(o.get("line_items"))]


def _json_order_lines(o: dict, parcels: list[dict]) -> list[Line]:
    """The order's lines, each with whether it has wholly left: its own `fulfillment_status`,
    else (no such key) the quantities the order's parcels carried of it."""
    lines = _json_lines(o)
    sent: dict[str, int] = {}
    for parcel in parcels:
        for item in _objs(parcel.get("line_items")):
            key = build.clean(item.get("id"))
            try:
                count = parse_quantity(item.get("quantity"))
            except ValueError:
                continue
            if key is not None:
                sent[key] = sent.get(key, 0) + count
    for line, li in zip(lines, _objs(o.get("line_items")), strict=True):
        if "fulfillment_status" in li:
            word = _word(li.get("fulfillment_status"))
            line.shipped = _LINE_SHIPPED.get(word)
            # nothing left to send of a line nothing was sent of: removed from the order
            if word in ("", "null") and li.get("fulfillable_quantity") == 0:
                line.shipped = None
        elif "fulfillments" in o:
            line.shipped = sent.get(build.clean(li.get("id")) or "", 0) >= line.quantity
    return lines


def _json_address(a: dict) -> str | None:
    zip_city = " ".join(filter(None, (build.clean(a.get("zip")), build.clean(a.get("city")))))
    parts = (a.get("name"), a.get("company"), a.get("address1"), a.get("address2"), zip_city,
             a.get("province"), a.get("country"))
    return "\n".join(filter(None, map(build.clean, parts))) or None


def _tracking(f: dict) -> tuple[str | None, str | None, str | None]:
    def first(key: str) -> object:
        value = f.get(f"{key}s")
        return f.get(key) or (value[0] if isinstance(value, list) and value else None)

    return (build.clean(first("tracking_number")), build.clean(first("tracking_url")),
            build.clean(f.get("tracking_company")))


def _shipping_amount(o: dict) -> str | None:
    shop = _obj(_obj(o.get("total_shipping_price_set")).get("shop_money")).get("amount")
    if shop is not None:
        return build.amount(shop, "total_shipping_price_set")
    prices = [build.amount(s.get("price"), "shipping_lines price")
              for s in _objs(o.get("shipping_lines"))]
    return str(sum(Decimal(p) for p in prices if p)) if any(prices) else None


def _json_order(o: dict, line: int, tz: tzinfo) -> Order:
    order_id = build.clean(o.get("name")) or build.clean(o.get("id"))
    if order_id is None:
        raise RowRejected("order has neither name nor id")
    customer = _obj(o.get("customer"))
    created = build.required_timestamp(o.get("created_at") or o.get("processed_at"),
                                       "created_at", tz)
    cancelled = build.timestamp(o.get("cancelled_at"), "cancelled_at", tz)
    financial = build.clean(o.get("financial_status"))
    if financial is None:
        raise RowRejected("financial_status is empty")
    gateways = o.get("payment_gateway_names")
    gateways = [g for g in gateways if isinstance(g, str)] if isinstance(gateways, list) else []
    method = ", ".join(gateways) or build.clean(o.get("gateway"))
    status, entered = _status(financial, build.clean(o.get("fulfillment_status")),
                              cancelled is not None, method, False)
    parcels = sorted((f for f in _objs(o.get("fulfillments"))
                      if _word(f.get("status")) not in _FAILED_FULFILLMENT),
                     key=lambda f: str(f.get("created_at") or ""))
    number, url, carrier = _tracking(parcels[-1]) if parcels else (None, None, None)
    shipped = delivered = None
    if parcels and _FULFILLMENT.get(_word(o.get("fulfillment_status"))):
        shipped = build.timestamp(parcels[0].get("created_at"), "fulfillments created_at", tz)
    if shipped is not None and status == "shipped":
        status, delivered = _arrival(parcels, _word(o.get("fulfillment_status")), tz)
        entered = status if status != "shipped" else entered
    never = _JSON_NEVER | ({"delivered_at"} if delivered is None else set())
    if "fulfillment_status" not in o:
        never |= {"partially_shipped"}
    if "fulfillments" not in o:  # says nothing of parcels: keep what a fulfillment file told
        never |= {"tracking_number", "tracking_url", "carrier", "shipped_at"}
    if "refunds" not in o:
        never |= {"refunded_amount"}
    refunded, refunded_at = _json_refunds(o, tz)
    first, last = _json_names(o)
    shipping_lines = _objs(o.get("shipping_lines"))
    return Order(
        order_id=order_id, line=line, status=status, created_at=created,
        email=build.clean(o.get("email") or o.get("contact_email") or customer.get("email")),
        first_name=first, last_name=last, locale=build.clean(o.get("customer_locale")),
        accepts_marketing=_consent(o), shipped_at=shipped, cancelled_at=cancelled,
        delivered_at=delivered if status == "delivered" else None,
        status_at={"shipped": shipped, "cancelled": cancelled,
                   "delivered": delivered, "at_pickup_point": delivered}.get(entered or ""),
        payment_class=build.payment_class_of(method), carried=frozenset(UPDATABLE_FIELDS) - never,
        changed_at=build.timestamp(o.get("updated_at"), "updated_at", tz),
        currency=build.clean(o.get("currency")),
        subtotal=build.amount(o.get("subtotal_price"), "subtotal_price"),
        shipping=_shipping_amount(o), tax=build.amount(o.get("total_tax"), "total_tax"),
        discount=build.amount(o.get("total_discounts"), "total_discounts"),
        total=build.amount(o.get("total_price"), "total_price"), payment_method=method,
        shipping_method=build.clean(shipping_lines[0].get("title")) if shipping_lines else None,
        tracking_number=number, tracking_url=url, carrier=carrier,
        shipping_address=_json_address(_obj(o.get("shipping_address"))),
        platform_id=build.clean(o.get("id")), lines=_json_order_lines(o, parcels),
        partially_shipped=_word(o.get("fulfillment_status")) in _PARTIAL
        if "fulfillment_status" in o else None,
        refunded_amount=refunded, refunded_at=refunded_at,
        partially_refunded=_word(financial) == "partially_refunded" or None,
    )


def _arrival(parcels: list[dict], fulfillment: str, tz: tzinfo) -> tuple[str, datetime | None]:
    """(status, since when) from what the carriers said of each parcel: delivered when the
    order is fulfilled and every parcel arrived, at the pickup point when one waits there."""
    said = [(_SHIPMENT.get(_word(p.get("shipment_status"))),
             build.timestamp(p.get("updated_at"), "fulfillments updated_at", tz)) for p in parcels]
    times = [at for _, at in said if at is not None]
    if fulfillment == "fulfilled" and all(s == "delivered" for s, _ in said):
        return "delivered", max(times, default=None)
    if any(s == "at_pickup_point" for s, _ in said) and all(s for s, _ in said):
        return "at_pickup_point", max(times, default=None)
    return "shipped", None


def _json_cart(o: dict, line: int, tz: tzinfo) -> Cart:
    cart_id = build.clean(o.get("id")) or build.clean(o.get("token"))
    if cart_id is None:
        raise RowRejected("checkout has neither id nor token")
    first, last = _json_names(o)
    return Cart(
        cart_id=cart_id, line=line,
        email=build.clean(o.get("email") or _obj(o.get("customer")).get("email")),
        created_at=build.required_timestamp(o.get("created_at"), "created_at", tz),
        updated_at=build.timestamp(o.get("updated_at"), "updated_at", tz),
        completed_at=build.timestamp(o.get("completed_at"), "completed_at", tz),
        first_name=first, last_name=last, locale=build.clean(o.get("customer_locale")),
        accepts_marketing=_consent(o),
        currency=build.clean(o.get("currency") or o.get("presentment_currency")),
        total=build.amount(o.get("total_price"), "total_price"),
        recovery_url=build.clean(o.get("abandoned_checkout_url")), lines=_json_lines(o),
    )


def _json_fulfillment(f: dict, line: int, tz: tzinfo) -> Fulfillment:
    order_id = build.clean(f.get("order_id"))
    if order_id is None:
        raise RowRejected("fulfillment has no order_id")
    state = _word(f.get("status"))
    if state in _FAILED_FULFILLMENT:
        raise RowRejected(f"fulfillment {f.get('id')} of order {order_id} is {state}:"
                          " nothing was shipped")
    number, url, carrier = _tracking(f)
    items = [(line.sku, line.name, line.quantity) for line in _json_lines(f)]
    return Fulfillment(order_id, line, build.timestamp(f.get("created_at"), "created_at", tz),
                       number, url, carrier, _SHIPMENT.get(_word(f.get("shipment_status"))),
                       build.timestamp(f.get("updated_at"), "updated_at", tz), items)


def _json_customer(o: dict, line: int, tz: tzinfo) -> Customer:
    return Customer(
        email=build.clean(o.get("email")), line=line, first_name=build.clean(o.get("first_name")),
        last_name=build.clean(o.get("last_name")), locale=build.clean(o.get("locale")),
        accepts_marketing=_consent(o),
        created_at=build.timestamp(o.get("created_at"), "created_at", tz),
    )
