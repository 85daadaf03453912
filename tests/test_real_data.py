"""The wrong e-mails real shops' exports used to cause (issue 10), each through the real CLI
on the default rules `mailflow init` writes: paid orders without a payment time, consent
columns of every vintage, cash on delivery, partial updates, delivery reported by
carriers or never, exports that say nothing of what rules need."""

from __future__ import annotations

import json

import pytest
from test_import_shopify import export_79

CANONICAL = ("order_id,email,first_name,last_name,accepts_marketing,status,created_at,paid_at,"
             "shipped_at,total,currency,payment_method,tracking_number,carrier,line_sku,"
             "line_name,line_quantity,line_price\n")


@pytest.fixture
def shop(mailflow, monkeypatch):
    """A project as `mailflow init` writes it: the default rules, Europe/Paris."""
    monkeypatch.setenv("MAILFLOW_SECRET", "s")
    assert mailflow("init", mailflow.folder / "p").exit_code == 0
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    return mailflow


def imported(mf, name: str, content: str, now: str, *options: str, code: int = 0) -> str:
    result = mf("import", mf.write(name, content), "--now", now, *options)
    assert result.exit_code == code, result.stderr
    return result.stderr


def decisions(mf, now: str) -> dict[str, list[tuple[str, str | None]]]:
    """What a dry run at `now` would do, per order (or customer, or cart) it is about:
    {subject: [(rule, status or status:reason)]}."""
    result = mf("send", "--dry-run", "--json", "--now", now)
    assert result.exit_code in (0, 1), result.stderr
    table: dict[str, list] = {}
    for m in result.json()["messages"]:
        subject = m["key"].split(":", 2)[2].rsplit(":", 1)[0] if ":order:" in m["key"] else \
            m["key"].split(":", 2)[2]
        reason = (m["reason"] or "").split(" until ")[0]
        table.setdefault(subject, []).append(
            (m["rule"], m["status"] + (f":{reason}" if reason else "")))
    return {k: sorted(v) for k, v in table.items()}


def shopify_row(name: str, created: str, **cells: str) -> dict[str, str]:
    row = {"Name": name, "Email": cells.pop("email", "ana@example.com"), "Created at": created,
           "Currency": "EUR", "Total": "42.00", "Subtotal": "42.00", "Accepts Marketing": "yes",
           "Lineitem name": "Mug", "Lineitem quantity": "1", "Lineitem price": "42.00",
           "Billing Name": "Ana Lopez", "Fulfillment Status": "unfulfilled"}
    row.update({k.replace("_", " "): v for k, v in cells.items()})
    return row


# -- 1. paid at placement ------------------------------------------------------------------


def test_a_paid_order_without_a_payment_time_gets_no_second_payment_email(shop):
    imported(shop, "orders_export_1.csv", export_79([
        shopify_row("#1001", "2026-03-02 10:00:00 +0100", Financial_Status="paid",
                    Payment_Method="shopify_payments"),  # Paid at empty: an app's order
        shopify_row("#1002", "2026-03-02 10:05:00 +0100", email="bea@example.com",
                    Financial_Status="pending", Payment_Method="Bank Deposit"),
    ]), "2026-03-02T10:10")
    assert decisions(shop, "2026-03-02T10:15")["#1001"] == [
        ("order-confirmation", "would_send"), ("payment-received", "skipped:paid_when_placed")]
    shop("send", "--now", "2026-03-02T10:15")
    # the transfer arrives: a later export says paid, again without a payment time
    imported(shop, "orders_export_2.csv", export_79([
        shopify_row("#1001", "2026-03-02 10:00:00 +0100", Financial_Status="paid",
                    Payment_Method="shopify_payments"),
        shopify_row("#1002", "2026-03-02 10:05:00 +0100", email="bea@example.com",
                    Financial_Status="paid", Payment_Method="Bank Deposit"),
    ]), "2026-03-04T09:00")
    later = decisions(shop, "2026-03-04T09:05")
    assert later["#1002"] == [("payment-received", "would_send")]
    assert "#1001" not in later


def test_a_mapping_without_paid_at_gets_no_payment_received(shop):
    mapping = shop.write("map.yaml", "kind: orders\ncolumns:\n  order_id: Ref\n  email: Mail\n"
                         "  status: Etat\n  created_at: Date\n  total: Total\n"
                         "statuses:\n  Paiement accepté: paid\n")
    imported(shop, "ps.csv", "Ref;Mail;Etat;Date;Total\nP1;ana@example.com;Paiement accepté;"
             "02/03/2026 10:00;12,00\n", "2026-03-02T10:05", "--mapping", str(mapping),
             code=1)  # and no consent column: said
    assert decisions(shop, "2026-03-02T10:10")["P1"] == [
        ("order-confirmation", "would_send"), ("payment-received", "skipped:paid_when_placed")]


# -- 2. consent of every vintage -----------------------------------------------------------

CUSTOMERS_2024 = ("Customer ID,First Name,Last Name,Email,Accepts Email Marketing,"
                  "Default Address Company,Default Address Address1,Default Address City,"
                  "Default Address Zip,Default Address Country Code,Phone,Accepts SMS Marketing,"
                  "Total Spent,Total Orders,Note,Tax Exempt,Tags\n"
                  "'7001,Ana,Lopez,ana@example.com,yes,,1 rue A,Lyon,'69001,FR,,no,42.00,1,,no,\n"
                  "'7002,Bea,Roux,bea@example.com,no,,2 rue B,Nantes,'44000,FR,,no,0.00,0,,no,\n")
CUSTOMERS_2019 = ("First Name,Last Name,Email,Company,Address1,Address2,City,Province,"
                  "Province Code,Country,Country Code,Zip,Phone,Accepts Marketing,Total Spent,"
                  "Total Orders,Tags,Note,Tax Exempt\n"
                  "Ana,Lopez,ana@example.com,,1 rue A,,Lyon,,,France,FR,69001,,yes,42.00,1,,,no\n"
                  "Bea,Roux,bea@example.com,,2 rue B,,Nantes,,,France,FR,44000,,no,0.00,0,,,no\n")
CUSTOMERS_STATES = ("Email,First Name,Email Marketing Consent,Total Orders\n"
                    "ana@example.com,Ana,subscribed,1\nbea@example.com,Bea,not_subscribed,0\n"
                    "cid@example.com,Cid,pending,0\n")


@pytest.mark.parametrize("export", [CUSTOMERS_2024, CUSTOMERS_2019, CUSTOMERS_STATES],
                         ids=["accepts-email-marketing", "accepts-marketing", "consent-states"])
def test_the_customers_export_keeps_every_refusal(shop, export):
    imported(shop, "customers_export.csv", export, "2026-03-01T09:00")  # detected: no --kind
    consent = {r["email_key"]: r["accepts_marketing"]
               for r in shop.query("SELECT email_key, accepts_marketing FROM customers")}
    assert consent["ana@example.com"] == 1 and consent["bea@example.com"] == 0
    assert consent.get("cid@example.com", 0) == 0  # a double opt-in not confirmed is no yes
    orders = CANONICAL.replace("accepts_marketing,", "")
    imported(shop, "o.csv", orders + "\n".join(
        f"{n},{who}@example.com,X,Y,shipped,2026-03-02 10:00,2026-03-02 10:00,"
        f"2026-03-03 10:00,10.00,EUR,Carte,,,S,Mug,1,10.00" for n, who in (("A1", "ana"),
                                                                         ("B1", "bea"))) + "\n",
             "2026-03-03T11:00", code=1)  # no consent in the orders file: said, not lost
    reviews = decisions(shop, "2026-03-14T10:00")
    assert reviews["A1"] == [("review-request", "would_send")]
    assert reviews["B1"] == [("review-request", "skipped:no_consent")]


def test_a_file_without_consent_says_so_once_while_marketing_rules_are_on(shop, mailflow):
    people = "email,first_name\nana@example.com,Ana\nbea@example.com,Bea\n"
    stderr = imported(shop, "people.csv", people, "2026-03-01T09:00", "--kind", "customers",
                      code=1)
    lines = [line for line in stderr.splitlines() if "no marketing consent" in line]
    assert len(lines) == 1 and lines[0].startswith(str(shop.folder / "people.csv") + ":")
    assert "shop.consent: optional" in lines[0]
    # a shop with no marketing rule has nothing to be told
    shop.config.write_text(shop.config.read_text().replace("category: marketing",
                                                           "category: marketing\n    enabled: false"))
    imported(shop, "people2.csv", people.replace("Ana", "Anna"), "2026-03-01T09:00",
             "--kind", "customers")


# -- 3. cash on delivery -------------------------------------------------------------------


def test_a_shopify_cod_order_gets_no_bank_details_and_no_payment_received(shop):
    imported(shop, "orders_export_1.csv", export_79([
        shopify_row("#2001", "2026-03-02 10:00:00 +0100", Financial_Status="pending",
                    Payment_Method="Cash on Delivery (COD)"),
        shopify_row("#2002", "2026-03-02 10:01:00 +0100", email="bea@example.com",
                    Financial_Status="authorized", Payment_Method="Cash on Delivery (COD)"),
    ]), "2026-03-02T10:05")
    table = decisions(shop, "2026-03-02T10:10")
    for order_id in ("#2001", "#2002"):
        assert table[order_id] == [("order-confirmation", "would_send"),
                                   ("payment-pending", "skipped:pay_on_delivery")]
    assert shop("send", "--now", "2026-03-02T10:10").exit_code == 0
    text = shop("preview", "order-confirmation", "--order", "#2001", "--format", "text").stdout
    assert "42,00 € à la livraison" in text and "IBAN" not in text and "virement" not in text
    # delivered and paid: the money was handed over, no "payment received"
    imported(shop, "orders_export_2.csv", export_79([
        shopify_row("#2001", "2026-03-02 10:00:00 +0100", Financial_Status="paid",
                    Paid_at="2026-03-05 15:00:00 +0100", Fulfillment_Status="fulfilled",
                    Fulfilled_at="2026-03-05 09:00:00 +0100",
                    Payment_Method="Cash on Delivery (COD)"),
    ]), "2026-03-05T15:05")
    assert decisions(shop, "2026-03-05T15:10")["#2001"] == [
        ("payment-received", "skipped:pay_on_delivery"), ("shipped", "would_send")]


def woo_order(number: str, status: str, method: str, title: str, paid: str | None = None,
              created: str = "2026-03-02T09:00:00") -> dict:
    return {"id": int(number), "number": number, "status": status, "currency": "EUR",
            "date_created_gmt": created, "date_paid_gmt": paid, "total": "30.00",
            "payment_method": method, "payment_method_title": title,
            "billing": {"first_name": "Léa", "last_name": "Dubois", "email": "lea@example.com"},
            "meta_data": [{"key": "mailchimp_woocommerce_is_subscribed", "value": "1"}],
            "line_items": [{"name": "Savon", "sku": "SAV", "quantity": 1, "price": 30}]}


def test_a_woocommerce_cod_order_in_processing_is_not_paid(shop):
    imported(shop, "orders.json", json.dumps([woo_order("301", "processing", "cod",
                                                        "Paiement à la livraison")]),
             "2026-03-02T10:05")
    row = shop.query("SELECT status, payment_class FROM orders")[0]
    assert row == {"status": "pending_payment", "payment_class": "on_delivery"}
    assert decisions(shop, "2026-03-02T10:10")["301"] == [
        ("order-confirmation", "would_send"), ("payment-pending", "skipped:pay_on_delivery")]
    assert shop("send", "--now", "2026-03-02T10:10").exit_code == 0
    imported(shop, "orders2.json", json.dumps([woo_order(
        "301", "completed", "cod", "Paiement à la livraison", paid="2026-03-04T14:00:00")]),
             "2026-03-04T16:05")  # paid 15:00 in Paris
    assert decisions(shop, "2026-03-04T16:10")["301"] == [
        ("payment-received", "skipped:pay_on_delivery"), ("shipped", "would_send")]


def test_an_online_payment_still_pending_holds_the_confirmation_until_it_is_paid(shop):
    imported(shop, "orders.json", json.dumps([woo_order("302", "pending", "stripe", "Carte")]),
             "2026-03-02T10:01")  # created 09:00 UTC, 10:00 in Paris
    assert decisions(shop, "2026-03-02T10:05")["302"] == [
        ("order-confirmation", "deferred:awaiting_payment"),
        ("payment-pending", "skipped:online_payment")]
    shop("send", "--now", "2026-03-02T10:05")
    assert decisions(shop, "2026-03-02T10:06")["302"] == [
        ("order-confirmation", "deferred:awaiting_payment")]  # waits on every run
    imported(shop, "orders2.json", json.dumps([woo_order(
        "302", "processing", "stripe", "Carte", paid="2026-03-02T09:06:00")]), "2026-03-02T10:07")
    assert decisions(shop, "2026-03-02T10:10")["302"] == [
        ("order-confirmation", "would_send"), ("payment-received", "skipped:paid_when_placed")]


# -- 4. partial updates --------------------------------------------------------------------


def test_a_file_with_a_few_columns_updates_only_those(shop):
    imported(shop, "full.csv", CANONICAL + "A-1,ana@example.com,Ana,Lopez,yes,shipped,"
             "2026-03-02 10:00,2026-03-02 10:00,2026-03-03 09:00,58.90,EUR,Carte,6A123,Colissimo,"
             "MUG,Mug,2,12.50\nA-1,,,,,,,,,,,,,,THE,Théière,1,33.90\n", "2026-03-03T09:05")
    shop("send", "--now", "2026-03-03T09:05")
    before = shop.query("SELECT * FROM orders")[0]
    imported(shop, "delivered.csv", "order_id,status,delivered_at\nA-1,delivered,"
             "2026-03-04 15:00\n", "2026-03-04T15:05")
    after = shop.query("SELECT * FROM orders")[0]
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {"status", "delivered_at", "content_hash", "updated_at", "import_id"}
    assert (after["first_name"], after["total"], after["tracking_number"]) == ("Ana", "58.90",
                                                                              "6A123")
    assert [r["name"] for r in shop.query("SELECT name FROM order_lines ORDER BY position")] == [
        "Mug", "Théière"]
    assert decisions(shop, "2026-03-04T15:10")["A-1"] == [("delivered", "would_send")]


def test_a_fulfillment_still_finds_an_order_a_partial_file_updated(shop, mailflow):
    order = mailflow.fixture("shopify/shopify_python_api_order.json")
    imported(shop, order.name, order.read_text(), "2026-01-15T10:00")
    imported(shop, "status.csv", "order_id,status\n#1001,paid\n", "2026-01-15T10:05")
    fulfillment = mailflow.fixture("shopify/shopify_python_api_fulfillment.json")
    imported(shop, fulfillment.name, fulfillment.read_text(), "2026-01-15T10:10")
    row = shop.query("SELECT status, tracking_number, platform_id FROM orders")[0]
    assert row == {"status": "shipped", "tracking_number": "1Z2345", "platform_id": "450789469"}


def test_a_partial_file_cannot_create_an_order_it_knows_too_little_of(shop):
    stderr = imported(shop, "status.csv", "order_id,status\nZ-9,paid\n", "2026-03-02T10:00",
                      code=1)
    assert "status.csv:2: order Z-9 is not in the store" in stderr
    assert shop.scalar("SELECT count(*) FROM orders") == 0


# -- 5. delivered, ready for pickup, and shops whose data never says delivered --------------


def fulfillment(status: str, updated: str) -> str:
    return json.dumps({"fulfillment": {
        "id": 1, "order_id": 450789469, "status": "success", "created_at": "2026-03-02T10:00:00Z",
        "updated_at": updated, "tracking_company": "Colissimo", "tracking_number": "6A9",
        "shipment_status": status}})


@pytest.mark.parametrize(("said", "rule"), [("delivered", "delivered"),
                                            ("ready_for_pickup", "pickup-ready"),
                                            ("picked_up", "delivered")])
def test_what_the_carrier_says_of_a_shopify_parcel_becomes_the_order_status(shop, mailflow, said,
                                                                            rule):
    order = json.loads(mailflow.fixture("shopify/shopify_python_api_order.json").read_text())
    order["order"]["created_at"] = "2026-03-01T10:00:00Z"
    imported(shop, "order.json", json.dumps(order), "2026-03-01T10:05")
    imported(shop, "f.json", fulfillment(said, "2026-03-03T13:00:00Z"), "2026-03-03T14:05")
    table = decisions(shop, "2026-03-03T14:10")["#1001"]  # Paris: 13:10 UTC
    # one e-mail, the news: "on its way" for a parcel already there would be noise
    assert (rule, "would_send") in table and ("shipped", "skipped:superseded") in table


def test_an_order_never_reported_delivered_still_gets_its_review_request(shop):
    imported(shop, "orders_export_1.csv", export_79([
        shopify_row("#3001", "2026-03-01 10:00:00 +0100", Financial_Status="paid",
                    Paid_at="2026-03-01 10:00:00 +0100", Fulfillment_Status="fulfilled",
                    Fulfilled_at="2026-03-02 10:00:00 +0100")]), "2026-03-02T10:05")
    shop("send", "--now", "2026-03-02T10:10")
    assert "#3001" not in decisions(shop, "2026-03-13T09:59")  # shipped + 4d + 7d, not before
    assert decisions(shop, "2026-03-13T10:01")["#3001"] == [("review-request", "would_send")]
    assert shop("send", "--now", "2026-03-13T10:01").exit_code == 0
    # a delivery reported later is the same instance: never a second request
    imported(shop, "d.csv", "order_id,status,delivered_at\n#3001,delivered,2026-03-14 09:00\n",
             "2026-03-14T09:05")
    assert decisions(shop, "2026-03-14T09:10")["#3001"] == [("delivered", "would_send")]
    shop("send", "--now", "2026-03-14T09:10")
    assert "#3001" not in decisions(shop, "2026-03-21T09:05")


def test_a_delivery_reported_before_the_assumed_one_sets_the_review_time(shop):
    imported(shop, "orders.json", json.dumps([woo_order(
        "401", "completed", "stripe", "Carte", paid="2026-03-01T09:00:00")
        | {"date_completed_gmt": "2026-03-02T09:00:00"}]), "2026-03-02T09:05")
    shop("send", "--now", "2026-03-02T09:10")
    imported(shop, "d.csv", "order_id,status,delivered_at\n401,delivered,2026-03-03 09:00\n",
             "2026-03-03T09:05")
    shop("send", "--now", "2026-03-03T09:10")
    assert "401" not in decisions(shop, "2026-03-10T08:59")  # delivered + 7 days, in Paris
    assert decisions(shop, "2026-03-10T09:01")["401"] == [("review-request", "would_send")]


# -- 8. exports that say nothing of what rules need ----------------------------------------


def test_an_orders_file_without_an_email_column_says_so(shop):
    stderr = imported(shop, "o.csv", "order_id,status,created_at,total\nN-1,paid,"
                      "2026-03-02 10:00,10.00\n", "2026-03-02T10:05", code=1)
    assert stderr.count("no e-mail column") == 1


def test_a_mapping_without_status_says_so_and_defaults_fill_it(shop):
    header = "Ref;Mail;Date;Total\nP1;ana@example.com;02/03/2026 10:00;12,00\n"
    bare = shop.write("m1.yaml", "kind: orders\ncolumns:\n  order_id: Ref\n  email: Mail\n"
                      "  created_at: Date\n  total: Total\n")
    stderr = imported(shop, "a.csv", header, "2026-03-02T10:05", "--mapping", str(bare), code=1)
    assert "no status column" in stderr and "1 without any now await payment" in stderr
    defaults = shop.write("m2.yaml", bare.read_text() + "defaults:\n  status: paid\n")
    stderr = imported(shop, "b.csv", header.replace("P1", "P2"), "2026-03-02T10:05",
                      "--mapping", str(defaults), code=1)
    assert "no status column" not in stderr and "no marketing consent" in stderr
    assert shop.scalar("SELECT status FROM orders WHERE id = 'P2'") == "paid"


def test_local_times_without_a_shop_timezone_are_said_to_be_read_as_utc(mailflow):
    mailflow.config.write_text("shop: {name: Boutique}\n")
    stderr = imported(mailflow, "o.csv", CANONICAL + "A-1,ana@example.com,Ana,L,yes,paid,"
                      "2026-03-02 10:00,,,10.00,EUR,Carte,,,S,Mug,1,10.00\n", "2026-03-02T10:05",
                      code=1)
    assert "no UTC offset and rules.yaml sets no shop.timezone" in stderr
    imported(mailflow, "o2.csv", CANONICAL + "A-2,ana@example.com,Ana,L,yes,paid,"
             "2026-03-02T10:00+01:00,,,10.00,EUR,Carte,,,S,Mug,1,10.00\n", "2026-03-02T10:05")


# -- 11. the default rules: what one customer receives --------------------------------------


def test_a_card_order_gets_a_confirmation_then_a_welcome_and_nothing_more(shop):
    imported(shop, "o.csv", CANONICAL + "A-1,ana@example.com,Ana,Lopez,yes,paid,"
             "2026-03-02 10:00,,,42.00,EUR,Carte,,,MUG,Mug,1,42.00\n", "2026-03-02T10:01")
    assert decisions(shop, "2026-03-02T10:02") == {"A-1": [
        ("order-confirmation", "would_send"), ("payment-received", "skipped:paid_when_placed")]}
    shop("send", "--now", "2026-03-02T10:02")
    assert decisions(shop, "2026-03-02T11:01") == {"ana@example.com": [("welcome", "would_send")]}


def test_a_visitor_known_only_from_a_cart_gets_the_reminder_not_a_welcome(shop):
    imported(shop, "o.csv", CANONICAL + "X-1,zed@example.com,Z,Z,yes,paid,2026-03-02 08:00,,,"
             "9.00,EUR,Carte,,,S,Mug,1,9.00\n", "2026-03-02T10:00")
    imported(shop, "c.csv", "cart_id,email,accepts_marketing,created_at,updated_at,total,"
             "line_name,line_quantity,line_price\nC1,lou@example.com,yes,2026-03-02 10:00,"
             "2026-03-02 10:00,30.00,Mug,1,30.00\n", "2026-03-02T10:01")
    table = decisions(shop, "2026-03-02T10:50")
    assert "lou@example.com" not in table  # no welcome
    assert table["C1@2026-03-02T09:00:00Z"] == [("abandoned-cart", "would_send")]


def test_one_marketing_email_a_day_whatever_the_rule(shop):
    imported(shop, "o.csv", CANONICAL + "A-1,ana@example.com,Ana,L,yes,paid,2026-03-02 10:00,"
             "2026-03-02 10:00,,42.00,EUR,Carte,,,MUG,Mug,1,42.00\n", "2026-03-02T10:01")
    shop("send", "--now", "2026-03-02T11:05")  # the confirmation, then the welcome
    imported(shop, "c.csv", "cart_id,email,accepts_marketing,created_at,updated_at,total,"
             "line_name,line_quantity,line_price\nC1,ana@example.com,yes,2026-03-02 14:00,"
             "2026-03-02 14:00,30.00,Mug,1,30.00\n", "2026-03-02T14:01")
    table = decisions(shop, "2026-03-02T14:30")
    assert table["C1@2026-03-02T13:00:00Z"] == [("abandoned-cart", "skipped:marketing_gap")]
