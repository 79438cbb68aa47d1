"""patches (WA1xx): software missing security fixes.

Three ways in, each saying how it was inferred and how confident that is:
- WA101 a service's product version (nmap banner, CPE) inside an NVD range;
- WA102 a service whose banner shows a distribution package revision, judged by that
  distribution's advisories (which know backported fixes), never by upstream ranges;
- WA103 installed distribution packages (host evidence), judged the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence

from checks.base import CheckContext, Weakness, check
from checks.priority import prioritise
from checks.software import Software, software_of
from feeds import aliases, cpe, versions
from feeds.model import CveFacts, CveMatch, DistroMatch, Intel
from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import Host, Service

MAX_LISTED = 5


def upgrade_target(matches: Sequence[CveMatch]) -> str:
    fixed = [m.fixed for m in matches if m.fixed]
    if fixed:
        best = max(fixed, key=functools.cmp_to_key(versions.upstream_compare))
        return f"{best} or later"
    after = [m.last_affected for m in matches if m.last_affected]
    if after:
        best = max(after, key=functools.cmp_to_key(versions.upstream_compare))
        return f"a release later than {best}"
    return "a release the vendor lists as fixed"


def cve_weakness(service: Service | None, subject: str, *, title: str, cves: Sequence[str],
              facts: Mapping[str, CveFacts], evidence: str, remediation: str,
              fallback_cvss: Mapping[str, float | None] | None = None, product: str = "", version: str = "",
              cpe_name: str = "") -> Weakness:
    priority = prioritise(cves, facts, fallback_cvss)
    return Weakness(
        subject=service.endpoint if service else subject, title=title, severity=priority.severity,
        evidence=f"{evidence}. Most urgent: {priority.describe(facts, MAX_LISTED)}", remediation=remediation,
        port=service.port if service else None, protocol=service.protocol if service else "",
        cves=priority.cves, product=service.product if service else product,
        version=service.version if service else version, cpe=cpe_name, kev_due=priority.kev_due,
        ransomware=priority.ransomware, epss=priority.epss, cvss=priority.cvss)


def _host_cpes(host: Host) -> list[str]:
    return [c for s in host.open_services() for c in s.cpes]


@check("WA101", "patches", "Service version with known vulnerabilities (NVD)", needs_intel=("nvd",))
def vulnerable_service_version(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A service whose product and version (from nmap's banner and CPE) fall inside an NVD
    vulnerable range, with NVD's configurations evaluated in full (AND/OR, platform context).
    Banners with a distribution package revision are left to WA102. Confidence is medium for a
    plain upstream version and low when the banner hints at a distribution build, whose
    backported fixes NVD cannot know.

    Why it matters: known, published flaws are how most councils are breached; exploited ones
    (CISA KEV) are used against the sector within days.
    Fix: upgrade to the fixed release the finding names."""
    intel = ctx.require_intel()
    for service in host.open_services():
        software = software_of(service)
        if software is None or software.distro:
            continue
        matches = intel.nvd_matches(software.cpe, _host_cpes(host))
        if not matches:
            continue
        facts = intel.cve_facts(m.cve for m in matches)
        confidence = "low: the banner hints at a distribution build that may carry backported fixes" \
            if software.distro_hint else "medium"
        name = cpe.parse(software.cpe)
        yield cve_weakness(
            service, service.endpoint,
            title=f"{software.label} has {len(matches)} known vulnerabilit{'y' if len(matches) == 1 else 'ies'}",
            cves=[m.cve for m in matches], facts=facts,
            evidence=f"Inferred from the nmap banner version via {software.cpe} matched to NVD ranges "
                     f"(confidence {confidence})",
            remediation=f"Upgrade {service.product or name.product} to {upgrade_target(matches)}; if the "
                        "vendor or your distribution backported the fixes, record that as an accepted risk "
                        "with the advisory that says so.",
            cpe_name=software.cpe)


def _ecosystems(intel: Intel, software: Software, package: str) -> tuple[list[str], str]:
    """The releases a distribution build could be from, and how sure that is."""
    hint = software.release_hint()
    family = software.distro.capitalize()
    if hint and software.distro == "debian":
        version = hint
        if not hint.isdigit():
            release = intel.os_release("debian", hint)
            version = release.version if release else ""
        if version:
            return [f"{family}:{version}"], "high"
    candidates = intel.distro_ecosystems(software.distro, package, software.upstream)
    return candidates, "medium"


def distro_weakness(service: Service | None, subject: str, label: str, source: str, version: str,
                     matches: Sequence[DistroMatch], intel: Intel, inferred: str, confidence: str,
                     binaries: Sequence[str] = ()) -> Weakness:
    cves = sorted({c for m in matches for c in m.cves} or {m.advisory for m in matches})
    facts = intel.cve_facts(c for c in cves if c.startswith("CVE-"))
    fallback = {c: m.cvss for m in matches for c in m.cves}
    scheme = versions.scheme_for(matches[0].ecosystem)
    target = max((m.fixed for m in matches), key=functools.cmp_to_key(versions.COMPARATORS[scheme]))
    advisories = ", ".join(sorted({m.advisory for m in matches})[:MAX_LISTED])
    tool = "apt-get install --only-upgrade" if scheme == "dpkg" else "dnf upgrade"
    what = " ".join(binaries) if binaries else source
    return cve_weakness(
        service, subject,
        title=f"{label} is missing {len(matches)} {matches[0].ecosystem.split(':')[0]} security "
              f"fix{'' if len(matches) == 1 else 'es'}",
        cves=cves, facts=facts, fallback_cvss=fallback,
        evidence=f"Inferred from {inferred} against {matches[0].ecosystem} advisories for source package "
                 f"'{source}' {version} (confidence {confidence}): {advisories}; fixed in {target}",
        remediation=f"Apply the distribution's security updates: {tool} {what} (to {target} or later), "
                    "then restart the service.",
        product=source, version=version)


@check("WA102", "patches", "Distribution build missing security fixes (banner)", needs_intel=("osv",))
def distro_service_missing_fixes(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A service whose banner carries a distribution package revision (`OpenSSH 9.2p1 Debian
    2+deb12u3`) that is older than the fix in that distribution's advisories. The release comes
    from the revision (`+deb12u3` is Debian 12) or, failing that, from the releases that ship
    this upstream version; where several could, only advisories that apply to all are reported.

    Why it matters: the distribution has shipped the fix; the host has not installed it.
    Fix: apply the distribution's security updates and restart the service."""
    intel = ctx.require_intel()
    for service in host.open_services():
        software = software_of(service)
        if software is None or not software.distro:
            continue
        package = aliases.DISTRO_SOURCE_PACKAGES.get(cpe.parse(software.cpe).key)
        if package is None:
            continue
        ecosystems, confidence = _ecosystems(intel, software, package)
        if not ecosystems:
            continue
        per_release = [intel.distro_matches(e, package, software.debian_version) for e in ecosystems]
        common = set.intersection(*({m.advisory for m in found} for found in per_release))
        matches = [m for m in per_release[0] if m.advisory in common]
        if matches:
            yield distro_weakness(service, service.endpoint, software.label, package, software.debian_version,
                                   matches, intel, "the nmap banner's package revision", confidence)


@check("WA103", "patches", "Installed packages missing security fixes", needs_intel=("osv",),
       evidence=(EvidenceKind.PACKAGE,))
def packages_missing_fixes(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """Installed distribution packages (dpkg or rpm lists from host evidence) older than the fix
    in the distribution's own advisories. Matched by source package and the release's
    ecosystem, so backported fixes count; never matched against upstream NVD ranges.

    Why it matters: unapplied security updates are the commonest way in.
    Fix: apply the updates (unattended-upgrades keeps them applied)."""
    intel = ctx.require_intel()
    by_source: dict[tuple[str, str, str], list[str]] = {}
    for package in host.packages:
        if not package.ecosystem:
            continue
        key = (package.ecosystem, package.advisory_name, package.advisory_version)
        by_source.setdefault(key, []).append(package.name)
    for (ecosystem, source, version), binaries in sorted(by_source.items()):
        matches = intel.distro_matches(ecosystem, source, version)
        if matches:
            yield distro_weakness(None, f"package:{source}", f"{source} {version}", source, version, matches,
                                   intel, "the installed package list", "high", sorted(binaries))

