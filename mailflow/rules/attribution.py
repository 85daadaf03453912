"""Which message an order is owed to: the store's attribution pass, with the windows of
rules.yaml's `tracking.attribution` and the shop's marketing rules (an order "after receiving"
an order confirmation or a shipping notice says nothing about that e-mail)."""

from __future__ import annotations

from datetime import datetime, timedelta

from mailflow.clock import iso
from mailflow.config import Config
from mailflow.rules.triggers import trigger
from mailflow.store import Store

RECOVERY = timedelta(days=7)  # a cart is recovered by an order this soon after its reminder


def attribute_orders(store: Store, config: Config, now: datetime) -> int:
    """Call after every import, pull and webhook batch: attributes the orders it brought."""
    windows = config.tracking.attribution
    return store.attribute_new_orders(
        after_click=windows.after_click, after_receiving=windows.after_receiving,
        marketing_rules=[rule.name for rule in config.rules if rule.marketing],
        cart_rules=[rule.name for rule in config.rules if trigger(rule.on).subject == "cart"],
        recovery=RECOVERY, now=iso(now))
