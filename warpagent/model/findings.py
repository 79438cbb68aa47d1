"""Data that flows between the stages: estate scope -> inventory -> findings -> store.

Frozen dataclasses only; no I/O here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
from dataclasses import dataclass, field
from typing import NewType, Union

from warpagent.model.evidence import EvidenceKind, HostEvidence
from warpagent.numbers import whole_or_none

FindingId = NewType("FindingId", str)
RunId = NewType("RunId", int)

# Hosts that are records rather than machines: the estate's supplier register, a backup
# repository warpagent tested itself. They carry evidence and findings but are not counted as hosts.
RECORD_STATE = "record"

CATEGORIES: tuple[str, ...] = (
    "patches", "unsupported", "privileges", "passwords", "configs", "supply_chain", "backups",
)
# Each category in the words of the unlucky seven, for boards and for the people reading a shared posture.
CATEGORY_NAMES = {
    "patches": "Missing security patches", "unsupported": "Unsupported software",
    "privileges": "Inappropriate user privileges", "passwords": "Weak or poorly managed passwords",
    "configs": "Insecure configurations", "supply_chain": "Insecure supply chains",
    "backups": "Poorly configured or untested backups",
}


class Severity(enum.IntEnum):
    """Ordered so that comparisons read naturally: Severity.HIGH > Severity.MEDIUM."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.upper()]


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"
    PARTIAL = "partial"
    FAILED = "failed"


class FindingStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    ACCEPTED_RISK = "accepted_risk"  # the council decided to live with it, until a date
    FALSE_POSITIVE = "false_positive"  # the council showed it is not there

    @property
    def decided(self) -> bool:
        """A decision the council took: out of the open counts, but listed and tracked."""
        return self in DECIDED


DECIDED = (FindingStatus.ACCEPTED_RISK, FindingStatus.FALSE_POSITIVE)


class EventKind(enum.StrEnum):
    """What can happen to a finding; every one is kept with its date."""

    OPENED = "opened"
    REOPENED = "reopened"  # seen again after it was resolved, or re-opened by hand
    SEVERITY_CHANGED = "severity_changed"
    BECAME_KEV = "became_kev"
    ACCEPTED = "accepted"
    FALSE_POSITIVE = "false_positive"
    EXPIRED = "expired"  # a decision's date passed: open again
    RESOLVED = "resolved"
    VERIFIED = "verified"  # a targeted re-scan (scan --verify) looked at it again
    KEV_PAST_DUE = "kev_past_due"  # still open after its CISA KEV due date


# Structured NSE output as nmap's XML gives it: <elem> values and (keyed or not) <table>s.
ScriptValue = Union[str, "ScriptTable"]


@dataclass(frozen=True)
class ScriptTable:
    """An NSE <table>: keyed members in `keyed`, unkeyed ones in order in `items`."""

    keyed: tuple[tuple[str, ScriptValue], ...] = ()
    items: tuple[ScriptValue, ...] = ()

    def get(self, key: str) -> ScriptValue | None:
        for name, value in self.keyed:
            if name == key:
                return value
        return None

    def table(self, key: str) -> ScriptTable:
        value = self.get(key)
        return value if isinstance(value, ScriptTable) else ScriptTable()

    def text(self, key: str) -> str | None:
        value = self.get(key)
        return value if isinstance(value, str) else None

    def strings(self) -> tuple[str, ...]:
        return tuple(item for item in self.items if isinstance(item, str))


@dataclass(frozen=True)
class ScriptResult:
    """One NSE script's result: the flat text and the structured tables."""

    id: str
    output: str
    data: ScriptTable = ScriptTable()


@dataclass(frozen=True)
class Service:
    port: int
    protocol: str  # tcp or udp
    state: str  # open, open|filtered, ...
    name: str = ""  # nmap service name, e.g. "ssh", "http"
    product: str = ""
    version: str = ""
    extrainfo: str = ""
    tunnel: str = ""  # "ssl" when nmap saw the service inside TLS
    cpes: tuple[str, ...] = ()
    scripts: tuple[ScriptResult, ...] = ()
    # software found inside the service rather than by nmap (a CMS a web page names): its
    # findings get a subject of their own beside the server's ("443/tcp:wordpress")
    component: str = ""

    def script(self, script_id: str) -> ScriptResult | None:
        for result in self.scripts:
            if result.id == script_id:
                return result
        return None

    @property
    def endpoint(self) -> str:
        return f"{self.port}/{self.protocol}" + (f":{self.component}" if self.component else "")


@dataclass(frozen=True)
class Package:
    """An installed distribution package, as dpkg or rpm lists it."""

    name: str
    version: str
    source: str = ""  # the source package advisories are written against ("" when the same as name)
    source_version: str = ""
    ecosystem: str = ""  # OSV's name for the release: "Debian:12", "Ubuntu:22.04:LTS"

    @property
    def advisory_name(self) -> str:
        return self.source or self.name

    @property
    def advisory_version(self) -> str:
        return self.source_version or self.version


@dataclass(frozen=True)
class Platform:
    """The operating system release, from /etc/os-release or a service banner."""

    distro: str  # os-release ID: debian, ubuntu
    version: str  # VERSION_ID: "12", "22.04"
    codename: str = ""
    evidence: str = ""

    @property
    def osv_ecosystem(self) -> str:
        """OSV's ecosystem name for the release: Debian:12, Ubuntu:22.04:LTS ("" when unknown)."""
        if self.distro == "debian" and self.version:
            return f"Debian:{self.version.split('.')[0]}"
        if self.distro == "ubuntu" and self.version:
            year, _, month = self.version.partition(".")
            even = whole_or_none(year, "VERSION_ID", digits=4)
            lts = month == "04" and even is not None and even % 2 == 0
            return f"Ubuntu:{self.version}{':LTS' if lts else ''}"
        rpm_family = {"rocky": "Rocky Linux", "almalinux": "AlmaLinux"}.get(self.distro)
        if rpm_family and self.version:
            return f"{rpm_family}:{self.version.split('.')[0]}"
        return ""


@dataclass(frozen=True)
class Host:
    address: str
    asset: str  # how the council names it: the configured host name, else the address
    state: str = "up"
    services: tuple[Service, ...] = ()
    host_scripts: tuple[ScriptResult, ...] = ()
    packages: tuple[Package, ...] = ()  # host evidence; empty for a network-only scan
    platform: Platform | None = None
    evidence: HostEvidence = field(default_factory=HostEvidence)  # accounts, policies, SBOMs, backups

    def open_services(self) -> tuple[Service, ...]:
        return tuple(s for s in self.services if s.state == "open")


@dataclass(frozen=True)
class Inventory:
    """What collection saw of one estate in one run."""

    estate: str
    hosts: tuple[Host, ...]
    scanned: tuple[str, ...]  # every address nmap was asked to scan and finished
    unscanned: tuple[str, ...] = ()  # addresses in scope that a timeout or an error left out

    @property
    def complete(self) -> bool:
        return not self.unscanned


@dataclass(frozen=True)
class SourceDecision:
    """A decision the council took in the tool the evidence came from (a control omitted in
    ScubaGear's config, a result it marked incorrect), recorded on the finding like `accept` or
    `false-positive`."""

    accepted: bool  # True: an accepted risk; False: a false positive
    reason: str
    until: dt.date | None
    by: str


@dataclass(frozen=True)
class Weakness:
    """What a check reports about one host; `Finding.of` adds the estate, asset and check."""

    subject: str  # what on the host, stable across runs: "443/tcp", "sudo:/etc/sudoers:12"
    title: str
    severity: Severity
    evidence: str
    remediation: str
    port: int | None = None
    protocol: str = ""
    cves: tuple[str, ...] = ()
    product: str = ""  # the software the weakness is in, as nmap or the evidence named it
    version: str = ""
    cpe: str = ""
    kev_due: dt.date | None = None  # set when a CVE is in CISA KEV: the earliest due date
    ransomware: bool = False  # a KEV entry is known to be used in ransomware campaigns
    epss: float | None = None  # the highest EPSS score of the CVEs
    cvss: float | None = None  # the highest CVSS base score of the CVEs
    # the kind of host evidence it came from (None: the network scan); a check that reads one
    # kind need not say, Finding.of takes the check's declaration
    evidence_kind: EvidenceKind | None = None
    source_decision: SourceDecision | None = None  # not stored: applied to the finding after the run

    @classmethod
    def on(cls, service: Service, *, title: str, severity: Severity, evidence: str,
           remediation: str) -> Weakness:
        return cls(subject=service.endpoint, title=title, severity=severity, evidence=evidence,
                   remediation=remediation, port=service.port, protocol=service.protocol,
                   product=service.product, version=service.version,
                   cpe=next((c for c in service.cpes if c.startswith("cpe:/a:")), ""))


@dataclass(frozen=True, kw_only=True)
class Finding(Weakness):
    """One weakness on one asset, as the store tracks it."""

    estate: str
    asset: str
    check_id: str
    category: str

    @classmethod
    def of(cls, weakness: Weakness, *, estate: str, asset: str, check_id: str, category: str,
           evidence: tuple[EvidenceKind, ...] = ()) -> Finding:
        """The one place a check's result becomes a finding. `evidence` is what the check
        declared it reads: a weakness from evidence must name one of those kinds."""
        kind = weakness.evidence_kind
        if kind is None and len(evidence) == 1:
            kind = evidence[0]
        if evidence and kind not in evidence:
            raise ValueError(f"{check_id} reported evidence kind {kind} but declares {', '.join(evidence)}")
        if not evidence and kind is not None:
            raise ValueError(f"{check_id} reported evidence kind {kind} but declares no evidence")
        fields = {f.name: getattr(weakness, f.name) for f in dataclasses.fields(Weakness)}
        return cls(**fields | {"evidence_kind": kind}, estate=estate, asset=asset, check_id=check_id,
                   category=category)

    @property
    def id(self) -> FindingId:
        """Stable across runs: the same weakness keeps its id night after night."""
        key = "\x1f".join((self.estate, self.asset, self.check_id, self.subject))
        return FindingId(hashlib.sha256(key.encode()).hexdigest()[:20])


@dataclass(frozen=True)
class TrackedFinding:
    """A finding as the store knows it, with its lifecycle."""

    finding: Finding
    first_seen: dt.datetime
    last_seen: dt.datetime
    status: FindingStatus
    resolved_at: dt.datetime | None = None
    status_reason: str = ""
    reopened_at: dt.datetime | None = None
    decided_by: str = ""  # who accepted it or called it a false positive
    decided_until: dt.date | None = None  # when that decision lapses and the finding opens again

    @property
    def id(self) -> FindingId:
        return self.finding.id


@dataclass(frozen=True)
class FindingEvent:
    finding_id: FindingId
    at: dt.datetime
    kind: EventKind
    detail: str = ""
    by: str = ""  # a person for a decision; empty for what a run saw


@dataclass(frozen=True)
class CheckError:
    """A check that raised: recorded on the run, the other checks go on."""

    check_id: str
    asset: str
    message: str


@dataclass(frozen=True)
class ScanRun:
    id: RunId
    estate: str
    started: dt.datetime
    finished: dt.datetime | None
    status: RunStatus
    hosts_scanned: int = 0
    hosts_up: int = 0
    errors: tuple[str, ...] = ()
    unmeasured: tuple[str, ...] = ()  # categories this run could not measure (no intel)
    verifying: bool = False  # a targeted re-scan of findings (scan --verify), not a night's scan
    intel: tuple[str, ...] | None = None  # the intel sources its checks had; None for runs from before it was kept
    unmeasured_checks: tuple[str, ...] | None = None  # checks that could not run for want of intel (None: not kept)


@dataclass(frozen=True)
class RunDelta:
    """What changed in the store because of one run."""

    run: ScanRun
    new: tuple[FindingId, ...] = ()
    still_open: tuple[FindingId, ...] = ()
    still_decided: tuple[FindingId, ...] = ()  # seen again but accepted or a false positive: not open
    reopened: tuple[FindingId, ...] = ()
    resolved: tuple[FindingId, ...] = ()
    check_errors: tuple[CheckError, ...] = field(default_factory=tuple)
