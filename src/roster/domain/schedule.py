"""When the daily pickup runs: a wall-clock time in the organization's time zone."""

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DAILY_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


class ScheduleError(ValueError):
    pass


def daily_time(text: str) -> time:
    """'02:00' -> time(2, 0); anything else is an error that says what is expected."""
    match = _DAILY_TIME.fullmatch(text.strip())
    if not match:
        raise ScheduleError(f"'{text}' is not a time of day: write it as HH:MM, e.g. 02:00")
    return time(int(match[1]), int(match[2]))


def zone(name: str) -> ZoneInfo:
    """An IANA time zone such as Europe/Amsterdam."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"'{name}' is not a time zone: use an IANA name such as Europe/Amsterdam"
        ) from None


def next_run(after: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The first moment strictly after `after` (aware) when the clock in `tz` shows `at`, in UTC.

    On the night clocks go forward a time that does not exist runs at the same distance past
    midnight in the new offset (02:30 becomes 03:30); on the night they go back it runs once, at
    the first of the two."""
    local = after.astimezone(tz)
    day = local.date()
    while True:
        candidate = datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
        if candidate > after:
            return candidate
        day += timedelta(days=1)
