"""Shopify exports through the real CLI: Shopify's own public samples, an older header,
the abandoned-checkouts CSV, the REST JSON shapes, shipments reported apart from their
order, and newer exports of the same orders."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

SHOPIFY = Path(__file__).parent / "fixtures" / "shopify"
NOW = "2026-01-15T10:00:00+01:00"


def fixture_rows(name: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO((SHOPIFY / name).read_text(encoding="utf-8"))))


def csv_text(rows: list[list[str]], delimiter: str = ",", end: str = "\n") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=end).writerows(rows)
    return out.getvalue()


HEADER_79 = fixture_rows("orders_export_devstore_forezia.csv")[0]


def run_import(mailflow, path, *options: str) -> tuple:
    result = mailflow("import", path, "--json", "--now", NOW, *options)
    return result, result.json()


def statuses(mailflow) -> dict[str, int]:
    rows = mailflow.query("SELECT status, count(*) AS n FROM orders GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


def order(mailflow, order_id: str) -> dict:
    return mailflow.query("SELECT * FROM orders WHERE id = ?", (order_id,))[0]


def events(mailflow, order_id: str) -> dict[str, tuple[str, str]]:
    rows = mailflow.query("SELECT status, at, source FROM order_status_events WHERE order_id = ?",
                          (order_id,))
    return {r["status"]: (r["at"], r["source"]) for r in rows}


def line_names(mailflow, order_id: str, table: str = "order_lines", key: str = "order_id") -> list:
    rows = mailflow.query(f"SELECT sku, name, quantity, price FROM {table} WHERE {key} = ?"
                          " ORDER BY position", (order_id,))
    return [(r["sku"], r["name"], r["quantity"], r["price"]) for r in rows]


def export_79(rows: list[dict[str, str]]) -> str:
    """An Admin "Export orders" CSV in the 2025 header, only the given cells filled."""
    assert all(set(row) <= set(HEADER_79) for row in rows)
    return csv_text([HEADER_79, *([row.get(name, "") for name in HEADER_79] for row in rows)])


def test_devstore_export_imports_every_order_line_and_status(mailflow):
    result, report = run_import(mailflow, mailflow.fixture("shopify/orders_export_devstore_forezia.csv"))
    assert result.exit_code == 0, result.stderr
    assert report["files"] == [{"path": report["files"][0]["path"], "format": "shopify",
                                "kind": "orders", "rows": 40, "rejected": [], "warnings": []}]
    assert report["orders"] == {"inserted": 19, "updated": 0}
    assert report["lines"] == mailflow.scalar("SELECT count(*) FROM order_lines") == 40
    assert statuses(mailflow) == {"shipped": 16, "paid": 3}
    assert mailflow.scalar("SELECT count(DISTINCT email_key) FROM orders") == 3
    assert mailflow.scalar("SELECT count(*) FROM customers") == 3
    no_email = mailflow.query("SELECT id FROM orders WHERE email_problem = 'missing_email' ORDER BY id")
    assert [r["id"] for r in no_email] == ["#1001", "#1002", "#1003", "#1006", "#1007", "#1010",
                                           "#1011", "#1017", "#1018", "#1019"]
    # #1001's three continuation rows carry no order fields: the first row's fields hold
    first = order(mailflow, "#1001")
    assert (first["status"], first["total"], first["currency"], first["payment_method"],
            first["platform_id"]) == ("shipped", "1659.95", "EUR", "manual", "6634244374859")
    assert line_names(mailflow, "#1001") == [
        (None, "Gift Card - $10", 1, "10.00"),
        (None, "Selling Plans Ski Wax - Selling Plans Ski Wax", 1, "24.95"),
        (None, "The Collection Snowboard: Hydrogen", 1, "600.00"),
        (None, "The Collection Snowboard: Oxygen", 1, "1025.00")]
    assert line_names(mailflow, "#1006")[1] == ("sku-untracked-1",
                                                "The Inventory Not Tracked Snowboard", 1, "949.95")
    # fulfilled: shipped when Shopify says (-0400 → UTC), paid before that
    assert events(mailflow, "#1010") == {"paid": ("2025-05-13T20:00:27Z", "export"),
                                         "shipped": ("2025-05-16T07:43:42Z", "export")}
    # partial fulfilment ships the first parcel; pending payment + partial is still shipped
    assert (order(mailflow, "#1011")["status"], order(mailflow, "#1011")["shipped_at"]) == (
        "shipped", None)
    assert events(mailflow, "#1013") == {"shipped": ("2025-05-16T06:36:49Z", "inferred")}
    assert order(mailflow, "#1017")["status"] == "paid"
    karine = order(mailflow, "#1005")
    assert karine["email"] == "karine.ruby@example.com"
    assert karine["shipping_address"] == "Receiving Department\n151 O'Connor St\nK2P 2L8 Ottawa\nOntario\nCA"
    russell = order(mailflow, "#1008")
    assert (russell["first_name"], russell["last_name"], russell["accepts_marketing"]) == (
        "Russell", "Winfield", 0)


def test_the_same_orders_in_new_bytes_change_nothing(mailflow):
    source = mailflow.fixture("shopify/orders_export_devstore_forezia.csv")
    run_import(mailflow, source)
    before = mailflow.dump()
    crlf = mailflow.write("again.csv", source.read_bytes().replace(b"\n", b"\r\n"))
    result, report = run_import(mailflow, crlf)
    assert result.exit_code == 0
    assert report["orders"] == {"inserted": 0, "updated": 0}
    assert report["status_changes"] == 0
    after = mailflow.dump()
    for table in ("orders", "order_lines", "order_status_events", "customers"):
        assert after[table] == before[table]


def test_transporter_template_cancelled_refunded_order_and_its_shifted_row(mailflow):
    result, report = run_import(mailflow, mailflow.fixture("shopify/shopify_transporter_orders_template.csv"))
    assert result.exit_code == 1
    # Shopify's own sample has one row shifted by a cell: the order is refused, not half-read
    [rejected] = report["files"][0]["rejected"]
    assert rejected["line"] == 3
    assert rejected["reason"].startswith("order #MA-1097 not imported: Lineitem quantity: ")
    assert "'Mini Handle Shovel'" in rejected["reason"]
    assert "shopify_transporter_orders_template.csv:3: order #MA-1097 not imported" in result.stderr
    jane = order(mailflow, "#MA-1098")
    assert (jane["status"], jane["email"], jane["accepts_marketing"], jane["currency"]) == (
        "refunded", "jane.doe@acme.com", 0, "USD")
    assert (jane["created_at"], jane["cancelled_at"]) == ("2018-01-19T20:54:41Z", "2018-01-19T20:54:42Z")
    assert events(mailflow, "#MA-1098") == {"cancelled": ("2018-01-19T20:54:42Z", "export"),
                                            "refunded": ("2018-01-19T20:54:42Z", "export")}
    assert line_names(mailflow, "#MA-1098") == [("b-001", "Big Brown Bear Boots", 1, "30")]


def test_transporter_layout_with_its_row_repaired_reads_the_shipping_line_row(mailflow):
    rows = fixture_rows("shopify_transporter_orders_template.csv")
    shifted = rows[2]
    del shifted[30]  # the stray cell before "Acme Ltd."
    shifted.insert(54, "")
    result, report = run_import(mailflow, mailflow.write("transporter.csv", csv_text(rows)))
    assert result.exit_code == 0, result.stderr
    assert report["orders"]["inserted"] == 2
    john = order(mailflow, "#MA-1097")
    assert (john["status"], john["first_name"], john["last_name"], john["accepts_marketing"]) == (
        "paid", "Ami", "Shaperi", 1)
    assert john["created_at"] == "2018-01-04T23:51:23Z"  # Processed At
    assert (john["shipping_method"], john["shipping"], john["discount"]) == (
        "United Parcel Service - 2nd Day Air", "0", "10")
    assert john["shipping_address"].splitlines() == [
        "Receiver Joe", "Acme Warehouse", "57 Erb St W", "N2L 6C2 Waterloo", "Ontario", "Canada"]
    # the shipping-line row has no line item: two lines, not three
    assert line_names(mailflow, "#MA-1097") == [("a-123", "Garden Trowel - Composite / Small", 2, "10"),
                                                ("a-456", "Mini Handle Shovel", 3, "20")]


def test_older_48_column_header_in_any_order_maps_by_name(mailflow):
    result, report = run_import(mailflow, mailflow.fixture("shopify/orders_export_48_columns.csv"))
    assert result.exit_code == 1
    assert report["files"][0]["rejected"] == [{"line": 11, "reason": "unknown financial status 'chargeback'"}]
    assert report["orders"]["inserted"] == 8
    got = {r["id"]: r["status"] for r in mailflow.query("SELECT id, status FROM orders")}
    assert got == {"#2001": "shipped", "#2002": "pending_payment", "#2003": "pending_payment",
                   "#2004": "paid", "#2005": "cancelled", "#2006": "refunded", "#2007": "paid",
                   "#2009": "failed"}
    lea = order(mailflow, "#2001")
    assert (lea["first_name"], lea["last_name"], lea["accepts_marketing"], lea["platform_id"]) == (
        "Léa", "Martin", 1, None)
    assert lea["shipping_address"] == "Léa Martin\n12 rue des Lilas\n07000 Privas\nFR"  # ' guard gone
    assert (lea["subtotal"], lea["shipping"], lea["tax"], lea["total"], lea["shipping_method"]) == (
        "42.40", "4.90", "7.88", "47.30", "Colissimo")
    assert events(mailflow, "#2001") == {"paid": ("2016-03-01T09:00:00Z", "export"),
                                         "shipped": ("2016-03-02T08:30:00Z", "export")}
    assert line_names(mailflow, "#2001") == [("MUG-B", "Mug bleu", 2, "12.50"),
                                             ("THE-1", "Théière", 1, "17.40")]
    assert order(mailflow, "#2006")["cancelled_at"] == "2016-03-07T07:00:00Z"
    kept = order(mailflow, "#2009")
    assert kept["email"] is None and kept["email_problem"].startswith("invalid_email")
    assert kept["email_raw"] == "not-an-address"


def test_a_french_excel_resave_reads_the_same_orders(mailflow):
    """`;`, Windows-1252, CRLF and decimal commas: what Excel writes back on a French PC."""
    rows = fixture_rows("orders_export_48_columns.csv")
    amounts = [rows[0].index(n) for n in ("Subtotal", "Shipping", "Taxes", "Total", "Lineitem price")]
    for row in rows[1:]:
        for i in amounts:
            row[i] = row[i].replace(".", ",")
    resaved = csv_text(rows, ";", "\r\n").encode("cp1252")
    result, report = run_import(mailflow, mailflow.write("resaved.csv", resaved))
    assert result.exit_code == 1  # the same unknown status as the original, nothing else
    assert [r["line"] for r in report["files"][0]["rejected"]] == [11]
    assert report["orders"]["inserted"] == 8
    lea = order(mailflow, "#2001")
    assert (lea["first_name"], lea["total"], lea["tax"], lea["status"]) == ("Léa", "47.30", "7.88", "shipped")
    assert line_names(mailflow, "#2001")[1] == ("THE-1", "Théière", 1, "17.40")


def test_bad_cells_reject_their_order_with_file_and_line_and_the_rest_imports(mailflow):
    good = {"Name": "#5001", "Email": "ok@example.com", "Financial Status": "paid",
            "Fulfillment Status": "unfulfilled", "Created at": "2025-06-01 10:00:00 +0200",
            "Total": "12.50", "Lineitem name": "Mug", "Lineitem quantity": "1", "Lineitem price": "12.50"}
    path = mailflow.write("bad.csv", export_79([
        {**good, "Name": "#5002", "Created at": "yesterday"},
        {**good, "Name": "#5003", "Total": "douze"},
        {**good, "Name": ""},
        {**good, "Name": "#5004"},
        {"Name": "#5004", "Lineitem name": "Cup", "Lineitem quantity": "two"},
        good,
    ]))
    result, report = run_import(mailflow, path)
    assert result.exit_code == 1
    rejected = report["files"][0]["rejected"]
    assert rejected[:3] == [{"line": 2, "reason": "Created at: unreadable date 'yesterday'"},
                            {"line": 3, "reason": "Total: unreadable amount 'douze'"},
                            {"line": 4, "reason": "no order number (Name is empty)"}]
    assert rejected[3]["line"] == 6 and len(rejected) == 4
    assert rejected[3]["reason"].startswith("order #5004 not imported: Lineitem quantity: ")
    assert f"{path}:6: order #5004 not imported" in result.stderr
    assert [r["id"] for r in mailflow.query("SELECT id FROM orders")] == ["#5001"]


def test_newer_export_paid_then_shipped_records_the_shipping_time(mailflow):
    paid = {"Name": "#3001", "Email": "zoe@example.com", "Financial Status": "paid",
            "Paid at": "2025-06-01 10:00:00 +0200", "Fulfillment Status": "unfulfilled",
            "Created at": "2025-06-01 09:58:00 +0200", "Currency": "EUR", "Total": "19.90",
            "Lineitem name": "Mug bleu", "Lineitem quantity": "1", "Lineitem price": "19.90",
            "Id": "6000000000001"}
    mailflow("import", mailflow.write("monday.csv", export_79([paid])), "--now", "2025-06-02T08:00:00+02:00")
    assert order(mailflow, "#3001")["status"] == "paid"
    shipped = {**paid, "Fulfillment Status": "fulfilled", "Fulfilled at": "2025-06-03 15:30:00 +0200"}
    result = mailflow("import", mailflow.write("thursday.csv", export_79([shipped])), "--json",
                      "--now", "2025-06-05T08:00:00+02:00")
    assert result.exit_code == 0
    assert result.json()["orders"] == {"inserted": 0, "updated": 1}
    assert result.json()["status_changes"] == 1
    assert order(mailflow, "#3001")["status"] == "shipped"
    assert events(mailflow, "#3001") == {"paid": ("2025-06-01T08:00:00Z", "export"),
                                         "shipped": ("2025-06-03T13:30:00Z", "export")}


def test_abandoned_checkouts_csv_needs_kind_carts_and_then_imports_carts(mailflow):
    path = mailflow.fixture("shopify/checkouts_export.csv")
    refused = mailflow("import", path, "--json", "--now", NOW)
    assert refused.exit_code == 2
    assert "--kind carts" in refused.json()["files"][0]["error"]
    assert mailflow.scalar("SELECT count(*) FROM orders") == 0

    result, report = run_import(mailflow, path, "--kind", "carts")
    assert result.exit_code == 0, result.stderr
    assert (report["files"][0]["kind"], report["carts"], report["lines"]) == (
        "carts", {"inserted": 3, "updated": 0}, 4)
    assert mailflow.scalar("SELECT count(*) FROM orders") == 0
    chloe = mailflow.query("SELECT * FROM carts WHERE id = '41000000001'")[0]
    assert (chloe["email"], chloe["first_name"], chloe["last_name"], chloe["accepts_marketing"]) == (
        "chloe.petit@example.com", "Chloé", "Petit", 1)
    assert (chloe["created_at"], chloe["total"], chloe["currency"]) == (
        "2023-03-07T13:28:42Z", "30.40", "EUR")
    assert line_names(mailflow, "41000000001", "cart_lines", "cart_id") == [
        ("MUG-B", "Mug bleu", 2, "12.50"), ("SOU-1", "Sous-tasse", 1, "5.40")]
    phone_only = mailflow.query("SELECT email_problem FROM carts WHERE id = '41000000003'")[0]
    assert phone_only["email_problem"] == "missing_email"


def test_checkouts_csv_with_a_recovery_url_column_is_detected_as_carts(mailflow):
    rows = fixture_rows("checkouts_export.csv")
    rows[0].append("Abandoned Checkout URL")
    for row in rows[1:]:
        row.append(f"https://boutique.example/checkouts/{row[51]}/recover" if row[51] else "")
    result, report = run_import(mailflow, mailflow.write("checkouts.csv", csv_text(rows)))
    assert result.exit_code == 0, result.stderr
    assert report["files"][0]["kind"] == "carts"
    url = mailflow.scalar("SELECT recovery_url FROM carts WHERE id = '41000000002'")
    assert url == "https://boutique.example/checkouts/41000000002/recover"


def test_rest_order_json(mailflow):
    result, report = run_import(mailflow, mailflow.fixture("shopify/shopify_python_api_order.json"))
    assert result.exit_code == 0, result.stderr
    assert (report["files"][0]["format"], report["orders"]["inserted"], report["lines"]) == (
        "shopify", 1, 3)
    bob = order(mailflow, "#1001")
    assert (bob["platform_id"], bob["email"], bob["first_name"], bob["last_name"]) == (
        "450789469", "bob.norman@hostmail.com", "Bob", "Norman")
    # authorized on a card gateway: the money is held, the order is paid
    assert (bob["status"], bob["payment_method"], bob["accepts_marketing"]) == ("paid", "authorize_net", 0)
    assert (bob["subtotal"], bob["shipping"], bob["tax"], bob["discount"], bob["total"]) == (
        "398.00", "0.00", "11.94", "0.00", "409.94")
    assert (bob["shipping_method"], bob["created_at"]) == ("Free Shipping", "2008-01-10T16:00:00Z")
    # its only fulfillment failed: no tracking, not shipped
    assert (bob["tracking_number"], bob["shipped_at"]) == (None, None)
    assert bob["shipping_address"].splitlines() == [
        "Bob Norman", "Chestnut Street 92", "40202 Louisville", "Kentucky", "United States"]
    assert line_names(mailflow, "#1001")[0] == ("IPOD2008GREEN", "IPod Nano - 8gb - green", 1, "199.00")


def test_fulfillment_after_its_order_ships_it_with_tracking(mailflow):
    mailflow("import", mailflow.fixture("shopify/shopify_python_api_order.json"), "--now", NOW)
    result, report = run_import(mailflow, mailflow.fixture("shopify/shopify_python_api_fulfillment.json"))
    assert result.exit_code == 0, result.stderr
    assert report["status_changes"] == 1
    bob = order(mailflow, "#1001")
    assert (bob["status"], bob["tracking_number"], bob["carrier"], bob["shipped_at"]) == (
        "shipped", "1Z2345", "null-company", "2013-11-01T20:06:08Z")
    assert bob["tracking_url"] == "http://www.google.com/search?q=1Z2345"
    assert events(mailflow, "#1001")["shipped"] == ("2013-11-01T20:06:08Z", "export")


def test_fulfillment_alone_is_rejected_until_its_order_is_imported(mailflow):
    path = mailflow.fixture("shopify/shopify_python_api_fulfillment.json")
    result, report = run_import(mailflow, path)
    assert result.exit_code == 1
    assert f"{path}:2: order 450789469 is not in the store: import its orders first" in result.stderr
    assert report["files"][0]["rejected"] == [
        {"line": 2, "reason": "order 450789469 is not in the store: import its orders first"}]
    assert mailflow.scalar("SELECT count(*) FROM orders") == 0


def test_rest_orders_list_checkouts_and_customer(mailflow):
    result, report = run_import(mailflow, mailflow.fixture("shopify/shopify_python_api_orders.json"))
    assert result.exit_code == 0, result.stderr
    bob = order(mailflow, "#1001")
    # partially refunded: still a paid order (the refund is not a status e-mail)
    assert (bob["status"], bob["email"], bob["payment_method"], bob["discount"], bob["total"]) == (
        "paid", "bob.norman@hostmail.com", "bogus", "10.00", "598.94")
    assert line_names(mailflow, "#1001") == []

    for name in ("shopify_python_api_checkouts.json", "shopify_python_api_abandoned_checkout.json"):
        result, report = run_import(mailflow, mailflow.fixture(f"shopify/{name}"))
        assert (result.exit_code, report["files"][0]["kind"]) == (0, "carts")
    cart = mailflow.query("SELECT * FROM carts")
    assert len(cart) == 1  # the same checkout (id 450789469) in both files
    assert (cart[0]["id"], cart[0]["email"], cart[0]["total"], cart[0]["completed_at"]) == (
        "450789469", "bob.norman@hostmail.com", "409.94", None)
    assert cart[0]["recovery_url"] == (
        "https://checkout.local/orders/690933842/2a1ace52255252df566af0faaedfbfa7?recovered=1")
    assert len(line_names(mailflow, "450789469", "cart_lines", "cart_id")) == 2

    result, report = run_import(mailflow, mailflow.fixture("shopify/shopify_python_api_customer.json"))
    assert (result.exit_code, report["files"][0]["kind"]) == (0, "customers")
    person = mailflow.query("SELECT * FROM customers WHERE email_key = 'bob.norman@hostmail.com'")[0]
    assert (person["first_name"], person["accepts_marketing"], person["created_at"]) == (
        "Bob", 0, "2015-05-27T22:11:24Z")


def test_rest_orders_fulfilled_and_cancelled(mailflow):
    base = json.loads((SHOPIFY / "shopify_python_api_order.json").read_text())["order"]
    shipped = {**base, "fulfillment_status": "fulfilled",
               "fulfillments": [{**base["fulfillments"][0], "status": "success",
                                 "tracking_company": "UPS"}]}
    cancelled = {**base, "id": 450789470, "name": "#1002", "financial_status": "refunded",
                 "cancelled_at": "2008-01-11T09:00:00-05:00", "fulfillments": []}
    unknown = {**base, "id": 450789471, "name": "#1003", "fulfillment_status": "lost_in_space"}
    text = json.dumps({"orders": [shipped, cancelled, unknown]}, indent=2)
    result, report = run_import(mailflow, mailflow.write("orders.json", text))
    assert result.exit_code == 1
    starts = [n for n, text_line in enumerate(text.splitlines(), 1) if text_line == "    {"]
    assert report["files"][0]["rejected"] == [
        {"line": starts[2], "reason": "unknown fulfillment status 'lost_in_space'"}]
    one = order(mailflow, "#1001")
    assert (one["status"], one["tracking_number"], one["carrier"], one["shipped_at"]) == (
        "shipped", "1Z2345", "UPS", "2014-01-22T20:58:27Z")
    assert one["tracking_url"].startswith("http://wwwapps.ups.com/etracking/")
    assert events(mailflow, "#1001")["shipped"] == ("2014-01-22T20:58:27Z", "export")
    two = order(mailflow, "#1002")
    assert (two["status"], two["cancelled_at"]) == ("refunded", "2008-01-11T14:00:00Z")
