"""What the store's query mixins (outbox.py, history.py) need of the Store they make up."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Protocol


class Connected(Protocol):
    conn: sqlite3.Connection
    path: str
    timeout: timedelta

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE): Store.transaction."""
        ...


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid the INSERT just run on `cursor` gave (typed Optional; never None after one)."""
    rowid = cursor.lastrowid
    assert rowid is not None
    return rowid
