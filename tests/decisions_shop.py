"""A shop as `mailflow init` writes it (default rules and templates, shop.timezone
Europe/Paris, the file transport), fed with one platform's exports from
tests/fixtures/decisions/, and asked at chosen moments which e-mails go out.

`Shop.decide(now)` is a rehearsal followed by the real cron tick: `send --dry-run --json`,
then `send --json` at the same moment, which must decide exactly the same (would_send ↔
sent), so that the next moment starts from what a real run left in the store. It returns
the dry run's decisions as two tables a shop owner can read:

    orders: {order id: [(rule, status, reason), ...]}   (keys RULE:order:ID[:STATUS])
    people: {e-mail:   [(rule, status, reason), ...]}   (keys RULE:customer:EMAIL, and
                                                         RULE:cart:ID@T by the cart's address)

A deferred message's reason is its first word (`awaiting_payment`, not `… until T`).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "decisions"
SECRET_ENV = "MAILFLOW_SECRET"  # what the starter's rules.yaml names in unsubscribe.secret_env


def _entry(message: dict) -> tuple[str, str, str | None]:
    reason = message["reason"]
    if reason is not None and message["status"] == "deferred":
        reason = reason.split(" until ", 1)[0]
    return message["rule"], message["status"], reason


def _sorted(entries: list[tuple]) -> list[tuple]:
    return sorted(entries, key=lambda e: (e[0], e[1], e[2] or ""))


def tables(messages: list[dict]) -> tuple[dict[str, list], dict[str, list]]:
    orders: dict[str, list] = {}
    people: dict[str, list] = {}
    for m in messages:
        rule, kind, rest = m["key"].split(":", 2)
        assert rule == m["rule"], m
        if kind == "order":
            orders.setdefault(rest.split(":", 1)[0], []).append(_entry(m))
        elif kind == "customer":
            people.setdefault(rest, []).append(_entry(m))
        else:
            assert kind == "cart", m
            people.setdefault(m["to"] or f"cart {rest}", []).append(_entry(m))
    return ({k: _sorted(v) for k, v in orders.items()},
            {k: _sorted(v) for k, v in people.items()})


class Shop:
    """`mailflow init` in tmp, the real CLI on a real SQLite file."""

    def __init__(self, mailflow, monkeypatch) -> None:
        self.mf = mailflow
        self.folder = mailflow.folder / "shop"
        result = mailflow("init", self.folder)
        assert result.exit_code == 0, result.stderr
        mailflow.config = self.folder / "rules.yaml"
        mailflow.db = self.folder / "mailflow.db"
        text = mailflow.config.read_text(encoding="utf-8")
        text, n = re.subn(r"(?m)^  timezone: .*$", "  timezone: Europe/Paris", text)
        assert n == 1, "the starter's rules.yaml has one shop.timezone line"
        mailflow.config.write_text(text, encoding="utf-8")
        monkeypatch.setenv(SECRET_ENV, "decisions-test-secret")

    def file(self, name: str) -> Path:
        """A copy of tests/fixtures/decisions/NAME in the shop's exports/ folder."""
        target = self.folder / "exports" / name
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(FIXTURES / name, target)
        return target

    def import_(self, name: str, *options: str, now: str, exit_code: int = 0):
        result = self.mf("import", self.file(name), "--now", now, *options)
        assert result.exit_code == exit_code, (result.stdout, result.stderr)
        return result

    def decide(self, now: str) -> tuple[dict[str, list], dict[str, list]]:
        dry = self.mf("send", "--dry-run", "--json", "--now", now)
        assert dry.exit_code == 0, dry.stderr
        planned = dry.json()["messages"]
        real = self.mf("send", "--json", "--now", now)
        assert real.exit_code == 0, real.stderr
        done = real.json()["messages"]

        def outcome(messages: list[dict], sent: str) -> dict[str, tuple]:
            return {m["key"]: ("sent" if m["status"] == sent else m["status"], m["reason"], m["to"])
                    for m in messages}

        assert outcome(planned, "would_send") == outcome(done, "sent"), "the dry run is not the run"
        return tables(planned)

    def preview(self, rule: str, order_id: str) -> str:
        result = self.mf("preview", rule, "--order", order_id, "--format", "text")
        assert result.exit_code == 0, result.stderr
        return result.stdout

    def consent(self, email: str) -> int | None:
        """The customer's stored consent: 1 agreed, 0 refused, None unknown."""
        return self.mf.scalar("SELECT accepts_marketing FROM customers WHERE email_key = ?",
                              (email.lower(),))
