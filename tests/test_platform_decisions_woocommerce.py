"""Issue 10, WooCommerce REST `wc/v3` (`GET /wp-json/wc/v3/orders?status=any`): which
e-mails each order gets.

Same shop, people and moments as the Shopify tests. The site runs Mailchimp for
WooCommerce (its `mailchimp_woocommerce_is_subscribed` order meta says yes or no on every
checkout; a phone order typed in the back office or a draft has none: unknown), Advanced Shipment
Tracking (`_wc_shipment_tracking_items`, and its `partial-shipped` and `delivered`
statuses) and the block checkout (a `checkout-draft` is an abandoned cart).
Orders: tests/fixtures/decisions/SOURCES.md.
"""

from __future__ import annotations

import pytest
from decisions_shop import Shop

SEND, SKIP, DEFER = "would_send", "skipped", "deferred"


@pytest.fixture
def shop(mailflow, monkeypatch) -> Shop:
    return Shop(mailflow, monkeypatch)


def test_woocommerce_decisions_order_by_order(shop):
    result = shop.import_("woocommerce_orders_1.json", now="2026-05-12T10:00")
    assert "consent" not in result.stderr
    assert [shop.consent(e) for e in ("lea.dubois@example.fr", "helene.mercier@example.fr",
                                      "benoit.gerard@example.fr")] == [1, 0, None]

    orders, people = shop.decide("2026-05-12T10:00")
    assert orders == {
        "2099": [("order-confirmation", SEND, None),
                 ("payment-received", SKIP, "paid_when_placed"),
                 ("shipped", SEND, None)],
        # processing, paid by card (Stripe)
        "2101": [("order-confirmation", SEND, None),
                 ("payment-received", SKIP, "paid_when_placed")],
        # cod: WooCommerce puts it in "processing" at once, with a date_paid, unpaid
        "2102": [("order-confirmation", SEND, None),
                 ("payment-pending", SKIP, "pay_on_delivery")],
        # on-hold: bacs (transfer), and cheque (a phone order, consent unknown)
        "2103": [("order-confirmation", SEND, None), ("payment-pending", SEND, None)],
        "2104": [("order-confirmation", SEND, None), ("payment-pending", SEND, None)],
        # an unpaid transfer order cancelled by the shop
        "2105": [("order-cancelled", SEND, None),
                 ("order-confirmation", SKIP, "order_cancelled")],
        # refunded: the refund e-mail
        "2106": [("order-confirmation", SKIP, "order_cancelled"),
                 ("payment-received", SKIP, "paid_when_placed"), ("refund", SEND, None)],
        # partial-shipped (AST), its first parcel tracked
        "2107": [("order-confirmation", SEND, None),
                 ("payment-received", SKIP, "paid_when_placed"),
                 ("shipped", SEND, None)],
        # completed (PayPal), tracked: shipped, not known to be delivered
        "2108": [("order-confirmation", SEND, None),
                 ("payment-received", SKIP, "paid_when_placed"),
                 ("shipped", SEND, None)],
        # delivered (AST), completed the day before
        "2110": [("delivered", SEND, None), ("order-confirmation", SEND, None),
                 ("payment-received", SKIP, "paid_when_placed"),
                 ("shipped", SKIP, "superseded")],
        # pending: the card payment was not completed
        "2111": [("order-confirmation", DEFER, "awaiting_payment"),
                 ("payment-pending", SKIP, "online_payment")],
        # created in the back office for a customer without e-mail
        "2112": [("order-confirmation", SKIP, "missing_email"),
                 ("payment-received", SKIP, "missing_email")],
        # 2050, January: nothing
    }
    assert people == {
        # Maëlle left at the payment step (a checkout draft): her cart reminder, no welcome
        "maelle.robin@example.fr": [("abandoned-cart", SEND, None)],
        "amelie.roussel@example.fr": [("welcome", SEND, None)],
        "benoit.gerard@example.fr": [("welcome", SEND, None)],  # unknown: shop.consent optional
        "chloe.lambert@example.fr": [("welcome", SKIP, "no_consent")],
        "elodie.faure@example.fr": [("welcome", SEND, None)],
        "francois.lefevre@example.fr": [("welcome", SEND, None)],
        "helene.mercier@example.fr": [("welcome", SKIP, "no_consent")],
        "julien.moreau@example.fr": [("welcome", SEND, None)],
        "theo.martin@example.fr": [("welcome", SEND, None)],
    }

    assert shop.decide("2026-05-12T11:30") == (
        {"2111": [("order-confirmation", DEFER, "awaiting_payment")]},
        {"lea.dubois@example.fr": [("welcome", SEND, None)],
         "noemie.chevalier@example.fr": [("welcome", SEND, None)]})

    # the next morning's pull (modified_after): 2103's transfer arrived, now processing
    shop.import_("woocommerce_orders_2.json", now="2026-05-13T09:30")
    assert shop.decide("2026-05-13T09:30") == (
        {"2103": [("payment-received", SEND, None)],
         "2111": [("order-confirmation", DEFER, "awaiting_payment")]}, {})

    assert shop.decide("2026-05-19T10:00") == (
        {"2110": [("review-request", SEND, None)],
         "2111": [("order-confirmation", DEFER, "awaiting_payment")]}, {})

    # "completed" is shipped, not delivered: reviews 4 + 7 days after shipping
    assert shop.decide("2026-05-23T10:00") == ({
        "2099": [("review-request", SEND, None)],
        "2111": [("order-confirmation", DEFER, "awaiting_payment")],  # 11 days: not 14
        "2107": [("review-request", SKIP, "no_consent")],
        "2108": [("review-request", SKIP, "marketing_gap")],
    }, {})


def test_woocommerce_a_card_payment_completed_later_gets_its_confirmation_only(shop):
    shop.import_("woocommerce_orders_1.json", now="2026-05-12T10:00")
    shop.decide("2026-05-12T10:00")
    # 13:58: Noémie paid 2111 from the "pay for this order" link; it is processing
    shop.import_("woocommerce_orders_stripe_paid.json", now="2026-05-12T14:00")
    orders, _ = shop.decide("2026-05-12T14:00")
    assert orders == {"2111": [("order-confirmation", SEND, None),
                               ("payment-received", SKIP, "online_payment")]}


def test_woocommerce_a_sepa_debit_that_takes_three_days_still_gets_its_confirmation(shop):
    shop.import_("woocommerce_sepa_1.json", now="2026-05-12T10:00")  # on-hold until the debit
    assert shop.decide("2026-05-12T10:00")[0] == {
        "2114": [("order-confirmation", DEFER, "awaiting_payment"),
                 ("payment-pending", SKIP, "online_payment")]}
    assert shop.decide("2026-05-14T10:00")[0] == {
        "2114": [("order-confirmation", DEFER, "awaiting_payment")]}
    # Friday 10:12: the debit succeeded, the order is processing
    shop.import_("woocommerce_sepa_2.json", now="2026-05-15T10:30")
    [confirmation, received] = shop.decide("2026-05-15T10:30")[0]["2114"]
    assert confirmation == ("order-confirmation", SEND, None)
    assert received[:2] == ("payment-received", SKIP)


def test_woocommerce_export_without_consent_meta_says_so(shop):
    result = shop.import_("woocommerce_orders_no_consent.json", now="2026-05-12T10:00", exit_code=1)
    assert result.stderr.splitlines() == [
        f"{shop.folder / 'exports' / 'woocommerce_orders_no_consent.json'}: no marketing consent"
        " for any of its 14 records (no column such as 'Accepts Email Marketing', no newsletter"
        " plugin's order meta, or every one empty): with shop.consent: optional, marketing"
        " e-mails go to them as to customers who agreed; set shop.consent: required, or import"
        " a customers export that says"]
    # as it says: Hélène, who refused on the other site, would get the welcome here
    _, people = shop.decide("2026-05-12T10:00")
    assert people["helene.mercier@example.fr"] == [("welcome", SEND, None)]


def test_woocommerce_cod_confirmation_says_paid_on_delivery(shop):
    shop.import_("woocommerce_orders_1.json", now="2026-05-12T10:00")
    cod = shop.preview("order-confirmation", "2102")
    assert "Vous réglerez 41,40 € à la livraison." in cod
    assert "IBAN" not in cod and "virement" not in cod
    shipped = shop.preview("shipped", "2108")
    assert "Numéro de suivi : 6A21000002108" in shipped


def test_woocommerce_confirmation_shows_the_prices_the_customer_saw(shop):
    shop.import_("woocommerce_orders_1.json", now="2026-05-12T10:00")
    confirmation = shop.preview("order-confirmation", "2101")
    assert "2 × 11,50 €" in confirmation and "1 × 24,50 €" in confirmation
    # the REST order gives 19.17 + 3.83 tax, 20.42 + 4.08, shipping 4.08 + 0.82: the shop's
    # prices include VAT, so the totals are those of the checkout, the VAT within them
    assert "Sous-total\n47,50 €\n\nLivraison\n4,90 €\n\nTotal\n52,40 €\n\ndont TVA 8,73 €" \
        in confirmation
    assert "\nTVA\n" not in confirmation
    assert shop.mf.query("SELECT subtotal, shipping, tax, discount, total FROM orders"
                         " WHERE id = '2101'") == [{"subtotal": "47.50", "shipping": "4.90",
                                                   "tax": "8.73", "discount": "0.00",
                                                   "total": "52.40"}]
    assert [(r["quantity"], r["price"]) for r in shop.mf.query(
        "SELECT quantity, price FROM order_lines WHERE order_id = '2101' ORDER BY position")] == [
        (2, "11.50"), (1, "24.50")]
    # every order of the file: (subtotal + subtotal_tax) / quantity, to the cent
    assert {(r["sku"], r["price"]) for r in shop.mf.query("SELECT sku, price FROM order_lines")} \
        == {("SAV-OLV", "11.50"), ("CRM-KAR", "24.50"), ("COF-LAV", "30.00"),
            ("HUI-MAS", "35.50"), ("BOU-FIG", "19.90"), ("POR-GAL", "8.90"), ("BAU-LEV", "6.50")}
    shipped = shop.preview("shipped", "2108")
    assert "Sous-total\n37,50 €\n\nLivraison\n4,90 €\n\nTotal\n42,40 €\n\ndont TVA 7,07 €" \
        in shipped


def test_woocommerce_a_coupon_is_shown_with_its_vat_too(shop):
    # Léa's order with the BIENVENUE coupon (5 € off, VAT included): the API gives
    # discount_total 4.17 + discount_tax 0.83
    shop.import_("woocommerce_orders_coupon.json", now="2026-05-12T10:00")
    confirmation = shop.preview("order-confirmation", "2115")
    assert "2 × 11,50 €" in confirmation and "1 × 24,50 €" in confirmation
    assert ("Sous-total\n47,50 €\n\nRemise\n−5,00 €\n\nLivraison\n4,90 €\n\nTotal\n47,40 €"
            "\n\ndont TVA 7,90 €") in confirmation
    assert shop.mf.query("SELECT subtotal, shipping, tax, discount, total FROM orders") == [
        {"subtotal": "47.50", "shipping": "4.90", "tax": "7.90", "discount": "5.00",
         "total": "47.40"}]


def test_woocommerce_prices_without_tax_keep_their_figures_and_add_the_tax(shop):
    # the official REST example: a US shop (prices_include_tax: false), tax added at checkout
    path = shop.mf.fixture("woocommerce/woocommerce_rest_v3_orders_list_example.json")
    result = shop.mf("import", path, "--now", "2026-05-12T10:00")
    assert result.exit_code == 1 and "no marketing consent" in result.stderr  # and only that
    assert len(result.stderr.splitlines()) == 1
    assert shop.mf.query("SELECT subtotal, shipping, tax, discount, total FROM orders"
                         " WHERE id = '727'") == [{"subtotal": "18.00", "shipping": "10.00",
                                                  "tax": "1.35", "discount": "0.00",
                                                  "total": "29.35"}]
    result = shop.mf("preview", "order-confirmation", "--order", "727", "--locale", "en",
                     "--format", "text")
    assert result.exit_code == 0, result.stderr
    assert "2 × $3.00" in result.stdout and "1 × $12.00" in result.stdout
    assert "Subtotal\n$18.00\n\nShipping\n$10.00\n\nTax\n$1.35\n\nTotal\n$29.35" \
        in result.stdout
    assert "Including tax" not in result.stdout


def test_woocommerce_partial_shipped_does_not_say_the_whole_order_left(shop):
    # Advanced Shipment Tracking's partial-shipped: the REST order does not say which items
    # the parcel holds, so the e-mail lists the order without claiming either
    shop.import_("woocommerce_orders_1.json", now="2026-05-12T10:00")
    shipped = shop.preview("shipped", "2107")
    assert "Une partie de votre commande est en route ; le reste suivra" in shipped
    assert "Votre commande est en route" not in shipped
    assert "Dans ce colis" not in shipped and "À suivre" not in shipped
    summary = shipped.split("Récapitulatif")[1].split("Total")[0]
    assert all(name in summary for name in (
        "Savon à l'huile d'olive", "Porte-savon en galet", "Bougie parfumée figue & cèdre"))
    completed = shop.preview("shipped", "2108")
    assert "Votre commande est en route !" in completed and "Une partie" not in completed


def test_woocommerce_a_refund_of_one_item_is_a_partial_refund_email(shop):
    shop.import_("woocommerce_orders_1.json", now="2026-05-12T10:00")
    shop.decide("2026-05-12T10:00")
    # Thursday: 2108 (completed) gets a refund of 6.50 (`refunds[].total` -6.50) and stays
    # completed
    shop.import_("woocommerce_orders_refund.json", now="2026-05-14T11:30")
    orders, _ = shop.decide("2026-05-14T11:30")
    assert orders == {"2108": [("refund", SEND, None)],
                      "2111": [("order-confirmation", DEFER, "awaiting_payment")]}
    text = shop.preview("refund", "2108")
    assert "Nous vous avons remboursé 6,50 € sur votre commande n° 2108" in text
    assert shop.mf.scalar("SELECT status FROM orders WHERE id = '2108'") == "shipped"


def test_woocommerce_a_failed_payment_is_told_unless_the_customer_ordered_again(shop):
    shop.import_("woocommerce_orders_1.json", now="2026-05-12T10:00")
    shop.decide("2026-05-12T10:00")
    # 2111's Stripe payment failed; an hour after the export said so, Noémie is told
    shop.import_("woocommerce_orders_failed.json", now="2026-05-12T10:30")
    assert shop.decide("2026-05-12T11:00")[0] == {
        "2111": [("order-confirmation", DEFER, "awaiting_payment")]}
    assert shop.decide("2026-05-12T11:31")[0] == {
        "2111": [("order-confirmation", DEFER, "awaiting_payment"),
                 ("payment-failed", SEND, None)]}
    text = shop.preview("payment-failed", "2111")
    assert text.startswith("Le paiement n'a pas abouti\n\nBonjour Noémie,\n")
    assert "votre commande n'est donc pas validée" in text


def test_woocommerce_no_failed_payment_email_after_a_new_order_that_went_through(shop):
    shop.import_("woocommerce_orders_1.json", now="2026-05-12T10:00")
    shop.decide("2026-05-12T10:00")
    # she tried again at 09:52 with another order (2114), paid
    shop.import_("woocommerce_orders_failed_retried.json", now="2026-05-12T10:30")
    orders, _ = shop.decide("2026-05-12T11:31")
    assert orders["2111"] == [("order-confirmation", DEFER, "awaiting_payment"),
                              ("payment-failed", SKIP, "payment_recovered")]
