"""WooCommerce: REST `wc/v3` order JSON (a list, or one order) and the "Advanced Order Export
For WooCommerce" CSV (one row per line item, the status as a translated label).

REST dates come in pairs: `date_created` is the site's wall clock without an offset,
`date_created_gmt` the same moment in UTC, also without an offset. The `_gmt` twin is read
as UTC; the site-local field (shop timezone) only when the twin is missing.

`checkout-draft` orders (the block checkout's unfinished carts) become carts, whatever
the file's kind: a file of orders imports its drafts as carts too. The status table and
the reasons behind it are in docs/formats/woocommerce.md.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mailflow.errors import NotAnExport, RowRejected
from mailflow.importing import build, canonical
from mailflow.importing.columns import Columns, normalize
from mailflow.importing.source import CsvTable, JsonDocument
from mailflow.records import UPDATABLE_FIELDS, Cart, Line, Order, Record, Rejected

DRAFT = "checkout-draft"
KIND_FROM_OPTION = False  # its data says orders or carts (importing/adapter.py)

# REST status slugs (core, then common plugins), without the `wc-` prefix.
STATUS_SLUGS = {
    "pending": "pending_payment",
    "on-hold": "pending_payment",  # awaiting an offline payment (bank transfer, cheque)
    "processing": "paid",
    "completed": "shipped",  # the merchant's "done": sent, not known to be delivered
    "cancelled": "cancelled",
    "refunded": "refunded",
    "failed": "failed",
    "shipped": "shipped",
    "partial-shipped": "shipped",
    "delivered": "delivered",
    "ready-to-pickup": "at_pickup_point",
    "ready-for-pickup": "at_pickup_point",
    "awaiting-pickup": "at_pickup_point",
    "awaiting-stock": "awaiting_stock",
    "backorder": "awaiting_stock",
    "backordered": "awaiting_stock",
    "on-backorder": "awaiting_stock",
    "in-preparation": "in_preparation",
    "preparing": "in_preparation",
    "invoiced": "invoiced",
}

# Advanced Order Export writes the status as WooCommerce displays it, in the site's language.
# Keys are compared without case or accents.
STATUS_LABELS = {
    "pending payment": "pending_payment",
    "on hold": "pending_payment",
    "processing": "paid",
    "completed": "shipped",
    "cancelled": "cancelled",
    "refunded": "refunded",
    "failed": "failed",
    "shipped": "shipped",
    "delivered": "delivered",
    "ready for pickup": "at_pickup_point",
    "ready to pickup": "at_pickup_point",
    "awaiting stock": "awaiting_stock",
    "backorder": "awaiting_stock",
    "in preparation": "in_preparation",
    "invoiced": "invoiced",
    "attente paiement": "pending_payment",
    "en attente de paiement": "pending_payment",
    "en attente": "pending_payment",
    "en cours": "paid",
    "terminee": "shipped",
    "annulee": "cancelled",
    "remboursee": "refunded",
    "echouee": "failed",
    "expediee": "shipped",
    "livree": "delivered",
    "en preparation": "in_preparation",
    "facturee": "invoiced",
}
_DRAFT_LABELS = ("draft", "brouillon")

# Order meta written by newsletter plugins at checkout (Mailchimp, Klaviyo, Brevo,
# ActiveCampaign, HubSpot) or by hand-made checkout fields.
CONSENT_META = (
    "mailchimp_woocommerce_is_subscribed", "_mailchimp_woocommerce_is_subscribed",
    "mailchimp_newsletter", "_klaviyo_subscribed", "klaviyo_subscribed", "sib_woo_subscription",
    "_sib_woo_subscription", "activecampaign_optin", "_activecampaign_optin", "hs_woo_newsletter",
    "_hs_woo_newsletter", "accepts_marketing", "newsletter", "_newsletter", "marketing_opt_in",
)
TRACKING_META = "_wc_shipment_tracking_items"  # WooCommerce Shipment Tracking (and AST)
LOCALE_META = ("wpml_language",)

# "Advanced Order Export For WooCommerce" default column labels (older releases in second place).
AOE_ALIASES: dict[str, tuple[str, ...]] = {
    "order_id": ("Order Number", "Order ID"),
    "status": ("Order Status",),
    "created_at": ("Order Date",),
    "paid_at": ("Paid Date",),
    "shipped_at": ("Completed Date",),
    "email": ("Email (Billing)", "Customer User Email"),
    "first_name": ("First Name (Billing)",),
    "last_name": ("Last Name (Billing)",),
    "currency": ("Currency",),
    "subtotal": ("Order Subtotal Amount",),
    "shipping": ("Order Shipping Amount",),
    "tax": ("Order Total Tax Amount",),
    "discount": ("Cart Discount Amount",),
    "total": ("Order Total Amount",),
    "payment_method": ("Payment Method Title", "Payment Method"),
    "shipping_method": ("Shipping Method Title", "Shipping Method"),
    "line_sku": ("SKU",),
    "line_name": ("Item Name", "Product Name", "Name"),
    "line_quantity": ("Quantity", "Quantity (- Refund)"),
    "line_price": ("Item Cost",),
}


# --- detection ----------------------------------------------------------------------------

def _is_order(item: Any) -> bool:
    return (isinstance(item, dict) and "status" in item
            and ("date_created_gmt" in item or "date_created" in item)
            and ("line_items" in item or "billing" in item))


def detect_json(data: Any) -> str | None:
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list) or not items or not all(_is_order(i) for i in items):
        return None
    return "carts" if all(_slug(i.get("status")) == DRAFT for i in items) else "orders"


def detect_csv(header: list[str]) -> str | None:
    names = {normalize(h) for h in header}
    if {"order status", "order date"} <= names and names & {"order number", "order id"}:
        return "orders"
    return None


# --- REST JSON ----------------------------------------------------------------------------

def read_json(doc: JsonDocument, kind: str, ctx) -> Iterator[Record | Rejected]:
    """Every order of the file: drafts as carts, the others as orders (see the module doc)."""
    data = doc.data
    items = [data] if isinstance(data, dict) else data
    for index, item in enumerate(items):
        line = 1 if isinstance(data, dict) else doc.item_line(None, index)
        if not isinstance(item, dict):
            yield Rejected(line, "order entry is not an object")
            continue
        try:
            if _slug(item.get("status")) == DRAFT:
                yield _cart(item, line, ctx)
            else:
                yield _order(item, line, ctx)
        except RowRejected as exc:
            number = build.clean(item.get("number")) or build.clean(item.get("id"))
            yield Rejected(line, f"order {number}: {exc.reason}" if number else exc.reason)


def _slug(value: Any) -> str:
    slug = "-".join(str(value or "").strip().lower().replace("_", " ").split())
    return slug.removeprefix("wc-")


def status_from_slug(raw: Any) -> str:
    slug = _slug(raw)
    if not slug:
        raise RowRejected("status is empty")
    if slug == "trash":
        raise RowRejected("status 'trash': the order was deleted in WooCommerce (restore it to import it)")
    status = STATUS_SLUGS.get(slug)
    if status is None:
        raise RowRejected(f"unknown WooCommerce status {raw!r}: mailflow knows"
                          f" {', '.join(STATUS_SLUGS)} (for a custom status, import a CSV export"
                          " with --mapping)")
    return status


def _when(item: dict, name: str, ctx) -> datetime | None:
    """The `_gmt` twin as UTC; the site-local field (shop time) only when the twin is absent."""
    gmt = item.get(f"{name}_gmt")
    if build.clean(gmt) is not None:
        return build.timestamp(gmt, f"{name}_gmt", UTC)
    return build.timestamp(item.get(name), name, ctx.tz)


def _id(item: dict) -> str:
    order_id = build.clean(item.get("number")) or build.clean(item.get("id"))
    if order_id is None:
        raise RowRejected("no order number or id")
    return order_id


# Prices with VAT (`prices_include_tax: true`, every shop in the EU): the REST API still gives
# every amount without tax and its tax beside it (`subtotal` + `subtotal_tax`,
# `shipping_total` + `shipping_tax`, `discount_total` + `discount_tax`); the e-mails show what
# the customer saw at checkout, so the two are added back. Without it (US-style shops, tax
# added at checkout) the amounts are read as they are.
_CENT = Decimal("0.01")


def _includes_tax(item: dict) -> bool:
    return build.flag(item.get("prices_include_tax")) is True


def _with_tax(entry: dict, field: str, tax_field: str, label: str) -> Decimal | None:
    """`field` + `tax_field` as exact decimals; None when `field` is missing; a missing tax is 0."""
    amount = build.amount(entry.get(field), label)
    if amount is None:
        return None
    tax = build.amount(entry.get(tax_field), label.replace(field, tax_field))
    return Decimal(amount) + (Decimal(tax) if tax is not None else 0)


def _amount(item: dict, field: str, tax_field: str) -> str | None:
    """An order amount as the customer saw it: with its tax when the shop's prices include it."""
    if not _includes_tax(item):
        return build.amount(item.get(field), field)
    total = _with_tax(item, field, tax_field, field)
    return None if total is None else str(total)


def _lines(item: dict) -> list[Line]:
    lines = []
    gross = _includes_tax(item)
    for entry in _entries(item, "line_items"):
        line = build.line_item(entry.get("sku"), entry.get("name"), entry.get("quantity"),
                               entry.get("price"))
        line.name = html.unescape(line.name) if line.name else None
        if gross and line.quantity:
            subtotal = _with_tax(entry, "subtotal", "subtotal_tax", "line subtotal")
            if subtotal is not None:  # the unit price as WooCommerce shows it, to the cent
                line.price = str((subtotal / line.quantity).quantize(_CENT, ROUND_HALF_UP))
        lines.append(line)
    return lines


def _subtotal(item: dict) -> str | None:
    """The lines' sum before discounts: with their tax when the shop's prices include it."""
    gross = _includes_tax(item)
    present = []
    for entry in _entries(item, "line_items"):
        amount = _with_tax(entry, "subtotal", "subtotal_tax", "line subtotal") if gross \
            else build.amount(entry.get("subtotal"), "line subtotal")
        if amount is not None:
            present.append(Decimal(amount))
    return str(sum(present, Decimal(0))) if present else None


def _entries(item: dict, key: str) -> list[dict]:
    """`line_items`, `shipping_lines`, `meta_data`: a list of objects (a PHP array with holes
    in its keys comes out as an object of objects); absent or null is none. Anything else is
    not what WooCommerce writes: the order is rejected, the rest of the file imports."""
    value = item.get(key)
    if value is None:
        return []
    entries = list(value.values()) if isinstance(value, dict) else value
    if isinstance(entries, list) and all(isinstance(v, dict) for v in entries):
        return entries
    if isinstance(value, dict):
        what = "an object whose values are not objects"
    elif isinstance(value, list):
        what = "a list holding " + _JSON_TYPES[next(type(v) for v in value if not isinstance(v, dict))]
    else:
        what = _JSON_TYPES[type(value)]
    raise RowRejected(f"{key} should be a list of objects, not {what}")


_JSON_TYPES = {str: "text", int: "a number", float: "a number", bool: "true/false",
               list: "a list", type(None): "null"}


def _meta(item: dict) -> dict[str, Any]:
    """Order meta as key → value; a repeated key keeps its first value, as get_meta() does."""
    meta: dict[str, Any] = {}
    for entry in _entries(item, "meta_data"):
        if isinstance(entry.get("key"), str):
            meta.setdefault(entry["key"], entry.get("value"))
    return meta


def _consent(meta: dict[str, Any]) -> bool | None:
    for key in CONSENT_META:
        if key in meta:
            answer = build.consent(meta[key])
            if answer is not None:
                return answer
    return None


def _locale(meta: dict[str, Any]) -> str | None:
    for key in LOCALE_META:
        value = meta.get(key)
        if isinstance(value, str) and build.clean(value):
            return value.strip()
    return None


def _tracking(meta: dict[str, Any], ctx) -> tuple[str | None, str | None, str | None, datetime | None]:
    """(number, url, carrier, shipped) from the newest Shipment Tracking entry."""
    entries = meta.get(TRACKING_META)
    if isinstance(entries, dict):  # a PHP array with holes in its keys comes out as an object
        entries = list(entries.values())
    if not isinstance(entries, list):
        return None, None, None, None
    entries = [e for e in entries if isinstance(e, dict) and build.clean(e.get("tracking_number"))]
    if not entries:
        return None, None, None, None
    last = entries[-1]  # the plugin appends: the last one is the latest shipment
    carrier = build.clean(last.get("custom_tracking_provider")) or build.clean(
        last.get("tracking_provider"))
    url = build.clean(last.get("custom_tracking_link")) or build.clean(
        last.get("formatted_tracking_link"))
    return build.clean(last.get("tracking_number")), url, carrier, _shipped_on(last, ctx)


def _shipped_on(entry: dict, ctx) -> datetime | None:
    value = entry.get("date_shipped")
    text = build.clean(value)
    if text is None:
        return None
    if text.isdigit():  # stored as a Unix timestamp
        return datetime.fromtimestamp(int(text), UTC)
    return build.timestamp(text, "date_shipped", ctx.tz)


def _address(part: Any) -> str | None:
    if not isinstance(part, dict):
        return None
    town = " ".join(filter(None, (build.clean(part.get("postcode")), build.clean(part.get("city")))))
    pieces = [build.clean(part.get(k)) for k in ("address_1", "address_2")]
    pieces += [town or None, build.clean(part.get("state")), build.clean(part.get("country"))]
    return ", ".join(p for p in pieces if p) or None


def _billing(item: dict) -> dict:
    billing = item.get("billing")
    return billing if isinstance(billing, dict) else {}


# An order paid on delivery is "processing" as soon as it is placed: it is to be prepared,
# not paid. mailflow keeps it awaiting payment (pay_on_delivery keeps the bank details and
# "payment received" away) until it moves on (completed: the shop's "done"). Its date_paid
# says nothing meanwhile: WooCommerce stamps it when the cod gateway moves the order to
# processing (WC_Order::set_status → maybe_set_date_paid), at checkout.
_UNPAID_ON_DELIVERY = ("processing", "on-hold")


def _order(item: dict, line: int, ctx) -> Order:
    order_id = _id(item)
    slug = _slug(item.get("status"))
    status = status_from_slug(item.get("status"))
    billing = _billing(item)
    meta = _meta(item)
    paid = _when(item, "date_paid", ctx)
    completed = _when(item, "date_completed", ctx)
    number, url, carrier, shipped_on = _tracking(meta, ctx)
    shipping_lines = _entries(item, "shipping_lines")
    payment_class = build.payment_class_of(item.get("payment_method"),
                                           item.get("payment_method_title"))
    if payment_class == "on_delivery" and slug in _UNPAID_ON_DELIVERY:
        status, paid = "pending_payment", None
    never = {"pickup_point"} | (set() if status == "delivered" else {"delivered_at"})
    if TRACKING_META not in meta:  # no tracking plugin: keep what another source said
        never |= {"tracking_number", "tracking_url", "carrier"}
    if "refunds" not in item:
        never |= {"refunded_amount"}
    return Order(
        order_id=order_id, line=line, email=build.clean(billing.get("email")), status=status,
        created_at=_created(item, ctx),
        first_name=build.clean(billing.get("first_name")),
        last_name=build.clean(billing.get("last_name")),
        locale=_locale(meta), accepts_marketing=_consent(meta),
        paid_at=paid, shipped_at=completed or shipped_on,
        status_at=paid if status == "paid" else completed if slug == "completed" else None,
        currency=build.clean(item.get("currency")),
        subtotal=_subtotal(item),
        shipping=_amount(item, "shipping_total", "shipping_tax"),
        tax=build.amount(item.get("total_tax"), "total_tax"),
        discount=_amount(item, "discount_total", "discount_tax"),
        total=build.amount(item.get("total"), "total"),
        payment_method=build.clean(item.get("payment_method_title"))
        or build.clean(item.get("payment_method")), payment_class=payment_class,
        shipping_method=build.clean(shipping_lines[0].get("method_title")) if shipping_lines else None,
        tracking_number=number, tracking_url=url, carrier=carrier,
        shipping_address=_address(item.get("shipping")),
        platform_id=build.clean(item.get("id")), lines=_lines(item),
        partially_shipped=slug == "partial-shipped",  # which lines, the REST order does not say
        carried=frozenset(UPDATABLE_FIELDS) - never,
        changed_at=_when(item, "date_modified", ctx),
        refunded_amount=_refunded(item),
    )


def _refunded(item: dict) -> str | None:
    """The money given back: the sum of `refunds[].total` (negative, as WooCommerce writes
    them); none is not said. The list gives no refund dates."""
    amounts = [build.amount(r.get("total"), "refunds total") for r in _entries(item, "refunds")]
    return build.given_back(str(sum((abs(Decimal(a)) for a in amounts if a), Decimal(0))))


def _created(item: dict, ctx) -> datetime:
    created = _when(item, "date_created", ctx)
    if created is None:
        raise RowRejected("date_created is empty")
    return created


def _cart(item: dict, line: int, ctx) -> Cart:
    billing = _billing(item)
    meta = _meta(item)
    return Cart(
        cart_id=_id(item), line=line, email=build.clean(billing.get("email")),
        created_at=_created(item, ctx), updated_at=_when(item, "date_modified", ctx),
        first_name=build.clean(billing.get("first_name")),
        last_name=build.clean(billing.get("last_name")),
        locale=_locale(meta), accepts_marketing=_consent(meta),
        currency=build.clean(item.get("currency")),
        total=build.amount(item.get("total"), "total"), lines=_lines(item),
    )


# --- Advanced Order Export CSV ------------------------------------------------------------

def _plain(label: str) -> str:
    decomposed = unicodedata.normalize("NFKD", normalize(label).replace("-", " "))
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def status_from_label(label: str) -> str:
    """A status as Advanced Order Export writes it (`Processing`, `Terminée`) or as a slug."""
    plain = _plain(label)
    if plain in _DRAFT_LABELS:
        raise RowRejected(f"status {label!r} is a checkout draft, not an order: export drafts"
                          " through the REST API to import them as carts")
    status = STATUS_LABELS.get(plain)
    if status is not None:
        return status
    try:
        return status_from_slug(label)
    except RowRejected:
        raise RowRejected(f"unknown WooCommerce status {label!r}: neither a status label nor a"
                          " slug mailflow knows (docs/formats/woocommerce.md lists them)") from None


def read_csv(table: CsvTable, kind: str, ctx) -> Iterator[Record | Rejected]:
    if kind != "orders":
        raise NotAnExport(f"{table.source.name}: an Advanced Order Export CSV holds orders,"
                          f" not {kind}")
    columns = Columns(table.header, AOE_ALIASES)
    for record in canonical.read_grouped_csv(table, "orders", columns, ctx, status_from_label):
        if isinstance(record, Order):
            for line in record.lines:
                line.name = html.unescape(line.name) if line.name else None
            if record.payment_class == "on_delivery" and record.status in (
                    "paid", "pending_payment"):  # "Processing", "On hold": see _UNPAID_ON_DELIVERY
                record.status, record.paid_at = "pending_payment", None
        yield record
