"""STIX timestamps as the hub and the regional picture compare them. Pure functions; no I/O."""

from __future__ import annotations

import datetime as dt
import re

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def normal_timestamp(value: object) -> str | None:
    """A STIX timestamp in one fixed-width form (microseconds), so strings sort as times; None if not one."""
    if not isinstance(value, str) or not _TIMESTAMP.match(value):
        return None
    whole, _dot, fraction = value[:-1].partition(".")
    return f"{whole}.{(fraction + '000000')[:6]}Z"


def parse_timestamp(value: object) -> dt.datetime | None:
    normal = normal_timestamp(value)
    if normal is None:
        return None
    try:
        return dt.datetime.fromisoformat(normal[:-1]).replace(tzinfo=dt.UTC)
    except ValueError:  # the right shape but not a time (month 13)
        return None
