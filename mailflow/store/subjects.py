"""Orders, carts and customers read many at a time: planning reads the subjects of a window
of decisions in a few queries instead of three a decision (the rows are the same as
OutboxQueries.order, .cart and .customer give one at a time)."""

from __future__ import annotations

import json
from typing import Any

from mailflow.store.connected import Connected

_IN = "IN (SELECT value FROM json_each(?))"
# a subject's lines, as read one subject at a time (OutboxQueries) and many (below);
# product_url: the catalogue's page, for review links
ORDER_LINES_FROM = ("l.sku, l.name, l.quantity, l.price, l.shipped, p.url AS product_url"
                    " FROM order_lines l LEFT JOIN products p ON p.key = coalesce(l.sku, l.name)")
CART_LINES_FROM = "sku, name, quantity, price FROM cart_lines"


class SubjectQueries(Connected):
    def _by(self, table: str, column: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        cursor = self.conn.execute(f"SELECT * FROM {table} WHERE {column} {_IN}",
                                   (json.dumps(keys),))
        names = [d[0] for d in cursor.description]
        at = names.index(column)
        return {row[at]: dict(zip(names, row, strict=True)) for row in cursor}

    def _with_lines(self, table: str, ids: list[str], lines_sql: str
                    ) -> dict[str, dict[str, Any]]:
        """Rows of `table` by id, each with the `lines` that `lines_sql` (owner id first,
        then the line's columns, in order) gives for them."""
        if not ids:
            return {}
        found = self._by(table, "id", ids)
        for subject in found.values():
            subject["lines"] = []
        cursor = self.conn.execute(lines_sql, (json.dumps(ids),))
        names = [d[0] for d in cursor.description[1:]]  # as `rows` names them one by one
        for owner, *line in cursor:
            found[owner]["lines"].append(dict(zip(names, line, strict=True)))
        return found

    def orders_by_id(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored orders among `ids`, each with its `lines` in order."""
        return self._with_lines("orders", ids, f"SELECT l.order_id, {ORDER_LINES_FROM} WHERE"
                                f" l.order_id {_IN} ORDER BY l.order_id, l.position")

    def carts_by_id(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return self._with_lines("carts", ids, f"SELECT cart_id, {CART_LINES_FROM} WHERE"
                                f" cart_id {_IN} ORDER BY cart_id, position")

    def customers_by_key(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        return self._by("customers", "email_key", keys) if keys else {}

    def data_version(self) -> int:
        """A number that changes whenever another connection commits to the store (PRAGMA
        data_version): rows read before it changed may be out of date, rows read since not.
        This connection's own writes leave it as it is."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])
