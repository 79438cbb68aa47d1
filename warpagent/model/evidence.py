"""Host evidence as the checks see it: accounts, sudo rules, password policy, sshd settings,
package sources, SBOM components, backup records and the supplier register.

Frozen dataclasses only. Every fact keeps where it came from (`Where`: the file, relative to
the host's evidence folder, and the line) so a finding can point a technician at it. Password
hashes are never kept: an account records only its hash scheme and whether the password is
empty, locked or disabled.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from warpagent.model.directory import DirectorySnapshot
from warpagent.model.domains import DomainRecords
from warpagent.model.tenant import TenantResults


class EvidenceKind(enum.StrEnum):
    """A kind of host evidence. A finding from one kind is resolved only on a night when that
    kind was read for its host again: a missing export is not a fix."""

    PACKAGE = "package"
    ACCOUNT = "account"
    SHADOW = "shadow"
    SUDO = "sudo"
    POLICY = "policy"
    SSHD = "sshd"
    SOURCE = "source"
    SBOM = "sbom"
    BACKUP = "backup"
    SUPPLIER = "supplier"
    CREDENTIAL = "credential"
    DIRECTORY = "directory"  # Active Directory, read over LDAP
    SYSVOL = "sysvol"  # the domain's Group Policy files, read over SMB
    DOMAIN = "domain"  # a mail and web domain's DNS records
    WINDOWS = "windows"  # a Windows computer's build and update revision, from an export
    TENANT = "tenant"  # a Microsoft 365 tenant's assessment (ScubaGear's results)


# The categories host evidence measures: each is measured by a run only when at least one of
# these kinds was read for some asset (a network scan alone says nothing about sudo rules or
# backups, so those categories show as not measured rather than clean).
CATEGORY_EVIDENCE: dict[str, frozenset[str]] = {
    "privileges": frozenset({"account", "shadow", "sudo", "directory", "tenant"}),
    "passwords": frozenset({"shadow", "policy", "sshd", "credential", "directory", "tenant", "sysvol"}),
    "supply_chain": frozenset({"sbom", "supplier", "source", "tenant"}),
    "backups": frozenset({"backup"}),
}


def unmeasured_by_evidence(read_kinds: set[str] | frozenset[str]) -> tuple[str, ...]:
    return tuple(c for c, kinds in CATEGORY_EVIDENCE.items() if not kinds & read_kinds)


NOLOGIN_SHELLS = frozenset({"", "/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false",
                            "/bin/sync", "/usr/bin/sync", "/sbin/shutdown", "/sbin/halt"})
FIRST_HUMAN_UID = 1000  # Debian's and Red Hat's FIRST_UID; below it are system (service) accounts
NOBODY_UID = 65534


@dataclass(frozen=True)
class Where:
    file: str  # relative to the host's evidence folder: "etc/sudoers.d/90-backup"
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class PasswordState(enum.StrEnum):
    HASHED = "hashed"
    EMPTY = "empty"  # no password at all: anyone may log in where PAM allows nullok
    LOCKED = "locked"  # "!" before a hash: the password is kept but refused
    DISABLED = "disabled"  # "*" or "!" alone: no password login possible
    UNKNOWN = "unknown"  # no shadow file read


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    where: Where
    password: PasswordState = PasswordState.UNKNOWN
    scheme: str = ""  # hash scheme only ("yescrypt", "sha512crypt", "md5crypt", "des"); never the hash
    expires: dt.date | None = None  # account expiry date from /etc/shadow
    shadow_where: Where | None = None

    @property
    def service(self) -> bool:
        """A system account for a service, not a person (and not root)."""
        return 0 < self.uid < FIRST_HUMAN_UID or self.uid == NOBODY_UID

    @property
    def login_shell(self) -> bool:
        return self.shell not in NOLOGIN_SHELLS

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires <= today

    def inactive(self, today: dt.date) -> bool:
        """A user who has left in effect: locked, or past the account's expiry date."""
        return self.expired(today) or self.password is PasswordState.LOCKED


@dataclass(frozen=True)
class Group:
    name: str
    gid: int
    members: tuple[str, ...]
    where: Where


@dataclass(frozen=True)
class SudoRule:
    """One user specification, with aliases expanded."""

    users: tuple[str, ...]  # user names, "%group", or "ALL"
    runas: tuple[str, ...]  # users (or %groups) it runs as; () for the invoking user ("()", "( : wheel)")
    commands: tuple[str, ...]
    nopasswd: tuple[str, ...]  # the commands tagged NOPASSWD
    where: Where
    text: str  # the rule as written (no secrets live in sudoers)


@dataclass(frozen=True)
class Setting:
    value: str
    where: Where


@dataclass(frozen=True)
class PasswordPolicy:
    """What decides the strength of new passwords: the PAM password stack, pwquality and login.defs."""

    min_length: Setting | None = None  # the effective minimum the PAM stack enforces
    deny_list: Setting | None = None  # what checks new passwords against a dictionary or deny list
    max_days: Setting | None = None  # forced expiry (PASS_MAX_DAYS), when set below "never"
    pam_read: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SshdConfig:
    """Effective global settings (first value wins, as in sshd), lower-case keywords."""

    settings: tuple[tuple[str, Setting], ...]

    def get(self, keyword: str) -> Setting | None:
        return next((s for k, s in self.settings if k == keyword.lower()), None)


@dataclass(frozen=True)
class PackageSource:
    uri: str
    suites: tuple[str, ...]
    trusted: bool
    signed_by: str
    where: Where


@dataclass(frozen=True)
class SbomComponent:
    name: str
    version: str
    purl: str
    cpe: str
    where: Where  # the SBOM file and the component: "sbom/app.json:components[pkg:npm/left-pad@1.3.0]"


class BackupKind(enum.StrEnum):
    BACKUP = "backup"
    RESTORE_TEST = "restore-test"


@dataclass(frozen=True)
class BackupRecord:
    tool: str  # restic, borg, or the tool named in backups.csv
    job: str  # what is backed up: the restic paths, the borg archive prefix, the CSV job
    kind: BackupKind
    at: dt.datetime
    ok: bool
    where: Where
    offline: bool | None = None  # an offline or immutable copy exists (None: not recorded)
    detail: str = ""


@dataclass(frozen=True)
class Assurance:
    scheme: str  # "Cyber Essentials Plus", "ISO 27001"
    expires: dt.date | None


@dataclass(frozen=True)
class WindowsBuild:
    """A Windows computer's update level as an export reported it. Client or server comes from
    InstallationType, the release from the build number: never from ProductName, which Windows 11
    still gives as "Windows 10 Pro"."""

    name: str  # ComputerName or Intune's deviceName
    build: int  # CurrentBuild: 26100
    ubr: int  # UBR: 8037
    server: bool  # InstallationType Server, Server Core or Nano Server
    collected: dt.datetime  # CollectedAt, or Intune's lastSyncDateTime
    where: Where
    product_name: str = ""
    edition: str = ""
    display_version: str = ""  # "24H2"
    in_directory: bool = False  # the estate's Active Directory lists it: WA205 judges its support there

    @property
    def version(self) -> str:
        return f"10.0.{self.build}.{self.ubr}"


@dataclass(frozen=True)
class Supplier:
    name: str
    service: str
    access: tuple[str, ...]  # access routes: "teamviewer", "vpn", "rdp", "none"
    assurance: tuple[Assurance, ...]
    last_review: dt.date | None
    where: Where


@dataclass(frozen=True)
class AcceptedCredential:
    """A default credential a service accepted during an opt-in probe (the user name only:
    the password is from warpagent's public default list and is never recorded)."""

    service: str  # "ssh", "ftp", "telnet", "http-basic", "snmp"
    port: int
    protocol: str
    user: str


@dataclass(frozen=True)
class WebPage:
    """What a web service's front page said to one plain GET (redirects not followed)."""

    port: int
    scheme: str  # http or https
    status: int
    headers: tuple[tuple[str, str], ...]  # (lower-case name, value), in order; Set-Cookie kept apart
    cookies: tuple[str, ...]  # each Set-Cookie header as sent
    generator: str = ""  # <meta name="generator" content="...">

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)


@dataclass(frozen=True)
class HostEvidence:
    accounts: tuple[Account, ...] = ()
    groups: tuple[Group, ...] = ()
    sudo_rules: tuple[SudoRule, ...] = ()
    policy: PasswordPolicy | None = None
    sshd: SshdConfig | None = None
    sources: tuple[PackageSource, ...] = ()
    sbom: tuple[SbomComponent, ...] = ()
    backups: tuple[BackupRecord, ...] = ()
    suppliers: tuple[Supplier, ...] = ()
    credentials: tuple[AcceptedCredential, ...] = ()
    directory: DirectorySnapshot | None = None  # the estate's Active Directory, on its own record host
    domain: DomainRecords | None = None  # one of the estate's domains, on its own record host
    web: tuple[WebPage, ...] = ()  # the front page of each web service the scan found
    windows: WindowsBuild | None = None  # a Windows computer's update level, on its own record host
    tenant: TenantResults | None = None  # a Microsoft 365 tenant's assessment, on its own record host
    read: frozenset[EvidenceKind] = field(default_factory=frozenset)  # evidence kinds read for this host

    def account(self, name: str) -> Account | None:
        return next((a for a in self.accounts if a.name == name), None)
