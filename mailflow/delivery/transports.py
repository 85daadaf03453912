"""Where a built message goes. The `file` transport writes one .eml per message: the same
bytes SMTP would send. (SMTP lives in its own module, the only one that uses smtplib.)"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mailflow.errors import DeliveryBlocked
from mailflow.records import OutboxStatus, eml_name

# What releases before this one left behind when killed mid-write; never a finished message.
STALE_SUFFIX = ".eml.tmp"
_HIDDEN_PREFIX = ".mailflow-"  # a named temporary where O_TMPFILE is refused
_anonymous_files = [True]  # O_TMPFILE + linkat work here (until one is refused)


@dataclass
class Outcome:
    status: OutboxStatus  # sent, deferred, failed or unknown
    detail: str | None = None
    suppress: bool = False  # a permanent refusal of the address itself (5.1.x, 5.2.1)


class Transport(Protocol):
    """What a run hands each built message to: SMTP (smtp.py) or the `file` transport."""

    def deliver(self, data: bytes, *, mail_from: str, recipient: str, key: str,
                then: tuple[str, str] | None = None,
                while_waiting: Callable[[], None] | None = None) -> Outcome:
        """Hand over one message; `mail_from` is the envelope's (SMTP's MAIL FROM); `then`:
        the envelope of the message likely to follow (SMTP opens it ahead where it can);
        `while_waiting`: called at most once, once the message has left and before its
        reply is read (it must not raise), where there is a reply to wait for."""

    def close(self) -> None: ...


class FileTransport:
    """A message is an .eml file only once it is whole: on Linux it is written into an
    anonymous file (O_TMPFILE), fsynced, then linked under its name, so a run killed at any
    moment leaves no file at all for it; elsewhere a hidden temporary is renamed into place,
    and the next run removes the ones a killed run left."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._swept = False

    def written(self, key: str) -> bool:
        """Whether the message of `key` is in the folder (then it is whole)."""
        return (self.folder / eml_name(key)).is_file()

    def sweep(self) -> int:
        """Remove the temporaries of runs that died mid-write (call holding the run lock)."""
        removed = 0
        if not self.folder.is_dir():
            return 0
        for path in self.folder.iterdir():
            if path.name.endswith(STALE_SUFFIX) or path.name.startswith(_HIDDEN_PREFIX):
                try:
                    path.unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed

    def deliver(self, data: bytes, *, mail_from: str, recipient: str, key: str,
                then: tuple[str, str] | None = None,
                while_waiting: Callable[[], None] | None = None) -> Outcome:
        target = self.folder / eml_name(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not self._swept:
                self.sweep()
                self._swept = True
            if not _link_anonymous(self.folder, target, data):
                temporary = self.folder / f"{_HIDDEN_PREFIX}{os.getpid()}-{target.name}.part"
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


def _link_anonymous(folder: Path, target: Path, data: bytes) -> bool:
    """Write `data` to an unnamed file in `folder` and give it `target`'s name; False where the
    system cannot (no O_TMPFILE, no /proc) or the name is taken (a resend: rename instead)."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not _anonymous_files[0] or not os.path.isdir("/proc/self/fd"):
        return False
    try:
        fd = os.open(folder, flag | os.O_WRONLY, 0o644)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return False  # a file system without O_TMPFILE
        raise
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        try:
            os.link(f"/proc/self/fd/{fd}", target, follow_symlinks=True)
        except FileExistsError:
            return False
        except OSError as exc:  # some kernels and sandboxes refuse linkat of /proc/self/fd
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOENT, errno.EINVAL):
                raise
            _anonymous_files[0] = False
            return False
    finally:
        os.close(fd)
    return True
