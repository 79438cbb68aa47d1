"""What the feeds hold, in shapes the checks can use: loader output and the intel interface.

Checks see intel only through `Intel` (a Protocol), so they stay pure functions of their
inputs; `feeds.intel_store.IntelStore` is the compiled SQLite implementation.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

from feeds import cpe


class FeedError(Exception):
    """A feed file that cannot be used: the message names the file and what is wrong."""


_SHAPES: dict[type, tuple[tuple[str, tuple[type, ...]], ...]] = {}


def _shape(cls: type) -> tuple[tuple[str, tuple[type, ...]], ...]:
    """(field, the runtime types its annotation allows) for each field of a record class."""
    if cls in _SHAPES:
        return _SHAPES[cls]
    hints = typing.get_type_hints(cls)
    shape = []
    for item in fields(cls):
        hint = hints[item.name]
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        allowed = tuple(typing.get_origin(o) or o for o in options)
        if float in allowed:
            allowed += (int,)
        if all(isinstance(a, type) for a in allowed):
            shape.append((item.name, tuple(a if a is not Mapping else dict for a in allowed)))
    _SHAPES[cls] = tuple(shape)
    return _SHAPES[cls]


class Shaped:
    """A record held to its declared field types as it is built, so a loader reading hostile input
    (a KEV `vendorProject` that is an object, an NVD list where a string belongs, a short CSV row
    that gives None) raises a TypeError it names, and the intel store never sees a wrong type."""

    def __post_init__(self) -> None:
        for name, allowed in _shape(type(self)):
            value = getattr(self, name)
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                raise TypeError(f"'{name}' is {type(value).__name__}, not "
                                f"{' or '.join(sorted(a.__name__ for a in allowed))}")


@dataclass(frozen=True)
class KevEntry(Shaped):
    cve: str
    vendor: str
    product: str
    name: str
    date_added: dt.date
    due_date: dt.date
    ransomware: bool  # knownRansomwareCampaignUse == "Known"
    action: str


@dataclass(frozen=True)
class EpssScore(Shaped):
    cve: str
    score: float  # probability of exploitation activity in the next 30 days
    percentile: float


@dataclass(frozen=True)
class CveRecord(Shaped):
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
class DistroFix(Shaped):
    """One distribution advisory's verdict on one source package in one release."""

    ecosystem: str  # OSV's: "Debian:12", "Ubuntu:22.04:LTS"
    package: str  # source package
    advisory: str  # DSA-5724-1, DEBIAN-CVE-2024-6387, UBUNTU-CVE-...
    cves: tuple[str, ...]
    introduced: str  # "0" when every version before the fix is affected
    fixed: str  # "" when no fix has been released
    cvss: float | None = None


@dataclass(frozen=True)
class EolCycle(Shaped):
    cycle: str
    release_date: dt.date | None
    eol: dt.date | bool  # a date, or True/False when the project gives no date
    latest: str = ""
    lts: bool = False
    codename: str = ""


@dataclass(frozen=True)
class EolProduct(Shaped):
    name: str  # endoflife.date's id: "apache-http-server"
    title: str
    category: str
    cpes: tuple[str, ...] = ()
    purls: tuple[str, ...] = ()
    cycles: tuple[EolCycle, ...] = ()


@dataclass(frozen=True)
class OsRelease(Shaped):
    distro: str  # debian, ubuntu
    version: str  # "12", "22.04"
    codename: str  # "Bookworm"
    series: str  # "bookworm"
    released: dt.date | None
    eol: dt.date | None  # end of regular security support
    eol_extended: dt.date | None = None  # LTS (Debian) or ESM (Ubuntu)


@dataclass(frozen=True)
class DistroBuild(Shaped):
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
class SupportEnded(Shaped):
    release: str  # "deb12"
    package: str
    last_version: str
    ended: dt.date
    note: str = ""


@dataclass(frozen=True)
class WindowsUpdate(Shaped):
    """One fix in a month's MSRC document for one Windows line: a (build, client or server) pair,
    since build 26100 is both Windows 11 24H2 and Server 2025, on UBR sequences ~8000 apart."""

    month: str  # "2026-03"
    released: dt.date  # Patch Tuesday (the document's InitialReleaseDate)
    build: int  # 26100
    server: bool
    ubr: int  # the update build revision the fix brings: 10.0.26100.8037 -> 8037
    kb: str  # "5079473"
    kind: str  # "cumulative" (Security Update, Monthly Rollup) or "partial" (hotpatch, security only)
    esu: bool  # only in the ESU product family: updates need Extended Security Updates
    product: str  # one of Microsoft's names for the line, e.g. "Windows Server 2025"
    cves: tuple[str, ...]  # fixed by it
    exploited: tuple[str, ...]  # of those, marked "Exploited:Yes"


@dataclass(frozen=True)
class Month:
    """What one month's update brings a Windows line (feeds.windows builds them)."""

    month: str  # "2026-03"
    released: dt.date
    product: str
    cumulative: int | None  # the UBR of the month's cumulative update (None: none for this line)
    cumulative_kb: str
    partial: int | None  # the UBR of its hotpatch or security-only update, if any
    partial_kb: str
    esu: bool  # every fix this month is in the ESU family: updates need Extended Security Updates
    fixed_at: tuple[tuple[str, int], ...]  # (CVE, the lowest UBR of this month that fixes it)
    exploited: frozenset[str]

    @property
    def name(self) -> str:
        """"2026-03" -> "March 2026"."""
        return dt.date.fromisoformat(f"{self.month}-01").strftime("%B %Y")


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

    def windows_ladder(self, build: int, server: bool) -> tuple[Month, ...]: ...

    def windows_months(self) -> Sequence[str]: ...

    def has(self, source: str) -> bool: ...
