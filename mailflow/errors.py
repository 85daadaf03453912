"""The exception tree. The CLI maps every one of these to a one-line message and an exit code."""

from __future__ import annotations

from mailflow.records import ExitCode


class MailflowError(Exception):
    """Something the user can fix; `str()` is the one-line message, `details` lines (each
    `FILE:LINE: what`) are printed before it when there are several things to fix."""

    exit_code: ExitCode = ExitCode.USAGE
    details: tuple[str, ...] = ()


class UsageError(MailflowError):
    """Bad arguments or options."""


class ConfigError(MailflowError):
    """rules.yaml (or a mapping file) is wrong; the message names FILE:LINE."""


class NotAnExport(MailflowError):
    """A file that is not a shop export at all: it changed nothing."""


class RowRejected(Exception):
    """One row of an export cannot be used; the rest of the file still imports."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


class RenderError(MailflowError):
    """A template that cannot render; that message fails, the run goes on."""


class DeliveryBlocked(MailflowError):
    """SMTP unreachable, login refused, TLS failure: nothing lost, mail stays queued."""

    exit_code = ExitCode.BLOCKED


class StoreUnavailable(MailflowError):
    """The database is busy (another process writing) or the disk is full: nothing was lost,
    the next run tries again."""

    exit_code = ExitCode.UNAVAILABLE


class StoreUnusable(MailflowError):
    """The file at --db cannot be mailflow's store as it is; mailflow changed nothing in it."""


class NotOurDatabase(StoreUnusable):
    """Not an SQLite database, another application's, or made by a newer mailflow."""


class DamagedDatabase(StoreUnusable):
    """An SQLite database of mailflow's that SQLite finds malformed; never repaired by mailflow."""


class ReadOnlyDatabase(StoreUnusable):
    """The database file or its folder is not writable."""


class SourceError(MailflowError):
    """A shop's API answered something mailflow cannot use (a 404, malformed JSON): that
    source is stopped for this run; what the store holds is still sent."""


class SourceUnavailable(SourceError):
    """A shop's API is down, too slow or keeps refusing for now (5xx, 429, timeouts, after
    retries): nothing was skipped, the next pull starts from the same watermark."""

    exit_code = ExitCode.UNAVAILABLE


class SourceRefused(SourceError):
    """A shop's API refused mailflow's credentials (401, 403): a human must fix them."""

    exit_code = ExitCode.BLOCKED
