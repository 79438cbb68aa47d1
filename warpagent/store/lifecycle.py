"""What one run does to the findings it touches: which are new, still open, re-opened or resolved.

A pure function over the run's report and the stored state of the estate's findings; the store
only reads that state and writes the verdict, so the rules are tested without a database.

- A complete run resolves an open finding that was not seen again on a host it observed, and
  findings on assets no longer in the estate's scope.
- A host that was down keeps its findings (not seen is not fixed), and so do findings on ports
  the run did not scan.
- A partial run resolves nothing; nor do checks that errored or could not run for want of intel,
  nor findings from a kind of host evidence that was not read for their host tonight (a missing
  export is not a fix).
- A finding seen again keeps its status (an accepted risk stays accepted); a resolved one re-opens.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import CheckError, Finding, FindingId, FindingStatus


@dataclass(frozen=True)
class RunReport:
    """What a run measured, handed to the store in one piece."""

    findings: tuple[Finding, ...]
    finished: dt.datetime
    complete: bool
    observed_assets: frozenset[str]  # hosts that answered (and evidence records)
    in_scope_assets: frozenset[str]
    hosts_scanned: int
    errors: tuple[str, ...] = ()
    check_errors: tuple[CheckError, ...] = ()
    scanned_ports: frozenset[tuple[str, int]] | None = None  # (protocol, port); None: every port
    unmeasured_checks: frozenset[str] = frozenset()
    unmeasured_categories: frozenset[str] = frozenset()
    evidence_read: frozenset[tuple[str, EvidenceKind]] = frozenset()  # (asset, kind)
    record_assets: frozenset[str] = frozenset()  # observed assets that are records, not hosts

    @property
    def hosts_up(self) -> int:
        return len(self.observed_assets - self.record_assets)

    @property
    def all_errors(self) -> tuple[str, ...]:
        return self.errors + tuple(f"check {e.check_id} on {e.asset}: {e.message}" for e in self.check_errors)


@dataclass(frozen=True)
class StoredFinding:
    """What the rules need to know of a finding already in the store."""

    id: FindingId
    asset: str
    check_id: str
    status: FindingStatus
    port: int | None = None
    protocol: str = ""
    evidence_kind: EvidenceKind | None = None


@dataclass(frozen=True)
class Verdict:
    new: tuple[FindingId, ...] = ()
    still_open: tuple[FindingId, ...] = ()  # seen again; keeps its status
    reopened: tuple[FindingId, ...] = ()
    resolved: Mapping[FindingId, str] = field(default_factory=dict)  # id -> why


def _resolution(stored: StoredFinding, report: RunReport, excused_checks: set[str]) -> str | None:
    if stored.check_id in excused_checks:
        return None
    if stored.evidence_kind is not None and (stored.asset, stored.evidence_kind) not in report.evidence_read:
        return None
    if (report.scanned_ports is not None and stored.port is not None
            and (stored.protocol, stored.port) not in report.scanned_ports):
        return None
    if stored.asset in report.observed_assets:
        return "not seen in a complete scan"
    if stored.asset not in report.in_scope_assets:
        return "asset no longer in the estate's scope"
    return None  # host down or unreachable tonight: not seen is not fixed


def decide(report: RunReport, stored: Iterable[StoredFinding]) -> Verdict:
    """`stored`: the estate's findings that are not resolved, and any of tonight's that are."""
    known = {s.id: s for s in stored}
    tonight = {f.id for f in report.findings}
    new, still_open, reopened = [], [], []
    for finding_id in dict.fromkeys(f.id for f in report.findings):
        was = known.get(finding_id)
        if was is None:
            new.append(finding_id)
        elif was.status is FindingStatus.RESOLVED:
            reopened.append(finding_id)
        else:
            still_open.append(finding_id)
    resolved: dict[FindingId, str] = {}
    if report.complete:
        excused = {e.check_id for e in report.check_errors} | set(report.unmeasured_checks)
        for item in known.values():
            if item.id in tonight or item.status is FindingStatus.RESOLVED:
                continue
            reason = _resolution(item, report, excused)
            if reason is not None:
                resolved[item.id] = reason
    return Verdict(new=tuple(new), still_open=tuple(still_open), reopened=tuple(reopened), resolved=resolved)
