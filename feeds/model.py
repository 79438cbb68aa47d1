"""What the feeds hold, in shapes the checks can use: loader output and the intel interface.

Checks see intel only through `Intel` (a Protocol), so they stay pure functions of their
inputs; `feeds.intel_store.IntelStore` is the compiled SQLite implementation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from feeds import cpe


class FeedError(Exception):
    """A feed file that cannot be used: the message names the file and what is wrong."""


@dataclass(frozen=True)
class KevEntry:
    cve: str
    vendor: str
    product: str
    name: str
    date_added: dt.date
    due_date: dt.date
    ransomware: bool  # knownRansomwareCampaignUse == "Known"
    action: str


@dataclass(frozen=True)
class EpssScore:
    cve: str
    score: float  # probability of exploitation activity in the next 30 days
    percentile: float


@dataclass(frozen=True)
class CveRecord:
    """One NVD CVE: scores and the applicability statements (configurations) as NVD wrote them."""

    id: str
    published: str
    description: str
    cvss: float | None
    cvss_version: str
    severity: str  # NVD's baseSeverity, lower case; "" when not scored
    configurations: tuple[Mapping[str, Any], ...] = ()

    def vulnerable_products(self) -> set[tuple[str, str]]:
        """(vendor, product) of every criterion marked vulnerable: the index the matcher uses."""
        keys: set[tuple[str, str]] = set()
        for configuration in self.configurations:
            for node in configuration.get("nodes", ()):
                for match in node.get("cpeMatch", ()):
                    if match.get("vulnerable"):
                        try:
                            keys.add(cpe.parse(match["criteria"]).key)
                        except (KeyError, ValueError):
                            continue
        return keys


@dataclass(frozen=True)
class DistroFix:
    """One distribution advisory's verdict on one source package in one release."""

    ecosystem: str  # OSV's: "Debian:12", "Ubuntu:22.04:LTS"
    package: str  # source package
    advisory: str  # DSA-5724-1, DEBIAN-CVE-2024-6387, UBUNTU-CVE-...
    cves: tuple[str, ...]
    introduced: str  # "0" when every version before the fix is affected
    fixed: str  # "" when no fix has been released
    cvss: float | None = None


@dataclass(frozen=True)
class EolCycle:
    cycle: str
    release_date: dt.date | None
    eol: dt.date | bool  # a date, or True/False when the project gives no date
    latest: str = ""
    lts: bool = False
    codename: str = ""


@dataclass(frozen=True)
class EolProduct:
    name: str  # endoflife.date's id: "apache-http-server"
    title: str
    category: str
    cpes: tuple[str, ...] = ()
    purls: tuple[str, ...] = ()
    cycles: tuple[EolCycle, ...] = ()


@dataclass(frozen=True)
class OsRelease:
    distro: str  # debian, ubuntu
    version: str  # "12", "22.04"
    codename: str  # "Bookworm"
    series: str  # "bookworm"
    released: dt.date | None
    eol: dt.date | None  # end of regular security support
    eol_extended: dt.date | None = None  # LTS (Debian) or ESM (Ubuntu)


@dataclass(frozen=True)
class DistroBuild:
    product: str  # endoflife.date product name
    upstream: str  # "1.22.1": the version without epoch or distribution revision
    distro: str  # "debian"
    suite: str  # "bookworm", "bookworm-security"
    package: str  # the source package: "nginx"
    version: str  # the distribution's full version: "1.22.1-9+deb12u1"

    @property
    def release(self) -> str:
        """The release a suite belongs to: bookworm-security is bookworm."""
        return self.suite.split("-", 1)[0]


@dataclass(frozen=True)
class SupportEnded:
    release: str  # "deb12"
    package: str
    last_version: str
    ended: dt.date
    note: str = ""


# --- what matching returns ------------------------------------------------------------------

@dataclass(frozen=True)
class CveFacts:
    cve: str
    cvss: float | None = None
    severity: str = ""
    kev: KevEntry | None = None
    epss: EpssScore | None = None
    description: str = ""


@dataclass(frozen=True)
class CveMatch:
    """An NVD configuration that holds for a product: the CVE and where its range ends."""

    cve: str
    fixed: str = ""  # first fixed upstream version, when the range says so
    last_affected: str = ""  # versionEndIncluding: fixed in a later version
    criteria: str = ""


@dataclass(frozen=True)
class DistroMatch:
    advisory: str
    cves: tuple[str, ...]
    fixed: str
    ecosystem: str
    cvss: float | None = None


@dataclass(frozen=True)
class EolVerdict:
    product: EolProduct
    cycle: EolCycle


@dataclass(frozen=True)
class SourceStatus:
    source: str
    updated: dt.datetime | None
    records: int
    detail: str = ""
    bundled: dt.date | None = None  # the snapshot's date, while warpagent's bundled copy is in use

    def age_days(self, now: dt.datetime) -> int | None:
        return (now - self.updated).days if self.updated else None


class Intel(Protocol):
    """The lookups the patches and unsupported checks make."""

    def nvd_matches(self, subject: str, host_cpes: Sequence[str]) -> list[CveMatch]: ...

    def distro_matches(self, ecosystem: str, package: str, version: str) -> list[DistroMatch]: ...

    def distro_ecosystems(self, distro: str, package: str, upstream: str) -> list[str]: ...

    def cve_facts(self, cves: Iterable[str]) -> dict[str, CveFacts]: ...

    def eol_for_cpe(self, cpe: str) -> EolVerdict | None: ...

    def eol_product(self, name: str) -> EolProduct | None: ...

    def os_release(self, distro: str, version_or_series: str) -> OsRelease | None: ...

    def os_releases(self, distro: str) -> list[OsRelease]: ...

    def support_ended(self, release: str, package: str) -> SupportEnded | None: ...

    def distro_builds(self, product: str, upstream: str) -> list[DistroBuild]: ...

    def has(self, source: str) -> bool: ...
