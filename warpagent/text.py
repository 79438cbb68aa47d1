"""Plain words for the CLI's messages."""

from __future__ import annotations

from collections.abc import Sequence


def counted(count: int, singular: str, plural: str = "") -> str:
    """A count with its noun in agreement: "1 host", "2 hosts", "1 address", "0 addresses"."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def first_few(items: Sequence[str], limit: int) -> str:
    """The first `limit` items joined, and how many more: "a, b and 3 more"."""
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f" and {more} more" if more > 0 else "")


def shown(text: str, limit: int = 80) -> str:
    """Untrusted text as a message may quote it: control and non-ASCII characters escaped (so a
    value can never start a new line or fake one), long values cut."""
    quoted = text.encode("unicode_escape").decode("ascii")
    return quoted if len(quoted) <= limit else quoted[:limit - 3] + "..."


def capped(line: str, limit: int = 400) -> str:
    """A problem line cut to a readable length, whatever the input it quotes."""
    return line if len(line) <= limit else line[:limit - 3] + "..."
