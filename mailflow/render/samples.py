"""Built-in sample data: what `preview` shows without a selector, and what `check` renders
every template against. Fictional people, one shape per trigger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailflow.localized import Localized
from mailflow.rules import triggers

NOW = datetime(2026, 3, 12, 9, 30, tzinfo=UTC)

_LINES = [
    {"sku": "MUG-B", "name": "Mug bleu « Océan »", "quantity": 2, "price": "12.50"},
    {"sku": "THE-1", "name": "Théière en fonte 0,8 L", "quantity": 1, "price": "34.00"},
]


def sample_order(status: str = "paid", locale: str = "fr") -> dict:
    created = NOW - timedelta(days=3)
    shipped = status in ("shipped", "at_pickup_point", "delivered", "invoiced")
    return {
        "id": "#1042", "status": status, "email": "camille.martin@example.com",
        "first_name": "Camille", "last_name": "Martin", "locale": locale, "currency": "EUR",
        "subtotal": "59.00", "shipping": "4.90", "tax": "10.65", "discount": "5.00",
        "total": "58.90",
        "payment_method": "Virement bancaire" if status == "pending_payment" else "Carte bancaire",
        "payment_class": "offline" if status == "pending_payment" else "online",
        "shipping_method": "Point relais Mondial Relay" if status == "at_pickup_point"
        else "Colissimo",
        "pickup_point": "Relais Tabac du Centre, 4 place de la Mairie, 69001 Lyon"
        if status == "at_pickup_point" else None,
        "shipping_address": "Camille Martin\n8 rue des Lilas\n69001 Lyon\nFrance",
        "created_at": created,
        "paid_at": None if status == "pending_payment" else created,
        "shipped_at": created + timedelta(days=1) if shipped else None,
        "delivered_at": created + timedelta(days=2) if status in ("delivered", "invoiced") else None,
        "cancelled_at": created + timedelta(hours=5) if status in ("cancelled", "refunded") else None,
        # every line left with the parcel; none has yet before it ships
        "lines": [{**line, "shipped": shipped} for line in _LINES],
        "partially_shipped": False,
        "refunded_amount": "58.90" if status == "refunded" else None,
        "tracking": {"number": "6A12345678901", "carrier": "Colissimo",
                     "url": "https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345678901"}
        if shipped else None,
    }


def sample_cart(locale: str = "fr") -> dict:
    return {
        "id": "C-9001", "email": "lou.bernard@example.com", "first_name": "Lou",
        "last_name": "Bernard", "locale": locale, "currency": "EUR", "total": "59.00",
        "recovery_url": "https://boutique.example/cart/recover/C-9001",
        "created_at": NOW - timedelta(hours=1), "updated_at": NOW - timedelta(minutes=25),
        "lines": [dict(line) for line in _LINES],
    }


def sample_customer(locale: str = "fr") -> dict:
    return {"email": "camille.martin@example.com", "first_name": "Camille",
            "last_name": "Martin", "locale": locale, "created_at": NOW - timedelta(days=200),
            "last_order_at": NOW - timedelta(days=190)}


def sample_offer() -> dict:
    """An offer as templates see it (render/context.py offer_view), for `check`."""
    from mailflow.render.context import SAMPLE_CODE

    return {"code": SAMPLE_CODE, "expires_at": NOW + timedelta(days=7),
            "text": Localized((("fr", "10 % de remise sur votre commande"),
                               ("en", "10% off your order")))}


def sample_products(count: int = 3) -> list[dict]:
    """Suggested products as the store gives them (rules/suggestions.py), for `preview` and
    `check` of a rule with `products:`; the last has no image nor price, as without a
    catalogue."""
    products = [
        {"key": "SOUC-1", "sku": "SOUC-1", "name": "Sous-tasses en grès (lot de 2)",
         "url": "/products/sous-tasses-gres", "price": "14.90", "currency": None,
         "image": "https://boutique.example/images/sous-tasses.jpg"},
        {"key": "THE-VERT", "sku": "THE-VERT", "name": "Thé vert Sencha bio, 100 g",
         "url": "/products/the-vert-sencha", "price": "8.50", "currency": None,
         "image": "https://boutique.example/images/sencha.jpg"},
        {"key": "Infuseur inox", "sku": None, "name": "Infuseur inox", "url": None,
         "image": None, "price": None, "currency": None},
    ]
    return products[:count]


def sample_subject(trigger: str, locale: str) -> tuple[dict | None, dict | None, dict]:
    """(order, cart, customer) for a rule's trigger."""
    customer = sample_customer(locale)
    on = triggers.trigger(trigger)
    if on.subject == "cart":
        return None, sample_cart(locale), customer
    if on.subject == "customer":
        return None, None, customer
    return sample_order(on.status or "paid", locale), None, customer


# -- varied data for `mailflow check` ---------------------------------------------------------
# A template that renders the fictional order above can still break on a real one: no
# tracking, no lines, amounts missing. `check` renders every template against all of these.

_LONG = "Marie-Charlotte-Éléonore de La Rochefoucauld-Montmorency-Saint-Exupéry"


def _order(label: str, status: str, language: str, **changes) -> tuple[str, dict]:
    order = sample_order(status, language)
    order.update(changes)
    return label, order


def varied_orders(locale: str = "fr") -> list[tuple[str, dict]]:
    """(what it is, order): the shapes real orders take."""
    no_amounts = {k: None for k in ("subtotal", "shipping", "tax", "discount", "total")}
    return [
        _order("paid card order", "paid", locale),
        _order("pending bank transfer", "pending_payment", locale),
        _order("cash on delivery", "in_preparation", locale, payment_method="cod", paid_at=None),
        _order("shipped with tracking", "shipped", locale),
        _order("shipped without tracking", "shipped", locale, tracking=None),
        _order("partially shipped (the teapot still to come)", "shipped", locale,
               partially_shipped=True,
               lines=[{**_LINES[0], "shipped": True}, {**_LINES[1], "shipped": False}]),
        _order("partially shipped, which lines not known", "shipped", locale,
               partially_shipped=True, lines=[{**line, "shipped": None} for line in _LINES]),
        _order("shipped, which lines left not known", "shipped", locale,
               lines=[{**line, "shipped": None} for line in _LINES]),
        _order("tracking number without a link", "shipped", locale,
               tracking={"number": "6A12345678901", "url": None, "carrier": None}),
        _order("at a pickup point", "at_pickup_point", locale),
        _order("delivered", "delivered", locale),
        _order("cancelled", "cancelled", locale),
        _order("refunded", "refunded", locale),
        _order("refunded, the amount not said", "refunded", locale, refunded_amount=None),
        _order("partially refunded (one mug)", "shipped", locale, refunded_amount="12.50"),
        _order("partially refunded, the amount not said", "paid", locale,
               refunded_amount=None),
        _order("cancelled before payment", "cancelled", locale, paid_at=None),
        _order("without a discount", "paid", locale, discount=None, total="63.90"),
        _order("free shipping", "paid", locale, shipping="0.00", total="54.00"),
        _order("no first name", "paid", locale, first_name=None),
        _order("no name at all", "shipped", locale, first_name=None, last_name=None),
        _order("no lines", "paid", locale, lines=[]),
        _order("amounts missing", "paid", locale, **no_amounts, currency=None,
               lines=[{"sku": None, "name": "Mug", "quantity": 1, "price": None,
                       "shipped": None}]),
        _order("order id without #", "paid", locale, id="1042"),
        _order("nothing to ship (no shipping details)", "paid", locale, shipping=None,
               shipping_method=None, shipping_address=None, payment_method=None),
        _order("no locale, no e-mail", "paid", locale, locale=None, email=None),
        _order("a long name", "paid", locale, first_name=_LONG, last_name=_LONG,
               lines=[{"sku": "X" * 40, "name": f"Théière « {_LONG} »", "quantity": 12,
                       "price": "1234567.89", "shipped": False}]),
    ]


def varied_refunds() -> list[tuple[str, dict]]:
    """(what it is, refund as templates see it: render/context.py refund_view) for the
    refunds an order's sample data alone never shows: one after another."""
    return [
        ("a second partial refund", {"full": False, "amount": "12.50", "total": "25.00",
                                     "earlier": "12.50"}),
        ("a second partial refund, its amount not said", {"full": False, "amount": None,
                                                         "total": None, "earlier": None}),
        ("the rest refunded after a partial refund", {"full": True, "amount": "46.40",
                                                      "total": "58.90", "earlier": "12.50"}),
    ]


def varied_carts(locale: str = "fr") -> list[tuple[str, dict]]:
    def cart(**changes) -> dict:
        return {**sample_cart(locale), **changes}

    return [("cart with a recovery link", cart()),
            ("cart without a recovery link", cart(recovery_url=None)),
            ("cart without lines", cart(lines=[])),
            ("cart without names or total", cart(first_name=None, last_name=None, total=None,
                                                 currency=None))]


def varied_customers(locale: str = "fr") -> list[tuple[str, dict]]:
    def customer(**changes) -> dict:
        return {**sample_customer(locale), **changes}

    return [("customer with names and dates", customer()),
            ("customer without names", customer(first_name=None, last_name=None)),
            ("customer without dates", customer(created_at=None, last_order_at=None)),
            ("customer without a locale", customer(locale=None))]


def varied_subjects(trigger: str, locale: str) -> list[tuple[str, dict | None, dict | None,
                                                             dict | None]]:
    """(what it is, order, cart, customer) for every shape a rule's trigger can meet: each
    order or cart with the usual customer, and the usual one with each customer (or none)."""
    customers = varied_customers(locale)
    about = triggers.trigger(trigger).subject
    if about == "customer":
        return [(label, None, None, c) for label, c in customers]
    subjects: list[tuple[str, dict | None, dict | None, dict | None]]
    if about == "cart":
        subjects = [(label, None, c, customers[0][1]) for label, c in varied_carts(locale)]
    else:
        subjects = [(label, o, None, customers[0][1]) for label, o in varied_orders(locale)]
    _, order, cart, _ = subjects[0]
    return subjects + [(f"{subjects[0][0]}, {label}", order, cart, c) for label, c in customers[1:]] \
        + [(f"{subjects[0][0]}, no customer record", order, cart, None)]
