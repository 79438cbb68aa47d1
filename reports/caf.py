"""Evidence per NCSC CAF contributing outcome, for the council's CAF self-assessment: which
checks measure it, whether they measured it, and what is open against it now. Pure: the
store's findings in, rows out; csv, json and html are renderings of the same rows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from checks import ALL_CHECKS
from checks.frameworks import Frameworks
from reports import render
from warpagent.model.findings import FindingStatus, Severity, TrackedFinding
from warpagent.scan.coverage import INTEL_NAMES


@dataclass(frozen=True)
class OutcomeEvidence:
    outcome: str  # B4.d
    name: str
    checks: tuple[str, ...]  # the checks that are evidence for it
    measured: bool  # some check of it measured on the latest night of some estate
    open_findings: int
    open_by_severity: dict[str, int]
    decided: int  # accepted risks and false positives
    resolved: int
    examples: tuple[str, ...]  # the most severe open findings, "WA512 on 10.0.0.5: Telnet ..."
    # each check of it that measured, with the intel it had (empty: scan results or evidence alone)
    measured_with: dict[str, list[str]] = field(default_factory=dict)
    not_measured: tuple[str, ...] = ()  # its checks that did not measure (no intel or evidence, or never run)

    def check_words(self) -> list[str]:
        """Each check, whether it measured and with what, for the page."""
        words = []
        for check_id in self.checks:
            if check_id not in self.measured_with:
                words.append(f"{check_id} (not measured)")
                continue
            intel = ", ".join(INTEL_NAMES.get(s, s) for s in self.measured_with[check_id])
            words.append(f"{check_id} (measured{' with ' + intel if intel else ''})")
        return words


def build(findings: Sequence[TrackedFinding], measured_checks: Mapping[str, Sequence[str]],
          frameworks: Frameworks) -> list[OutcomeEvidence]:
    """`measured_checks`: each check the latest nights measured, with the intel it had
    (`coverage.measured_checks`); an outcome is measured only where one of its checks was."""
    rows = []
    for outcome, name in frameworks.caf.items():
        check_ids = tuple(c.id for c in ALL_CHECKS if outcome in frameworks.outcomes_of(c.id))
        mine = [t for t in findings if t.finding.check_id in check_ids]
        open_now = sorted((t for t in mine if t.status is FindingStatus.OPEN), key=lambda t: -t.finding.severity)
        rows.append(OutcomeEvidence(
            outcome=outcome, name=name, checks=check_ids,
            measured=any(c in measured_checks for c in check_ids),
            open_findings=len(open_now),
            open_by_severity={s.label: sum(1 for t in open_now if t.finding.severity is s)
                              for s in sorted(Severity, reverse=True)},
            decided=sum(1 for t in mine if t.status.decided),
            resolved=sum(1 for t in mine if t.status is FindingStatus.RESOLVED),
            examples=tuple(f"{t.finding.check_id} on {t.finding.asset}: {t.finding.title}" for t in open_now[:5]),
            measured_with={c: list(measured_checks[c]) for c in check_ids if c in measured_checks},
            not_measured=tuple(c for c in check_ids if c not in measured_checks)))
    return rows


def to_json(rows: Sequence[OutcomeEvidence]) -> str:
    return json.dumps({"caf": [asdict(r) for r in rows]}, indent=2) + "\n"


def to_csv(rows: Sequence[OutcomeEvidence]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["outcome", "name", "measured", "open_findings", *[s.label for s in sorted(Severity, reverse=True)],
                     "decided", "resolved", "checks", "checks_not_measured"])
    for r in rows:
        writer.writerow([r.outcome, r.name, "yes" if r.measured else "no", r.open_findings,
                         *r.open_by_severity.values(), r.decided, r.resolved, " ".join(r.checks),
                         " ".join(r.not_measured)])
    return out.getvalue()


def to_html(rows: Sequence[OutcomeEvidence], organisation: str, colour: str) -> str:
    return render.render("caf.html.j2", rows=rows, organisation=organisation, colour=colour)
