"""The accepted-risk register the board keeps: every finding the council decided to live with
(or showed not to be there), who owns that decision, why, and when it lapses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from reports import board_words
from warpagent.model.findings import FindingStatus, TrackedFinding

EXPIRING_WITHIN = dt.timedelta(days=30)


@dataclass(frozen=True)
class Decision:
    what: str  # the check's own one-line description, in plain words
    severity: str
    decision: str  # "accepted risk" or "false positive"
    owner: str
    reason: str
    until: dt.date | None
    expiring: bool  # lapses within 30 days of the report


def decisions(findings: Sequence[TrackedFinding], moment: dt.datetime) -> tuple[Decision, ...]:
    """Decided findings, soonest to lapse first (those with no date last)."""
    decided = [t for t in findings if t.status.decided]
    decided.sort(key=lambda t: (t.decided_until or dt.date.max, -t.finding.severity))
    return tuple(Decision(
        what=board_words.what(t.finding.check_id), severity=t.finding.severity.label,
        decision="accepted risk" if t.status is FindingStatus.ACCEPTED_RISK else "false positive",
        owner=t.decided_by or "not recorded", reason=t.status_reason, until=t.decided_until,
        expiring=t.decided_until is not None and t.decided_until <= (moment + EXPIRING_WITHIN).date())
        for t in decided)
