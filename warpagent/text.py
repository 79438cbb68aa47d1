"""Plain words for the CLI's messages."""

from __future__ import annotations


def counted(count: int, singular: str, plural: str = "") -> str:
    """A count with its noun in agreement: "1 host", "2 hosts", "1 address", "0 addresses"."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"
