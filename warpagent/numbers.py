"""Whole numbers read from hostile text: the one reading every parser uses.

Python's `int()` takes what no owner of these formats writes ('٣', '1_000', ' 7 ') and refuses
what passes `str.isdigit()` ('²'); a run of thousands of digits costs time and overflows dates.
Here a number is ASCII digits only, with a sign only where the format has one, and a bounded
length; anything else is a `NotANumber` that names the field, never a traceback.
"""

from __future__ import annotations

import re

from warpagent.text import shown

MAX_DIGITS = 19  # a signed 64-bit value, the widest any format read here holds (AD intervals)
_DIGITS = re.compile(r"[0-9]+")


class NotANumber(ValueError):
    """Text that is not a whole number of the expected size; the message names the field."""

    def __init__(self, field: str, text: str, why: str = "not a whole number") -> None:
        super().__init__(f"{field} is '{shown(text, 40)}', {why}")
        self.field = field


def whole(text: str, field: str, *, signed: bool = False, digits: int = MAX_DIGITS,
          minimum: int | None = None, maximum: int | None = None) -> int:
    """`text` as a whole number, or NotANumber naming `field`."""
    body = text[1:] if signed and text[:1] in ("-", "+") else text
    if not _DIGITS.fullmatch(body):
        raise NotANumber(field, text)
    if len(body.lstrip("0")) > digits:
        raise NotANumber(field, text, f"more than {digits} digits")
    value = int(text)
    if minimum is not None and value < minimum:
        raise NotANumber(field, text, f"below {minimum}")
    if maximum is not None and value > maximum:
        raise NotANumber(field, text, f"above {maximum}")
    return value


def whole_or_none(text: str, field: str = "value", *, signed: bool = False, digits: int = MAX_DIGITS,
                  minimum: int | None = None, maximum: int | None = None) -> int | None:
    """`text` as a whole number, or None where it is not one (for formats that ignore bad values)."""
    try:
        return whole(text, field, signed=signed, digits=digits, minimum=minimum, maximum=maximum)
    except NotANumber:
        return None
