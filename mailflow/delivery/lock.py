"""One run at a time: a non-blocking flock on a file beside the database. The kernel drops
it when the process dies, so a crashed run never leaves a stale lock behind.

A forked child shares the lock through the inherited descriptor: a render worker closes
`held()` first thing, or a killed run's workers would hold the lock a moment longer."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_HELD: set[int] = set()


def held() -> frozenset[int]:
    """The descriptors of the run locks this process holds."""
    return frozenset(_HELD)


@contextmanager
def run_lock(db: Path) -> Iterator[bool]:
    """Yields True while this process holds the lock, False if another run holds it."""
    try:
        fd = os.open(f"{db}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        from mailflow.store.faults import cannot_create

        raise cannot_create(exc, f"{db}.lock") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        _HELD.add(fd)
        try:
            yield True
        finally:
            _HELD.discard(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
