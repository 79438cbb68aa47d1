"""The one clock warpagent reads, and the council's calendar months.

Everything that asks "what time is it?" (the CLI, the daemon's jobs, the scan) calls `now()`, so a
test can fix the time for a whole process tree through one seam: the environment variable
WARPAGENT_TEST_NOW, an ISO 8601 time with its offset (`2027-12-31T23:59:59+00:00`). It exists for
tests only and is documented as such; it never changes when the scheduler fires, only what the
jobs it fires believe the time is.

Months are the council's months: a report "for November" covers November in the configured time
zone (schedule.timezone, Europe/London by default), so 00:30 BST on 1 July is July, not June.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo

from warpagent.errors import ConfigError

TEST_NOW_ENV = "WARPAGENT_TEST_NOW"


def now() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    fixed = os.environ.get(TEST_NOW_ENV)
    if not fixed:
        return dt.datetime.now(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(fixed)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError([f"{TEST_NOW_ENV}: '{fixed[:40]}' is not an ISO 8601 time with an offset; "
                           "write it as 2027-12-31T23:59:59+00:00, or unset it (it is for tests only)"])
    return moment.astimezone(dt.UTC)


def zone(name: str) -> dt.tzinfo:
    """The IANA time zone `name` (validated by check-config; UTC where it is not one)."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return dt.UTC


def month_of(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """The YYYY-MM month that `moment` falls in, on the council's calendar."""
    return moment.astimezone(tz).strftime("%Y-%m")


def month_start(month: str, tz: dt.tzinfo) -> dt.datetime:
    """The first instant (in UTC) of a YYYY-MM month on the council's calendar."""
    year, number = (int(part) for part in month.split("-"))
    return dt.datetime(year, number, 1, tzinfo=tz).astimezone(dt.UTC)


def shift_month(month: str, by: int) -> str:
    """The YYYY-MM month `by` months after (negative: before) `month`."""
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + number - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_bounds(month: str, now_: dt.datetime, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """(start, end) of a YYYY-MM month in UTC; the end is `now_` for the month in progress."""
    return month_start(month, tz), min(month_start(shift_month(month, 1), tz), now_)
