"""The board's coverage in a board member's words: what each estate's scan could not reach, and
how old the intelligence the checks used is; never a command, a path or a setting."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from feeds.model import SourceStatus
from warpagent.model.findings import RunStatus, ScanRun
from warpagent.scan.coverage import INTEL_NAMES
from warpagent.text import counted


@dataclass(frozen=True)
class EstateCoverage:
    estate: str
    last_run: str
    status: str
    hosts_up: int
    not_scanned: str  # in a board member's words: what the scan could not reach, never a command

    @classmethod
    def of(cls, run: ScanRun, tz: dt.tzinfo) -> EstateCoverage:
        return cls(estate=run.estate, last_run=run.started.astimezone(tz).strftime("%d %b %Y %H:%M"),
                   status=run.status.value, hosts_up=run.hosts_up, not_scanned=not_scanned(run))


def not_scanned(run: ScanRun) -> str:
    """What a run could not reach, for a board: the technical report has the detail and the fix."""
    if run.status is RunStatus.FAILED:
        return "the scan did not finish; nothing was measured that night"
    if run.status is RunStatus.PARTIAL:
        return ("part of the estate (hosts or evidence) could not be read; the technical report lists "
                f"{counted(len(run.errors), 'problem')}")
    return "nothing"


@dataclass(frozen=True)
class IntelCoverage:
    """One intelligence source the checks used, in the board's words."""

    name: str
    as_of: str  # "25 Aug 2025", or "" when the source has no data
    bundled: bool  # the dated snapshot shipped with warpagent, not a download
    age: str = ""  # "14 months old", in the board's words; "" when the source has no data


def age_words(then: dt.date, today: dt.date) -> str:
    """How old intelligence is, as a board member would say it."""
    days = (today - then).days
    if days < 1:
        return "up to date today"
    if days < 31:
        return f"{counted(days, 'day')} old"
    months = (today.year - then.year) * 12 + today.month - then.month - (today.day < then.day)
    return f"{counted(max(months, 1), 'month')} old"


def intel_coverage(statuses: Sequence[SourceStatus], wanted: Sequence[str],
                   today: dt.date) -> tuple[IntelCoverage, ...]:
    """Each source the checks want: its date and its age on `today`, in words."""
    by_source = {s.source: s for s in statuses}
    lines = []
    for source in wanted:
        status = by_source.get(source)
        when = (status.bundled or (status.updated.date() if status.updated else None)) if status else None
        lines.append(IntelCoverage(name=INTEL_NAMES.get(source, source), as_of=f"{when:%d %b %Y}" if when else "",
                                   bundled=bool(status and status.bundled),
                                   age=age_words(when, today) if when else ""))
    return tuple(lines)
