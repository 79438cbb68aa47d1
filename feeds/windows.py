"""A Windows line's monthly ladder, and where a host's build stands on it.

A line is a (build, client or server) pair: 26100 is Windows 11 24H2 on UBRs near 8000 and
Server 2025 near 32000, so keying by build alone would call a Server 2025 host patched.

What a month brings a line is read from the fixes the month's document gives for it. The
documents repeat older fixes for revised CVEs (December's lists October's and November's KBs),
so the month's own update is the one that fixes most of its CVEs, not simply the highest build,
and a month that only repeats older KBs is no update month for the line (a release whose support
ended stays listed for months after its last update).
A hotpatch (or security-only) update reaches a lower UBR than the same month's cumulative
update (26100.7979 against 8037): a host at or above it has the month only when it is also
beyond the previous month's cumulative update, or a host on February's cumulative 7840 would
pass for March's hotpatch track.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from feeds.model import Month, WindowsUpdate


@dataclass(frozen=True)
class Standing:
    """A host's place on its line's ladder."""

    level: Month | None  # the latest month whose update it has (None: older than every month loaded)
    missing: tuple[Month, ...]  # the months after that, oldest first

    def cves_missing(self, ubr: int) -> tuple[str, ...]:
        """The CVEs the missing months fix that the host's own build does not."""
        return tuple(sorted({cve for month in self.missing for cve, fixed in month.fixed_at if fixed > ubr}))

    @property
    def exploited(self) -> frozenset[str]:
        return frozenset().union(*(m.exploited for m in self.missing))


def _most_fixing(updates: Sequence[WindowsUpdate]) -> WindowsUpdate | None:
    """The update of the month: the one that fixes the most CVEs (ties: the higher build)."""
    return max(updates, key=lambda u: (len(u.cves), u.ubr), default=None)


def ladder(updates: Iterable[WindowsUpdate]) -> tuple[Month, ...]:
    """One line's months, oldest first (every update given must be of one line)."""
    by_month: dict[str, list[WindowsUpdate]] = defaultdict(list)
    for update in updates:
        by_month[update.month].append(update)
    months: list[Month] = []
    highest = 0
    for month, found in sorted(by_month.items()):
        if max(u.ubr for u in found) <= highest:
            continue  # only older KBs repeated for revised CVEs: no update for this line that month
        highest = max(highest, *(u.ubr for u in found if u.kind == "cumulative"), 0)
        cumulative = _most_fixing([u for u in found if u.kind == "cumulative"])
        partial = _most_fixing([u for u in found if u.kind == "partial"
                                and (cumulative is None or u.ubr < cumulative.ubr)])
        fixed_at: dict[str, int] = {}
        for update in found:
            for cve in update.cves:
                fixed_at[cve] = min(fixed_at.get(cve, update.ubr), update.ubr)
        months.append(Month(
            month=month, released=min(u.released for u in found), product=(cumulative or found[0]).product,
            cumulative=cumulative.ubr if cumulative else None, cumulative_kb=cumulative.kb if cumulative else "",
            partial=partial.ubr if partial else None, partial_kb=partial.kb if partial else "",
            esu=all(u.esu for u in found), fixed_at=tuple(sorted(fixed_at.items())),
            exploited=frozenset(c for u in found for c in u.exploited)))
    return tuple(months)


def _has(month: Month, previous: Month | None, ubr: int) -> bool:
    if month.cumulative is not None and ubr >= month.cumulative:
        return True
    if month.partial is None or ubr < month.partial:
        return False
    if previous is None or previous.cumulative is None:
        return ubr == month.partial  # nothing to tell its track from an older cumulative: exactly it
    return ubr > previous.cumulative


def standing(months: Sequence[Month], ubr: int) -> Standing:
    """Where a host at this UBR stands: the latest month it has, and the months it lacks."""
    level = -1
    for index, month in enumerate(months):
        if _has(month, months[index - 1] if index else None, ubr):
            level = index
    return Standing(level=months[level] if level >= 0 else None, missing=tuple(months[level + 1:]))
