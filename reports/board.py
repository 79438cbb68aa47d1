"""What the board report says, computed from the store: pure functions, no I/O, no clock.

RAG rules (per category; thresholds from reports.rag, defaults after common deadlines):
- grey: not measured - no check of this category has run yet;
- red: an open finding with an actively exploited CVE (CISA KEV) older than kev_days (14), an
  open critical finding older than critical_days (14), or an open high older than high_days (14:
  Cyber Essentials' deadlines);
- amber: any open critical or high finding still within its deadline, or an open medium
  older than medium_days (90);
- green: none of the above.
Accepted risks are not counted as open. Peer figures resting on fewer than k members are
withheld and shown as "fewer than k".
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from checks import ALL_CHECKS, frameworks
from reports import board_words, register, summary
from reports.board_coverage import EstateCoverage, IntelCoverage
from warpagent import clock
from warpagent.config import RagRules
from warpagent.model.findings import (
    CATEGORIES,
    CATEGORY_NAMES,
    RunStatus,
    ScanRun,
    Severity,
    TrackedFinding,
)
from warpagent.scan.coverage import EstateCoverage as Measured
from warpagent.sharing import buckets
from warpagent.sharing.regional import Figure

TREND_MONTHS = 6


@dataclass(frozen=True)
class PeerComparison:
    members: int  # peers with a measured posture in this category (0 when withheld)
    withheld: bool  # fewer than k peers: nothing more is shown
    with_open_share: int | None  # percentage of peers with open weaknesses; None where withheld
    standing: str  # plain words: where the council stands


@dataclass(frozen=True)
class CategoryStatus:
    category: str
    name: str
    measured: bool
    rag: str  # red, amber, green, grey
    rule: str  # the rule that set the colour, in plain words
    open_by_severity: tuple[tuple[str, int], ...]
    open_total: int  # weaknesses open: critical to low (what the colour is about)
    trend: tuple[int | None, ...]  # open at the end of each of the last months, oldest first; None: not yet measured
    peer: PeerComparison | None
    open_info: int = 0  # notes for information, open beside them, counted apart so "5 open" never hides 4 notes


@dataclass(frozen=True)
class Risk:
    check_id: str
    category: str
    severity: str
    what: str
    why: str
    action: str
    assets: int
    oldest_days: int


@dataclass(frozen=True)
class Gauge:
    """CISA Cyber Hygiene's gauge: the oldest open finding of a kind against its deadline."""

    label: str  # "Actively exploited (CISA KEV)", "Critical", "High"
    deadline_days: int
    oldest_days: int | None  # None: none open
    what: str = ""

    @property
    def over(self) -> bool:
        return self.oldest_days is not None and self.oldest_days > self.deadline_days

    @property
    def share(self) -> float:
        """The oldest one's age as a share of its deadline, drawn up to twice the deadline."""
        return 0.0 if self.oldest_days is None else min(2.0, self.oldest_days / self.deadline_days)


@dataclass(frozen=True)
class Remediation:
    median_days: tuple[tuple[str, float | None, int], ...]  # (severity, median days to fix, fixed count)
    new_in_month: int
    fixed_in_month: int
    oldest_critical: tuple[int, str] | None  # (days open, what)
    oldest_high: tuple[int, str] | None
    past_deadline: int
    kev_open: int | None = None  # open findings with a CISA KEV CVE; None when patches is not measured
    kev_past_due: int = 0  # of those, open longer than the KEV deadline
    kev_days: int = RagRules.kev_days
    gauges: tuple[Gauge, ...] = ()


@dataclass(frozen=True)
class BoardReport:
    organisation: str
    title: str
    month: str  # "November 2026"
    period_end: dt.datetime
    months: tuple[str, ...]  # trend labels, oldest first ("Jun", ...)
    categories: tuple[CategoryStatus, ...]
    risks: tuple[Risk, ...]
    remediation: Remediation
    coverage: tuple[EstateCoverage, ...]
    peers_available: bool
    k: int
    peer_source: str = ""  # where the peer figures come from, in plain words
    intel: tuple[IntelCoverage, ...] = ()
    measured_with: tuple[Measured, ...] = ()  # per estate and category: measured, with what
    decisions: tuple[register.Decision, ...] = ()  # the accepted-risk register
    summary: summary.Summary | None = None  # the opening: position, changes, decisions asked for


def _open_at(tracked: TrackedFinding, moment: dt.datetime) -> bool:
    if tracked.status.decided or tracked.first_seen > moment:
        return False
    return tracked.resolved_at is None or tracked.resolved_at > moment


def rag_for(items: Sequence[TrackedFinding], moment: dt.datetime, rules: RagRules) -> tuple[str, str]:
    def late(deadline: str) -> int:
        return sum(1 for t in items if rules.past(deadline, t, moment))

    late_kev, late_critical, late_high = late("kev"), late("critical"), late("high")
    if late_kev or late_critical or late_high:
        parts = [f"{n} actively exploited (CISA KEV) open longer than {rules.kev_days} days" for n in [late_kev] if n]
        parts += [f"{n} critical open longer than {rules.critical_days} days" for n in [late_critical] if n]
        parts += [f"{n} high open longer than {rules.high_days} days" for n in [late_high] if n]
        return "red", "Red: " + " and ".join(parts)
    urgent = [t for t in items if t.finding.severity >= Severity.HIGH]
    late_medium = late("medium")
    if urgent or late_medium:
        # why amber and not red, visibly: each is still within its deadline, and the first falls due on a day
        due = min(t.first_seen + dt.timedelta(days=rules.critical_days if t.finding.severity is Severity.CRITICAL
                                              else rules.high_days) for t in urgent) if urgent else None
        parts = [f"{len(urgent)} critical or high open, still within {'its' if len(urgent) == 1 else 'their'} "
                 f"deadline (the first falls due on {due.day} {due:%B})" for _ in [0] if due]
        parts += [f"{late_medium} medium open longer than {rules.medium_days} days" for _ in [0] if late_medium]
        return "amber", "Amber: " + " and ".join(parts)
    return "green", (f"Green: no critical or high weaknesses open and no medium older than "
                     f"{rules.medium_days} days")


def _trend_points(end: dt.datetime, tz: dt.tzinfo) -> list[dt.datetime]:
    """The ends of the trend's months, oldest first: each month's end is the next one's start."""
    month = clock.month_of(end - dt.timedelta(microseconds=1), tz)  # a finished month ends on the 1st of the next
    return [clock.month_start(clock.shift_month(month, -back), tz) for back in range(TREND_MONTHS - 2, -1, -1)] + [end]


def standing(own_open: int, median_bucket: str) -> str:
    """The council's open count, in the bucket peers share theirs in, against the peers' median
    bucket: four open where peers share "2-5" is in line with them, not twice their floor."""
    own, median = buckets.rank(buckets.bucket(own_open)), buckets.rank(median_bucket)
    if own < median:
        return "fewer open weaknesses than most peers"
    if own > median:
        return "more open weaknesses than most peers"
    return "in line with peers"


def peer_comparison(category: str, own_open: int, postures: Sequence[Mapping[str, Any]], k: int) -> PeerComparison:
    peers = [p for p in postures if p.get("category") == category and p.get("measured")]
    if len(peers) < k:
        return PeerComparison(members=0, withheld=True, with_open_share=0,
                              standing=f"fewer than {k} peers have shared this: not shown")
    shared = [str(p.get("open_findings", "0")) for p in peers]
    share = round(100 * sum(1 for label in shared if buckets.floor(label) > 0) / len(peers))
    return PeerComparison(members=len(peers), withheld=False, with_open_share=share,
                          standing=standing(own_open, buckets.median(shared)))


def regional_comparison(category: str, own_open: int, picture: Mapping[str, Any]) -> PeerComparison:
    """Where the council stands against the WARP's published regional picture (already k-protected)."""
    k = int(picture.get("k_threshold", 3))
    entry = next((c for c in picture.get("categories", []) if isinstance(c, Mapping) and c.get("category") == category),
                 {})
    measured, with_open = Figure.from_dict(entry.get("measured")), Figure.from_dict(entry.get("with_open"))
    if measured.withheld or not measured.count:
        return PeerComparison(members=0, withheld=True, with_open_share=None,
                              standing=f"fewer than {k} WARP members measure this: not shown")
    median = entry.get("median_open")
    said = standing(own_open, median) if isinstance(median, str) and buckets.is_bucket(median) else "not shown"
    return PeerComparison(members=int(measured.count), withheld=False, with_open_share=with_open.percent,
                          standing=said)


def first_measured_at(runs: Sequence[ScanRun], end: dt.datetime) -> dict[str, dt.datetime]:
    """Each category some finished scan had measured by `end`, with when it first did; of those,
    only the ones the latest finished scan of some estate still measures (the others are stale)."""
    finished = sorted((r for r in runs if r.status in (RunStatus.COMPLETE, RunStatus.PARTIAL) and r.started <= end),
                      key=lambda r: r.started)
    first: dict[str, dt.datetime] = {}
    for run in finished:
        for category in set(CATEGORIES) - set(run.unmeasured):
            first.setdefault(category, run.started)
    latest = {r.estate: r for r in finished}
    now_measured = {c for r in latest.values() for c in set(CATEGORIES) - set(r.unmeasured)}
    return {c: when for c, when in first.items() if c in now_measured}


def _gauges(open_now: Sequence[TrackedFinding], end: dt.datetime, rules: RagRules) -> tuple[Gauge, ...]:
    def oldest(items: list[TrackedFinding], label: str, deadline: int) -> Gauge:
        if not items:
            return Gauge(label, deadline, None)
        first = min(items, key=lambda t: t.first_seen)
        return Gauge(label, deadline, (end - first.first_seen).days, board_words.what(first.finding.check_id))

    return (oldest([t for t in open_now if t.finding.kev_due], "Actively exploited (CISA KEV)", rules.kev_days),
            oldest([t for t in open_now if t.finding.severity is Severity.CRITICAL], "Critical", rules.critical_days),
            oldest([t for t in open_now if t.finding.severity is Severity.HIGH], "High", rules.high_days))


def build(findings: Sequence[TrackedFinding], runs: Sequence[ScanRun], *, organisation: str, title: str,
          month: str, now: dt.datetime, rules: RagRules, peer_postures: Sequence[Mapping[str, Any]] = (),
          k: int = 3, measured: Collection[str] | None = None,
          regional: Mapping[str, Any] | None = None, tz: dt.tzinfo = dt.UTC,
          intel: tuple[IntelCoverage, ...] = (),
          measured_with: tuple[Measured, ...] = ()) -> BoardReport:
    """The board report for `month` on the council's calendar (`tz`). Peer figures come from the
    WARP's regional picture when one has been pulled (every member counted, k-protected by the
    hub), else from peers' own postures."""
    start, end = clock.month_bounds(month, now, tz)
    first_measured = first_measured_at(runs, end)
    # green only where a finished scan by the period's end measured the category: a month before
    # the first scan, or a category no scan could measure, is "not measured", never clean
    measured = set(measured if measured is not None else {c.category for c in ALL_CHECKS}) & set(first_measured)
    open_now = [t for t in findings if _open_at(t, end)]
    points = _trend_points(end, tz)

    categories = []
    for category in CATEGORIES:
        items = [t for t in open_now if t.finding.category == category]
        in_category = [t for t in findings if t.finding.category == category]
        if category in measured:
            rag, rule = rag_for(items, end, rules)
        elif category not in first_measured:
            rag, rule = "grey", f"Not measured: no scan had measured this by {end.astimezone(tz):%d %B %Y}"
        else:
            rag, rule = "grey", "Not measured now: the latest scans could not measure this (see Coverage)"
        categories.append(CategoryStatus(
            category=category, name=CATEGORY_NAMES[category], measured=category in measured, rag=rag, rule=rule,
            open_by_severity=tuple((s.label, sum(1 for t in items if t.finding.severity is s))
                                   for s in sorted(Severity, reverse=True)),
            open_total=sum(1 for t in items if t.finding.severity > Severity.INFO),
            open_info=sum(1 for t in items if t.finding.severity is Severity.INFO),
            trend=tuple(sum(1 for t in in_category if _open_at(t, p))
                        if category in first_measured and first_measured[category] <= p else None for p in points),
            peer=regional_comparison(category, len(items), regional) if regional
            else peer_comparison(category, len(items), peer_postures, k) if peer_postures else None))

    by_check: dict[str, list[TrackedFinding]] = defaultdict(list)
    for tracked in open_now:
        by_check[board_words.risk_key(tracked.finding)].append(tracked)
    ranked = sorted(by_check.items(), key=lambda item: (
        -max(t.finding.severity for t in item[1]), -len({t.finding.asset for t in item[1]}),
        min(t.first_seen for t in item[1])))
    risks = []
    for key, items in ranked[:5]:
        check_id = items[0].finding.check_id
        fixed = sum(1 for t in findings if board_words.risk_key(t.finding) == key and t.resolved_at
                    and start <= t.resolved_at <= end)
        assets = len({t.finding.asset for t in items})
        oldest = max((end - t.first_seen).days for t in items)
        risks.append(Risk(
            check_id=check_id, category=items[0].finding.category,
            severity=max(t.finding.severity for t in items).label, what=board_words.what_of(items[0].finding),
            why=board_words.why(check_id),
            action=f"{board_words.action(items[0].finding.category)} {fixed} fixed this month; {assets} "
                   f"system{'s' if assets != 1 else ''} still affected, the oldest for {oldest} days.",
            assets=assets, oldest_days=oldest))

    year_ago = end - dt.timedelta(days=365)
    medians = []
    for severity in sorted(Severity, reverse=True):
        days = [(t.resolved_at - t.first_seen).total_seconds() / 86400 for t in findings
                if t.resolved_at and t.finding.severity is severity and year_ago <= t.resolved_at <= end]
        medians.append((severity.label, round(statistics.median(days), 1) if days else None, len(days)))

    def oldest_of(severity: Severity) -> tuple[int, str] | None:
        items = [t for t in open_now if t.finding.severity is severity]
        if not items:
            return None
        first = min(items, key=lambda t: t.first_seen)
        return (end - first.first_seen).days, board_words.what(first.finding.check_id)

    past_deadline = sum(1 for t in open_now if rules.past("critical", t, end) or rules.past("high", t, end))
    remediation = Remediation(
        median_days=tuple(medians), new_in_month=sum(1 for t in findings if start <= t.first_seen <= end),
        fixed_in_month=sum(1 for t in findings if t.resolved_at and start <= t.resolved_at <= end),
        oldest_critical=oldest_of(Severity.CRITICAL), oldest_high=oldest_of(Severity.HIGH),
        past_deadline=past_deadline,
        kev_open=sum(1 for t in open_now if t.finding.kev_due) if "patches" in measured else None,
        kev_past_due=sum(1 for t in open_now if rules.past("kev", t, end)),
        gauges=_gauges(open_now, end, rules),
        kev_days=rules.kev_days)

    latest: dict[str, ScanRun] = {}
    for run in sorted(runs, key=lambda r: r.started):
        if run.started <= end:
            latest[run.estate] = run
    scans = tuple(EstateCoverage.of(r, tz) for r in latest.values())
    decided = register.decisions(findings, end)
    before = [c.trend[-2] for c in categories if len(c.trend) >= 2 and c.trend[-2] is not None]
    opening = summary.build(
        rags=[c.rag for c in categories], open_now=[t for t in open_now if t.finding.category in measured],
        new=remediation.new_in_month, fixed=remediation.fixed_in_month, open_before=sum(before) if before else None,
        past_deadline=remediation.past_deadline, kev_past_due=remediation.kev_past_due,
        top_risks=[(r.what, r.assets) for r in risks], expiring=sum(1 for d in decided if d.expiring),
        frameworks=frameworks.table(), measured=measured)
    return BoardReport(organisation=organisation, title=title, month=start.astimezone(tz).strftime("%B %Y"),
                       period_end=end.astimezone(tz),
                       months=tuple((p - dt.timedelta(microseconds=1)).astimezone(tz).strftime("%b") for p in points),
                       categories=tuple(categories), risks=tuple(risks), remediation=remediation,
                       coverage=scans, peers_available=bool(peer_postures or regional),
                       k=int(regional.get("k_threshold", k)) if regional else k,
                       peer_source=_peer_source(regional, peer_postures), intel=intel, measured_with=measured_with,
                       decisions=decided, summary=opening)


def _peer_source(regional: Mapping[str, Any] | None, postures: Sequence[Mapping[str, Any]]) -> str:
    if regional:
        return (f"the WARP's regional picture of {regional.get('as_of', '?')}, from "
                f"{regional.get('members_current', '?')} member councils")
    members = len({p.get("created_by_ref") for p in postures})
    return f"anonymised postures shared by {members} peer council{'s' if members != 1 else ''}"
