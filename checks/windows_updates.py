"""patches on Windows (WA104): a computer's build and update revision (from an export) against
Microsoft's own monthly security update documents (MSRC CVRF).

Each host is placed on its line's ladder (feeds.windows: the build, client or server); the
first month whose update it lacks is a finding once that month's release is older than the
estate's patch deadline (Cyber Essentials' 14 days) on the evidence's own date. Releases that
Microsoft no longer updates, or updates only under Extended Security Updates, are WA205's:
they get no second finding here.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass

from checks.base import CheckContext, Weakness, check
from checks.priority import Priority, prioritise
from feeds import windows
from feeds.model import Intel
from warpagent.model.evidence import EvidenceKind, WindowsBuild
from warpagent.model.findings import Host, Severity

SUBJECT = "windows-update"
CVES_LISTED = 5


def _serviced(intel: Intel, months: tuple[windows.Month, ...]) -> bool:
    """Whether Microsoft still updates the line outside ESU in the latest month loaded."""
    loaded = intel.windows_months()
    return bool(months and loaded) and months[-1].month == loaded[-1] and not months[-1].esu


def _listed(cves: tuple[str, ...]) -> str:
    more = len(cves) - CVES_LISTED
    return ", ".join(cves[:CVES_LISTED]) + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class Level:
    """What a build and update revision lacks on its line: the same for every computer at it."""

    months: tuple[windows.Month, ...]
    standing: windows.Standing
    cves: tuple[str, ...]
    priority: Priority
    kev: tuple[str, ...]
    exploited: tuple[str, ...]


# A council runs thousands of computers at a few dozen levels: each level is judged once per
# intel store (held weakly, so a store closed and dropped takes its levels with it).
_LEVELS: MutableMapping[Intel, dict[tuple[int, bool, int], Level | None]] = weakref.WeakKeyDictionary()


def _judged(intel: Intel, build: WindowsBuild) -> Level | None:
    months = intel.windows_ladder(build.build, build.server)
    if not _serviced(intel, months):
        return None
    standing = windows.standing(months, build.ubr)
    cves = standing.cves_missing(build.ubr)
    facts = intel.cve_facts(cves)
    return Level(months=months, standing=standing, cves=cves, priority=prioritise(cves, facts),
                 kev=tuple(sorted(c for c in cves if facts.get(c) and facts[c].kev)),
                 exploited=tuple(sorted(standing.exploited & set(cves))))


def level_of(intel: Intel, build: WindowsBuild) -> Level | None:
    """The computer's place on its line, or None when the line is not judged here."""
    levels = _LEVELS.setdefault(intel, {})
    key = (build.build, build.server, build.ubr)
    if key not in levels:
        levels[key] = _judged(intel, build)
    return levels[key]


@check("WA104", "patches", "Windows computer missing security updates (Microsoft's data)", needs_intel=("msrc",),
       evidence=(EvidenceKind.WINDOWS,))
def windows_missing_update(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A Windows computer whose build and update revision (CurrentBuild.UBR from an export)
    lacks a monthly security update that Microsoft released more than the estate's patch
    deadline (14 days by default) before the export was taken. Judged per line: the build with
    client or server, since Windows 11 24H2 and Server 2025 share build 26100 on different update
    sequences; a hotpatched computer is judged on its hotpatch track. High; critical when a CVE
    the missing updates fix is in CISA KEV or marked exploited by Microsoft. A computer older
    than the oldest month loaded is "missing since at least" that month, never clean.

    Board: some council Windows computers have gone past the patching deadline without Microsoft's
    monthly security updates.

    Why it matters: Microsoft's monthly fixes are reverse-engineered within days, and ransomware
    crews use unpatched Windows to get in and to spread.
    Fix: install the latest cumulative update (the finding names its KB) and find out why the
    computer stopped updating (Windows Update for Business ring, WSUS approval, a failing
    install)."""
    build = host.evidence.windows
    if build is None:
        return
    intel = ctx.require_intel()
    level = level_of(intel, build)
    if level is None or not level.standing.missing:
        return
    standing, cves, priority, kev, exploited = level.standing, level.cves, level.priority, level.kev, level.exploited
    first, latest = standing.missing[0], level.months[-1]
    if build.collected.date() - first.released <= ctx.policy.patch_deadline:
        return
    severity = Severity.CRITICAL if kev or exploited else Severity.HIGH
    since = f"since at least {first.name}" if standing.level is None else f"since {first.name}"
    latest_kb = f"KB{latest.cumulative_kb}" if latest.cumulative_kb else "the latest cumulative update"
    yield Weakness(
        subject=SUBJECT, severity=severity,
        title=f"Windows computer '{build.name}' is missing security updates {since}",
        evidence=(f"{build.name}: {first.product} at build {build.version} on {build.collected:%Y-%m-%d} "
                  f"({build.where}); missing {len(standing.missing)} monthly update(s) {since} (released "
                  f"{first.released:%Y-%m-%d}: KB{first.cumulative_kb or first.partial_kb}); the latest, "
                  f"{latest.name}, is {latest_kb} (10.0.{build.build}.{latest.cumulative}); {len(cves)} CVE(s) "
                  f"fixed since"
                  + (f"; in CISA KEV: {_listed(kev)}" if kev else "")
                  + (f"; marked exploited by Microsoft: {_listed(exploited)}" if exploited else "")),
        remediation=f"Install {latest_kb} (or a later cumulative update) on '{build.name}' and find out why it "
                    "stopped updating.",
        cves=priority.cves, product="Microsoft Windows", version=build.version, kev_due=priority.kev_due,
        ransomware=priority.ransomware, epss=priority.epss, cvss=priority.cvss)
