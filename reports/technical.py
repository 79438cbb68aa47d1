"""The technical report: every open finding by category and host, and what changed since the last one."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from checks.frameworks import Frameworks, table
from warpagent.model.findings import CATEGORIES, CATEGORY_NAMES, FindingStatus, TrackedFinding
from warpagent.scan.coverage import EstateCoverage


@dataclass(frozen=True)
class HostGroup:
    asset: str
    findings: tuple[TrackedFinding, ...]


@dataclass(frozen=True)
class CategoryGroup:
    category: str
    name: str
    hosts: tuple[HostGroup, ...]
    count: int


@dataclass(frozen=True)
class FrameworkGroup:
    """Open findings against one Cyber Essentials area or CAF contributing outcome."""

    framework: str  # "Cyber Essentials" or "CAF"
    ref: str  # the area's name or the outcome's id
    name: str
    findings: tuple[TrackedFinding, ...]


@dataclass(frozen=True)
class TechnicalReport:
    organisation: str
    generated: dt.datetime
    since: dt.datetime | None  # the previous technical report; None for the first
    categories: tuple[CategoryGroup, ...]
    open_count: int
    new: tuple[TrackedFinding, ...]
    resolved: tuple[TrackedFinding, ...]
    reopened: tuple[TrackedFinding, ...]
    coverage: tuple[EstateCoverage, ...] = ()  # per estate and category: measured, with what, or why not
    frameworks: tuple[FrameworkGroup, ...] = ()  # the same open findings by Cyber Essentials area and CAF outcome


def build(findings: Sequence[TrackedFinding], *, organisation: str, now: dt.datetime,
          since: dt.datetime | None, coverage: Sequence[EstateCoverage] = ()) -> TechnicalReport:
    open_findings = [t for t in findings if t.status is FindingStatus.OPEN]
    groups = []
    for category in CATEGORIES:
        by_host: dict[str, list[TrackedFinding]] = defaultdict(list)
        for tracked in open_findings:
            if tracked.finding.category == category:
                by_host[tracked.finding.asset].append(tracked)
        if by_host:
            hosts = tuple(HostGroup(asset=asset, findings=tuple(items)) for asset, items in sorted(by_host.items()))
            groups.append(CategoryGroup(category=category, name=CATEGORY_NAMES[category], hosts=hosts,
                                        count=sum(len(h.findings) for h in hosts)))

    def after(moment: dt.datetime | None) -> bool:
        return moment is not None and (since is None or moment > since)

    return TechnicalReport(
        organisation=organisation, generated=now, since=since, categories=tuple(groups),
        open_count=len(open_findings),
        new=tuple(t for t in open_findings if after(t.first_seen)),
        resolved=tuple(t for t in findings if t.status is FindingStatus.RESOLVED and after(t.resolved_at)),
        reopened=tuple(t for t in open_findings if after(t.reopened_at) and not after(t.first_seen)),
        coverage=tuple(coverage), frameworks=by_framework(open_findings, table()))


def by_framework(open_findings: Sequence[TrackedFinding], frameworks: Frameworks) -> tuple[FrameworkGroup, ...]:
    groups = [FrameworkGroup("Cyber Essentials", name, name, tuple(
        t for t in open_findings if area in frameworks.checks[t.finding.check_id][0]))
        for area, name in frameworks.cyber_essentials.items()]
    groups += [FrameworkGroup("CAF", outcome, name, tuple(
        t for t in open_findings if outcome in frameworks.outcomes_of(t.finding.check_id)))
        for outcome, name in frameworks.caf.items()]
    return tuple(groups)
