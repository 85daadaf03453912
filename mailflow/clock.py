"""Time: parsing export timestamps and --now, durations, and the one storage format.

Every timestamp is stored as UTC ISO 8601 with a `Z` (`2025-05-11T13:55:16Z`), so that
text order is time order in SQL.

Naive timestamps are wall-clock times in the shop's timezone. Around DST changes we
choose deliberately: a time that does not exist (spring forward, 02:30 in Paris) is read
with the offset in force before the change, i.e. it lands one hour later (03:30 CEST);
a time that happens twice (fall back) is read as its first occurrence (summer time).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailflow.errors import UsageError

# Shopify CSV: "2025-05-11 09:55:16 -0400" (space before the offset)
_SPACED_OFFSET = re.compile(r"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d(?:\.\d+)?)?) ([+-]\d\d:?\d\d)$")
# Day-first dates as French exports and Excel re-saves write them: 11/05/2025 09:55[:16]
_DAY_FIRST = re.compile(
    r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})(?:[ T](\d{1,2}):(\d\d)(?::(\d\d))?)?$"
)
_DURATION_PART = re.compile(r"(\d+)\s*([smhdw])")
_DURATION_FULL = re.compile(r"^\s*(?:\d+\s*[smhdw]\s*)+$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
LONGEST_DURATION = timedelta(days=36500)
# Four-digit years only, so that stored text sorts as time; also keeps UTC conversion in range.
_FIRST_YEAR, _LAST_YEAR = 1000, 9998


class AssumedUTC(tzinfo):
    """UTC for naive timestamps when the shop set no timezone; `used` says whether a file
    needed it (the import then says its local times were read as UTC)."""

    def __init__(self) -> None:
        self.used = False

    def utcoffset(self, dt: datetime | None) -> timedelta:
        self.used = True
        return timedelta(0)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "UTC"


def timezone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"unknown timezone {name!r}: use an IANA name such as Europe/Paris") from exc


def localize(naive: datetime, tz: tzinfo) -> datetime:
    """A wall-clock time in `tz` as an aware datetime (fold=0: see the module docstring)."""
    return naive.replace(tzinfo=tz, fold=0)


@lru_cache(maxsize=8192)
def _parse_cached(text: str, tz: tzinfo) -> datetime:
    m = _SPACED_OFFSET.match(text)
    if m:
        text = f"{m.group(1)}{m.group(2)}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        m = _DAY_FIRST.match(text)
        if not m:
            raise ValueError(f"unreadable date {text!r}") from None
        day, month, year, hour, minute, second = m.groups()
        try:
            parsed = datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
            )
        except ValueError:
            raise ValueError(f"impossible date {text!r}") from None
    if not _FIRST_YEAR <= parsed.year <= _LAST_YEAR:
        raise ValueError(f"date {text!r} is out of range (years {_FIRST_YEAR}-{_LAST_YEAR})")
    if parsed.tzinfo is None:
        parsed = localize(parsed, tz)
    return parsed.astimezone(UTC)


def parse_timestamp(text: str | None, tz: tzinfo) -> datetime | None:
    """An export's timestamp as aware UTC; None for an empty cell; ValueError if unreadable."""
    if text is None:
        return None
    text = text.strip()
    if not text or text.lower() in ("null", "none", "0000-00-00 00:00:00", "0000-00-00"):
        return None
    return _parse_cached(text, tz)


@overload
def iso(moment: datetime) -> str: ...


@overload
def iso(moment: None) -> None: ...


@overload
def iso(moment: datetime | None) -> str | None: ...


def iso(moment: datetime | None) -> str | None:
    """The storage format: UTC, second precision, `Z`."""
    if moment is None:
        return None
    return _iso(moment)


@lru_cache(maxsize=4096)
def _iso(moment: datetime) -> str:
    # Memoised and built with isoformat: an import formats each order's few times ~10 times,
    # and strftime was the single biggest cost of writing a large import.
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


@overload
def from_iso(text: str) -> datetime: ...


@overload
def from_iso(text: None) -> None: ...


@overload
def from_iso(text: str | None) -> datetime | None: ...


def from_iso(text: str | None) -> datetime | None:
    """A stored time; None for none (NULL, or an empty text, which the store never writes)."""
    if not text:
        return None
    return datetime.fromisoformat(text)


def parse_now(text: str | None, tz: tzinfo) -> datetime:
    """`--now` (ISO 8601; naive means shop time), or the real clock."""
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        moment = parse_timestamp(text, tz)
    except ValueError:
        moment = None
    if moment is None:
        raise UsageError(f"--now {text!r} is not a timestamp: use ISO 8601, e.g. 2026-03-01T09:30")
    return moment


def parse_duration(text: str | int | float) -> timedelta:
    """`90s`, `20m`, `24h`, `7d`, `2w`, `1h30m`; a bare 0 is zero."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text == 0:
            return timedelta(0)
        raise ValueError(f"duration {text!r} needs a unit: s, m, h, d or w (e.g. 20m)")
    value = str(text).strip().lower()
    if value == "0":
        return timedelta(0)
    if not _DURATION_FULL.match(value):
        raise ValueError(f"bad duration {text!r}: use e.g. 90s, 20m, 24h, 7d or 1h30m")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    if seconds > LONGEST_DURATION.total_seconds():  # timedelta and dates overflow further on
        raise ValueError(f"duration {text!r} is too long (at most {LONGEST_DURATION.days}d)")
    return timedelta(seconds=seconds)
