"""Built-in sample data: what `preview` shows without a selector, and what `check` renders
every template against. Fictional people, one shape per trigger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
        "lines": [dict(line) for line in _LINES],
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


def sample_subject(trigger: str, locale: str) -> tuple[dict | None, dict | None, dict]:
    """(order, cart, customer) for a rule's trigger."""
    customer = sample_customer(locale)
    if trigger == "cart.abandoned":
        return None, sample_cart(locale), customer
    if trigger.startswith("customer."):
        return None, None, customer
    status = trigger.split(".", 1)[1] if trigger != "order.placed" else "paid"
    return sample_order(status, locale), None, customer
