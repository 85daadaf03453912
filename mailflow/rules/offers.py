"""Offers while deciding and claiming: the code each message carries.

A fixed code (`offer: {code: …}`) is the same for every recipient. A pool's codes are
single-use: planning shows each message to send the code it holds (a retry after a
deferral) or the pool's next free one, in due order, without taking it (so a dry run shows
exactly what would go); the claim takes it in the same transaction (ConnectionWorker.send),
preferring the one planning showed, so what was rendered ahead is what is sent. Messages
beyond the pool's end are skipped `no_code_left`: a mail never goes without the code it
promises.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any, Protocol

from mailflow.clock import iso
from mailflow.config import Config, Rule
from mailflow.records import Action
from mailflow.rules.timing import add_after
from mailflow.store import Store

NO_CODE_LEFT = "no_code_left"


class Decision(Protocol):
    """What of a decision (rules/engine.py, which imports this module) the offers read."""

    key: str
    rule: Rule
    action: Action
    reason: str | None
    recorded: bool


class OfferBook:
    """The codes of one run (a Planner's)."""

    def __init__(self, store: Store, now: datetime, tz: tzinfo) -> None:
        self.store, self.now, self.tz = store, now, tz
        self._planned: dict[str, str] = {}  # message key -> the pool code planning showed

    def reserve(self, decisions: Sequence[Decision]) -> None:
        """Planning: the code each message to send from a pool would get, in due order; once
        a pool is empty, the rest are skipped `no_code_left`."""
        wanting: dict[str, list[Decision]] = {}
        for d in decisions:
            offer = d.rule.offer
            if d.action is not Action.SEND or offer is None or offer.pool is None:
                continue
            held = self.store.code_of(d.key) if d.recorded else None
            if held is not None:
                self._planned[d.key] = held
            else:
                wanting.setdefault(offer.pool, []).append(d)
        for pool, waiting in wanting.items():
            free = self.store.free_codes(pool, len(waiting))
            for number, d in enumerate(waiting):
                if number < len(free):
                    self._planned[d.key] = free[number]
                else:
                    d.action, d.reason = Action.SKIP, NO_CODE_LEFT

    def available(self, d: Decision) -> bool:
        """At the moment of sending: the message holds a code, or its pool has one left."""
        offer = d.rule.offer
        if offer is None or offer.pool is None:
            return True
        return self.store.code_of(d.key) is not None or self.store.codes_left(offer.pool) > 0

    def take(self, d: Decision, outbox_id: int) -> bool:
        """At the claim, in its transaction: take the message's code and record its offer in
        the outbox; False when its pool ran out."""
        offer = d.rule.offer
        if offer is None:
            return True
        code = offer.code
        if offer.pool is not None:
            code = self.store.take_code(offer.pool, d.key, iso(self.now), self._planned.get(d.key))
            if code is None:
                return False
        self.store.record_offer(outbox_id, code, self._expires(d))
        return True

    def give_back(self, d: Decision) -> None:
        """The message will not go as it is (skipped, failed): a pool code it held goes back."""
        if d.rule.offer is not None and d.rule.offer.pool is not None:
            self.store.give_back_code(d.key)

    def view(self, d: Decision) -> dict[str, Any] | None:
        """What the message's template sees of its offer (`code`, `expires_at`), as recorded
        at its claim, else as planning showed it."""
        offer = d.rule.offer
        if offer is None:
            return None
        recorded = self.store.offer_of(d.key)
        if recorded is not None and recorded[0] is not None:
            return {"code": recorded[0], "expires_at": recorded[1]}
        code = offer.code if offer.pool is None else self._planned.get(d.key)
        return {"code": code, "expires_at": self._expires(d)}

    def _expires(self, d: Decision) -> str | None:
        """When the offer ends: recorded at the first claim (a retry keeps it), else
        `expires_after` from now, in calendar days of the shop's timezone."""
        recorded = self.store.offer_of(d.key)
        if recorded is not None and recorded[1] is not None:
            return recorded[1]
        offer = d.rule.offer
        if offer is None or offer.expires_after is None:
            return None
        return iso(add_after(self.now, offer.expires_after, self.tz))


def low_pools(store: Store, config: Config) -> list[dict[str, Any]]:
    """Pools of enabled rules with fewer codes left than their `warn_below`."""
    low = []
    for pool, warn_below in sorted(config.offer_pools.items()):
        left = store.codes_left(pool)
        if left < warn_below:
            low.append({"pool": pool, "left": left, "warn_below": warn_below})
    return low
