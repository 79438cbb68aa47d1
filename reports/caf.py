"""Evidence per NCSC CAF contributing outcome, for the council's CAF self-assessment: which
checks measure it, whether they measured it, and what is open against it now. Pure: the
store's findings in, rows out; csv, json and html are renderings of the same rows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass

from checks import ALL_CHECKS, by_id
from checks.frameworks import Frameworks
from reports import render
from warpagent.model.findings import FindingStatus, Severity, TrackedFinding


@dataclass(frozen=True)
class OutcomeEvidence:
    outcome: str  # B4.d
    name: str
    checks: tuple[str, ...]  # the checks that are evidence for it
    measured: bool  # some check of it ran on the latest night of some estate
    open_findings: int
    open_by_severity: dict[str, int]
    decided: int  # accepted risks and false positives
    resolved: int
    examples: tuple[str, ...]  # the most severe open findings, "WA512 on 10.0.0.5: Telnet ..."


def build(findings: Sequence[TrackedFinding], measured_categories: Collection[str],
          frameworks: Frameworks) -> list[OutcomeEvidence]:
    rows = []
    for outcome, name in frameworks.caf.items():
        check_ids = tuple(c.id for c in ALL_CHECKS if outcome in frameworks.outcomes_of(c.id))
        mine = [t for t in findings if t.finding.check_id in check_ids]
        open_now = sorted((t for t in mine if t.status is FindingStatus.OPEN), key=lambda t: -t.finding.severity)
        rows.append(OutcomeEvidence(
            outcome=outcome, name=name, checks=check_ids,
            measured=any(by_id(c).category in measured_categories for c in check_ids),
            open_findings=len(open_now),
            open_by_severity={s.label: sum(1 for t in open_now if t.finding.severity is s)
                              for s in sorted(Severity, reverse=True)},
            decided=sum(1 for t in mine if t.status.decided),
            resolved=sum(1 for t in mine if t.status is FindingStatus.RESOLVED),
            examples=tuple(f"{t.finding.check_id} on {t.finding.asset}: {t.finding.title}" for t in open_now[:5])))
    return rows


def to_json(rows: Sequence[OutcomeEvidence]) -> str:
    return json.dumps({"caf": [asdict(r) for r in rows]}, indent=2) + "\n"


def to_csv(rows: Sequence[OutcomeEvidence]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["outcome", "name", "measured", "open_findings", *[s.label for s in sorted(Severity, reverse=True)],
                     "decided", "resolved", "checks"])
    for r in rows:
        writer.writerow([r.outcome, r.name, "yes" if r.measured else "no", r.open_findings,
                         *r.open_by_severity.values(), r.decided, r.resolved, " ".join(r.checks)])
    return out.getvalue()


def to_html(rows: Sequence[OutcomeEvidence], organisation: str, colour: str) -> str:
    return render.render("caf.html.j2", rows=rows, organisation=organisation, colour=colour)
