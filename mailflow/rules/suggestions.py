"""Complementary products ("bought together") for the e-mails whose rule asks for them.

`products: 3` on a rule (or `products: {count: 3, best_sellers: 90d}`): the products other
customers most often bought with the ones of this order or cart (for a customer, with what
they bought before), counted as distinct orders holding both; never one this customer
already has (in this order or cart, or in any order of theirs); ties by product key. Fewer
than `count`: the best sellers of the last `best_sellers` fill up. With a catalogue
imported (`import --kind products`), only its available products, with their URL, image
and price; without one, names only. Computed only for a message being rendered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from mailflow.clock import iso
from mailflow.store.products import SeedOrders
from mailflow.yamlfile import Reader

DEFAULT_COUNT = 3
MAX_COUNT = 12
DEFAULT_BEST_SELLERS = timedelta(days=90)
BEST_SELLERS_KEPT = 200  # read once per run, then filtered per message
CUSTOMER_BASKET = 20  # a customer's basket: the products of their latest orders, at most


@dataclass(frozen=True)
class ProductSettings:
    """A rule's `products:`: how many to suggest, and the best sellers' window."""

    count: int = DEFAULT_COUNT
    best_sellers: timedelta = DEFAULT_BEST_SELLERS
    line: int = 0


def read_products(r: Reader, entry: tuple, where: str) -> ProductSettings | None:
    """`products: 3`, `products: false` (none), or `{count: 3, best_sellers: 90d}`."""
    node, value = entry
    line = node.start_mark.line + 1
    if value is False or value == 0:
        return None
    if isinstance(value, dict):
        found = r.mapping(node, where, ("count", "best_sellers"))
        count = r.whole(found["count"], f"{where}.count", 1, MAX_COUNT) if "count" in found \
            else DEFAULT_COUNT
        window = r.duration(found["best_sellers"], f"{where}.best_sellers",
                                shortest=timedelta(days=1)) \
            if "best_sellers" in found else DEFAULT_BEST_SELLERS
        return ProductSettings(count, window, line)
    if value is True:
        return ProductSettings(line=line)
    return ProductSettings(r.whole(entry, where, 1, MAX_COUNT), line=line)


class ProductHistory(Protocol):
    """What suggestions read (Store has these: store/products.py)."""

    def has_catalogue(self) -> bool: ...
    def available_keys(self) -> set[str]: ...
    def catalogue(self, keys: list[str]) -> dict[str, dict[str, Any]]: ...
    def bought_by(self, email_key: str | None) -> list[str]: ...
    def orders_with(self, key: str) -> SeedOrders: ...
    def best_sellers(self, since: str, until: str, *, available_only: bool, limit: int
                     ) -> list[tuple[str, int, str]]: ...


class Suggestions:
    """One run's suggestions. What the store says of a product (the orders holding it, the
    catalogue, the best sellers) is read once per run, the first time a message needs it:
    a batch of confirmations shares its popular products, and a run is one moment."""

    def __init__(self, store: ProductHistory, now: datetime) -> None:
        self.store = store
        self.now = now
        self._available: set[str] | None = None  # None: no catalogue, every product may show
        self._read_catalogue = False
        self._orders: dict[str, SeedOrders] = {}
        self._names: dict[str, str] = {}
        self._best: dict[timedelta, list[tuple[str, int, str]]] = {}

    def for_subject(self, settings: ProductSettings, subject_type: str,
                    subject: dict[str, Any] | None, email_key: str | None) -> list[dict[str, Any]]:
        """The products to show in a message about this order, cart or customer row."""
        if subject is None:
            return []
        history = self.store.bought_by(email_key)
        owned = set(history)
        if subject_type in ("order", "cart"):
            lines = subject.get("lines") or []
            basket = {key for line in lines if (key := _key(line))}
            self._names.update({key: line.get("name") or key for line in lines
                                if (key := _key(line))})
        else:  # what goes with what they bought lately
            basket = set(history[:CUSTOMER_BASKET])
        order_id = subject.get("id") if subject_type == "order" else None
        return self.suggest(settings, sorted(basket), owned=owned, email_key=email_key,
                            order_id=order_id)

    def suggest(self, settings: ProductSettings, basket: list[str], *, owned: set[str],
                email_key: str | None, order_id: str | None) -> list[dict[str, Any]]:
        available = self._catalogue()
        exclude = {*basket, *owned}
        shared: dict[str, set[str]] = {}  # product -> the other customers' orders holding it
        for key in basket:
            if key not in self._orders:
                self._orders[key] = self.store.orders_with(key)
                for product, name in self._orders[key].names.items():
                    self._names.setdefault(product, name)
            for other, (customer, products) in self._orders[key].orders.items():
                if other == order_id or (email_key is not None and customer == email_key):
                    continue
                for product in products - exclude:
                    if available is None or product in available:
                        shared.setdefault(product, set()).add(other)
        ranked = sorted(shared, key=lambda product: (-len(shared[product]), product))
        chosen = ranked[:settings.count]
        taken = {*exclude, *chosen}
        best = self._best_sellers(settings.best_sellers) if len(chosen) < settings.count else []
        for key, _, name in best:
            if len(chosen) >= settings.count:
                break
            if key not in taken:
                chosen.append(key)
                taken.add(key)
                self._names.setdefault(key, name)
        entries = self.store.catalogue(chosen) if available is not None else {}
        return [_product(key, self._names.get(key) or key, entries.get(key)) for key in chosen]

    def _catalogue(self) -> set[str] | None:
        if not self._read_catalogue:
            self._read_catalogue = True
            self._available = self.store.available_keys() if self.store.has_catalogue() \
                else None
        return self._available

    def _best_sellers(self, window: timedelta) -> list[tuple[str, int, str]]:
        if window not in self._best:
            self._best[window] = self.store.best_sellers(
                iso(self.now - window), iso(self.now),
                available_only=self._catalogue() is not None, limit=BEST_SELLERS_KEPT)
        return self._best[window]


def _key(line: dict[str, Any]) -> str | None:
    """What the store calls a line's product (store/products.py PRODUCT_KEY)."""
    return line.get("sku") or line.get("name")


def _product(key: str, name: str, entry: dict[str, Any] | None) -> dict[str, Any]:
    if entry is None:  # no catalogue: the name order lines give it
        return {"key": key, "sku": None, "name": name, "url": None, "image": None,
                "price": None, "currency": None}
    return {f: entry[f] for f in ("key", "sku", "name", "url", "image", "price", "currency")}
