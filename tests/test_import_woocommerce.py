"""WooCommerce exports through the real CLI: REST wc/v3 JSON and the Advanced Order Export CSV."""

from __future__ import annotations

import json
from typing import Any

LIST = "woocommerce/woocommerce_rest_v3_orders_list_example.json"
SINGLE = "woocommerce/woocommerce_rest_v3_order_retrieve_example.json"


def wc_order(number: int, status: str, **fields: Any) -> dict[str, Any]:
    """A small wc/v3 order, shaped like the REST API's (fictional data)."""
    order: dict[str, Any] = {
        "id": number + 5000, "number": str(number), "status": status, "currency": "EUR",
        "date_created": "2026-03-02T10:00:00", "date_created_gmt": "2026-03-02T09:00:00",
        "date_modified": "2026-03-02T10:05:00", "date_modified_gmt": "2026-03-02T09:05:00",
        "date_paid": None, "date_paid_gmt": None,
        "date_completed": None, "date_completed_gmt": None,
        "discount_total": "0.00", "shipping_total": "4.90", "total": "24.90", "total_tax": "4.15",
        "billing": {"first_name": "Camille", "last_name": "Durand",
                    "email": f"client{number}@example.com"},
        "shipping": {"first_name": "Camille", "last_name": "Durand", "address_1": "3 rue Neuve",
                     "postcode": "75011", "city": "Paris", "country": "FR"},
        "payment_method": "stripe", "payment_method_title": "Carte bancaire",
        "meta_data": [],
        "line_items": [{"id": 1, "name": "Bougie &amp; socle", "sku": "BOU-1", "quantity": 1,
                        "subtotal": "20.00", "total": "20.00", "price": 20}],
        "shipping_lines": [{"id": 2, "method_title": "Colissimo", "total": "4.90"}],
    }
    order.update(fields)
    return order


def orders_by_id(mailflow) -> dict[str, dict]:
    return {o["id"]: o for o in mailflow.query("SELECT * FROM orders")}


def events(mailflow, order_id: str) -> dict[str, tuple[str, str]]:
    rows = mailflow.query("SELECT status, at, source FROM order_status_events WHERE order_id = ?",
                          (order_id,))
    return {r["status"]: (r["at"], r["source"]) for r in rows}


def test_rest_order_list_imports_orders_lines_and_customers(mailflow):
    result = mailflow("import", mailflow.fixture(LIST), "--json")

    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["files"][0]["format"] == "woocommerce"
    assert report["files"][0]["kind"] == "orders"
    assert report["orders"] == {"inserted": 2, "updated": 0}
    assert report["lines"] == 4
    orders = orders_by_id(mailflow)
    assert set(orders) == {"727", "723"}
    assert {o["email"] for o in orders.values()} == {"john.doe@example.com", "joao.silva@example.com"}
    assert orders["727"]["status"] == "paid"  # processing
    assert orders["723"]["status"] == "shipped"  # completed
    # date_created is 16:28:02 site time; the _gmt twin says 19:28:02 UTC. Read as shop time
    # (Europe/Paris) the local field would have given 15:28:02Z.
    assert orders["727"]["created_at"] == "2017-03-22T19:28:02Z"
    assert orders["723"]["created_at"] == "2017-03-21T19:16:00Z"
    assert orders["727"]["platform_id"] == "727"
    assert orders["727"]["payment_method"] == "Direct Bank Transfer"
    assert orders["727"]["shipping_method"] == "Flat Rate"
    assert (orders["727"]["subtotal"], orders["727"]["shipping"], orders["727"]["tax"],
            orders["727"]["total"], orders["727"]["currency"]) == ("18.00", "10.00", "1.35", "29.35", "USD")
    assert orders["727"]["accepts_marketing"] is None  # no meta says anything about consent
    names = [r["name"] for r in mailflow.query(
        "SELECT name FROM order_lines WHERE order_id = '727' ORDER BY position")]
    assert names == ["Woo Single #1", "Ship Your Idea – Color: Black, Size: M Test"]
    assert mailflow.scalar("SELECT count(*) FROM customers") == 2
    assert events(mailflow, "727") == {"paid": ("2017-03-22T19:28:08Z", "export")}
    # completed, with two refunds (10.00 and 9.00) of its 39.00 when first seen: one partial
    # refund (the money given back so far), undated
    assert events(mailflow, "723") == {"shipped": ("2017-03-21T19:54:51Z", "export")}
    assert mailflow.query("SELECT seq, amount, total, at, source FROM order_refunds"
                          " WHERE order_id = '723'") == [
        {"seq": 1, "amount": "19.00", "total": "19.00", "at": "2017-03-21T19:54:51Z",
         "source": "inferred"}]
    assert mailflow.scalar("SELECT refunded_amount FROM orders WHERE id = '723'") == "19.00"


def test_single_order_file_then_the_list_adds_only_the_new_order(mailflow):
    first = mailflow("import", mailflow.fixture(SINGLE), "--json")
    assert first.exit_code == 0, first.stderr
    assert first.json()["orders"] == {"inserted": 1, "updated": 0}
    assert orders_by_id(mailflow)["727"]["email"] == "john.doe@example.com"

    second = mailflow("import", mailflow.fixture(LIST), "--json")

    assert second.exit_code == 0, second.stderr
    assert second.json()["orders"] == {"inserted": 1, "updated": 0}
    assert set(orders_by_id(mailflow)) == {"727", "723"}


def test_site_local_dates_are_shop_time_when_the_gmt_twin_is_missing(mailflow):
    order = wc_order(31, "processing", date_created="2026-03-02T10:00:00", date_paid="2026-03-02T10:02:00")
    for key in ("date_created_gmt", "date_paid_gmt", "date_modified_gmt"):
        del order[key]
    path = mailflow.write("naive.json", json.dumps([order], indent=2))

    assert mailflow("import", path).exit_code == 0
    row = orders_by_id(mailflow)["31"]
    assert (row["created_at"], row["paid_at"]) == ("2026-03-02T09:00:00Z", "2026-03-02T09:02:00Z")
    assert row["platform_id"] == "5031"
    assert mailflow.scalar("SELECT name FROM order_lines WHERE order_id = '31'") == "Bougie & socle"


def test_shipment_tracking_and_consent_meta(mailflow):
    tracking = [
        {"tracking_provider": "colissimo", "custom_tracking_provider": "", "tracking_number": "6A0001",
         "custom_tracking_link": "", "date_shipped": "1772784000"},
        {"tracking_provider": "", "custom_tracking_provider": "Coursier Express",
         "tracking_number": "CE-778899", "custom_tracking_link": "https://suivi.example/CE-778899",
         "date_shipped": "1772870400"},
    ]
    order = wc_order(40, "wc-completed", date_paid_gmt="2026-03-02T09:01:00",
                     date_completed_gmt="2026-03-07T08:30:00",
                     meta_data=[{"id": 1, "key": "_wc_shipment_tracking_items", "value": tracking},
                                {"id": 2, "key": "mailchimp_woocommerce_is_subscribed", "value": "1"}])
    path = mailflow.write("tracked.json", json.dumps(order, indent=2))

    result = mailflow("import", path, "--json")

    assert result.exit_code == 0, result.stderr
    row = orders_by_id(mailflow)["40"]
    assert row["status"] == "shipped"
    assert (row["tracking_number"], row["carrier"], row["tracking_url"]) == (
        "CE-778899", "Coursier Express", "https://suivi.example/CE-778899")
    assert row["shipped_at"] == "2026-03-07T08:30:00Z"
    assert row["accepts_marketing"] == 1
    assert mailflow.scalar("SELECT accepts_marketing FROM customers WHERE email_key = ?",
                           ("client40@example.com",)) == 1


def test_tracking_without_completion_dates_the_shipment_from_the_plugin(mailflow):
    tracking = {"3": {"tracking_provider": "chronopost", "tracking_number": "XY123",
                      "date_shipped": "1772870400"}}  # a PHP array with holes: a JSON object
    order = wc_order(41, "processing", date_paid_gmt="2026-03-02T09:01:00",
                     meta_data=[{"id": 1, "key": "_wc_shipment_tracking_items", "value": tracking}])
    path = mailflow.write("tracked.json", json.dumps([order]))

    assert mailflow("import", path).exit_code == 0
    row = orders_by_id(mailflow)["41"]
    assert (row["status"], row["tracking_number"], row["carrier"]) == ("paid", "XY123", "chronopost")
    assert row["shipped_at"] == "2026-03-07T08:00:00Z"


def test_checkout_draft_becomes_a_cart(mailflow):
    draft = wc_order(52, "checkout-draft", total="39.80",
                     line_items=[{"id": 9, "name": "Plaid laine", "sku": "PLD-2", "quantity": 2,
                                  "subtotal": "39.80", "price": 19.9}])
    paid = wc_order(53, "processing", date_paid_gmt="2026-03-02T09:01:00")
    path = mailflow.write("mixed.json", json.dumps([paid, draft], indent=2))

    result = mailflow("import", path, "--json")

    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["files"][0]["kind"] == "orders"
    assert report["orders"]["inserted"] == 1
    assert report["carts"]["inserted"] == 1
    assert set(orders_by_id(mailflow)) == {"53"}
    cart = mailflow.query("SELECT * FROM carts")[0]
    assert (cart["id"], cart["email"], cart["total"]) == ("52", "client52@example.com", "39.80")
    assert (cart["created_at"], cart["updated_at"]) == ("2026-03-02T09:00:00Z", "2026-03-02T09:05:00Z")
    assert mailflow.query("SELECT sku, quantity, price FROM cart_lines WHERE cart_id = '52'") == [
        {"sku": "PLD-2", "quantity": 2, "price": "19.9"}]


def test_a_file_of_drafts_only_is_a_carts_import(mailflow):
    path = mailflow.write("drafts.json", json.dumps([wc_order(60, "checkout-draft"),
                                                     wc_order(61, "checkout-draft")]))

    result = mailflow("import", path, "--json")

    assert result.exit_code == 0, result.stderr
    assert result.json()["files"][0]["kind"] == "carts"
    assert result.json()["carts"]["inserted"] == 2
    assert mailflow.scalar("SELECT count(*) FROM orders") == 0


def test_completion_between_two_imports_is_a_status_change_at_date_completed(mailflow):
    before = wc_order(70, "processing", date_paid_gmt="2026-03-02T09:01:00")
    after = dict(before, status="completed", date_completed_gmt="2026-03-04T15:20:00",
                 date_modified_gmt="2026-03-04T15:20:00")
    first = mailflow("import", mailflow.write("monday.json", json.dumps([before])),
                     "--now", "2026-03-03T08:00")
    assert first.exit_code == 0, first.stderr

    result = mailflow("import", mailflow.write("thursday.json", json.dumps([after])), "--json",
                      "--now", "2026-03-05T08:00")

    assert result.exit_code == 0, result.stderr
    assert result.json()["orders"] == {"inserted": 0, "updated": 1}
    assert result.json()["status_changes"] == 1
    assert orders_by_id(mailflow)["70"]["status"] == "shipped"
    assert events(mailflow, "70") == {"paid": ("2026-03-02T09:01:00Z", "export"),
                                      "shipped": ("2026-03-04T15:20:00Z", "export")}


def test_plugin_statuses_and_the_wc_prefix(mailflow):
    statuses = ["wc-on-hold", "pending", "cancelled", "refunded", "failed", "delivered",
                "ready-for-pickup", "awaiting-stock", "in-preparation", "invoiced"]
    orders = [wc_order(100 + i, status) for i, status in enumerate(statuses)]
    path = mailflow.write("many.json", json.dumps(orders))

    assert mailflow("import", path).exit_code == 0
    stored = {o["id"]: o["status"] for o in mailflow.query("SELECT id, status FROM orders")}
    assert [stored[str(100 + i)] for i in range(len(statuses))] == [
        "pending_payment", "pending_payment", "cancelled", "refunded", "failed", "delivered",
        "at_pickup_point", "awaiting_stock", "in_preparation", "invoiced"]


def test_unknown_and_trashed_statuses_are_rejected_with_file_and_line(mailflow):
    orders = [wc_order(80, "processing"), wc_order(81, "trash"), wc_order(82, "awaiting-shipment")]
    text = json.dumps(orders, indent=2)
    path = mailflow.write("statuses.json", text)
    lines = text.splitlines()
    start = {n: lines.index(f'    "number": "{n}",') - 1 for n in (81, 82)}  # the "{" line, 1-based

    result = mailflow("import", path, "--json")

    assert result.exit_code == 1
    rejected = result.json()["files"][0]["rejected"]
    assert [r["line"] for r in rejected] == [start[81], start[82]]
    assert "'trash'" in rejected[0]["reason"]
    assert "'awaiting-shipment'" in rejected[1]["reason"]
    assert f"statuses.json:{start[82]}: order 82: unknown WooCommerce status 'awaiting-shipment'" \
        in result.stderr
    assert set(orders_by_id(mailflow)) == {"80"}


def test_advanced_order_export_csv(mailflow):
    result = mailflow("import", mailflow.fixture("woocommerce/aoe_orders.csv"), "--json")

    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert (report["files"][0]["format"], report["files"][0]["kind"]) == ("woocommerce", "orders")
    assert report["files"][0]["rows"] == 6
    assert report["orders"]["inserted"] == 5
    assert report["lines"] == 6
    orders = orders_by_id(mailflow)
    assert {k: o["status"] for k, o in orders.items()} == {
        "1001": "paid", "1002": "shipped", "1003": "pending_payment", "1004": "pending_payment",
        "1005": "cancelled"}
    first = orders["1001"]
    assert (first["email"], first["first_name"], first["created_at"]) == (
        "claire.martin@example.com", "Claire", "2026-03-20T09:15:00Z")  # 10:15 in Paris
    assert (first["subtotal"], first["shipping"], first["total"]) == ("54.00", "4.90", "58.90")
    assert (first["payment_method"], first["shipping_method"]) == ("Credit card (Stripe)", "Colissimo")
    assert orders["1002"]["discount"] == "5.00"
    assert mailflow.query("SELECT sku, name, quantity, price FROM order_lines WHERE order_id = '1001'"
                          " ORDER BY position") == [
        {"sku": "TS-BLU-M", "name": "T-shirt – Bleu, M", "quantity": 2, "price": "19.00"},
        {"sku": "MUG-01", "name": "Mug émaillé", "quantity": 1, "price": "16.00"}]
    assert events(mailflow, "1002") == {"paid": ("2026-03-18T08:00:00Z", "export"),
                                        "shipped": ("2026-03-19T15:40:00Z", "export")}


def test_advanced_order_export_with_french_labels(mailflow):
    result = mailflow("import", mailflow.fixture("woocommerce/aoe_orders_fr.csv"), "--json")

    assert result.exit_code == 0, result.stderr
    assert result.json()["orders"]["inserted"] == 5
    orders = orders_by_id(mailflow)
    assert {k: o["status"] for k, o in orders.items()} == {
        "2001": "paid", "2002": "shipped", "2003": "pending_payment", "2004": "refunded",
        "2005": "failed"}
    assert (orders["2003"]["total"], orders["2003"]["currency"]) == ("1204.90", "EUR")
    assert orders["2002"]["first_name"] == "Hélène"
    assert orders["2001"]["created_at"] == "2026-03-21T08:12:00Z"
    assert mailflow.scalar("SELECT count(*) FROM order_lines WHERE order_id = '2001'") == 2


def test_advanced_order_export_unknown_label_is_a_rejected_row(mailflow):
    text = ("Order Number,Order Status,Order Date,Email (Billing),Item Name,Quantity,Item Cost\r\n"
            "3001,Processing,2026-03-20 10:15,a@example.com,Vase,1,20.00\r\n"
            "3002,Waiting for courier,2026-03-20 11:15,b@example.com,Vase,1,20.00\r\n")
    path = mailflow.write("aoe.csv", text)

    result = mailflow("import", path, "--json")

    assert result.exit_code == 1
    assert result.json()["files"][0]["rejected"][0]["line"] == 3
    assert "aoe.csv:3: unknown WooCommerce status 'Waiting for courier'" in result.stderr
    assert set(orders_by_id(mailflow)) == {"3001"}


def test_a_cod_order_is_unpaid_although_woocommerce_stamps_date_paid(mailflow):
    # the cod gateway moves the order to processing, and WC_Order::set_status() then stamps
    # date_paid (maybe_set_date_paid): the money only comes with the parcel. Once the shop
    # completed it, it is done as any other order.
    cod = wc_order(60, "processing", payment_method="cod", payment_method_title="Paiement à la livraison",
                   date_paid="2026-03-02T10:00:01", date_paid_gmt="2026-03-02T09:00:01")
    done = wc_order(61, "completed", payment_method="cod", payment_method_title="Paiement à la livraison",
                    date_paid_gmt="2026-03-02T09:00:01", date_completed_gmt="2026-03-05T16:00:00")
    path = mailflow.write("cod.json", json.dumps([cod, done]))
    assert mailflow("import", path).exit_code == 0
    rows = orders_by_id(mailflow)
    assert [(rows[n]["status"], rows[n]["paid_at"], rows[n]["payment_class"]) for n in ("60", "61")] == [
        ("pending_payment", None, "on_delivery"), ("shipped", "2026-03-02T09:00:01Z", "on_delivery")]
    assert set(events(mailflow, "60")) == {"pending_payment"}
    # the same in an Advanced Order Export CSV with its optional Paid Date
    text = ("Order Number,Order Status,Order Date,Paid Date,Email (Billing),Payment Method Title,"
            "Item Name,Quantity,Item Cost\r\n"
            "62,Processing,2026-03-20 10:15,2026-03-20 10:15,a@example.com,Paiement à la livraison,"
            "Vase,1,20.00\r\n")
    assert mailflow("import", mailflow.write("aoe.csv", text)).exit_code == 0
    row = orders_by_id(mailflow)["62"]
    assert (row["status"], row["paid_at"]) == ("pending_payment", None)
