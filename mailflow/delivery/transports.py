"""Where a built message goes. The `file` transport writes one .eml per message: the same
bytes SMTP would send. (SMTP lives in its own module, the only one that uses smtplib.)"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mailflow.errors import DeliveryBlocked
from mailflow.records import OutboxStatus, eml_name


@dataclass
class Outcome:
    status: OutboxStatus  # sent, deferred, failed or unknown
    detail: str | None = None
    suppress: bool = False  # a permanent refusal of the address itself (5.1.x, 5.2.1)


class Transport(Protocol):
    """What a run hands each built message to: SMTP (smtp.py) or the `file` transport."""

    def deliver(self, data: bytes, *, mail_from: str, recipient: str, key: str) -> Outcome:
        """Hand over one message; `mail_from` is the envelope's (SMTP's MAIL FROM)."""

    def close(self) -> None: ...


class FileTransport:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def deliver(self, data: bytes, *, mail_from: str, recipient: str, key: str) -> Outcome:
        target = self.folder / eml_name(key)
        temporary = target.with_suffix(".eml.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with temporary.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except OSError as exc:
            raise DeliveryBlocked(f"cannot write to delivery.dir {self.folder}: {exc.strerror}"
                                  ) from None
        return Outcome(OutboxStatus.SENT, str(target))

    def close(self) -> None:
        pass
