"""`mailflow send-test NAME --to ADDRESS`: one e-mail, as `preview` renders it (sample data
or the store's order, cart or customer), through the configured transport to the owner's own
address, so that it can be read in real mail clients before customers get it.

The subject starts with `[TEST] `; the Message-ID is new every time (clients do not take a
second test for the first); the unsubscribe link is signed for the test address, never for
the customer whose data it shows. Nothing is recorded: no outbox row, no run, no code taken
from a pool (a pool's offer shows a sample code)."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailflow.clock import iso
from mailflow.config import Config
from mailflow.delivery.send import default_transport
from mailflow.delivery.transports import Transport
from mailflow.errors import UsageError
from mailflow.importing.addresses import check_address
from mailflow.records import ExitCode, OutboxStatus
from mailflow.render.mime import message_id
from mailflow.render.preview import Rows, compose_preview
from mailflow.starter import placeholders_left

TEST_MARK = "[TEST] "


@dataclass
class SendTestReport:
    name: str
    to: str
    subject: str
    message_id: str
    status: OutboxStatus
    detail: str | None  # the server's reply, or the file written
    transport: str
    # the starter's sample values still in rules.yaml: said, the test still goes
    placeholders: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.status is OutboxStatus.SENT else ExitCode.ATTENTION

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "to": self.to, "subject": self.subject,
                "message_id": self.message_id, "status": self.status, "detail": self.detail,
                "transport": self.transport, "placeholders": self.placeholders}


def send_test(config: Config, store: Rows | None, name: str, to: str, *, now: datetime,
              order: str | None = None, cart: str | None = None, customer: str | None = None,
              locale: str | None = None, transport: Transport | None = None) -> SendTestReport:
    """Render NAME (a rule or a template) and hand it to the transport, addressed to `to`."""
    if sum(x is not None for x in (order, cart, customer)) > 1:
        raise UsageError("use one of --order, --cart, --customer")
    checked = check_address(to)
    if checked.email is None:
        raise UsageError(f"--to {to!r}: not an e-mail address mailflow can send to"
                         f" ({checked.problem})")
    message = compose_preview(config, store, name, order=order, cart=cart, customer=customer,
                              locale=locale, now=now, to=checked.email)
    stamp = uuid.uuid4().hex[:12]
    key = f"send-test:{name}:{iso(now)}:{stamp}"
    test = dataclasses.replace(message, to=checked.email, to_name=None,
                               subject=TEST_MARK + message.subject,
                               message_id=message_id(key, message.from_address.domain))
    data = test.build()
    chosen = transport or default_transport(config)
    try:
        outcome = chosen.deliver(data, mail_from=message.from_address.addr_spec,
                                 recipient=checked.email, key=key)
    finally:
        chosen.close()
    return SendTestReport(name, checked.email, test.subject, test.message_id, outcome.status,
                    outcome.detail, config.delivery.transport,
                    placeholders_left(config) if config.delivery.transport == "smtp" else [])
