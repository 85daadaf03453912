"""What the store's troubles mean to the person running mailflow: the one place that reads
SQLite's error codes.

A busy database or a full disk is `StoreUnavailable` (exit 4: nothing was lost, the next run
tries again). A file that is not mailflow's store, a damaged one or a read-only one is a
`StoreUnusable` (exit 2: mailflow changed nothing in it). Codes that can only mean a bug in
mailflow (a constraint, a misuse, a syntax error) are not translated: they stay internal
errors, to be reported.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from mailflow.clock import parse_duration
from mailflow.errors import (
    DamagedDatabase,
    MailflowError,
    NotOurDatabase,
    ReadOnlyDatabase,
    StoreUnavailable,
    StoreUnusable,
    UsageError,
)

DEFAULT_TIMEOUT = timedelta(seconds=30)
_READS = {sqlite3.SQLITE_IOERR_READ, sqlite3.SQLITE_IOERR_SHORT_READ}
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def db_timeout(env: Mapping[str, str] = os.environ) -> timedelta:
    """How long to wait for another process's write lock: MAILFLOW_DB_TIMEOUT, else 30 s."""
    text = env.get("MAILFLOW_DB_TIMEOUT")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"MAILFLOW_DB_TIMEOUT: {exc}") from None


@contextmanager
def translated(path: str | Path, timeout: timedelta | None = None) -> Iterator[None]:
    """Raise what an sqlite3 error means (see `translate`) instead of the error itself."""
    try:
        yield
    except sqlite3.Error as exc:
        meaning = translate(exc, path, timeout)
        if meaning is None:
            raise
        raise meaning from exc


def translate(exc: BaseException, path: str | Path, timeout: timedelta | None = None,
              ) -> MailflowError | None:
    """The MailflowError that an sqlite3 error on the database at `path` means, or an OSError
    of a full disk; None for anything else (a bug: it stays an internal error)."""
    if isinstance(exc, OSError):
        if exc.errno not in _DISK_FULL:
            return None
        # SQLite reports its own files' troubles as codes: this is a file mailflow writes
        where = exc.filename or "a file mailflow was writing"
        return StoreUnavailable(f"{where}: disk full ({exc.strerror}{_size_limit()}): free disk"
                                " space; the next run tries again")
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.OperationalError) and code is None:
        return _not_utf8(exc, path)
    if not isinstance(exc, sqlite3.Error) or code is None:
        return None
    primary = code & 0xFF
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_PROTOCOL):
        wait = (timeout if timeout is not None else db_timeout()).total_seconds()
        return StoreUnavailable(f"{path}: database busy: another process is writing to it, still"
                                f" after waiting {wait:g}s (MAILFLOW_DB_TIMEOUT); nothing was"
                                " changed or lost, the next run tries again")
    if primary == sqlite3.SQLITE_FULL:
        return StoreUnavailable(f"{path}: disk full ({exc}): free disk space; nothing was"
                                " half-written, the next run tries again")
    if code in _READS:
        return StoreUnavailable(f"{path}: cannot read the database from the disk ({exc}): check"
                                " the disk; nothing was changed, the next run tries again")
    if primary == sqlite3.SQLITE_IOERR:
        # A write refused by the system: ENOSPC alone becomes SQLITE_FULL; a quota or a file
        # size limit (EFBIG) arrives here as a plain I/O error.
        limit = _size_limit()
        return StoreUnavailable(f"{path}: cannot write to the disk ({exc}{limit}): free disk space"
                                f"{' or raise the limit' if limit else ''}; nothing was"
                                " half-written, the next run tries again")
    if primary == sqlite3.SQLITE_NOTADB:
        return NotOurDatabase(f"{path}: not an SQLite database: point --db at mailflow's own"
                              " file; mailflow left this one untouched")
    if primary == sqlite3.SQLITE_CORRUPT:
        return DamagedDatabase(f"{path}: the database is damaged ({exc}): restore it from a"
                               " backup; mailflow never repairs or overwrites it")
    if primary in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM):
        return _read_only(exc, code, Path(path))
    if primary == sqlite3.SQLITE_CANTOPEN:
        return _cannot_open(exc, Path(path))
    return None


def _not_utf8(exc: sqlite3.OperationalError, path: str | Path) -> MailflowError | None:
    """Python's sqlite3 module, not SQLite, reading a text that is not UTF-8: mailflow only
    ever stores UTF-8, so bytes changed inside a row SQLite's checks cannot see (its pages
    carry no checksum). The text itself is not repeated: it is garbage, or personal data."""
    found = re.match(r"Could not decode to UTF-8 column '(.*?)' with text", str(exc))
    if found is None:
        return None
    return DamagedDatabase(f"{path}: the database is damaged (a text that is not UTF-8 in the"
                           f" column {found[1]!r}): restore it from a backup; mailflow never"
                           " repairs or overwrites it")


def cannot_create(exc: OSError, path: str | Path) -> MailflowError:
    """A file mailflow keeps beside the database (the run lock) that cannot be created."""
    full = translate(exc, path)
    if full is not None:
        return full
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ReadOnlyDatabase(f"{path}: cannot create it beside the database ({exc.strerror}):"
                                " make the folder writable by this user; nothing was changed")
    return StoreUnusable(f"{path}: cannot create it beside the database ({exc.strerror})")


def _read_only(exc: sqlite3.Error, code: int, path: Path) -> MailflowError:
    if code == sqlite3.SQLITE_READONLY_DBMOVED:
        return StoreUnavailable(f"{path}: the database file was moved or deleted while in use;"
                                " nothing more was written to it")
    if code == sqlite3.SQLITE_READONLY_DIRECTORY:
        return ReadOnlyDatabase(
            f"{path}: its folder {path.parent} is read-only ({exc}): SQLite needs to create"
            f" {path.name}-wal and {path.name}-shm beside it; make the folder writable by this"
            " user; nothing was changed")
    return ReadOnlyDatabase(f"{path}: the database is read-only ({exc}): make the file and its"
                            " folder writable by this user; nothing was changed")


def _cannot_open(exc: sqlite3.Error, path: Path) -> MailflowError:
    folder = path.parent
    if path.is_dir():
        return StoreUnusable(f"{path}: is a folder, not a database file: point --db at a file")
    if not folder.is_dir():
        return StoreUnusable(f"{path}: cannot create the database: the folder {folder} does not"
                             " exist")
    if not path.exists() and not os.access(folder, os.W_OK):
        return ReadOnlyDatabase(f"{path}: cannot create the database: the folder {folder} is"
                                " read-only for this user")
    return StoreUnusable(f"{path}: cannot open the database ({exc})")


def _size_limit() -> str:
    """The file size limit of this process, when there is one (ulimit -f)."""
    try:
        import resource
    except ImportError:  # Windows has none
        return ""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft == resource.RLIM_INFINITY:
        return ""
    return f"; ulimit -f limits files to {soft} bytes here"


def check_ours(conn: sqlite3.Connection, path: str | Path, known: set[str]) -> bool:
    """Refuse, before anything is written to it, a database that is not mailflow's store or
    was made by a newer mailflow. A new or empty file is fine: it becomes mailflow's (True)."""
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%'"
        " ESCAPE '!' ORDER BY name")]
    if not tables:
        return True
    applied: set[str] = set()
    named = "migrations" in tables and "name" in {
        row[1] for row in conn.execute("PRAGMA table_info(migrations)")}
    if named:
        applied = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    # mailflow creates `migrations` (empty) before its first migration: alone, it is ours
    if not named or (not applied & known and (applied or tables != ["migrations"])):
        some = ", ".join(tables[:4]) + (f" and {len(tables) - 4} more" if len(tables) > 4 else "")
        raise NotOurDatabase(f"{path}: an SQLite database of another application (tables {some}),"
                             " not mailflow's: point --db at mailflow's own file; nothing was"
                             " changed")
    newer = sorted(applied - known)
    if newer:
        from mailflow import __version__

        raise NotOurDatabase(f"{path}: made by a newer mailflow (its schema has {', '.join(newer)},"
                             f" which mailflow {__version__} does not know): upgrade mailflow to"
                             " use it; nothing was changed")
    return False
