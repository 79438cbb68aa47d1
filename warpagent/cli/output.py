"""Output formats for findings and scan summaries. Reporters return strings; the CLI prints."""

from __future__ import annotations

import csv
import enum
import io
import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from checks import frameworks
from warpagent.model.findings import CATEGORIES, Severity, TrackedFinding
from warpagent.scan import coverage
from warpagent.scan.pipeline import ScanOutcome
from warpagent.text import counted


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"

    def render(self, findings: Sequence[TrackedFinding]) -> str:
        renderers: dict[OutputFormat, Callable[[Sequence[TrackedFinding]], str]] = {
            OutputFormat.TABLE: findings_table, OutputFormat.JSON: findings_json,
            OutputFormat.CSV: findings_csv}
        return renderers[self](findings)


# Every field of the JSON record, in the order a spreadsheet reader wants them: the accepted-risk
# register and the frameworks must survive an export to CSV as they do to JSON.
CSV_COLUMNS = ("id", "estate", "asset", "port", "protocol", "subject", "category", "check_id", "severity", "status",
               "status_reason", "decided_by", "decided_until", "title", "evidence", "remediation", "cves", "kev",
               "kev_due", "ransomware", "epss", "cvss", "product", "version", "cpe", "cyber_essentials", "caf",
               "first_seen", "last_seen", "resolved_at")
SHORT_ID = 10  # enough to be unique in any store; decisions and `findings show` take 6 or more


def finding_record(tracked: TrackedFinding) -> dict[str, Any]:
    f = tracked.finding
    return {
        "id": tracked.id, "estate": f.estate, "asset": f.asset, "port": f.port, "protocol": f.protocol,
        "subject": f.subject, "category": f.category, "check_id": f.check_id, "severity": f.severity.label,
        "status": tracked.status.value, "title": f.title, "evidence": f.evidence,
        "remediation": f.remediation, "cves": list(f.cves), "product": f.product, "version": f.version,
        "cpe": f.cpe, "kev": f.kev_due is not None, "kev_due": f.kev_due.isoformat() if f.kev_due else None,
        "ransomware": f.ransomware, "epss": f.epss, "cvss": f.cvss,
        "first_seen": tracked.first_seen.isoformat(), "last_seen": tracked.last_seen.isoformat(),
        "resolved_at": tracked.resolved_at.isoformat() if tracked.resolved_at else None,
        "status_reason": tracked.status_reason, "decided_by": tracked.decided_by or None,
        "decided_until": tracked.decided_until.isoformat() if tracked.decided_until else None,
        "cyber_essentials": list(frameworks.table().areas_of(f.check_id)),
        "caf": list(frameworks.table().outcomes_of(f.check_id)),
    }


def findings_json(findings: Sequence[TrackedFinding]) -> str:
    return json.dumps({"findings": [finding_record(t) for t in findings]}, indent=2) + "\n"


def findings_csv(findings: Sequence[TrackedFinding]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for tracked in findings:
        record = finding_record(tracked)
        record["cves"] = " ".join(record["cves"])
        record["cyber_essentials"] = "; ".join(record["cyber_essentials"])
        record["caf"] = " ".join(record["caf"])
        writer.writerow({k: _csv_safe(v) for k, v in record.items()})
    return buffer.getvalue()


def _csv_safe(value: object) -> object:
    # A cell that starts with = + - @ is run as a formula by spreadsheets; evidence comes from
    # the network, so it is neutralised before a council officer opens the CSV in Excel.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def findings_table(findings: Sequence[TrackedFinding]) -> str:
    if not findings:
        return "No findings match.\n"
    rows = [("ID", "ESTATE", "SEVERITY", "CATEGORY", "CHECK", "ASSET", "PORT", "STATUS", "FIRST SEEN", "TITLE")]
    for t in findings:
        f = t.finding
        rows.append((t.id[:SHORT_ID], f.estate, f.severity.label, f.category, f.check_id, f.asset,
                     f.subject if f.port else "-", t.status.value, t.first_seen.strftime("%Y-%m-%d"), f.title))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
             for row in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _counts(findings: Sequence[TrackedFinding]) -> dict[str, Any]:
    by_severity = Counter(t.finding.severity.label for t in findings)
    by_category = Counter(t.finding.category for t in findings)
    return {
        "by_severity": {s.label: by_severity.get(s.label, 0) for s in sorted(Severity, reverse=True)},
        "by_category": {c: by_category.get(c, 0) for c in CATEGORIES},
    }


def scan_summary(outcome: ScanOutcome, open_findings: Sequence[TrackedFinding]) -> dict[str, Any]:
    delta = outcome.delta
    run = delta.run
    return {
        "estate": run.estate, "run_id": run.id, "status": run.status.value,
        "started": run.started.isoformat(), "finished": run.finished.isoformat() if run.finished else None,
        "addresses_in_scope": len(outcome.scope.addresses), "addresses_excluded": outcome.scope.excluded,
        "hosts_scanned": run.hosts_scanned, "hosts_up": run.hosts_up,
        "new": len(delta.new), "still_open": len(delta.still_open), "reopened": len(delta.reopened),
        "still_decided": len(delta.still_decided),
        "resolved": len(delta.resolved), "open": len(open_findings),
        **_counts(open_findings), "problems": list(run.errors), "unmeasured": list(run.unmeasured),
        "coverage": [{"category": c.category, "measured": c.measured, "intel": list(c.intel),
                      "missing_intel": list(c.missing), "lifecycle_unknown": list(c.lifecycle_unknown),
                      "detail": c.describe()}
                     for c in coverage.categories(run.unmeasured, outcome.intel_sources,
                                                  lifecycle_unknown=outcome.lifecycle_unknown)],
    }


def scan_json(results: Sequence[tuple[ScanOutcome, Sequence[TrackedFinding]]]) -> str:
    findings = []
    for outcome, open_findings in results:
        new = set(outcome.delta.new) | set(outcome.delta.reopened)
        findings += [{**finding_record(t), "change": "new" if t.id in new else "open"} for t in open_findings]
    payload = {"summary": [scan_summary(o, f) for o, f in results], "findings": findings}
    return json.dumps(payload, indent=2) + "\n"


def scan_text(results: Sequence[tuple[ScanOutcome, Sequence[TrackedFinding]]]) -> str:
    lines: list[str] = []
    for outcome, open_findings in results:
        s = scan_summary(outcome, open_findings)
        lines.append(f"Estate {s['estate']}: run {s['run_id']} {s['status']} - {counted(s['hosts_up'], 'host')} up "
                     f"of {counted(s['addresses_in_scope'], 'address', 'addresses')} in scope "
                     f"({s['addresses_excluded']} excluded)")
        decided = f", {s['still_decided']} seen again but decided (accepted or false positive)" \
            if s["still_decided"] else ""
        lines.append(f"  {s['new']} new, {s['reopened']} re-opened, {s['still_open']} still open, "
                     f"{s['resolved']} resolved{decided}; {s['open']} open in total")
        severities = ", ".join(f"{n} {label}" for label, n in s["by_severity"].items() if n)
        if severities:
            lines.append(f"  open by severity: {severities}")
        new_ids = set(outcome.delta.new) | set(outcome.delta.reopened)
        for t in open_findings:
            if t.id in new_ids:
                lines.append(f"  NEW  {t.finding.severity.label:<8} {t.finding.asset}  {t.finding.title}")
        for problem in s["problems"]:
            lines.append(f"  ! {problem}")
        lines.append("  coverage (a category not measured is shown as N/A, never as clean):")
        lines += [f"    {c['category']:<13} {c['detail']}" for c in s["coverage"]]
    return "\n".join(lines) + "\n"
