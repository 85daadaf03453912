"""Issue 10, Shopify: which e-mails a shop gets from its real exports, order by order.

The shop installs mailflow (`mailflow init`, default rules) on Tuesday 12 May 2026 at 10:00
(Paris) and imports the last days of orders; later exports and cron ticks follow. Each
table lists every decision of one moment (see tests/decisions_shop.py); the orders and
what they stand for are described in tests/fixtures/decisions/SOURCES.md.
"""

from __future__ import annotations

import pytest
from decisions_shop import Shop

SEND, SKIP = "would_send", "skipped"


@pytest.fixture
def shop(mailflow, monkeypatch) -> Shop:
    return Shop(mailflow, monkeypatch)


def test_shopify_orders_csv_decisions_order_by_order(shop):
    result = shop.import_("shopify_orders_export_1.csv", now="2026-05-12T10:00")
    assert "consent" not in result.stderr  # the export says yes/no for every customer

    orders, customers = shop.decide("2026-05-12T10:00")
    assert orders == {
        # Julien's first order, two days ago, shipped the same afternoon
        "#1199": [("order-confirmation", SEND, None),
                  ("payment-received", SKIP, "paid_when_placed"),
                  ("shipped", SEND, None)],
        # paid by card this morning, not shipped yet
        "#1201": [("order-confirmation", SEND, None),
                  ("payment-received", SKIP, "paid_when_placed")],
        # cash on delivery: confirmed, nothing to pay beforehand
        "#1202": [("order-confirmation", SEND, None),
                  ("payment-pending", SKIP, "pay_on_delivery")],
        # bank deposit, and a custom manual method "Chèque": how to pay
        "#1203": [("order-confirmation", SEND, None),
                  ("payment-pending", SEND, None)],
        "#1204": [("order-confirmation", SEND, None),
                  ("payment-pending", SEND, None)],
        # unpaid, cancelled (voided) this morning
        "#1205": [("order-cancelled", SEND, None),
                  ("order-confirmation", SKIP, "order_cancelled")],
        # paid, refunded before shipping: the refund, with its amount
        "#1206": [("order-confirmation", SKIP, "order_cancelled"),
                  ("payment-received", SKIP, "paid_when_placed"),
                  ("refund", SEND, None)],
        # partially fulfilled: the first parcel left
        "#1207": [("order-confirmation", SEND, None),
                  ("payment-received", SKIP, "paid_when_placed"),
                  ("shipped", SEND, None)],
        # fulfilled (PayPal)
        "#1208": [("order-confirmation", SEND, None),
                  ("payment-received", SKIP, "paid_when_placed"),
                  ("shipped", SEND, None)],
        # a draft order typed in by staff for a customer without e-mail
        "#1209": [("order-confirmation", SKIP, "missing_email"),
                  ("payment-received", SKIP, "missing_email")],
        # #1150, January: nothing at all
    }
    assert customers == {
        "amelie.roussel@example.fr": [("welcome", SEND, None)],
        "benoit.gerard@example.fr": [("welcome", SKIP, "no_consent")],
        "chloe.lambert@example.fr": [("welcome", SKIP, "no_consent")],
        "francois.lefevre@example.fr": [("welcome", SEND, None)],
        "helene.mercier@example.fr": [("welcome", SKIP, "no_consent")],
        "julien.moreau@example.fr": [("welcome", SEND, None)],
        "theo.martin@example.fr": [("welcome", SEND, None)],
        # Léa first ordered at 09:12: her welcome waits until 10:12
    }

    # an hour and a half later: Léa's welcome, and nothing else
    assert shop.decide("2026-05-12T11:30") == (
        {}, {"lea.dubois@example.fr": [("welcome", SEND, None)]})

    # the next morning's export: François's transfer arrived; nothing else changed
    shop.import_("shopify_orders_export_2.csv", now="2026-05-13T09:30")
    assert shop.decide("2026-05-13T09:30") == (
        {"#1203": [("payment-received", SEND, None)]}, {})

    # a week later: no review yet, the CSV never says delivered (assumed 4 days after shipping)
    assert shop.decide("2026-05-19T10:00") == ({}, {})

    # eleven days after: review requests for what shipped, at most one a day per customer
    assert shop.decide("2026-05-23T10:00") == ({
        "#1199": [("review-request", SEND, None)],
        "#1207": [("review-request", SKIP, "no_consent")],
        "#1208": [("review-request", SKIP, "marketing_gap")],  # Julien's #1199 went first
    }, {})


def test_shopify_cod_confirmation_says_paid_on_delivery_and_gives_no_bank_details(shop):
    shop.import_("shopify_orders_export_1.csv", now="2026-05-12T10:00")
    cod = shop.preview("order-confirmation", "#1202")
    assert "Vous réglerez 41,40 € à la livraison." in cod
    assert "IBAN" not in cod and "virement" not in cod
    transfer = shop.preview("payment-pending", "#1203")
    assert "IBAN : FR76" in transfer and "Montant à régler : 74,90 €" in transfer


def test_shopify_customers_exports_keep_refusals(shop):
    shop.import_("shopify_orders_export_1.csv", now="2026-05-12T10:00")
    shop.decide("2026-05-12T10:00")
    # 10:30, Admin → Customers → Export: Léa unticked the newsletter in her account since;
    # Hélène's cell is empty; Inès signed up for the newsletter and never ordered
    result = shop.import_("shopify_customers_export.csv", "--kind", "customers",
                          now="2026-05-12T10:30")
    assert "consent" not in result.stderr
    assert {e: shop.consent(e) for e in (
        "lea.dubois@example.fr", "helene.mercier@example.fr", "francois.lefevre@example.fr",
        "ines.garnier@example.fr")} == {
        "lea.dubois@example.fr": 0, "helene.mercier@example.fr": 0,
        "francois.lefevre@example.fr": 1, "ines.garnier@example.fr": 1}
    # Léa's welcome is due now: she refused since. Inès: Shopify's export has no sign-up
    # date, so no welcome (mailflow cannot tell a new subscriber from an old one)
    assert shop.decide("2026-05-12T11:30") == (
        {}, {"lea.dubois@example.fr": [("welcome", SKIP, "no_consent")]})

    # the next orders export still says "yes" on Léa's order of the 12th: older than her refusal
    shop.import_("shopify_orders_export_2.csv", now="2026-05-13T09:30")
    assert shop.consent("lea.dubois@example.fr") == 0
    assert shop.decide("2026-05-13T09:30") == ({"#1203": [("payment-received", SEND, None)]}, {})

    # an export of the older vintage ("Accepts Marketing"): Julien asked for no more newsletters
    shop.import_("shopify_customers_export_accepts_marketing.csv", "--kind", "customers",
                 now="2026-05-15T09:00")
    assert shop.consent("julien.moreau@example.fr") == 0
    assert shop.decide("2026-05-23T10:00") == ({
        "#1199": [("review-request", SKIP, "no_consent")],
        "#1207": [("review-request", SKIP, "no_consent")],
        "#1208": [("review-request", SKIP, "no_consent")],
    }, {})


def test_shopify_a_customer_new_in_the_customers_export_gets_the_welcome(shop):
    shop.import_("shopify_customers_export_earlier.csv", "--kind", "customers",
                 now="2026-05-11T09:00")
    shop.import_("shopify_orders_export_1.csv", now="2026-05-12T10:00")
    shop.decide("2026-05-12T10:00")
    shop.import_("shopify_customers_export.csv", "--kind", "customers", now="2026-05-12T10:30")
    assert shop.decide("2026-05-12T11:45")[1] == {
        "lea.dubois@example.fr": [("welcome", SKIP, "no_consent")],
        "ines.garnier@example.fr": [("welcome", SEND, None)],  # subscribed since yesterday
    }


def _between(text: str, start: str, end: str) -> str:
    """The part of `text` under the heading `start`, up to `end`."""
    assert start in text and end in text.split(start, 1)[1], (start, end, text)
    return text.split(start, 1)[1].split(end, 1)[0]


def test_shopify_csv_a_partial_shipment_lists_what_left_and_what_follows(shop):
    # #1207: `Fulfillment Status` partial, `Lineitem fulfillment status` fulfilled, fulfilled,
    # pending (the candle)
    shop.import_("shopify_orders_export_1.csv", now="2026-05-12T10:00")
    assert [(r["sku"], r["shipped"]) for r in shop.mf.query(
        "SELECT sku, shipped FROM order_lines WHERE order_id = '#1207' ORDER BY position")] == [
        ("SAV-OLV", 1), ("POR-GAL", 1), ("BOU-FIG", 0)]
    shipped = shop.preview("shipped", "#1207")
    assert "Une partie de votre commande est en route ; le reste suivra" in shipped
    assert "Votre commande est en route" not in shipped
    # Shopify leaves `Fulfilled at` empty on a partial order: no date
    assert "Un colis de votre commande #1207 a été expédié." in shipped
    parcel = _between(shipped, "Dans ce colis", "À suivre")
    assert "Savon à l'huile d'olive" in parcel and "Porte-savon en galet" in parcel
    assert "Bougie" not in parcel
    assert "Bougie parfumée figue & cèdre" in _between(shipped, "À suivre", "Récapitulatif")
    assert "Total\n45,20 €" in shipped

    everything = shop.preview("shipped", "#1208")  # fulfilled: every line
    assert "Votre commande est en route !" in everything and "Une partie" not in everything
    assert "Baume à lèvres miel" in _between(everything, "Récapitulatif", "Total")


def test_shopify_csv_the_rest_of_a_partial_order_ships_without_a_second_shipped_email(shop):
    shop.import_("shopify_orders_export_1.csv", now="2026-05-12T10:00")
    assert ("shipped", SEND, None) in shop.decide("2026-05-12T10:00")[0]["#1207"]
    # Thursday's export: #1207 fulfilled (the candle left at 11:20); #1203 paid since Wednesday
    shop.import_("shopify_orders_export_3.csv", now="2026-05-14T12:00")
    assert [r["shipped"] for r in shop.mf.query(
        "SELECT shipped FROM order_lines WHERE order_id = '#1207' ORDER BY position")] == [1, 1, 1]
    orders, _ = shop.decide("2026-05-14T12:00")
    assert orders == {"#1203": [("payment-received", SEND, None)]}
    assert shop.mf.scalar("SELECT count(*) FROM outbox WHERE rule = 'shipped'"
                          " AND subject_id = '#1207'") == 1


def test_shopify_csv_a_partial_refund_then_the_full_refund_each_get_their_email(shop):
    shop.import_("shopify_orders_export_1.csv", now="2026-05-12T10:00")
    shop.decide("2026-05-12T10:00")
    shop.import_("shopify_orders_export_3.csv", now="2026-05-14T12:00")
    shop.decide("2026-05-14T12:00")
    # Friday 15 May: Julien sent the lip balm back; #1208 is `partially_refunded`, `Refunded
    # Amount` 6.50; it stays shipped (the review request still follows)
    shop.import_("shopify_orders_export_4.csv", now="2026-05-15T09:00")
    assert shop.mf.scalar("SELECT status FROM orders WHERE id = '#1208'") == "shipped"
    assert shop.decide("2026-05-15T09:00") == ({"#1208": [("refund", SEND, None)]}, {})
    partial = shop.preview("refund", "#1208")
    assert partial.startswith("Nous vous avons remboursé une partie de votre commande\n")
    assert "Nous vous avons remboursé 6,50 € sur votre commande #1208 du 11 mai 2026" in partial
    assert "Le reste de votre commande n'est pas concerné." in partial
    eml = shop.mf("preview", "refund", "--order", "#1208", "--format", "eml").stdout
    assert "Subject: Remboursement partiel de votre commande #1208" in eml

    # the same export again sends nothing; the next one refunds the rest: a second e-mail
    shop.import_("shopify_orders_export_4.csv", now="2026-05-15T12:00")
    assert shop.decide("2026-05-15T12:00") == ({}, {})
    shop.import_("shopify_orders_export_5.csv", now="2026-05-16T09:00")
    assert shop.decide("2026-05-16T09:00") == ({"#1208": [("refund", SEND, None)]}, {})
    full = shop.preview("refund", "#1208")  # the rest of the money, and all of it
    assert "Nous avons remboursé votre commande #1208 du 11 mai 2026 : 35,90 €" in full
    assert "Avec les 6,50 € remboursés précédemment, 42,40 € vous ont été remboursés au total." \
        in full
    # a refunded order gets no review request
    assert shop.decide("2026-05-23T10:00")[0]["#1208"] == [
        ("review-request", SKIP, "order_cancelled")]


def test_shopify_csv_the_refund_email_of_a_full_refund_says_the_amount(shop):
    shop.import_("shopify_orders_export_1.csv", now="2026-05-12T10:00")
    refund = shop.preview("refund", "#1206")
    assert refund.startswith("Votre commande est remboursée\n\nBonjour Théo,\n")
    assert "Nous avons remboursé votre commande #1206 du 11 mai 2026 : 53,90 €" in refund
    assert "annulée" not in refund  # refunded, never cancelled
