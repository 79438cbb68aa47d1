"""How CVEs are ranked and how a finding's severity follows from them.

Priority: actively exploited first (CISA KEV, ransomware-linked first among them), then the
likelihood of exploitation (EPSS), then impact (CVSS). Severity follows the same order:

| rule | severity |
|---|---|
| any CVE in CISA KEV | critical (fix by the KEV due date) |
| EPSS >= 0.5 | critical |
| EPSS >= 0.1 | at least high |
| CVSS >= 9.0 / 7.0 / 4.0 / above 0 | critical / high / medium / low |
| no score known | medium (unknown is not harmless) |
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from feeds.model import CveFacts
from warpagent.model.findings import Severity

EPSS_CRITICAL = 0.5
EPSS_HIGH = 0.1


@dataclass(frozen=True)
class Priority:
    severity: Severity
    cves: tuple[str, ...]  # most urgent first
    kev_due: dt.date | None
    ransomware: bool
    epss: float | None
    cvss: float | None

    def describe(self, facts: Mapping[str, CveFacts], limit: int = 5) -> str:
        """One line per most urgent CVE: KEV with due date, EPSS, CVSS."""
        lines = []
        for cve in self.cves[:limit]:
            fact = facts.get(cve, CveFacts(cve))
            parts = [cve]
            if fact.kev:
                parts.append(f"actively exploited (CISA KEV, due {fact.kev.due_date.isoformat()}"
                             f"{', used by ransomware' if fact.kev.ransomware else ''})")
            if fact.epss:
                parts.append(f"EPSS {fact.epss.score:.2f}")
            if fact.cvss is not None:
                parts.append(f"CVSS {fact.cvss:.1f}{' ' + fact.severity if fact.severity else ''}")
            lines.append(", ".join(parts))
        if len(self.cves) > limit:
            lines.append(f"and {len(self.cves) - limit} more")
        return "; ".join(lines)


def _rank(fact: CveFacts) -> tuple[int, int, float, float, str]:
    return (0 if fact.kev else 1, 0 if fact.kev and fact.kev.ransomware else 1,
            -(fact.epss.score if fact.epss else 0.0), -(fact.cvss or 0.0), fact.cve)


def _from_cvss(score: float | None) -> Severity:
    if score is None:
        return Severity.MEDIUM
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    return Severity.LOW if score > 0 else Severity.INFO


def prioritise(cves: Iterable[str], facts: Mapping[str, CveFacts],
               fallback_cvss: Mapping[str, float | None] | None = None) -> Priority:
    """Rank CVEs and derive the finding's severity. `fallback_cvss` fills scores NVD lacks
    (a distribution's own CVSS from its advisory)."""
    fallback = fallback_cvss or {}
    known = []
    for cve in set(cves):
        fact = facts.get(cve, CveFacts(cve))
        if fact.cvss is None and fallback.get(cve) is not None:
            fact = CveFacts(cve=cve, cvss=fallback[cve], severity="", kev=fact.kev, epss=fact.epss,
                            description=fact.description)
        known.append(fact)
    known.sort(key=_rank)
    kev = [f.kev for f in known if f.kev]
    epss = max((f.epss.score for f in known if f.epss), default=None)
    cvss = max((f.cvss for f in known if f.cvss is not None), default=None)
    if kev:
        severity = Severity.CRITICAL
    else:
        severity = _from_cvss(cvss)
        if epss is not None and epss >= EPSS_CRITICAL:
            severity = Severity.CRITICAL
        elif epss is not None and epss >= EPSS_HIGH:
            severity = max(severity, Severity.HIGH)
    return Priority(severity=severity, cves=tuple(f.cve for f in known),
                    kev_due=min((k.due_date for k in kev), default=None),
                    ransomware=any(k.ransomware for k in kev), epss=epss, cvss=cvss)
