"""unsupported Windows in Active Directory (WA205): computer objects whose operating system
build is past end of support, judged by endoflife.date's windows and windows-server data.

The directory says what each computer last reported (operatingSystem "Windows 10 Enterprise",
operatingSystemVersion "10.0 (19045)"); the build picks the release, the edition picks among
releases that share a build (Enterprise and Education get longer support than Pro and Home,
LTSC longer still).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from checks import directory_rules as rules
from checks.base import CheckContext, Weakness, check
from feeds.model import EolCycle, Intel
from warpagent.model.directory import DirectoryAccount
from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import Host, Severity

_VERSION = re.compile(r"^\s*(\d+)\.(\d+)\s*\((\d+)\)")
_SERVICE_PACK = re.compile(r"-(sp\d+|sac)$")  # "2003-sp2", "1809-sac": a name says "2003", never the pack


def _build(os_version: str) -> str:
    """"10.0 (19045)" -> "10.0.19045" (endoflife.date's `latest` of the release)."""
    match = _VERSION.match(os_version)
    return f"{match[1]}.{match[2]}.{match[3]}" if match else ""


def _edition_suffixes(operating_system: str) -> tuple[str, ...]:
    """endoflife.date's windows cycle suffixes for an edition, best match first."""
    lowered = operating_system.casefold()
    if "ltsc" in lowered or "ltsb" in lowered:
        return ("-iot-lts",) if "iot" in lowered else ("-e-lts",)
    if "iot" in lowered:
        return ("-iot", "-e")
    if "enterprise" in lowered or "education" in lowered:
        return ("-e", "")
    return ("-w", "")


def _eol(cycle: EolCycle) -> dt.date:
    return cycle.eol if isinstance(cycle.eol, dt.date) else (dt.date.min if cycle.eol else dt.date.max)


def windows_release(intel: Intel, operating_system: str, os_version: str) -> tuple[str, EolCycle] | None:
    """The endoflife.date product and release cycle of a Windows computer object, or None."""
    build = _build(os_version)
    if not build or "windows" not in operating_system.casefold():
        return None
    server = "server" in operating_system.casefold()
    product = intel.eol_product("windows-server" if server else "windows")
    if product is None:
        return None
    candidates = [c for c in product.cycles if c.latest.split(".")[:3] == build.split(".")]
    if not candidates:
        return None
    if server:  # 2019 and 1809-sac share a build: the name says which ("Windows Server 2019 Standard")
        named = [c for c in candidates
                 if _SERVICE_PACK.sub("", c.cycle).replace("-", " ") in operating_system.casefold()]
        chosen = named or [c for c in candidates if not c.cycle.endswith("-sac")] or candidates
    else:
        chosen = []
        for suffix in _edition_suffixes(operating_system):
            chosen = [c for c in candidates if c.cycle.endswith(suffix) and (suffix or "-" not in c.cycle[3:])]
            if chosen:
                break
        chosen = chosen or candidates
    # where the name still leaves a choice, the longest support: never a false "unsupported"
    return product.title, max(chosen, key=_eol)


@check("WA205", "unsupported", "directory-windows-past-support", needs_intel=("endoflife",),
       evidence=(EvidenceKind.DIRECTORY,))
def windows_past_support(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A computer in the directory whose Windows release (operatingSystem and the build in
    operatingSystemVersion) is past end of support on endoflife.date. High for enabled computers
    in use; disabled or stale computers (no logon for 90 days) are counted apart, at low, as
    clean-up.

    Board: some council PCs or servers run a Windows that Microsoft no longer fixes.

    Why it matters: an unsupported Windows gets no security fixes, so every new flaw in it stays
    open for good; ransomware crews look for exactly these.
    Fix: upgrade or replace the computer (Windows 11, or a supported Windows Server), or buy
    Extended Security Updates while it is replaced; remove computer objects for machines that
    are gone.
    """
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    intel = ctx.require_intel()
    today = ctx.now.date()
    idle: list[DirectoryAccount] = []
    for computer in snapshot.computers:
        found = windows_release(intel, computer.operating_system, computer.os_version)
        if found is None or _eol(found[1]) > today:
            continue
        if not computer.enabled or computer.stale(ctx.now):
            idle.append(computer)
            continue
        title, cycle = found
        ended = f"{cycle.eol:%Y-%m-%d}" if isinstance(cycle.eol, dt.date) else "with no date given"
        yield Weakness(subject=rules.subject(computer), severity=Severity.HIGH,
                       title=f"Computer '{rules.name(computer)}' runs {title} {cycle.cycle}, out of support",
                       evidence=f"{rules.name(computer)}: operatingSystem '{rules.shown(computer.operating_system)}', "
                                f"operatingSystemVersion '{rules.shown(computer.os_version)}'; support ended {ended} "
                                "(endoflife.date)",
                       remediation=f"Upgrade or replace '{rules.name(computer)}' with a supported Windows release.",
                       product=title, version=cycle.cycle)
    if idle:
        yield Weakness(subject="ad-computers:unsupported-idle", severity=Severity.LOW,
                       title=f"{len(idle)} disabled or unused computer objects name an unsupported Windows",
                       evidence=f"disabled, or no logon for 90 days: {rules.listed(idle)}",
                       remediation="Delete the computer objects of machines that are gone; upgrade the rest "
                                   "before they come back into use.")
