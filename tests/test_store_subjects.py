"""Planning reads a window of decisions' orders, carts and customers together
(store/subjects.py): each row must be what the one-at-a-time read gives, lines and their
catalogue links included, on a store fed with real-shaped exports of two platforms."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from decisions_shop import Shop

from mailflow.store import Store


@pytest.fixture
def store(mailflow, monkeypatch):
    shop = Shop(mailflow, monkeypatch)
    shop.import_("shopify_orders_export_1.csv", now="2026-05-12T10:00")
    shop.import_("shopify_customers_export.csv", now="2026-05-12T10:00")
    shop.import_("woocommerce_orders_1.json", now="2026-05-12T10:00")
    checkouts = shop.folder / "exports" / "checkouts_export.csv"
    shutil.copyfile(Path(__file__).parent / "fixtures" / "shopify" / "checkouts_export.csv",
                    checkouts)
    result = mailflow("import", checkouts, "--kind", "carts", "--now", "2026-05-12T10:00")
    assert result.exit_code == 0, result.stderr
    opened = Store.open(mailflow.db)
    yield opened
    opened.close()


def test_orders_carts_and_customers_read_together_are_the_rows_read_one_by_one(store):
    orders = [r["id"] for r in store.rows("SELECT id FROM orders")]
    carts = [r["id"] for r in store.rows("SELECT id FROM carts")]
    customers = [r["email_key"] for r in store.rows("SELECT email_key FROM customers")]
    assert len(orders) > 5 and len(customers) > 5 and carts
    assert any(order["lines"] for order in store.orders_by_id(orders).values())
    assert any(cart["lines"] for cart in store.carts_by_id(carts).values())
    missing = "no-such-id"
    assert store.orders_by_id([*orders, missing]) == {i: store.order(i) for i in orders}
    assert store.carts_by_id([*carts, missing]) == {i: store.cart(i) for i in carts}
    assert store.customers_by_key([*customers, missing]) == \
        {k: store.customer(k) for k in customers}
    assert store.orders_by_id([]) == store.customers_by_key([]) == {}
