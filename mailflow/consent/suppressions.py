"""The suppression list: unsubscribes (marketing only) beside bounces and complaints (all mail)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mailflow.clock import iso
from mailflow.config import Config
from mailflow.consent.tokens import read_token, secret_from_env
from mailflow.errors import MailflowError, UsageError
from mailflow.importing.addresses import check_address
from mailflow.store import Store


class BadToken(MailflowError):
    """A token that is malformed or not signed with this shop's secret: nothing changed."""


@dataclass
class SubscriptionReport:
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"changed": self.changed, "unchanged": self.unchanged}


def _addresses(emails: list[str]) -> list[str]:
    valid = []
    for raw in emails:
        checked = check_address(raw)
        if checked.email is None:
            raise UsageError(f"{raw!r} is not an e-mail address ({checked.problem})")
        valid.append(checked.email)
    return valid


def unsubscribe(store: Store, emails: list[str], now: datetime, source: str = "command"
                ) -> SubscriptionReport:
    report = SubscriptionReport()
    for address in _addresses(emails):
        added = store.add_suppression(address, "unsubscribed", iso(now), source)
        (report.changed if added else report.unchanged).append(address)
    return report


def resubscribe(store: Store, emails: list[str]) -> SubscriptionReport:
    """Undo an unsubscribe. Bounces and complaints stay: they protect the shop's reputation."""
    report = SubscriptionReport()
    for address in _addresses(emails):
        removed = store.remove_suppression(address, "unsubscribed")
        (report.changed if removed else report.unchanged).append(address)
    return report


def address_of(token: str, config: Config) -> str:
    address = read_token(token.strip(), secret_from_env(config.unsubscribe.secret_env))
    if address is None:
        raise BadToken("this unsubscribe token is invalid or was altered: nothing changed")
    return address
