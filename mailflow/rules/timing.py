"""When a message is due, and quiet hours.

`after` durations in seconds, minutes and hours are elapsed time; days and weeks are
calendar days in the shop's timezone: a review request `after: 7d` from an order at
10:00 is due at 10:00 seven days later, even across a DST change (then 167 or 169 hours).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo

from mailflow.clock import localize

DAY = 86400


def add_after(moment: datetime, after: timedelta, tz: tzinfo) -> datetime:
    seconds = int(after.total_seconds())
    days, rest = divmod(seconds, DAY)
    if days:
        local = moment.astimezone(tz).replace(tzinfo=None) + timedelta(days=days)
        moment = localize(local, tz).astimezone(UTC)
    return moment + timedelta(seconds=rest)


def quiet_until(now: datetime, quiet: tuple[time, time] | None, tz: tzinfo) -> datetime | None:
    """If `now` falls in the quiet window (shop time), the instant the window ends."""
    if quiet is None:
        return None
    start, end = quiet
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if start <= end:
        inside = start <= clock < end
        end_day = local.date()
    else:  # over midnight, e.g. 21:00-08:00
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return localize(datetime.combine(end_day, end), tz).astimezone(UTC)
