"""The catalogue (`products`) and the order history read as "bought together".

A product is known by what order lines call it, `coalesce(sku, name)`: the expression that
the index `order_lines_product` holds, so that "the orders containing this product" is an
index range, not a scan of every line. Every query here is bounded: by SEED_ORDERS orders per
product, or by the best-seller window; rules/suggestions.py reads each once per run."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from mailflow.records import Product
from mailflow.store.connected import Connected

PRODUCT_KEY = "coalesce({t}.sku, {t}.name)"
# Orders read per product of a message to count what was bought with it: enough to rank
# (the counts of a sample keep their order), and a bound on the cost of one message.
SEED_ORDERS = 200
# The best sellers are those of the most recent orders in their window, at most this many:
# a bound on a run's one best-seller query (a small shop's 90 days hold fewer).
BEST_SELLER_ORDERS = 5000
# Orders that say nothing about what goes together: never paid, or called off.
_NOT_SOLD = "('cancelled', 'failed')"
_COLUMNS = ("key", "sku", "name", "url", "image", "price", "currency", "available")


@dataclass
class SeedOrders:
    """The orders holding one product: order id -> (its customer's email_key, its products),
    and a line name for each of those products."""

    orders: dict[str, tuple[str | None, frozenset[str]]]
    names: dict[str, str]


@dataclass
class ProductCounts:
    inserted: int = 0
    updated: int = 0


def write_products(conn: sqlite3.Connection, batch: list[Product], import_id: int,
                   now: str) -> ProductCounts:
    """Upsert by key; an identical product is left alone. Call inside `Store.transaction()`."""
    counts = ProductCounts()
    latest = {p.key: p for p in batch}  # the same product twice in one file: the last wins
    known = dict(conn.execute("SELECT key, content_hash FROM products WHERE key IN"
                              " (SELECT value FROM json_each(?))", (json.dumps(list(latest)),)))
    rows = []
    for p in latest.values():
        values = (p.key, p.sku, p.name, p.url, p.image, p.price, p.currency, int(p.available))
        digest = hashlib.blake2b(repr(values).encode(), digest_size=16).hexdigest()
        if known.get(p.key) == digest:
            continue
        rows.append((*values, digest, import_id, now))
        if p.key in known:
            counts.updated += 1
        else:
            counts.inserted += 1
    columns = (*_COLUMNS, "content_hash", "import_id", "updated_at")
    conn.executemany(
        f"INSERT INTO products ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        " ON CONFLICT(key) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in columns if c != "key"), rows)
    return counts


class ProductQueries(Connected):
    """Mixed into Store: what rules/suggestions.py reads to suggest products."""

    def has_catalogue(self) -> bool:
        return self.conn.execute("SELECT 1 FROM products LIMIT 1").fetchone() is not None

    def catalogue(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The catalogue's entries for these keys (available or not)."""
        cursor = self.conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM products WHERE key IN"
            " (SELECT value FROM json_each(?))", (json.dumps(keys),))
        return {row[0]: dict(zip(_COLUMNS, row, strict=True)) for row in cursor}

    def bought_by(self, email_key: str | None) -> list[str]:
        """Every product of every order of this customer, the most recently ordered first."""
        if not email_key:
            return []
        return list(dict.fromkeys(row[0] for row in self.conn.execute(
            f"SELECT {PRODUCT_KEY.format(t='l')} FROM orders o JOIN order_lines l"
            " ON l.order_id = o.id WHERE o.email_key = ? ORDER BY o.created_at DESC, o.id,"
            " l.position", (email_key,)) if row[0]))

    def available_keys(self) -> set[str]:
        """The catalogue's products that may be suggested."""
        return {row[0] for row in self.conn.execute("SELECT key FROM products WHERE available = 1")}

    def orders_with(self, key: str, limit: int = SEED_ORDERS) -> SeedOrders:
        """Orders that contain this product (at most `limit`, those whose id sorts last), not
        cancelled or failed, with their customer and products, and the products' line names."""
        seeds = SeedOrders({}, {})
        products: dict[str, tuple[str | None, set[str]]] = {}
        for order_id, email_key, product, name in self.conn.execute(
                "SELECT o.id, o.email_key, " + PRODUCT_KEY.format(t="l") + ", l.name FROM"
                " (SELECT DISTINCT order_id FROM order_lines l WHERE "
                + PRODUCT_KEY.format(t="l") + " = ? ORDER BY order_id DESC LIMIT ?) s"
                " JOIN orders o ON o.id = s.order_id JOIN order_lines l ON l.order_id = o.id"
                f" WHERE o.status NOT IN {_NOT_SOLD}", (key, limit)):
            if product is None:
                continue
            products.setdefault(order_id, (email_key, set()))[1].add(product)
            seeds.names.setdefault(product, name or product)
        seeds.orders = {order_id: (email_key, frozenset(held))
                        for order_id, (email_key, held) in products.items()}
        return seeds

    def best_sellers(self, since: str, until: str, *, available_only: bool, limit: int,
                     orders: int = BEST_SELLER_ORDERS) -> list[tuple[str, int, str]]:
        """(product, orders holding it, a line name) among the orders created in [since,
        until] (at most the `orders` most recent, not cancelled or failed), most ordered
        first, then by product key."""
        key = PRODUCT_KEY.format(t="l")
        catalogue = " JOIN products p ON p.key = k.product AND p.available = 1" \
            if available_only else ""
        return [tuple(row) for row in self.conn.execute(
            f"SELECT k.product, k.sold, k.name FROM (SELECT {key} AS product,"
            " count(DISTINCT o.id) AS sold, max(l.name) AS name FROM"
            " (SELECT id FROM orders WHERE created_at >= ? AND created_at <= ?"
            f" AND status NOT IN {_NOT_SOLD} ORDER BY created_at DESC LIMIT ?) o"
            " JOIN order_lines l ON l.order_id = o.id"
            f" GROUP BY {key}) k{catalogue} WHERE k.product IS NOT NULL"
            " ORDER BY k.sold DESC, k.product LIMIT ?", (since, until, orders, limit))]
