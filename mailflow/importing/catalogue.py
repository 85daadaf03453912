"""`import --kind products`: the shop's catalogue, for the products an e-mail suggests.

Three layouts, recognised from the header (docs/import.md, "Products"):
- Shopify's products export: several rows per product (same Handle): the first carries the
  product (Title, Published, Status), each variant its row (SKU, price, options), extra
  images their own rows. One product per variant; the URL is `/products/<handle>`.
- WooCommerce's products export (Products → Export): one row per product or variation, a
  variation naming its parent (`id:123`); English or French headers.
- the canonical `sku, name, url, image, price, currency, available`, or any CSV mapped onto
  those fields with `--mapping` (`kind: products`).

A product is known by what order lines call it: its SKU, else the name a line item shows
(Shopify: `Title - Option / Option`, the title alone for a single variant).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from mailflow.errors import RowRejected
from mailflow.importing.build import amount, clean
from mailflow.importing.columns import Columns, normalize
from mailflow.importing.source import CsvTable
from mailflow.records import Product, Rejected
from mailflow.values import parse_flag

PRODUCT_FIELDS = ("sku", "name", "url", "image", "price", "currency", "available")
Get = Callable[[str], "str | None"]

_SHOPIFY = {
    "handle": ("Handle", "URL handle"),
    "title": ("Title",),
    "sku": ("Variant SKU", "SKU"),
    "price": ("Variant Price", "Price"),
    "image": ("Image Src", "Product image URL"),
    "image_position": ("Image Position", "Image position"),
    "variant_image": ("Variant Image", "Variant image URL"),
    "published": ("Published", "Published on online store"),
    "status": ("Status",),
    "option1": ("Option1 Value", "Option1 value"),
    "option2": ("Option2 Value", "Option2 value"),
    "option3": ("Option3 Value", "Option3 value"),
    "tracker": ("Variant Inventory Tracker", "Inventory tracker"),
    "quantity": ("Variant Inventory Qty", "Inventory quantity"),
    "policy": ("Variant Inventory Policy", "Continue selling when out of stock"),
}
_WOO = {
    "id": ("ID",),
    "type": ("Type",),
    "sku": ("SKU", "UGS"),
    "name": ("Name", "Nom"),
    "published": ("Published", "Publié"),
    "in_stock": ("In stock?", "En stock ?", "En stock?"),
    "sale_price": ("Sale price", "Tarif promo", "Prix promo"),
    "regular_price": ("Regular price", "Tarif régulier", "Prix régulier"),
    "images": ("Images",),
    "parent": ("Parent",),
    "url": ("Permalink", "URL", "Product URL", "Lien permanent"),
}
_CANONICAL: dict[str, tuple[str, ...]] = {f: (f,) for f in PRODUCT_FIELDS}
_DEFAULT_VARIANT = "default title"


def detect_csv(header: list[str]) -> str | None:
    """The format of a products export with this header: shopify, woocommerce, mailflow."""
    names = {normalize(h) for h in header}

    def has(*aliases: str) -> bool:
        return any(normalize(a) in names for a in aliases)

    # a price column: Shopify's inventory export also has Handle, Title and SKU
    if has(*_SHOPIFY["handle"]) and has("Title") and has(*_SHOPIFY["price"]):
        return "shopify"
    if has("Type") and has(*_WOO["sku"]) and has(*_WOO["name"]) and \
            has(*_WOO["regular_price"], *_WOO["published"]):
        return "woocommerce"
    if {"sku", "name"} <= names and names <= set(PRODUCT_FIELDS):
        return "mailflow"
    return None


def read_csv(table: CsvTable, fmt: str, ctx: object = None) -> Iterator[Product | Rejected]:
    if fmt == "shopify":
        return _shopify(table)
    if fmt == "woocommerce":
        return _woocommerce(table)
    return read_rows(table, Columns(table.header, _CANONICAL))


def read_rows(table: CsvTable, columns: Columns,
              defaults: dict[str, str] | None = None) -> Iterator[Product | Rejected]:
    """Rows of the canonical fields (the `mailflow` layout, or a mapping's columns)."""
    fixed = defaults or {}
    for line, cells in table.rows():
        cell = columns.reader(cells)

        def get(field: str, cell: Get = cell) -> str | None:
            return cell(field) or clean(fixed.get(field))

        try:
            name = get("name")
            if name is None:
                raise RowRejected("name is empty: a product needs the name the e-mail shows")
            sku = get("sku")
            available = _flag(get("available"), "available")
            yield Product(key=sku or name, line=line, name=name, sku=sku, url=get("url"),
                          image=get("image"), price=amount(get("price"), "price"),
                          currency=(get("currency") or "").upper() or None,
                          available=True if available is None else available)
        except RowRejected as exc:
            yield Rejected(line, exc.reason)


def _flag(value: str | None, field: str) -> bool | None:
    try:
        return parse_flag(value)
    except ValueError:
        raise RowRejected(f"{field}: {value!r} is neither yes nor no") from None


def _shopify(table: CsvTable) -> Iterator[Product | Rejected]:
    columns = Columns(table.header, _SHOPIFY)
    handle_at = columns.at["handle"]
    group: list[tuple[int, Get]] = []
    for line, cells in table.rows():
        handle = cells[handle_at].strip() if handle_at < len(cells) else ""
        if not handle:
            yield Rejected(line, "no Handle: every row of a product carries its Handle")
            continue
        if group and handle != group[0][1]("handle"):
            yield from _shopify_product(group)
            group = []
        group.append((line, columns.reader(cells)))
    if group:
        yield from _shopify_product(group)


def _shopify_product(rows: list[tuple[int, Get]]) -> Iterator[Product | Rejected]:
    start, first = rows[0]
    handle, title = first("handle") or "", first("title")
    try:
        if title is None:
            raise RowRejected(f"product {handle!r}: its first row has no Title")
        published = _flag(first("published"), "Published")
    except RowRejected as exc:
        yield Rejected(start, exc.reason)
        return
    status = (first("status") or "active").lower()
    listed = published is not False and status == "active"
    images = sorted((_position(get("image_position")), n, get("image"))
                    for n, (_, get) in enumerate(rows) if get("image"))
    picture = images[0][2] if images else None
    for number, (line, get) in enumerate(rows):
        if number and not any(get(f) for f in ("sku", "price", "option1")):
            continue  # a row of one more image
        try:
            options = [v for v in (get("option1"), get("option2"), get("option3")) if v]
            name = title if not options or normalize(options[0]) == _DEFAULT_VARIANT \
                else f"{title} - {' / '.join(options)}"
            sku = get("sku")
            yield Product(key=sku or name, line=line, name=name, sku=sku,
                          url=f"/products/{handle}", image=get("variant_image") or picture,
                          price=amount(get("price"), "Variant Price"),
                          available=listed and _in_stock(get))
        except RowRejected as exc:
            yield Rejected(line, exc.reason)


def _position(value: str | None) -> int:
    """Image Position 1 is the product's main image; an image without one comes last."""
    return int(value) if value and value.isdigit() else 10**6


def _in_stock(get: Get) -> bool:
    """Shopify tracks the quantity, refuses to oversell, and has none left: not for sale."""
    policy = (get("policy") or "").lower()
    if (get("tracker") or "").lower() != "shopify" or policy in ("continue", "true"):
        return True
    try:
        return float((get("quantity") or "1").replace(",", ".")) > 0
    except ValueError:
        return True


def _woocommerce(table: CsvTable) -> Iterator[Product | Rejected]:
    columns = Columns(table.header, _WOO)
    rows = [(line, columns.reader(cells)) for line, cells in table.rows()]
    by_ref: dict[str, Get] = {}
    for _, get in rows:  # a variation names its parent `id:123`, or by SKU
        if get("id"):
            by_ref[f"id:{get('id')}"] = get
        if get("sku"):
            by_ref[get("sku") or ""] = get
    for line, get in rows:
        try:
            name = get("name")
            if name is None:
                raise RowRejected("Name is empty: a product needs the name the e-mail shows")
            parent = by_ref.get(get("parent") or "") if get("parent") else None
            listed = _woo_listed(get) and (parent is None or _woo_listed(parent))
            sku = get("sku")
            price = amount(get("sale_price"), "Sale price") or \
                amount(get("regular_price"), "Regular price")
            yield Product(key=sku or name, line=line, name=name, sku=sku,
                          url=get("url") or _woo_url(get, parent),
                          image=_first_image(get) or (_first_image(parent) if parent else None),
                          price=price, available=listed)
        except RowRejected as exc:
            yield Rejected(line, exc.reason)


def _woo_listed(get: Get) -> bool:
    """Published (1; 0 is private, -1 a draft) and not out of stock (`In stock?` 0)."""
    return (get("published") or "1").strip() == "1" and (get("in_stock") or "1").strip() != "0"


def _woo_url(get: Get, parent: Get | None) -> str | None:
    """WordPress answers `?post_type=product&p=ID` with a redirect to the product's page;
    a variation is shown on its parent's."""
    number = (parent("id") if parent else None) or get("id")
    return f"/?post_type=product&p={number}" if number else None


def _first_image(get: Get) -> str | None:
    images = get("images")
    return clean(images.split(",")[0]) if images else None
