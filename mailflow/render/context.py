"""What a template sees: views of the stored order, cart and customer (CONTRACT §7).

Exactly the documented keys, times as aware datetimes: templates run with StrictUndefined,
so a key that is not here is an error in the template, never a silent blank.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, tzinfo
from typing import Any

from mailflow.clock import from_iso
from mailflow.config import Rule, Shop
from mailflow.content import ReviewLinks, fill_link
from mailflow.rules.timing import add_after
from mailflow.values import to_decimal

ORDER_FIELDS = ("id", "status", "email", "first_name", "last_name", "locale", "currency",
                "subtotal", "shipping", "tax", "discount", "total", "payment_method",
                "payment_class", "shipping_method", "pickup_point", "shipping_address",
                "refunded_amount")
ORDER_TIMES = ("created_at", "paid_at", "shipped_at", "delivered_at", "cancelled_at")
CART_FIELDS = ("id", "email", "first_name", "last_name", "locale", "currency", "total",
               "recovery_url")
CART_TIMES = ("created_at", "updated_at")
CUSTOMER_FIELDS = ("email", "first_name", "last_name", "locale")
CUSTOMER_TIMES = ("created_at", "last_order_at")


def _view(row: dict[str, Any], fields: tuple[str, ...], times: tuple[str, ...]) -> dict[str, Any]:
    view = {f: row.get(f) for f in fields}
    for t in times:
        value = row.get(t)
        view[t] = from_iso(value) if isinstance(value, str) else value
    return view


def _lines(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"sku": ln.get("sku"), "name": ln.get("name"), "quantity": ln.get("quantity") or 1,
             "price": ln.get("price"), "product_url": ln.get("product_url")}
            for ln in row.get("lines") or []]


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _order_lines(row: dict[str, Any]) -> list[dict[str, Any]]:
    """An order's lines, each with `shipped`: True (the whole line left), False, None (not
    known)."""
    return [{**view, "shipped": _flag(ln.get("shipped"))}
            for view, ln in zip(_lines(row), row.get("lines") or [], strict=True)]


def partially_shipped(said: bool | None, lines: list[dict[str, Any]]) -> bool:
    """Part of the order has left and part has not: the platform's own word when it gives
    one (Shopify `partial`, WooCommerce `partial-shipped`), else its lines, some known
    shipped and some known not."""
    if said is not None:
        return said
    known = {ln["shipped"] for ln in lines}
    return True in known and False in known


def order_view(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    view = _view(row, ORDER_FIELDS, ORDER_TIMES)
    view["lines"] = _order_lines(row)
    view["partially_shipped"] = partially_shipped(_flag(row.get("partially_shipped")),
                                                  view["lines"])
    number, url = row.get("tracking_number"), row.get("tracking_url")
    view["tracking"] = ({"number": number, "url": url, "carrier": row.get("carrier")}
                        if number or url else None)
    return view


def refund_view(order: dict[str, Any] | None, said: dict[str, Any] | None = None
                ) -> dict[str, Any] | None:
    """What a refund e-mail is about, as templates see it (`refund`): `full` (the order
    refunded in full) or a partial refund, `amount` (what this refund gave back), `total`
    (the money given back so far with it) and `earlier` (given back before it; None when
    nothing was), decimal strings or None when the data does not say.

    `said`: the message's instance as the planner gives it (`step`, `seq`, and `refunds`, the
    order's partial refunds: store/refunds.py). Without it (preview, check, another rule's
    message), the order's latest: in full if it is refunded, else its last partial refund,
    else a partial refund of `order.refunded_amount`. Never the order's status at render
    time for a message about one refund: the order may have moved on since."""
    if order is None:
        return None
    said = said or {}
    refunds = said.get("refunds") or []
    step = said.get("step") or ("refunded" if order.get("status") == "refunded"
                                else "partially_refunded")
    if step != "refunded":
        seq = said.get("seq") or (refunds[-1]["seq"] if refunds else None)
        row = next((r for r in refunds if r["seq"] == seq), None)
        if row is None:
            amount = total = order.get("refunded_amount")
        else:
            amount, total = row.get("amount"), row.get("total")
        given, this = to_decimal(total), to_decimal(amount)
        earlier = given - this if given is not None and this is not None else None
        return {"full": False, "amount": amount, "total": total,
                "earlier": str(earlier) if earlier else None}
    total = order.get("refunded_amount") or order.get("total")
    given = to_decimal(total)
    before = max((t for t in (to_decimal(r.get("total")) for r in refunds) if t is not None),
                 default=None)
    if given is not None and before and before < given:
        return {"full": True, "amount": str(given - before), "total": total,
                "earlier": str(before)}
    return {"full": True, "amount": total, "total": total, "earlier": None}


def cart_view(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    view = _view(row, CART_FIELDS, CART_TIMES)
    view["lines"] = _lines(row)
    return view


def customer_view(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    view = _view(row, CUSTOMER_FIELDS, CUSTOMER_TIMES)
    if view["created_at"] is None:
        view["created_at"] = from_iso(row.get("first_seen_at")) if row.get("first_seen_at") else None
    return view


_SHOP_VIEWS: dict[int, tuple[Shop, dict[str, Any]]] = {}


def shop_view(shop: Shop) -> dict[str, Any]:
    """The shop as templates see it; computed once per Shop (a send builds thousands). Its
    Localized texts are resolved by the renderer, which knows the message's language."""
    cached = _SHOP_VIEWS.get(id(shop))
    if cached is None or cached[0] is not shop:
        view = {f.name: getattr(shop, f.name) for f in fields(shop)}  # Localized values stay
        view["url"] = shop.url.rstrip("/")
        view.pop("consent", None)
        view.pop("timezone_given", None)
        view.update(view.pop("content").view())
        cached = _SHOP_VIEWS[id(shop)] = (shop, view)
    return dict(cached[1])  # a copy: templates never change the shared one


SAMPLE_CODE = "EXEMPLE-CODE"  # what preview, check and send-test show for a pool's code


def offer_view(rule: Rule | None, rows: dict[str, Any] | None, now: datetime,
               tz: tzinfo) -> dict[str, Any] | None:
    """The rule's offer as templates see it: `code`, `text` (resolved per language by the
    renderer), `expires_at` (an aware datetime or None). `rows`: what the outbox recorded or
    planning showed (rules/offers.py); without them (preview), the fixed code or a sample."""
    if rule is None or rule.offer is None:
        return None
    offer = rule.offer
    if rows is not None:
        code, expires = rows.get("code"), from_iso(rows.get("expires_at"))
    else:
        code = offer.code or SAMPLE_CODE
        expires = add_after(now, offer.expires_after, tz) if offer.expires_after else None
    return {"code": code, "text": offer.text, "expires_at": expires}


def review_view(links: ReviewLinks | None, order: dict[str, Any] | None, home: str
                ) -> dict[str, Any] | None:
    """Where the review request leads (`shop.review:`): `url`, the shop's review page, and
    `lines`, the order's lines each with its `review_url`: the product template filled with the
    line's SKU or product page (from the products catalogue, when the line has one), else the
    shop's page; None without a product template. None without `shop.review`."""
    if links is None or order is None:
        return None
    number = str(order.get("id") or "").strip().lstrip("#")
    shop_url = fill_link(links.url, {"order.number": number}) if links.url else None
    lines = []
    for line in order.get("lines") or []:
        url = None
        if links.product:  # a line the template cannot fill (no SKU, no product page): the shop's
            url = fill_link(links.product, {"order.number": number, "line.sku": line.get("sku"),
                                            "line.product_url": _absolute(line.get("product_url"),
                                                                          home)}) or shop_url
        lines.append({**line, "review_url": url})
    return {"url": shop_url, "lines": lines}


def _absolute(url: str | None, shop_url: str) -> str | None:
    """A catalogue URL as a link: a path from the shop's root gets the shop's address."""
    return shop_url.rstrip("/") + url if url and url.startswith("/") else url


def products_view(rows: list[dict[str, Any]] | None, shop: Shop,
                  currency: str | None) -> list[dict[str, Any]]:
    """The suggested products as templates see them: `name`, `url` (absolute, or None
    without a catalogue), `image`, `price` and its `currency` (the catalogue's, else the
    message's)."""
    return [{"name": row["name"], "sku": row.get("sku"),
             "url": _absolute(row.get("url") or None, shop.url),
             "image": row.get("image"), "price": row.get("price"),
             "currency": row.get("currency") or currency or shop.currency}
            for row in rows or []]


def message_context(*, shop: Shop, rule: Rule | None, rule_name: str, category: str,
                    order: dict | None, cart: dict | None, customer: dict | None,
                    unsubscribe_url: str | None, now: datetime,
                    offer: dict[str, Any] | None = None,
                    products: list[dict[str, Any]] | None = None,
                    refund: dict[str, Any] | None = None) -> dict[str, Any]:
    """`refund`: refund_view's; by default the order's latest refund (or None without an
    order)."""
    return {
        "shop": shop_view(shop),
        "rule": {"name": rule.name if rule else rule_name,
                 "category": rule.category if rule else category},
        "order": order, "cart": cart, "customer": customer,
        "unsubscribe_url": unsubscribe_url, "now": now, "offer": offer,
        "review": review_view(shop.content.review, order, shop.url),
        "products": products or [],
        "refund": refund if refund is not None else refund_view(order),
    }


def message_locale(order: dict | None, cart: dict | None, customer: dict | None) -> str | None:
    for view in (order, cart, customer):
        if view and view.get("locale"):
            return view["locale"]
    return None
