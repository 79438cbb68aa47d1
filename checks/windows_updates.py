"""Windows computers from update-level exports against Microsoft's own monthly security update
documents (MSRC CVRF): missing updates (WA104, patches) and releases no longer updated (WA206,
unsupported).

Each host is placed on its line's ladder (feeds.windows: the build, client or server); the
first month whose update it lacks is a finding once that month's release is older than the
estate's patch deadline (Cyber Essentials' 14 days) on the evidence's own date. Releases that
Microsoft no longer updates, or updates only under Extended Security Updates, are not WA104's:
WA206 reports them for computers the directory does not list, WA205 for those it does, so no
computer is counted twice.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass

from checks.base import CheckContext, Weakness, check
from checks.directory_unsupported import windows_release
from checks.priority import Priority, prioritise
from feeds import windows
from feeds.model import Intel, Month
from warpagent.model.evidence import EvidenceKind, WindowsBuild
from warpagent.model.findings import Host, Severity
from warpagent.text import first_few, shown

SUBJECT = "windows-update"
CVES_LISTED = 5


def _serviced(intel: Intel, months: tuple[Month, ...]) -> bool:
    """Whether Microsoft still updates the line outside ESU in the latest month loaded."""
    loaded = intel.windows_months()
    return bool(months and loaded) and months[-1].month == loaded[-1] and not months[-1].esu


@dataclass(frozen=True)
class Level:
    """What a build and update revision lacks on its line: the same for every computer at it."""

    months: tuple[Month, ...]
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
                  + (f"; in CISA KEV: {first_few(kev, CVES_LISTED)}" if kev else "")
                  + (f"; marked exploited by Microsoft: {first_few(exploited, CVES_LISTED)}" if exploited else "")),
        remediation=f"Install {latest_kb} (or a later cumulative update) on '{build.name}' and find out why it "
                    "stopped updating.",
        cves=priority.cves, product="Microsoft Windows", version=build.version, kev_due=priority.kev_due,
        ransomware=priority.ransomware, epss=priority.epss, cvss=priority.cvss)


def _release_words(build: WindowsBuild, month: Month | None) -> str:
    named = month.product if month else (build.product_name or "Windows")
    return f"{shown(named, 60)} (build {build.build})"


@check("WA206", "unsupported", "Windows computer on a release Microsoft no longer updates (export)",
       needs_intel=("msrc", "endoflife"), evidence=(EvidenceKind.WINDOWS,))
def windows_release_unserviced(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A Windows computer from an export, not in the estate's Active Directory (WA205 judges
    those), whose release Microsoft's latest monthly document no longer updates (high), or
    updates only under Extended Security Updates: high when the computer lacks them, low when it
    has them (it relies on paid ESU, which ends). A release absent from the documents is judged
    by endoflife.date's support dates.

    Board: some council Windows computers run a release that Microsoft no longer updates, or
    updates only for a fee.

    Why it matters: without updates every new flaw in Windows stays open on that computer for
    good; ransomware crews look for exactly these.
    Fix: upgrade the computer to a supported Windows release (or replace it); until then keep it
    enrolled in Extended Security Updates and installing them."""
    build = host.evidence.windows
    if build is None or build.in_directory:
        return
    intel = ctx.require_intel()
    months = intel.windows_ladder(build.build, build.server) if intel.has("msrc") else ()
    loaded = intel.windows_months() if intel.has("msrc") else ()
    last = months[-1] if months else None
    if last is not None and loaded and last.month == loaded[-1]:
        if not last.esu:
            return
        current = not windows.standing(months, build.ubr).missing
        yield Weakness(
            subject="windows-release", severity=Severity.LOW if current else Severity.HIGH,
            title=f"Windows computer '{build.name}' relies on Extended Security Updates" if current else
                  f"Windows computer '{build.name}' runs a release updated only under Extended Security Updates, "
                  "and lacks them",
            evidence=f"{build.name}: {_release_words(build, last)} at {build.version} ({build.where}); Microsoft's "
                     f"{last.name} update for it (KB{last.cumulative_kb}) is in the Extended Security Updates "
                     "family only",
            remediation=f"Upgrade '{build.name}' to a supported Windows release"
                        + ("" if current else "; until then enrol it in Extended Security Updates and install them")
                        + ".",
            product="Microsoft Windows", version=build.version)
        return
    if last is not None:
        ended = f"its last security update in the documents loaded is KB{last.cumulative_kb} (listed {last.name})"
    else:
        found = windows_release(intel, build.product_name or ("Windows Server" if build.server else "Windows"),
                                f"10.0 ({build.build})") if intel.has("endoflife") else None
        if found is None or not isinstance(found[1].eol, dt.date) or found[1].eol > ctx.now.date():
            return
        ended = f"support ended {found[1].eol:%Y-%m-%d} (endoflife.date: {found[0]} {found[1].cycle})"
    yield Weakness(
        subject="windows-release", severity=Severity.HIGH,
        title=f"Windows computer '{build.name}' runs a Windows release Microsoft no longer updates",
        evidence=f"{build.name}: {_release_words(build, last)} at {build.version} ({build.where}); {ended}",
        remediation=f"Upgrade '{build.name}' to a supported Windows release, or replace it.",
        product="Microsoft Windows", version=build.version)
