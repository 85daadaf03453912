"""Issue 10, PrestaShop: an SQL-manager export (`;`, Windows-1252, CRLF, day-first dates,
decimal commas) imported with examples/prestashop/mapping.yaml: which e-mails each order
gets.

Same shop, people and moments as the Shopify tests. PrestaShop's standard states have no
partial shipment and no pickup point, the export no payment or shipping dates (every step
is dated when an import first sees it). Orders: tests/fixtures/decisions/SOURCES.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from decisions_shop import Shop

SEND, SKIP, DEFER = "would_send", "skipped", "deferred"
MAPPING = Path(__file__).parent.parent / "examples" / "prestashop" / "mapping.yaml"
NO_CONSENT_WARNING = (
    ": no marketing consent for any of its 12 records (no column such as 'Accepts Email"
    " Marketing', no newsletter plugin's order meta, or every one empty): with shop.consent:"
    " optional, marketing e-mails go to them as to customers who agreed; set shop.consent:"
    " required, or import a customers export that says")


@pytest.fixture
def shop(mailflow, monkeypatch) -> Shop:
    return Shop(mailflow, monkeypatch)


def test_prestashop_decisions_order_by_order(shop):
    # the example mapping maps no consent column: every customer's consent is unknown
    first = shop.import_("prestashop_orders_1.csv", "--mapping", MAPPING, now="2026-05-12T10:00",
                         exit_code=1)
    assert first.stderr.splitlines() == [
        f"{shop.folder / 'exports' / 'prestashop_orders_1.csv'}{NO_CONSENT_WARNING}"]

    orders, people = shop.decide("2026-05-12T10:00")
    assert orders == {
        # Expédié, Colissimo tracking number
        "3099": [("order-confirmation", SEND, None), ("shipped", SEND, None)],
        # Paiement accepté (card)
        "3101": [("order-confirmation", SEND, None),
                 ("payment-received", SKIP, "paid_when_placed")],
        # En attente de paiement à la livraison: the mapping makes it in_preparation, so it
        # gets "being prepared" with its confirmation, and no payment-pending at all
        "3102": [("in-preparation", SEND, None), ("order-confirmation", SEND, None)],
        # En attente de virement bancaire / du paiement par chèque
        "3103": [("order-confirmation", SEND, None), ("payment-pending", SEND, None)],
        "3104": [("order-confirmation", SEND, None), ("payment-pending", SEND, None)],
        "3105": [("order-cancelled", SEND, None),
                 ("order-confirmation", SKIP, "order_cancelled")],
        # Remboursé: the refund e-mail
        "3106": [("order-confirmation", SKIP, "order_cancelled"), ("refund", SEND, None)],
        "3108": [("order-confirmation", SEND, None), ("shipped", SEND, None)],
        # Livré
        "3110": [("delivered", SEND, None), ("order-confirmation", SEND, None)],
        # Erreur de paiement: no confirmation while the payment has failed
        "3111": [("order-confirmation", DEFER, "awaiting_payment")],
        "3112": [("order-confirmation", SKIP, "missing_email"),
                 ("payment-received", SKIP, "missing_email")],
        # 3050, January: nothing
    }
    assert people == {e: [("welcome", SEND, None)] for e in (
        "amelie.roussel@example.fr", "benoit.gerard@example.fr", "elodie.faure@example.fr",
        "francois.lefevre@example.fr", "helene.mercier@example.fr", "julien.moreau@example.fr",
        "theo.martin@example.fr")}

    # Noémie's payment failed at 09:25 and she has not ordered again: an hour on, she is told
    assert shop.decide("2026-05-12T11:30") == (
        {"3111": [("order-confirmation", DEFER, "awaiting_payment"),
                  ("payment-failed", SEND, None)]},
        {"lea.dubois@example.fr": [("welcome", SEND, None)],
         "noemie.chevalier@example.fr": [("welcome", SEND, None)]})

    # the next day's export (the same query): 3103 is now Paiement accepté
    shop.import_("prestashop_orders_2.csv", "--mapping", MAPPING, now="2026-05-13T09:30",
                 exit_code=1)
    assert shop.decide("2026-05-13T09:30") == (
        {"3103": [("payment-received", SEND, None)],
         "3111": [("order-confirmation", DEFER, "awaiting_payment")]}, {})

    # Livré is dated when first seen (no delivery date in the export): review 7 days on
    assert shop.decide("2026-05-19T10:00") == (
        {"3110": [("review-request", SEND, None)],
         "3111": [("order-confirmation", DEFER, "awaiting_payment")]}, {})

    assert shop.decide("2026-05-23T10:00") == ({
        "3099": [("review-request", SEND, None)],
        "3111": [("order-confirmation", DEFER, "awaiting_payment")],  # 11 days: not 14
        "3108": [("review-request", SKIP, "marketing_gap")],
    }, {})


def test_prestashop_with_the_newsletter_column_mapped_refusals_get_no_marketing(shop):
    mapping = shop.folder / "prestashop.yaml"
    mapping.write_text(MAPPING.read_text(encoding="utf-8").replace(
        "  email: E-mail\n", "  email: E-mail\n  accepts_marketing: Newsletter\n"), encoding="utf-8")
    result = shop.import_("prestashop_orders_1.csv", "--mapping", mapping, now="2026-05-12T10:00")
    assert "consent" not in result.stderr
    _, people = shop.decide("2026-05-12T10:00")
    assert people == {
        "amelie.roussel@example.fr": [("welcome", SEND, None)],
        "benoit.gerard@example.fr": [("welcome", SKIP, "no_consent")],
        "elodie.faure@example.fr": [("welcome", SEND, None)],
        "francois.lefevre@example.fr": [("welcome", SEND, None)],
        "helene.mercier@example.fr": [("welcome", SKIP, "no_consent")],
        "julien.moreau@example.fr": [("welcome", SEND, None)],
        "theo.martin@example.fr": [("welcome", SEND, None)],
    }


def test_prestashop_cod_confirmation_says_paid_on_delivery(shop):
    shop.import_("prestashop_orders_1.csv", "--mapping", MAPPING, now="2026-05-12T10:00",
                 exit_code=1)
    cod = shop.preview("order-confirmation", "3102")
    assert "Vous réglerez 41,40 € à la livraison." in cod
    assert "IBAN" not in cod and "virement" not in cod
    transfer = shop.preview("payment-pending", "3103")
    assert "IBAN : FR76" in transfer and "Montant à régler : 74,90 €" in transfer
