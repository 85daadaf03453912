"""Orders, carts and customers read many at a time: planning reads the subjects of a window
of decisions in a few queries instead of three a decision (the rows are the same as
OutboxQueries.order, .cart and .customer give one at a time)."""

from __future__ import annotations

import json
from typing import Any

from mailflow.store.connected import Connected

_IN = "IN (SELECT value FROM json_each(?))"
_ORDER_LINES = ("sku", "name", "quantity", "price", "shipped", "product_url")
_CART_LINES = ("sku", "name", "quantity", "price")


class SubjectQueries(Connected):
    def _by(self, table: str, column: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        cursor = self.conn.execute(f"SELECT * FROM {table} WHERE {column} {_IN}",
                                   (json.dumps(keys),))
        names = [d[0] for d in cursor.description]
        at = names.index(column)
        return {row[at]: dict(zip(names, row, strict=True)) for row in cursor}

    def orders_by_id(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored orders among `ids`, each with its `lines` in order."""
        if not ids:
            return {}
        found = self._by("orders", "id", ids)
        for order in found.values():
            order["lines"] = []
        for order_id, *line in self.conn.execute(
                "SELECT l.order_id, l.sku, l.name, l.quantity, l.price, l.shipped,"
                " p.url AS product_url FROM order_lines l"
                " LEFT JOIN products p ON p.key = coalesce(l.sku, l.name)"
                f" WHERE l.order_id {_IN} ORDER BY l.order_id, l.position", (json.dumps(ids),)):
            found[order_id]["lines"].append(dict(zip(_ORDER_LINES, line, strict=True)))
        return found

    def carts_by_id(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        found = self._by("carts", "id", ids)
        for cart in found.values():
            cart["lines"] = []
        for cart_id, *line in self.conn.execute(
                f"SELECT cart_id, sku, name, quantity, price FROM cart_lines WHERE cart_id {_IN}"
                " ORDER BY cart_id, position", (json.dumps(ids),)):
            found[cart_id]["lines"].append(dict(zip(_CART_LINES, line, strict=True)))
        return found

    def customers_by_key(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        return self._by("customers", "email_key", keys) if keys else {}
