"""Issue 10, Shopify REST Admin JSON (`{"orders": [...]}`): which e-mails each order gets.

Same shop and moments as test_platform_decisions_shopify.py; the JSON also says what the
CSV cannot: tracking, a parcel delivered or waiting at a pickup point (`shipment_status`),
an online payment still under way. Orders: tests/fixtures/decisions/SOURCES.md.
"""

from __future__ import annotations

import email
from email import policy

import pytest
from decisions_shop import Shop

SEND, SKIP, DEFER = "would_send", "skipped", "deferred"


@pytest.fixture
def shop(mailflow, monkeypatch) -> Shop:
    return Shop(mailflow, monkeypatch)


def test_shopify_json_decisions_order_by_order(shop):
    result = shop.import_("shopify_orders_1.json", now="2026-05-12T10:00")
    assert "consent" not in result.stderr

    orders, people = shop.decide("2026-05-12T10:00")
    assert orders == {
        "#1299": [("order-confirmation", SEND, None), ("shipped", SEND, None)],
        # card, unfulfilled
        "#1301": [("order-confirmation", SEND, None),
                  ("payment-received", SKIP, "paid_when_placed")],
        # "Cash on Delivery (COD)", pending
        "#1302": [("order-confirmation", SEND, None),
                  ("payment-pending", SKIP, "pay_on_delivery")],
        # "Bank Deposit" and a manual method "Chèque", pending
        "#1303": [("order-confirmation", SEND, None), ("payment-pending", SEND, None)],
        "#1304": [("order-confirmation", SEND, None), ("payment-pending", SEND, None)],
        # a card order cancelled at the customer's request: refunded as it was cancelled, so
        # the cancellation e-mail says the money comes back and no refund e-mail repeats it
        "#1305": [("order-cancelled", SEND, None),
                  ("order-confirmation", SKIP, "order_cancelled"),
                  ("refund", SKIP, "refunded_with_cancellation")],
        # refunded, never shipped (out of stock): the refund e-mail
        "#1306": [("order-confirmation", SKIP, "order_cancelled"), ("refund", SEND, None)],
        # partial: one parcel of two items in transit, one item to follow
        "#1307": [("order-confirmation", SEND, None), ("shipped", SEND, None)],
        # fulfilled, out for delivery
        "#1308": [("order-confirmation", SEND, None), ("shipped", SEND, None)],
        # staff draft order, no e-mail
        "#1309": [("order-confirmation", SKIP, "missing_email"),
                  ("payment-received", SKIP, "missing_email")],
        # shipped on the 10th, delivered on the 11th (Chronopost says so): the delivery is
        # the news; "on its way" for a parcel already there would be noise
        "#1310": [("delivered", SEND, None), ("order-confirmation", SEND, None),
                  ("shipped", SKIP, "superseded")],
        # Mondial Relay: waiting at the pickup point since this morning
        "#1311": [("order-confirmation", SEND, None), ("pickup-ready", SEND, None),
                  ("shipped", SKIP, "superseded")],
        # PayPal has not confirmed the payment: no confirmation yet, no payment instructions
        "#1312": [("order-confirmation", DEFER, "awaiting_payment"),
                  ("payment-pending", SKIP, "online_payment")],
        # #1250, January: nothing
    }
    assert people == {
        "amelie.roussel@example.fr": [("welcome", SEND, None)],
        "benoit.gerard@example.fr": [("welcome", SKIP, "no_consent")],
        "chloe.lambert@example.fr": [("welcome", SKIP, "no_consent")],
        "elodie.faure@example.fr": [("welcome", SEND, None)],
        "francois.lefevre@example.fr": [("welcome", SEND, None)],
        "helene.mercier@example.fr": [("welcome", SKIP, "no_consent")],
        "julien.moreau@example.fr": [("welcome", SEND, None)],
        "sebastien.bonnet@example.fr": [("welcome", SEND, None)],
        "theo.martin@example.fr": [("welcome", SEND, None)],
    }

    assert shop.decide("2026-05-12T11:30") == (
        {"#1312": [("order-confirmation", DEFER, "awaiting_payment")]},
        {"lea.dubois@example.fr": [("welcome", SEND, None)],
         "noemie.chevalier@example.fr": [("welcome", SKIP, "no_consent")]})

    # the next morning's API pull (orders updated since): #1303's transfer arrived
    shop.import_("shopify_orders_2.json", now="2026-05-13T09:30")
    assert shop.decide("2026-05-13T09:30") == (
        {"#1303": [("payment-received", SEND, None)],
         "#1312": [("order-confirmation", DEFER, "awaiting_payment")]}, {})

    # a week later: the review request of the delivered order; PayPal never confirmed #1312
    assert shop.decide("2026-05-19T10:00") == (
        {"#1310": [("review-request", SEND, None)],
         "#1312": [("order-confirmation", DEFER, "awaiting_payment")]}, {})

    # the others were never reported delivered: 4 days after shipping + 7
    assert shop.decide("2026-05-23T10:00") == ({
        "#1299": [("review-request", SEND, None)],
        "#1312": [("order-confirmation", DEFER, "awaiting_payment")],  # 11 days: not 14
        "#1307": [("review-request", SKIP, "no_consent")],
        "#1308": [("review-request", SKIP, "marketing_gap")],
        "#1311": [("review-request", SEND, None)],
    }, {})


def test_shopify_json_an_online_payment_that_goes_through_later_gets_its_confirmation_only(shop):
    shop.import_("shopify_orders_1.json", now="2026-05-12T10:00")
    shop.decide("2026-05-12T10:00")
    # 14:00: PayPal confirmed #1312's payment
    shop.import_("shopify_orders_paypal_paid.json", now="2026-05-12T14:00")
    orders, _ = shop.decide("2026-05-12T14:00")
    assert orders == {"#1312": [("order-confirmation", SEND, None),
                                ("payment-received", SKIP, "online_payment")]}


def test_shopify_json_cod_confirmation_says_paid_on_delivery(shop):
    shop.import_("shopify_orders_1.json", now="2026-05-12T10:00")
    cod = shop.preview("order-confirmation", "#1302")
    assert "Vous réglerez 41,40 € à la livraison." in cod
    assert "IBAN" not in cod and "virement" not in cod


def test_shopify_json_a_cancelled_card_order_is_told_the_money_comes_back(shop):
    # a Shopify REST order has no payment time: its refunded status says the money was taken
    shop.import_("shopify_orders_1.json", now="2026-05-12T10:00")
    cancelled = shop.preview("order-cancelled", "#1305")
    assert "a été annulée le 12 mai 2026" in cancelled
    assert "vous sera remboursé" in cancelled


def test_shopify_json_shipping_texts(shop):
    shop.import_("shopify_orders_1.json", now="2026-05-12T10:00")
    shipped = shop.preview("shipped", "#1308")
    assert "Numéro de suivi : 6A21000001308" in shipped
    assert "https://www.laposte.fr/outils/suivre-vos-envois?code=6A21000001308" in shipped
    pickup = shop.preview("pickup-ready", "#1311")
    assert "Sébastien" in pickup and "48213311" in pickup


def _between(text: str, start: str, end: str) -> str:
    """The part of `text` under the heading `start`, up to `end`."""
    assert start in text and end in text.split(start, 1)[1], (start, end, text)
    return text.split(start, 1)[1].split(end, 1)[0]


def test_shopify_json_a_partial_shipment_does_not_say_the_rest_has_left(shop):
    shop.import_("shopify_orders_1.json", now="2026-05-12T10:00")
    shipped = shop.preview("shipped", "#1307")
    assert "Bougie parfumée figue & cèdre" not in shipped.split("Récapitulatif")[1].split("Total")[0]
    # the parcel of the 11th holds the soap and the soap dish; the candle follows
    assert "Une partie de votre commande est en route ; le reste suivra" in shipped
    assert "Votre commande est en route" not in shipped
    assert "Un colis de votre commande #1307 a été expédié le 11 mai 2026 avec Colissimo." in shipped
    parcel = _between(shipped, "Dans ce colis", "À suivre")
    assert "Savon à l'huile d'olive" in parcel and "Porte-savon en galet" in parcel
    assert "Bougie" not in parcel
    rest = _between(shipped, "À suivre", "Récapitulatif")
    assert "Bougie parfumée figue & cèdre\n\n1 × 19,90 €" in rest
    assert "Savon" not in rest and "galet" not in rest
    # the totals are the whole order's
    assert "Total\n45,20 €" in _between(shipped, "Récapitulatif", "Livraison\n\nAdresse")

    english = shop.mf("preview", "shipped", "--order", "#1307", "--locale", "en", "--format",
                      "eml")
    assert english.exit_code == 0, english.stderr
    message = email.message_from_string(english.stdout, policy=policy.default)
    assert message["Subject"] == "Part of order #1307 has shipped"
    text = message.get_body(("plain",)).get_content()
    assert "Part of your order is on its way; the rest will follow" in text
    assert "Bougie" not in _between(text, "In this parcel", "Still to come")
    assert "Bougie parfumée figue & cèdre" in _between(text, "Still to come", "Order summary")


def test_shopify_json_a_fully_shipped_order_says_it_all_left(shop):
    shop.import_("shopify_orders_1.json", now="2026-05-12T10:00")
    assert shop.mf.query("SELECT name, shipped FROM order_lines WHERE order_id = '#1308'"
                         " ORDER BY position") == [
        {"name": "Crème mains karité", "shipped": 1}, {"name": "Baume à lèvres miel", "shipped": 1}]
    shipped = shop.preview("shipped", "#1308")
    assert "Votre commande est en route !" in shipped
    assert "Votre commande #1308 a été expédiée le 11 mai 2026 avec Colissimo." in shipped
    assert "Une partie" not in shipped and "À suivre" not in shipped
    assert "Baume à lèvres miel" in _between(shipped, "Récapitulatif", "Total")


def test_shopify_json_the_rest_of_a_partial_order_ships_without_a_second_shipped_email(shop):
    shop.import_("shopify_orders_1.json", now="2026-05-12T10:00")
    orders, _ = shop.decide("2026-05-12T10:00")
    assert orders["#1307"] == [("order-confirmation", SEND, None), ("shipped", SEND, None)]
    # Thursday 11:20: the candle leaves in a second parcel; the first one was delivered
    shop.import_("shopify_orders_3.json", now="2026-05-14T12:00")
    assert [r["shipped"] for r in shop.mf.query(
        "SELECT shipped FROM order_lines WHERE order_id = '#1307' ORDER BY position")] == [1, 1, 1]
    assert shop.mf.scalar("SELECT status FROM orders WHERE id = '#1307'") == "shipped"
    orders, _ = shop.decide("2026-05-14T12:00")
    assert "#1307" not in orders  # one "shipped" e-mail per order: the first parcel's
    assert [r["key"] for r in shop.mf.query(
        "SELECT key FROM outbox WHERE subject_id = '#1307' ORDER BY key")] == [
        "order-confirmation:order:#1307", "shipped:order:#1307:shipped"]


def test_shopify_json_a_fulfillment_of_part_of_a_stored_order_says_what_left(shop):
    shop.import_("shopify_orders_1.json", now="2026-05-12T10:00")
    shop.decide("2026-05-12T10:00")
    # 14:30, the fulfillment webhook of Léa's order: the hand cream leaves, the soaps wait
    shop.import_("shopify_fulfillment_1301.json", now="2026-05-12T14:45")
    orders, _ = shop.decide("2026-05-12T14:45")
    assert orders == {"#1301": [("shipped", SEND, None)],
                      "#1312": [("order-confirmation", DEFER, "awaiting_payment")]}
    shipped = shop.preview("shipped", "#1301")
    assert "Une partie de votre commande est en route ; le reste suivra" in shipped
    assert "Crème mains karité" in _between(shipped, "Dans ce colis", "À suivre")
    assert "Savon à l'huile d'olive\n\n2 × 11,50 €" in _between(shipped, "À suivre",
                                                                  "Récapitulatif")


def test_shopify_json_a_partial_refund_is_dated_by_the_refund_and_gives_its_amount(shop):
    shop.import_("shopify_orders_1.json", now="2026-05-12T10:00")
    shop.decide("2026-05-12T10:00")
    shop.import_("shopify_orders_refund.json", now="2026-05-14T10:30")
    assert shop.mf.query("SELECT seq, amount, at, source FROM order_refunds"
                         " WHERE order_id = '#1308'") == [
        {"seq": 1, "amount": "6.50", "at": "2026-05-14T08:00:00Z", "source": "export"}]
    # the failed transaction gave nothing back
    assert shop.mf.scalar("SELECT refunded_amount FROM orders WHERE id = '#1308'") == "6.50"
    orders, _ = shop.decide("2026-05-14T10:30")
    assert orders["#1308"] == [("refund", SEND, None)]
    text = shop.preview("refund", "#1308")
    assert "Nous vous avons remboursé 6,50 € sur votre commande #1308" in text
