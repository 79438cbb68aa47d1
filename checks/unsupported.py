"""unsupported (WA2xx): software and operating systems past (or near) the end of support."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from checks.base import CheckContext, Weakness, check
from checks.software import Software, platform_from_banner, software_of
from feeds import vendor_policy
from feeds.model import DistroBuild, EolCycle, EolProduct, EolVerdict, Intel, OsRelease
from feeds.versions import upstream_part
from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import Host, Platform, Service, Severity

WARNING_DAYS = 90


def _ended(eol: dt.date | bool, today: dt.date) -> bool:
    return eol is True or (isinstance(eol, dt.date) and eol <= today)


def _supported_cycles(product: EolProduct, today: dt.date) -> list[EolCycle]:
    live = [c for c in product.cycles if not _ended(c.eol, today)]
    return sorted(live, key=lambda c: c.release_date or dt.date.min, reverse=True)


def _upgrade_advice(product: EolProduct, today: dt.date) -> str:
    live = _supported_cycles(product, today)
    if not live:
        return f"No release of {product.title} is supported any more: replace it with a supported product."
    names = ", ".join(c.cycle + (f" (latest {c.latest})" if c.latest else "") for c in live[:3])
    return f"Upgrade to a supported {product.title} release: {names}."


def _eol_verdicts(host: Host, intel: Intel) -> Iterator[tuple[Service, Software, EolVerdict]]:
    """Each open service whose product and version endoflife.date knows, with its release cycle."""
    for service in host.open_services():
        software = software_of(service)
        verdict = intel.eol_for_cpe(software.cpe) if software else None
        if software is not None and verdict is not None:
            yield service, software, verdict


def _supported_builds(intel: Intel, product: str, version: str,
                      today: dt.date) -> list[tuple[DistroBuild, OsRelease, dt.date]]:
    """Distribution releases, still supported today, whose package builds exactly this version."""
    shipped = []
    for build in intel.distro_builds(product, version):
        release = intel.os_release(build.distro, build.release)
        until = (release.eol_extended or release.eol) if release else None
        if release is not None and until is not None and until > today:
            shipped.append((build, release, until))
    return shipped


def _installed_from_distribution(host: Host, shipped: list[tuple[DistroBuild, OsRelease, dt.date]]) -> bool:
    """Host evidence (its package list) shows one of those builds' source packages installed."""
    sources = {(build.package, build.upstream) for build, _release, _until in shipped}
    return any((p.advisory_name, upstream_part(p.advisory_version)) in sources for p in host.packages)


def _distribution_build(service: Service, software: Software, what: str, upstream_said: str,
                        shipped: list[tuple[DistroBuild, OsRelease, dt.date]], otherwise: str) -> Weakness:
    """Past upstream support, and also what a supported distribution release builds: low, with what is known."""
    build, release, until = max(shipped, key=lambda s: s[2])
    ships = f"{release.distro.capitalize()} {release.version} ({release.series})"
    return Weakness.on(
        service, title=f"{what} is past upstream end of life; {ships} still supports this version",
        severity=Severity.LOW,
        evidence=f"Inferred from the nmap banner '{software.label}' ({software.cpe}): {upstream_said}; {ships} ships "
                 f"it as {build.package} {build.version} ({build.suite}), with security support until "
                 f"{until.isoformat()} (its package index; distro-info-data). From a banner alone this is not proof "
                 "of end of life (confidence: low).",
        remediation=(f"If this is {release.distro.capitalize()}'s package, keep it updated: add the host's package "
                     "list (estates[].evidence or SSH collection) and warpagent judges it by the release's support "
                     f"instead. Otherwise: {otherwise}"))


@check("WA201", "unsupported", "Product release past end of life", needs_intel=("endoflife",))
def product_past_eol(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A service whose product release cycle (endoflife.date, matched by CPE) has reached end of
    life: it gets no security fixes, whatever its patch level. High severity. For products
    endoflife.date does not list, the vendor's own published policy where it is simple
    (feeds/vendor_policy.py: OpenSSH supports only its latest release).

    A version that a supported distribution release itself builds (its package index, with the
    release's support from distro-info-data) is not proof of end of life from a banner alone:
    nginx 1.22.1 is past upstream support and is also what Debian 12 ships and patches until 2028.
    That is reported at low severity with what is known; and when the host's package list (or
    the banner's own distribution revision) shows the distribution's package, the OS release's
    support decides (WA203), not upstream's.

    Why it matters: every flaw found from now on stays open for good.
    Fix: upgrade to a supported release cycle, or replace the product."""
    today = ctx.now.date()
    intel = ctx.require_intel()
    for service in host.open_services():
        software = software_of(service)
        judged = _upstream_judgement(software, intel, today) if software is not None else None
        if software is None or judged is None:
            continue
        shipped = _supported_builds(intel, judged.product, software.upstream, today)
        if shipped and _installed_from_distribution(host, shipped):
            continue  # the distribution's own package: supported as long as its release is (WA203)
        yield _past_support(service, software, judged.what, judged.title, judged.said, shipped, judged.advice)


@dataclass(frozen=True)
class _Unsupported:
    """What upstream says of a version it no longer supports."""

    product: str  # endoflife.date's name (or the vendor policy's)
    what: str  # "nginx 1.22"
    title: str
    said: str  # the evidence: which source says so, and when support ended
    advice: str


def _upstream_judgement(software: Software, intel: Intel, today: dt.date) -> _Unsupported | None:
    """Upstream no longer supports this version: by its endoflife.date cycle, else by the
    vendor's own policy; None when it does, or when nothing says (a distribution's build the
    banner names is the distribution's)."""
    verdict = intel.eol_for_cpe(software.cpe)
    if verdict is not None:
        if not _ended(verdict.cycle.eol, today):
            return None
        when = f" on {verdict.cycle.eol.isoformat()}" if isinstance(verdict.cycle.eol, dt.date) else ""
        what = f"{verdict.product.title} {verdict.cycle.cycle}"
        return _Unsupported(verdict.product.name, what, f"{what} is past end of life",
                            f"release cycle {verdict.cycle.cycle} of {verdict.product.title} reached upstream end "
                            f"of life{when} (endoflife.date)", _upgrade_advice(verdict.product, today))
    policy = vendor_policy.for_cpe(software.cpe)
    if policy is None or not policy.unsupported(software.upstream) or software.distro:
        return None
    what = f"{policy.title} {software.upstream}"
    return _Unsupported(policy.name, what, f"{what} is no longer supported by its developers",
                        f"{policy.title}'s policy is that {policy.policy} ({policy.source}), and {policy.title} "
                        f"{policy.newest_known} was released on {policy.newest_known_on.isoformat()}",
                        f"Upgrade to the latest {policy.title} release ({policy.newest_known} or later).")


def _past_support(service: Service, software: Software, what: str, title: str, upstream_said: str,
                  shipped: list[tuple[DistroBuild, OsRelease, dt.date]], advice: str) -> Weakness:
    """High when nothing supports this version; low when a supported distribution release builds it."""
    if shipped:
        return _distribution_build(service, software, what, upstream_said, shipped, advice)
    return Weakness.on(service, title=title, severity=Severity.HIGH, remediation=advice,
                       evidence=f"Inferred from the nmap banner '{software.label}' ({software.cpe}): {upstream_said}")


def lifecycle_unknown(hosts: Iterable[Host], intel: Intel | None) -> tuple[str, ...]:
    """Products seen with a version whose lifecycle neither endoflife.date nor a vendor policy
    gives: the coverage account names them, so silence is never read as 'supported'."""
    if intel is None:
        return ()
    unknown = {f"{service.product or software.cpe} {software.upstream}"
               for host in hosts for service in host.open_services()
               if (software := software_of(service)) is not None and intel.eol_for_cpe(software.cpe) is None
               and vendor_policy.for_cpe(software.cpe) is None}
    return tuple(sorted(unknown))


@check("WA202", "unsupported", "Product release reaching end of life within 90 days",
       needs_intel=("endoflife",))
def product_nearing_eol(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A service whose release cycle ends support within 90 days: a warning to plan the upgrade
    before it becomes WA201. Low severity.

    Why it matters: upgrades take planning; after the date there are no more fixes.
    Fix: schedule the upgrade to a supported release cycle now."""
    today = ctx.now.date()
    for service, software, verdict in _eol_verdicts(host, ctx.require_intel()):
        if not isinstance(verdict.cycle.eol, dt.date):
            continue
        days = (verdict.cycle.eol - today).days
        if 0 < days <= WARNING_DAYS:
            yield Weakness.on(
                service, title=f"{verdict.product.title} {verdict.cycle.cycle} reaches end of life in {days} days",
                severity=Severity.LOW,
                evidence=f"Inferred from the nmap banner '{software.label}': support for release cycle "
                         f"{verdict.cycle.cycle} ends on {verdict.cycle.eol.isoformat()} (endoflife.date)",
                remediation=_upgrade_advice(verdict.product, today))


def _platforms(host: Host) -> list[Platform]:
    found = [host.platform] if host.platform else []
    for service in host.open_services():
        software = software_of(service)
        platform = platform_from_banner(software) if software else None
        if platform and not any(p.distro == platform.distro for p in found):
            found.append(platform)
    return found


def _os_verdict(release: OsRelease, today: dt.date) -> tuple[Severity, str] | None:
    name = f"{release.distro.capitalize()} {release.version} ({release.codename})"
    final = release.eol_extended or release.eol
    if release.eol is None:
        return None
    if final is not None and final <= today:
        return Severity.HIGH, (f"{name} is past end of life: security support ended {release.eol.isoformat()}"
                               + (f", extended support {release.eol_extended.isoformat()}"
                                  if release.eol_extended else ""))
    if release.eol <= today:
        return Severity.MEDIUM, (f"{name} is past regular security support ({release.eol.isoformat()}); only "
                                 f"extended support remains, until {final.isoformat() if final else 'unknown'}")
    if (release.eol - today).days <= WARNING_DAYS:
        return Severity.LOW, f"{name} ends regular security support on {release.eol.isoformat()}"
    return None


@check("WA203", "unsupported", "Operating system release past support", needs_intel=("distro-info",))
def os_past_support(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """The host's operating system release (from /etc/os-release evidence, or a Debian release
    named in a service banner's package revision such as `+squeeze5`) past its security support
    (distro-info-data): high when even extended support has ended, medium when only LTS/ESM
    remains, low within 90 days of the end.

    Why it matters: an unsupported OS gets no fixes for the kernel, libraries or services.
    Fix: upgrade to a supported release, or replace the host."""
    intel = ctx.require_intel()
    today = ctx.now.date()
    for platform in _platforms(host):
        release = intel.os_release(platform.distro, platform.version)
        verdict = _os_verdict(release, today) if release else None
        if release is None or verdict is None:
            continue
        severity, text = verdict
        latest = _newest_supported(intel, platform.distro, today)
        yield Weakness(
            subject=f"os:{platform.distro}", title=text.split(":")[0].split(";")[0], severity=severity,
            evidence=f"Inferred from {platform.evidence or 'the host evidence'}: {text} (distro-info-data)",
            remediation=f"Upgrade to a supported release{f' ({latest})' if latest else ''}, or replace the host.",
            product=platform.distro, version=platform.version)


def _newest_supported(intel: Intel, distro: str, today: dt.date) -> str:
    supported = [r for r in intel.os_releases(distro)
                 if r.released and r.released <= today and r.eol and r.eol > today]
    if not supported:
        return ""
    newest = max(supported, key=lambda r: r.released or dt.date.min)
    return f"{newest.distro.capitalize()} {newest.version} ({newest.codename})"


@check("WA204", "unsupported", "Package whose Debian security support has ended",
       needs_intel=("security-support",), evidence=(EvidenceKind.PACKAGE,))
def package_support_ended(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An installed package that Debian no longer fixes in this release (debian-security-support's
    `security-support-ended.debNN`), even though the release itself is supported. Medium.

    Why it matters: Debian publishes no more fixes for it in this release.
    Fix: remove it, or move to a supported alternative or release."""
    intel = ctx.require_intel()
    today = ctx.now.date()
    seen = set()
    for package in host.packages:
        family, _, version = package.ecosystem.partition(":")
        if family != "Debian" or not version or package.advisory_name in seen:
            continue
        ended = intel.support_ended(f"deb{version.split('.')[0]}", package.advisory_name)
        if ended is None or ended.ended > today:
            continue
        seen.add(package.advisory_name)
        yield Weakness(
            subject=f"package:{package.advisory_name}", severity=Severity.MEDIUM,
            title=f"{package.advisory_name}: Debian security support has ended",
            evidence=f"Inferred from the installed package list: Debian {version} stopped security support for "
                     f"'{package.advisory_name}' on {ended.ended.isoformat()} (last supported "
                     f"{ended.last_version}){'; ' + ended.note if ended.note else ''}",
            remediation="Remove the package, or replace it with a supported alternative or a newer Debian release.",
            product=package.advisory_name, version=package.advisory_version)

