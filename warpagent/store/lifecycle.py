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
- A decision (accepted risk, false positive) whose date has passed lapses: the finding is open
  again, and is resolved like any open one if tonight's run says so.
- Every change is an event with the run's time: opened, re-opened, severity changed, became KEV,
  expired, resolved.
- A targeted re-scan (`scan --verify`) may resolve only the findings it was asked to verify, and
  says of each what it found: still there, gone, or not re-measured (the host did not answer).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import CheckError, EventKind, Finding, FindingId, FindingStatus, Severity


def lapsed_on(day: object) -> str:
    """The EXPIRED event's words, whether a run or the alerts step found the decision lapsed."""
    return f"the decision lapsed on {day}"


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
    intel: tuple[str, ...] | None = None  # the intel sources the checks had (None: not known)
    evidence_read: frozenset[tuple[str, EvidenceKind]] = frozenset()  # (asset, kind)
    record_assets: frozenset[str] = frozenset()  # observed assets that are records, not hosts
    # a targeted re-scan (scan --verify) of these findings: only they may be resolved
    verifying: frozenset[FindingId] | None = None

    @property
    def hosts_up(self) -> int:
        return len(self.observed_assets - self.record_assets)

    @property
    def all_errors(self) -> tuple[str, ...]:
        return tuple(self.errors) + tuple(f"check {e.check_id} on {e.asset}: {e.message}" for e in self.check_errors)


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
    severity: Severity | None = None
    kev: bool = False
    decided_until: dt.date | None = None

    def lapsed(self, day: dt.date) -> bool:
        return self.status.decided and self.decided_until is not None and self.decided_until < day


@dataclass(frozen=True)
class Verdict:
    new: tuple[FindingId, ...] = ()
    still_open: tuple[FindingId, ...] = ()  # seen again and open
    reopened: tuple[FindingId, ...] = ()
    still_decided: tuple[FindingId, ...] = ()  # seen again, accepted or a false positive: not counted as open
    resolved: Mapping[FindingId, str] = field(default_factory=dict)  # id -> why
    expired: tuple[FindingId, ...] = ()  # decisions that lapsed tonight: open again
    events: tuple[tuple[FindingId, EventKind, str], ...] = ()

    def status_after(self, finding_id: FindingId, before: FindingStatus | None) -> FindingStatus:
        if finding_id in self.resolved:
            return FindingStatus.RESOLVED
        if before is None or before is FindingStatus.RESOLVED or finding_id in self.expired:
            return FindingStatus.OPEN
        return before


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


def _changes(finding: Finding, was: StoredFinding) -> list[tuple[EventKind, str]]:
    changes = []
    if was.severity is not None and finding.severity is not was.severity:
        changes.append((EventKind.SEVERITY_CHANGED, f"{was.severity.label} to {finding.severity.label}"))
    if finding.kev_due is not None and not was.kev:
        changes.append((EventKind.BECAME_KEV, f"in CISA KEV, due {finding.kev_due}"))
    return changes


def decide(report: RunReport, stored: Iterable[StoredFinding]) -> Verdict:
    """`stored`: the estate's findings that are not resolved, and any of tonight's that are."""
    known = {s.id: s for s in stored}
    tonight = {f.id: f for f in report.findings}
    day = report.finished.date()
    expired = tuple(s.id for s in known.values() if s.lapsed(day))
    events: list[tuple[FindingId, EventKind, str]] = [
        (i, EventKind.EXPIRED, lapsed_on(known[i].decided_until)) for i in expired]
    new, still_open, reopened, still_decided = [], [], [], []
    for finding_id, finding in tonight.items():
        was = known.get(finding_id)
        if was is None:
            new.append(finding_id)
            events.append((finding_id, EventKind.OPENED, finding.severity.label))
            continue
        if was.status is FindingStatus.RESOLVED:
            reopened.append(finding_id)
            events.append((finding_id, EventKind.REOPENED, "seen again"))
        elif was.status.decided and finding_id not in expired:
            still_decided.append(finding_id)
        else:
            still_open.append(finding_id)
        events += [(finding_id, kind, detail) for kind, detail in _changes(finding, was)]
    resolved: dict[FindingId, str] = {}
    if report.complete:
        excused = {e.check_id for e in report.check_errors} | set(report.unmeasured_checks)
        for item in known.values():
            if item.id in tonight or item.status is FindingStatus.RESOLVED:
                continue
            if report.verifying is not None and item.id not in report.verifying:
                continue
            reason = _resolution(item, report, excused)
            if reason is not None:
                resolved[item.id] = reason
                events.append((item.id, EventKind.RESOLVED, reason))
    for finding_id in sorted(report.verifying or ()):
        said = ("re-measured: still there" if finding_id in tonight else "re-measured: gone" if finding_id in resolved
                else "not re-measured (the host did not answer, the scan was partial or the evidence was not read)")
        events.append((finding_id, EventKind.VERIFIED, said))
    return Verdict(new=tuple(new), still_open=tuple(still_open), reopened=tuple(reopened), resolved=resolved,
                   expired=expired, events=tuple(events), still_decided=tuple(still_decided))
