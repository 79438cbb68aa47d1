"""After `feeds update`: stored findings re-ranked against the new KEV and EPSS data at once,
without waiting for the next scan. Only urgency that rose is applied (a finding becomes KEV,
its EPSS or severity goes up); the next scan recomputes everything from what it sees."""

from __future__ import annotations

import datetime as dt

from checks.priority import prioritise
from feeds.model import Intel
from warpagent.model.findings import EventKind, FindingStatus, TrackedFinding
from warpagent.store import priorities
from warpagent.store.findings import Store


def _change(tracked: TrackedFinding, intel: Intel) -> priorities.Reprioritised | None:
    f = tracked.finding
    now_known = prioritise(f.cves, intel.cve_facts(f.cves))
    severity = max(f.severity, now_known.severity)
    kev_due = f.kev_due or now_known.kev_due
    epss = max((e for e in (f.epss, now_known.epss) if e is not None), default=None)
    events = []
    if severity is not f.severity:
        events.append((EventKind.SEVERITY_CHANGED, f"{f.severity.label} to {severity.label}"))
    if kev_due is not None and f.kev_due is None:
        events.append((EventKind.BECAME_KEV, f"in CISA KEV, due {kev_due}"))
    if not events and epss == f.epss:
        return None
    return priorities.Reprioritised(finding_id=tracked.id, severity=severity, kev_due=kev_due,
                                    ransomware=f.ransomware or now_known.ransomware, epss=epss,
                                    events=tuple(events))


def reprioritise(store: Store, intel: Intel, now: dt.datetime) -> list[priorities.Reprioritised]:
    """Open and decided findings with CVEs, re-ranked; returns what changed (already written)."""
    candidates = [t for t in store.findings() if t.status is not FindingStatus.RESOLVED and t.finding.cves]
    changes = [c for c in (_change(t, intel) for t in candidates) if c is not None]
    priorities.apply(store, changes, now)
    return changes
