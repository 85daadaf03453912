"""Messages that wait for a human: failed (a template or a where: to fix) or unknown (maybe
delivered). `resend` queues them again on purpose; `dismiss` records that a human saw them
and let them be. Until one or the other, every `send` and `run` exits 1 and says so."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mailflow.clock import iso
from mailflow.errors import UsageError
from mailflow.store import Store
from mailflow.store.outbox import FOLLOW_UP


@dataclass
class FollowUp:
    action: str  # resend | dismiss
    dry_run: bool
    messages: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "dry_run": self.dry_run, "count": len(self.messages),
                "messages": self.messages}


def _select(store: Store, action: str, keys: list[str], rule: str | None,
            since: timedelta | None, now: datetime) -> list[dict[str, Any]]:
    if keys and (rule or since is not None):
        raise UsageError(f"{action} takes message keys, or --rule/--since: not both")
    if not keys:
        if not rule and since is None:
            raise UsageError(f"{action} needs message keys (see `mailflow log`), or --rule R"
                             " and/or --since D")
        return store.to_follow_up(rule=rule, since=iso(now - since) if since else None)
    found = {row["key"]: row for row in store.messages_by_key(keys)}
    for key in keys:  # all or nothing: a key that cannot be acted on changes nothing
        row = found.get(key)
        if row is None:
            raise UsageError(f"{key!r}: no such message (see `mailflow log`)")
        if row["status"] not in FOLLOW_UP:
            raise UsageError(f"{key!r}: is {row['status']}; only unknown or failed messages"
                             f" can be {'resent' if action == 'resend' else 'dismissed'}")
    return [found[key] for key in dict.fromkeys(keys)]


def resend(store: Store, keys: list[str], *, rule: str | None, since: timedelta | None,
           now: datetime, dry_run: bool = False) -> FollowUp:
    """Queue failed or unknown messages again: by key (dismissed ones too), or those of a rule
    and/or failed within `since` before `now` that nobody dismissed. The next send delivers
    them, with the Message-ID they had."""
    report = FollowUp("resend", dry_run, _select(store, "resend", keys, rule, since, now))
    if not dry_run and report.messages:
        store.requeue([m["key"] for m in report.messages], iso(now))
    return report


def dismiss(store: Store, keys: list[str], *, rule: str | None, since: timedelta | None,
            now: datetime, dry_run: bool = False) -> FollowUp:
    """Mark failed or unknown messages as seen by a human: they stay in the log, and no
    longer keep `send` and `run` at exit 1."""
    messages = [m for m in _select(store, "dismiss", keys, rule, since, now)
                if m["dismissed_at"] is None]
    report = FollowUp("dismiss", dry_run, messages)
    if not dry_run and messages:
        store.dismiss([m["key"] for m in messages], iso(now))
    return report
