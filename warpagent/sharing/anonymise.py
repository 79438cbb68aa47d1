"""The anonymiser: open findings in, a posture that names no council, host or person out.

Policy (docs/sharing.md has the full text):
- The council appears only as a pseudonym: HMAC-SHA256 of its organisation name under a
  secret key the council keeps, so peers can follow one member's trend without learning who
  it is. Sector and region are kept; the name never.
- Dropped before anything is built: organisation and estate names, assets (host names, IP
  addresses), ports, user and account names, e-mail addresses, certificate subjects, file
  paths, and every free-text field (evidence, titles, per-finding remediation).
- Kept: category, check id, severity, CVE ids, product and version reduced to a strict shape
  (`sharing/software.py`: anything else dropped and counted; a network service's product only
  where nmap's probe database names it literally), counts in buckets (0, 1, 2-5,
  6-20, 21+), dates at day precision.
- Rare combinations: a version is shared only where pulled peer data shows at least k members
  of the region (this council included) report that product and version; with no peer data,
  rarity cannot be judged and no version is shared (fail closed). Where a peer names a sealed
  versions collection (a warpagent hub's, which members cannot read), every version in shape goes
  there for the coordinator to count: the regional picture shows one only once k members run it.
- Remediation text comes from each check's own documentation, never from a finding.

Pure functions only: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from checks import ALL_CHECKS
from warpagent.model.findings import CATEGORIES, Severity, TrackedFinding
from warpagent.sharing.buckets import bucket
from warpagent.sharing.software import shareable

_SAFE_TEXT = re.compile(r"^[A-Za-z0-9 ._+:~()/-]{1,64}$")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,7}$")


def pseudonym(key: bytes, organisation_name: str) -> str:
    """A stable keyed pseudonym: the same council and key give the same value every night."""
    message = ("warpagent/member/v1|" + " ".join(organisation_name.casefold().split())).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def safe_text(value: str) -> str:
    """Sector and region from the config: kept only if short and of plain characters."""
    value = value.strip()
    return value if _SAFE_TEXT.match(value) else ""


@dataclass(frozen=True)
class CheckPosture:
    check_id: str
    severity: Severity  # the worst open finding of this check
    findings: str  # bucket
    assets: str  # bucket of distinct assets


@dataclass(frozen=True)
class CategoryPosture:
    category: str
    measured: bool  # False: no check of this category ran, so zero means "not measured"
    open_findings: str
    by_severity: tuple[tuple[str, str], ...]  # (severity label, bucket), most severe first
    checks: tuple[CheckPosture, ...]
    oldest_open: dt.date | None
    past_due: str = "0"  # bucket of open findings past the council's own deadlines (KEV, critical, high)
    decided: str = "0"  # bucket of accepted risks and false positives, counted apart from the open ones


@dataclass(frozen=True)
class CveSighting:
    cve: str
    assets: str  # bucket
    first_seen: dt.date
    last_seen: dt.date


@dataclass(frozen=True)
class SoftwareSeen:
    product: str
    version: str  # "" when withheld as rare
    category: str


@dataclass(frozen=True)
class Remediation:
    check_id: str
    name: str
    fix: str


@dataclass(frozen=True)
class SharedPosture:
    pseudonym: str
    sector: str
    region: str
    as_of: dt.date
    categories: tuple[CategoryPosture, ...]
    cves: tuple[CveSighting, ...]
    software: tuple[SoftwareSeen, ...]
    remediations: tuple[Remediation, ...]
    withheld_versions: int  # how many product versions rare-combination suppression withheld
    dropped_software: int = 0  # product or version texts not shared because they did not fit the shape
    # (product, version) in shape, rare or not: sent only to a WARP hub's sealed versions collection,
    # which the coordinator reads and members cannot; the regional picture reveals a version at k members
    sealed_versions: tuple[tuple[str, str], ...] = ()


def _fix_text(doc: str) -> str:
    """The "Fix:" part of a check's docstring, up to the next blank line."""
    _before, found, after = doc.partition("Fix:")
    return " ".join(after.split("\n\n")[0].split()) if found else ""


def anonymise(findings: Sequence[TrackedFinding], *, member: str, sector: str, region: str,
              as_of: dt.date, k: int, measured: Collection[str],
              region_versions: Mapping[tuple[str, str], int] | None = None,
              past_due: Callable[[TrackedFinding], bool] = lambda tracked: False,
              decided: Sequence[TrackedFinding] = (),
              service_products: frozenset[str] = frozenset()) -> SharedPosture:
    """Build the shareable posture from open findings.

    `member` is the pseudonym; `measured` the categories whose checks ran; `region_versions`
    maps (product, version) to how many *other* members report it, from pulled peer data
    (None when there is no peer data: then no version is shared); `past_due` says whether a finding is
    open past the council's deadline for it; `decided` the accepted risks and false positives,
    shared only as a count per category; `service_products` the product tokens a network service's
    finding may share (nmap's literal names: anything else nmap copied from a banner is dropped).
    """
    by_category: dict[str, list[TrackedFinding]] = defaultdict(list)
    for tracked in findings:
        by_category[tracked.finding.category].append(tracked)

    categories = []
    for category in CATEGORIES:
        items = by_category.get(category, [])
        per_check: dict[str, list[TrackedFinding]] = defaultdict(list)
        for tracked in items:
            per_check[tracked.finding.check_id].append(tracked)
        severities = [t.finding.severity for t in items]
        categories.append(CategoryPosture(
            category=category, measured=category in measured, open_findings=bucket(len(items)),
            by_severity=tuple((s.label, bucket(severities.count(s))) for s in sorted(Severity, reverse=True)),
            checks=tuple(CheckPosture(check_id=check_id, severity=max(t.finding.severity for t in group),
                                      findings=bucket(len(group)),
                                      assets=bucket(len({t.finding.asset for t in group})))
                         for check_id, group in sorted(per_check.items())),
            oldest_open=min((t.first_seen.date() for t in items), default=None),
            past_due=bucket(sum(1 for t in items if past_due(t))),
            decided=bucket(sum(1 for t in decided if t.finding.category == category)),
        ))

    cve_assets: dict[str, set[str]] = defaultdict(set)
    cve_seen: dict[str, list[dt.date]] = defaultdict(list)
    for tracked in findings:
        for cve in tracked.finding.cves:
            if _CVE.match(cve):
                cve_assets[cve].add(tracked.finding.asset)
                cve_seen[cve] += [tracked.first_seen.date(), tracked.last_seen.date()]
    cves = tuple(CveSighting(cve=cve, assets=bucket(len(assets)), first_seen=min(cve_seen[cve]),
                             last_seen=max(cve_seen[cve])) for cve, assets in sorted(cve_assets.items()))

    software: set[SoftwareSeen] = set()
    withheld: set[tuple[str, str]] = set()
    sealed: set[tuple[str, str]] = set()  # every version in shape, for the coordinator alone
    dropped: set[tuple[str, str]] = set()
    for tracked in findings:
        raw = (tracked.finding.product, tracked.finding.version)
        shaped = shareable(*raw, known=service_products if tracked.finding.port is not None else None)
        if shaped.dropped:
            dropped.add(raw)
        if not shaped.product:
            continue
        version = shaped.version
        common = region_versions is not None and region_versions.get((shaped.product, version), 0) + 1 >= k
        if version:
            sealed.add((shaped.product, version))
        if version and not common:
            withheld.add((shaped.product, version))
            version = ""
        software.add(SoftwareSeen(product=shaped.product, version=version, category=tracked.finding.category))

    used_checks = {t.finding.check_id for t in findings}
    remediations = tuple(Remediation(check_id=c.id, name=c.name, fix=_fix_text(c.doc))
                         for c in ALL_CHECKS if c.id in used_checks)
    return SharedPosture(pseudonym=member, sector=safe_text(sector), region=safe_text(region), as_of=as_of,
                         categories=tuple(categories), cves=cves,
                         software=tuple(sorted(software, key=lambda s: (s.product, s.version, s.category))),
                         remediations=remediations, withheld_versions=len(withheld), dropped_software=len(dropped),
                         sealed_versions=tuple(sorted(sealed)))
