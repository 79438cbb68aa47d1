"""Counts leave a council only as buckets: an exact number would fingerprint it.

The one table of buckets: what a count becomes, the least count a bucket stands for (for
medians and sighting counts), and the bucket in words for people reading a shared note.
"""

from __future__ import annotations

from collections.abc import Iterable

_UPPER_BOUNDS = ((0, "0"), (1, "1"), (5, "2-5"), (20, "6-20"))
LABELS = ("0", "1", "2-5", "6-20", "21+")
FLOORS = {"0": 0, "1": 1, "2-5": 2, "6-20": 6, "21+": 21}
_WORDS = {"0": "none (0)", "1": "one (1)", "2-5": "between 2 and 5 (2-5)",
          "6-20": "between 6 and 20 (6-20)", "21+": "more than 20 (21+)"}


def bucket(count: int) -> str:
    for limit, label in _UPPER_BOUNDS:
        if count <= limit:
            return label
    return "21+"


def floor(label: str) -> int:
    """The least count the bucket stands for; 0 for anything that is not a bucket (a peer's
    figures are screened before they are kept, so that is a peer's old or odd data)."""
    return FLOORS.get(label, 0)


def rank(label: str) -> int:
    """The bucket's place in order (0 for "0" ... 4 for "21+"); buckets compare only by this."""
    return LABELS.index(label) if label in FLOORS else 0


def median(labels: Iterable[str]) -> str:
    """The median bucket (the lower of two middle ones): like is compared with like, never a
    count with a bucket's floor."""
    ranked = sorted(rank(label) for label in labels)
    if not ranked:
        raise ValueError("no buckets to take the median of")
    return LABELS[ranked[(len(ranked) - 1) // 2]]


def is_bucket(value: object) -> bool:
    return isinstance(value, str) and value in FLOORS  # a list or mapping is no bucket (and not hashable)


def words(label: str) -> str:
    return _WORDS.get(label, label)
