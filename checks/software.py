"""What software a service runs, read from nmap's identification: the product CPE with its
version, and whether the banner shows a distribution build (and which release).

A banner such as `OpenSSH 9.2p1 Debian 2+deb12u3` names a Debian package revision: the
distribution may have backported fixes into it, so it is judged by Debian's advisories, never by
upstream version ranges. `Apache httpd 2.4.62 (Debian)` names a distribution build without a
revision: upstream ranges still apply, with low confidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from warpagent.model.findings import Platform, Service

_DISTRO_BANNER = re.compile(r"^(?P<upstream>\S+)\s+(?P<distro>Debian|Ubuntu)[\s-]+(?P<revision>\S+)")
_DISTRO_HINT = re.compile(r"\b(Debian|Ubuntu|Red Hat|CentOS|Rocky|AlmaLinux|SUSE|Fedora|Raspbian)\b", re.IGNORECASE)
_DEBIAN_RELEASE = re.compile(r"deb(?P<release>\d+)u\d+")
_DEBIAN_SERIES = ("potato", "woody", "sarge", "etch", "lenny", "squeeze", "wheezy", "jessie", "stretch",
                  "buster", "bullseye", "bookworm", "trixie", "forky")
_PLAIN_VERSION = re.compile(r"^\d[\w.+~-]*$")


@dataclass(frozen=True)
class Software:
    cpe: str  # product CPE with the version: cpe:/a:openbsd:openssh:9.2p1
    label: str  # as the technician would say it: "OpenSSH 9.2p1 Debian 2+deb12u3"
    upstream: str  # "9.2p1"
    distro: str = ""  # "debian", "ubuntu" when the banner carries a distribution revision
    revision: str = ""  # "2+deb12u3"
    distro_hint: bool = False  # "(Debian)" or similar without a revision

    @property
    def debian_version(self) -> str:
        """The package version as dpkg writes it, less the epoch banners never show."""
        return f"{self.upstream}-{self.revision}"

    def release_hint(self) -> str:
        """'12' for +deb12u3, 'squeeze' for +squeeze5: the release the revision names, if any."""
        if match := _DEBIAN_RELEASE.search(self.revision):
            return match["release"]
        for series in _DEBIAN_SERIES:
            if series in self.revision.lower():
                return series
        return ""


def software_of(service: Service) -> Software | None:
    """The application a service runs, with a version, or None when nmap did not see one."""
    app = next((c for c in service.cpes if c.startswith("cpe:/a:")), "")
    if not app or not service.version:
        return None
    label = " ".join(p for p in (service.product, service.version) if p)
    banner = _DISTRO_BANNER.match(service.version)
    fields = app[len("cpe:/"):].split(":")
    if banner:
        upstream = banner["upstream"]
        fields = [*fields[:3], upstream]
        return Software(cpe="cpe:/" + ":".join(fields), label=label, upstream=upstream,
                        distro=banner["distro"].lower(), revision=banner["revision"])
    if len(fields) < 4 or not fields[3]:
        first = service.version.split()[0]
        if not _PLAIN_VERSION.match(first):
            return None
        fields = [*fields[:3], first]
    hint = bool(_DISTRO_HINT.search(f"{service.version} {service.extrainfo}"))
    return Software(cpe="cpe:/" + ":".join(fields), label=label, upstream=fields[3], distro_hint=hint)


def platform_from_banner(software: Software) -> Platform | None:
    """A Debian release named by a package revision (+deb12u3, +squeeze5)."""
    if software.distro != "debian":
        return None
    hint = software.release_hint()
    if not hint:
        return None
    return Platform(distro="debian", version=hint, evidence=f"banner '{software.label}'")
