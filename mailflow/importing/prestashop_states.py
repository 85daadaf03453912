"""PrestaShop's standard order states (1.7, 8) and the mailflow status each one means: the one
table the Webservice source (importing/api/prestashop.py) maps `order_states` names with,
and that `statuses:` of examples/prestashop/mapping.yaml repeats for CSV exports (a test
keeps the two equal; docs/formats/mapping.md gives the reasons).

A back office shows the names in its languages; the Webservice gives every language's, and
either table matches. Names are compared without case, accents or extra spaces. States that
modules add (a carrier's "Livré en point relais", a payment module's own waiting state) are
not here: the source rejects such an order naming its state.
"""

from __future__ import annotations

import unicodedata

FRENCH = {
    "En attente du paiement par chèque": "pending_payment",
    "En attente de virement bancaire": "pending_payment",
    "En attente de paiement": "pending_payment",
    "Paiement accepté": "paid",
    "Paiement à distance accepté": "paid",  # card or PayPal, confirmed by the module
    "En cours de préparation": "in_preparation",
    # cash on delivery: confirmed and prepared, the money comes with the parcel;
    # pending_payment would send payment reminders
    "En attente de paiement à la livraison": "in_preparation",
    "Expédié": "shipped",
    "Livré": "delivered",
    "Annulé": "cancelled",
    "Remboursé": "refunded",
    "Erreur de paiement": "failed",
    "En attente de réapprovisionnement (payé)": "awaiting_stock",
    # out of stock and not paid yet: what the customer must do next is pay
    "En attente de réapprovisionnement (non payé)": "pending_payment",
}

# PrestaShop's installer names them so in English (install-dev/langs/en/data/order_state.xml).
ENGLISH = {
    "Awaiting check payment": "pending_payment",
    "Awaiting bank wire payment": "pending_payment",
    "Payment accepted": "paid",
    "Remote payment accepted": "paid",
    "Processing in progress": "in_preparation",
    "Awaiting Cash On Delivery validation": "in_preparation",
    "Shipped": "shipped",
    "Delivered": "delivered",
    "Canceled": "cancelled",
    "Refunded": "refunded",
    "Payment error": "failed",
    "On backorder (paid)": "awaiting_stock",
    "On backorder (not paid)": "pending_payment",
}

STATES = {**FRENCH, **ENGLISH}

# The payment modules PrestaShop ships, by their `module` name, for the payment class
# (docs/import.md, "Payment classes"); other modules' class is read from the order's `payment`.
PAYMENT_MODULES = {
    "ps_wirepayment": "offline",
    "bankwire": "offline",
    "ps_checkpayment": "offline",
    "cheque": "offline",
    "ps_cashondelivery": "on_delivery",
    "cashondelivery": "on_delivery",
}


def plain(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


_BY_PLAIN = {plain(name): status for name, status in STATES.items()}


def status_of(name: str) -> str | None:
    """mailflow's status for a state's name in any language; None for a state not in the table."""
    return _BY_PLAIN.get(plain(name))
