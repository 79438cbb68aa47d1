"""supply_chain (WA6xx): what the council takes from, and lets in from, its suppliers.

SBOM components with known vulnerabilities (purl-aware, via the intel store), suppliers with
lapsed assurance or overdue reviews (the supplier register), package sources that skip or
weaken signature checks, and third-party remote-access tools seen on the network, linked to
the supplier that uses them where the register says so.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from packageurl import PackageURL

from checks.base import CheckContext, Weakness, check
from checks.patches import cve_weakness, distro_weakness, upgrade_target
from feeds import cpe
from feeds.model import Intel
from warpagent.model.evidence import EvidenceKind, SbomComponent, Supplier
from warpagent.model.findings import Host, Platform, Service, Severity

ASSURANCE_WARNING = dt.timedelta(days=30)
# remote-access tools: (what nmap calls the service or product, lower-case) -> access route name
REMOTE_ACCESS = (("teamviewer", "teamviewer"), ("anydesk", "anydesk"), ("ms-wbt-server", "rdp"),
                 ("rdp", "rdp"), ("vnc", "vnc"), ("screenconnect", "screenconnect"),
                 ("splashtop", "splashtop"), ("rustdesk", "rustdesk"))


def _qualifier(purl: PackageURL, key: str) -> str:
    return str(purl.qualifiers.get(key, "")) if isinstance(purl.qualifiers, dict) else ""


def _deb_ecosystem(purl: PackageURL, intel: Intel) -> str:
    """OSV's ecosystem for a deb purl's `distro` qualifier: debian-12, bookworm, ubuntu-22.04."""
    distro_text = _qualifier(purl, "distro")
    family = (purl.namespace or "debian").lower()
    if "-" in distro_text:
        family, _, version = distro_text.partition("-")
    else:
        release = intel.os_release(family, distro_text) if distro_text else None
        version = release.version if release else ""
    return Platform(distro=family.lower(), version=version).osv_ecosystem if version else ""


def _source(purl: PackageURL) -> str:
    return _qualifier(purl, "upstream").split("@", 1)[0] or purl.name


@check("WA601", "supply_chain", "sbom-component-vulnerable", needs_intel=("osv", "nvd"), evidence=(EvidenceKind.SBOM,))
def sbom_component_vulnerable(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A component listed in an SBOM (CycloneDX or SPDX) has known vulnerabilities: Debian and
    Ubuntu packages (`pkg:deb` purls with a distro qualifier) by the distribution's advisories,
    anything with a CPE by NVD ranges. Components with neither are not judged.

    Why it matters: suppliers ship their own copies of libraries; an SBOM is the only way to see
    which flawed versions came in with a product.
    Fix: ask the supplier for the fixed release, or upgrade the component where you build it.
    """
    intel = ctx.require_intel()
    grouped: dict[tuple[str, str, str], list[SbomComponent]] = {}
    for component in host.evidence.sbom:
        try:
            purl = PackageURL.from_string(component.purl) if component.purl else None
        except ValueError:
            purl = None
        if purl is not None and purl.type == "deb" and purl.version:
            ecosystem = _deb_ecosystem(purl, intel)
            if ecosystem:
                grouped.setdefault((ecosystem, _source(purl), purl.version), []).append(component)
                continue
        if component.cpe:
            matches = intel.nvd_matches(component.cpe, [])
            if matches:
                yield cve_weakness(
                    None, f"sbom:{component.purl or component.name}",
                    title=f"SBOM component {component.name} {component.version} has {len(matches)} known "
                          f"vulnerabilit{'y' if len(matches) == 1 else 'ies'}",
                    cves=[m.cve for m in matches], facts=intel.cve_facts(m.cve for m in matches),
                    evidence=f"{component.where}: {component.cpe} matched to NVD ranges",
                    remediation=f"Upgrade {component.name} to {upgrade_target(matches)}, or ask the supplier "
                                "for a release that includes it.",
                    # NVD's name for it, not the SBOM's: a supplier may name an in-house build after its customer
                    product=cpe.parse(component.cpe).product, version=component.version, cpe_name=component.cpe)
    for (ecosystem, source, version), components in sorted(grouped.items()):
        fixes = intel.distro_matches(ecosystem, source, version)
        if fixes:
            yield distro_weakness(None, f"sbom:{ecosystem}:{source}", f"{source} {version}", source, version,
                                  fixes, intel, f"the SBOM ({components[0].where})", "high",
                                  sorted({c.name for c in components}))


def _assurance_state(supplier: Supplier, today: dt.date) -> tuple[Severity, str] | None:
    if not supplier.assurance:
        return Severity.MEDIUM, "no assurance (such as Cyber Essentials Plus) recorded"
    current = [a for a in supplier.assurance if a.expires is None or a.expires >= today]
    if not current:
        latest = max(supplier.assurance, key=lambda a: a.expires or dt.date.min)
        return Severity.HIGH, f"{latest.scheme} expired on {latest.expires}"
    soon = [a for a in current if a.expires is not None and a.expires - today <= ASSURANCE_WARNING]
    if len(soon) == len(current):
        first = min(soon, key=lambda a: a.expires or dt.date.max)
        return Severity.LOW, f"{first.scheme} expires on {first.expires}"
    return None


@check("WA602", "supply_chain", "supplier-assurance", evidence=(EvidenceKind.SUPPLIER,))
def supplier_assurance(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A supplier in the register has no assurance recorded, or its assurance (Cyber Essentials
    Plus, ISO 27001, ...) has expired (high) or expires within 30 days (low).

    Why it matters: a supplier with access to council systems is part of the council's attack
    surface; lapsed assurance means nobody has checked its basic controls lately.
    Fix: ask the supplier for its current certificate, record it in the register, or limit the
    supplier's access until it is provided.
    """
    today = ctx.now.date()
    for supplier in host.evidence.suppliers:
        state = _assurance_state(supplier, today)
        if state is None:
            continue
        severity, what = state
        yield Weakness(subject=f"supplier:{supplier.name}:assurance", severity=severity,
                       title=f"Supplier {supplier.name}: {what}",
                       evidence=f"{supplier.where}: {supplier.name} ({supplier.service or 'service not stated'}), "
                                f"access: {', '.join(supplier.access) or 'not stated'}",
                       remediation=f"Obtain {supplier.name}'s current certificate and record it (scheme and expiry) "
                                   "in the supplier register; restrict its access until you have it.")


@check("WA603", "supply_chain", "supplier-review-overdue", evidence=(EvidenceKind.SUPPLIER,))
def supplier_review_overdue(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A supplier's access and assurance have not been reviewed within the estate's review
    interval (`supplier_review`, default a year), or never.

    Why it matters: access granted for a project often outlives it; reviews are when unused
    routes in are closed.
    Fix: review the supplier's access and assurance, and record the date in the register.
    """
    today = ctx.now.date()
    for supplier in host.evidence.suppliers:
        if supplier.last_review is not None and today - supplier.last_review <= ctx.policy.supplier_review:
            continue
        when = f"last reviewed {supplier.last_review}" if supplier.last_review else "never reviewed"
        yield Weakness(subject=f"supplier:{supplier.name}:review", severity=Severity.MEDIUM,
                       title=f"Supplier {supplier.name} is overdue for review ({when})",
                       evidence=f"{supplier.where}: last_review {supplier.last_review or 'not recorded'}; policy: "
                                f"every {ctx.policy.supplier_review.days} days",
                       remediation=f"Review {supplier.name}'s access routes and assurance, remove what is no longer "
                                   "needed, and record today's date as last_review.")


@check("WA604", "supply_chain", "package-source-insecure", evidence=(EvidenceKind.SOURCE,))
def package_source_insecure(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An apt source is marked `trusted=yes` (signature checks off: high) or fetched over plain
    HTTP (low: apt still checks signatures, but what the host installs is visible on the wire
    and a network attacker can hold back updates).

    Board: a software source is trusted without its signature being checked, or fetched unprotected.

    Why it matters: the package source is how code reaches every host as root.
    Fix: remove `trusted=yes` and name the repository's key with `signed-by=`; use https URIs.
    """
    for source in host.evidence.sources:
        if source.trusted:
            yield Weakness(subject=f"source:{source.uri}:trusted", severity=Severity.HIGH,
                           title=f"Package source {source.uri} is trusted without signature checks",
                           evidence=f"{source.where}: trusted=yes for {source.uri}",
                           remediation="Remove trusted=yes; download the repository's signing key to "
                                       "/etc/apt/keyrings and name it with signed-by=.")
        if source.uri.lower().startswith("http://"):
            yield Weakness(subject=f"source:{source.uri}:http", severity=Severity.LOW,
                           title=f"Package source {source.uri} uses plain HTTP",
                           evidence=f"{source.where}: {source.uri}",
                           remediation="Use the https:// URI for this repository (deb.debian.org and most "
                                       "mirrors serve both).")


def _remote_tool(service: Service) -> str | None:
    """By whole words ("WordPress" holds "rdp" but is no RDP); VNC servers add a maker's name
    in front ("RealVNC", "TightVNC")."""
    words = re.split(r"[^a-z0-9-]+", f"{service.name} {service.product}".lower())
    return next((route for needle, route in REMOTE_ACCESS
                 if any(w == needle or (needle == "vnc" and w.endswith("vnc")) for w in words)), None)


@check("WA605", "supply_chain", "remote-access-tool", scripts=("rdp-enum-encryption", "vnc-info"))
def remote_access_tool(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A third-party remote-access tool (TeamViewer, AnyDesk, VNC, RDP, ScreenConnect, ...) is
    reachable, linked to the supplier whose register entry names that access route. With no
    supplier on record it is medium: nobody owns that way in.

    Why it matters: supplier remote access is a favourite route for ransomware crews; every such
    route should have an owner, assurance and a review date.
    Fix: record the supplier that uses it (access route) in the register, or remove the tool.
    """
    for service in host.open_services():
        route = _remote_tool(service)
        if route is None:
            continue
        suppliers = [s for s in ctx.suppliers if route in s.access]
        label = f"{service.product or service.name} ({route})"
        if suppliers:
            names = ", ".join(s.name for s in suppliers)
            yield Weakness.on(service, severity=Severity.LOW,
                              title=f"Supplier remote access {label} on {service.endpoint}",
                              evidence=f"nmap -sV on {service.endpoint}: {service.name} {service.product}; supplier "
                                       f"register: {names} ({suppliers[0].where}) uses {route}",
                              remediation=f"Keep {route} limited to {names}: allow it only when needed, behind MFA, "
                                          "and review it with the supplier.")
        else:
            yield Weakness.on(service, severity=Severity.MEDIUM,
                              title=f"Remote-access tool {label} on {service.endpoint} with no supplier on record",
                              evidence=f"nmap -sV on {service.endpoint}: {service.name} {service.product}; no "
                                       f"supplier in the register lists '{route}' access",
                              remediation=f"Find who uses {route} here; record them in the supplier register with "
                                          "their assurance, or remove the tool.")

