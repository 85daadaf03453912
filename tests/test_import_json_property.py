"""Every JSON importer (WooCommerce REST, Shopify REST Admin) against documents of the right
shape whose every field may hold the wrong type: no traceback, no internal error, a refused
file changes nothing, a bad order is rejected by line and the others import. Bounded: the
suite stays fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_import_property import _JSON_ANY, PROPERTY, check_import

PER_TEST = 20  # examples a test: under 2 s each on a quiet 2-core machine (the suite's budget)

WRONG = [5, 2.5, "text", True, {"a": 1}, ["text"], [1, 2], [[{}]], [None]]
GOOD_WOO = {
    "id": 727, "number": "727", "status": "processing", "currency": "EUR",
    "date_created_gmt": "2026-01-20T09:00:00", "date_paid_gmt": "2026-01-20T09:01:00",
    "total": "24.90", "total_tax": "0.00", "shipping_total": "4.90", "payment_method": "stripe",
    "billing": {"first_name": "Zoé", "last_name": "Martin", "email": "zoe@example.com"},
    "shipping": {"address_1": "1 rue des Lilas", "postcode": "69001", "city": "Lyon"},
    "line_items": [{"sku": "MUG", "name": "Mug", "quantity": 2, "price": 10, "subtotal": "20.00"}],
    "shipping_lines": [{"method_title": "Colissimo", "total": "4.90"}],
    "meta_data": [{"key": "newsletter", "value": "yes"}],
}
GOOD_SHOPIFY = {
    "id": 450789469, "name": "#1001", "email": "ana@example.com",
    "created_at": "2026-01-20T10:00:00+01:00", "financial_status": "paid",
    "fulfillment_status": None, "currency": "EUR", "total_price": "24.90",
    "subtotal_price": "20.00", "total_tax": "0.00", "payment_gateway_names": ["shopify_payments"],
    "line_items": [{"id": 1, "sku": "MUG", "name": "Mug", "quantity": 2, "price": "10.00"}],
    "shipping_lines": [{"title": "Colissimo", "price": "4.90"}],
    "customer": {"first_name": "Ana", "email": "ana@example.com"},
    "shipping_address": {"address1": "1 rue", "zip": "69001", "city": "Lyon"},
}


@pytest.mark.parametrize("field", ["line_items", "shipping_lines", "meta_data"])
@pytest.mark.parametrize("wrong", WRONG, ids=[json.dumps(w) for w in WRONG])
def test_a_woocommerce_order_with_a_list_of_the_wrong_type_is_rejected_and_the_rest_imports(
        mailflow, field, wrong):
    bad = {**GOOD_WOO, "id": 728, "number": "728", field: wrong}
    path = mailflow.write("orders.json", json.dumps([GOOD_WOO, bad], indent=1))
    result = mailflow("import", path, "--json")
    assert "internal error" not in result.stderr
    assert result.exit_code == 1, result.stderr
    assert [r["id"] for r in mailflow.query("SELECT id FROM orders")] == ["727"]
    (rejected,) = result.json()["files"][0]["rejected"]
    assert rejected["reason"].startswith(f"order 728: {field} should be a list of objects, not")
    assert f"{path}:{rejected['line']}: order 728: {field}" in result.stderr
    assert rejected["line"] > 1


def test_a_php_array_with_holes_reads_as_its_entries(mailflow):
    holes = {**GOOD_WOO, "line_items": {"0": GOOD_WOO["line_items"][0]},
             "meta_data": {"3": {"key": "newsletter", "value": "yes"}}}
    result = mailflow("import", mailflow.write("orders.json", json.dumps([holes])), "--json")
    assert result.exit_code == 0, result.stderr
    assert mailflow.scalar("SELECT count(*) FROM order_lines") == 1


def _fields(good: dict) -> st.SearchStrategy[dict]:
    """`good` with some fields replaced by anything JSON holds, or left out."""
    replaced = st.dictionaries(st.sampled_from(sorted(good)), _JSON_ANY, max_size=4)
    dropped = st.sets(st.sampled_from(sorted(good)), max_size=3)
    return st.builds(lambda r, d: {k: v for k, v in {**good, **r}.items() if k not in d},
                     replaced, dropped)


def _nested(good: dict, key: str) -> st.SearchStrategy[dict]:
    """`good` whose `key` list holds entries with fields of any type."""
    entry = good[key][0]
    return st.builds(lambda entries: {**good, key: entries}, st.lists(_fields(entry), max_size=2))


_WOO = st.one_of(_fields(GOOD_WOO), _nested(GOOD_WOO, "line_items"),
                 _nested(GOOD_WOO, "meta_data"), _nested(GOOD_WOO, "shipping_lines"))
_SHOPIFY = st.one_of(_fields(GOOD_SHOPIFY), _nested(GOOD_SHOPIFY, "line_items"),
                     _nested(GOOD_SHOPIFY, "shipping_lines"))


@settings(PROPERTY, max_examples=PER_TEST)
@given(orders=st.lists(_WOO, min_size=1, max_size=3))
def test_woocommerce_json_with_fields_of_any_type_never_crashes(orders: list):
    check_import(json.dumps(orders, indent=1).encode(), "woo.json")


@settings(PROPERTY, max_examples=PER_TEST)
@given(orders=st.lists(_SHOPIFY, min_size=1, max_size=3), single=st.booleans())
def test_shopify_json_with_fields_of_any_type_never_crashes(orders: list, single: bool):
    document = {"order": orders[0]} if single else {"orders": orders}
    check_import(json.dumps(document, indent=1).encode(), "shopify.json")



# The other JSON inputs: Shopify's checkouts, customers and fulfillments, WooCommerce's draft
# orders (carts), and mailflow's own JSON for carts, customers and unsubscribes.
_SHOPIFY_FIXTURES = Path(__file__).parent / "fixtures" / "shopify"


def _shopify_sample(name: str, key: str) -> dict:
    value = json.loads((_SHOPIFY_FIXTURES / f"shopify_python_api_{name}.json").read_text())[key]
    return value[0] if isinstance(value, list) else value


_SHOPIFY_OTHERS = [(root, _shopify_sample(name, key)) for root, name, key in [
    ("checkouts", "checkouts", "checkouts"), ("customer", "customer", "customer"),
    ("fulfillments", "fulfillment", "fulfillment")]]
GOOD_CANONICAL = {
    "carts": {"cart_id": "K1", "email": "ana@example.com", "created_at": "2026-01-20 10:00",
              "updated_at": "2026-01-20 10:05", "total": "12.00", "recovery_url":
              "https://shop.example/cart/K1", "lines": [{"sku": "MUG", "name": "Mug",
                                                         "quantity": 1, "price": "12.00"}]},
    "customers": {"email": "ana@example.com", "first_name": "Ana", "accepts_marketing": "yes",
                  "created_at": "2026-01-20 10:00", "locale": "fr"},
    "unsubscribes": {"email": "ana@example.com", "at": "2026-01-20 10:00"},
}


@settings(PROPERTY, max_examples=PER_TEST)
@given(which=st.sampled_from(range(len(_SHOPIFY_OTHERS))), data=st.data())
def test_shopify_checkouts_customers_and_fulfillments_of_any_type_never_crash(which: int, data):
    root, good = _SHOPIFY_OTHERS[which]
    entries = data.draw(st.lists(_fields(good), min_size=1, max_size=2))
    document = {root: entries if root.endswith("s") else entries[0]}
    check_import(json.dumps(document, indent=1).encode(), "shopify.json")


@settings(PROPERTY, max_examples=PER_TEST)
@given(orders=st.lists(_fields({**GOOD_WOO, "status": "checkout-draft"}), min_size=1, max_size=3))
def test_woocommerce_draft_orders_of_any_type_never_crash(orders: list):
    check_import(json.dumps(orders, indent=1).encode(), "woo.json")


@settings(PROPERTY, max_examples=PER_TEST)
@given(kind=st.sampled_from(sorted(GOOD_CANONICAL)), data=st.data())
def test_mailflow_json_carts_and_people_of_any_type_never_crash(kind: str, data):
    entries = data.draw(st.lists(st.one_of(_fields(GOOD_CANONICAL[kind]), _JSON_ANY), min_size=1,
                                 max_size=3))
    options = ("--kind", kind) if kind != "carts" else ()
    check_import(json.dumps({kind: entries}, indent=1).encode(), f"{kind}.json", *options)
