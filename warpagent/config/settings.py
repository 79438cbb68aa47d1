"""The typed settings every stage reads. Their defaults are the schema's (warpagent/config/schema.yaml),
read through `defaults`, so a default is written once."""

from __future__ import annotations

import datetime as dt
import os
import string
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from feeds.update import FeedSettings
from warpagent.config.defaults import default, seconds
from warpagent.errors import ConfigError
from warpagent.model.findings import Severity, TrackedFinding
from warpagent.store.database import StoreLocation


@dataclass(frozen=True)
class Organisation:
    name: str
    region: str = default("organisation.region")
    sector: str = default("organisation.sector")


@dataclass(frozen=True)
class SshSource:
    """Hosts to collect evidence from over SSH; secrets stay in the environment."""

    hosts: tuple[str, ...]
    username: str
    known_hosts: Path
    key_file: Path | None = None
    key_passphrase_env: str = default("estates[].evidence[].ssh.key_passphrase_env")
    password_env: str = default("estates[].evidence[].ssh.password_env")
    port: int = default("estates[].evidence[].ssh.port")
    timeout_s: int = seconds("estates[].evidence[].ssh.timeout")


@dataclass(frozen=True)
class ResticRepository:
    name: str
    repository: str
    password_env: str
    sample: str = default("estates[].backups.restic[].sample")
    read_data_subset: str = default("estates[].backups.restic[].read_data_subset")
    offline: bool = default("estates[].backups.restic[].offline")
    timeout_s: int = seconds("estates[].backups.restic[].timeout")


@dataclass(frozen=True)
class BackupPolicy:
    max_age_s: int = seconds("estates[].backups.max_age")
    max_age_by_job_s: tuple[tuple[str, int], ...] = ()  # (job, tool or tool:job, seconds)
    restore_test_within_s: int = seconds("estates[].backups.restore_test_within")
    restic: tuple[ResticRepository, ...] = ()


@dataclass(frozen=True)
class CredentialProbes:
    enabled: bool = default("estates[].default_credentials.enabled")
    max_attempts: int = default("estates[].default_credentials.max_attempts")
    pause_s: int = seconds("estates[].default_credentials.pause")
    services: tuple[str, ...] = tuple(default("estates[].default_credentials.services"))


@dataclass(frozen=True)
class DirectorySettings:
    """An Active Directory read over LDAPS (or LDAP with StartTLS); the password stays in the environment."""

    url: str
    bind_dn: str
    password_env: str
    start_tls: bool = default("estates[].directory.start_tls")
    base_dn: str = default("estates[].directory.base_dn")
    ca_bundle: Path | None = None  # None: the system's CAs
    timeout_s: int = seconds("estates[].directory.timeout")
    page_size: int = default("estates[].directory.page_size")
    sysvol: bool = default("estates[].directory.sysvol")

    @property
    def host(self) -> str:
        """The domain controller's name as the URL gives it (what its certificate must carry)."""
        return self._split()[0]

    @property
    def port(self) -> int:
        return self._split()[1]

    @property
    def use_ssl(self) -> bool:
        return self.url.startswith("ldaps://")

    def _split(self) -> tuple[str, int]:
        parts = urllib.parse.urlsplit(self.url.rstrip("/"))
        return parts.hostname or "", parts.port or (636 if self.use_ssl else 389)


@dataclass(frozen=True)
class MailSettings:
    dkim_selectors: tuple[str, ...] = ()
    dmarc_report_to: str = default("estates[].mail.dmarc_report_to")
    ca_bundle: Path | None = None  # for MTA-STS policy hosts and MX certificates; None: the system's CAs
    timeout_s: int = seconds("estates[].mail.timeout")


@dataclass(frozen=True)
class EstateConfig:
    name: str
    targets: tuple[str, ...]
    exclude: tuple[str, ...] = tuple(default("estates[].exclude"))
    ports: str = default("estates[].ports")
    evidence: tuple[str, ...] = ()
    ssh: tuple[SshSource, ...] = ()
    suppliers: Path | None = None
    windows_updates: tuple[Path, ...] = ()  # files or folders of Windows update-level exports
    windows_updates_max_age_s: int = seconds("estates[].windows_updates_max_age")
    patch_deadline_s: int = seconds("estates[].patch_deadline")
    m365: tuple[Path, ...] = ()  # ScubaGear output folders or results files
    m365_max_age_s: int = seconds("estates[].m365_max_age")
    directory: DirectorySettings | None = None
    domains: tuple[str, ...] = ()
    mail: MailSettings = MailSettings()
    supplier_review_s: int = seconds("estates[].supplier_review")
    backups: BackupPolicy = BackupPolicy()
    default_credentials: CredentialProbes = CredentialProbes()
    timeout_s: int = seconds("estates[].timeout")
    host_timeout_s: int = seconds("estates[].host_timeout")
    service_timeout_s: int = seconds("estates[].service_timeout")
    fallback_timeout_s: int = seconds("estates[].fallback_timeout")
    chunk_size: int = default("estates[].chunk_size")
    parallel: int = default("estates[].parallel")
    max_rate: int | None = None  # packets per second across the estate's concurrent nmap processes
    max_addresses: int = default("estates[].max_addresses")
    assume_up: bool = default("estates[].assume_up")


@dataclass(frozen=True)
class CelerySettings:
    broker: str = ""  # no broker: executor local
    password_env: str = default("scan.celery.password_env")
    queue: str = default("scan.celery.queue")


@dataclass(frozen=True)
class ScanSettings:
    fail_on: Severity | None = None
    nmap_path: str = default("scan.nmap_path")
    timing: str = default("scan.timing")
    executor: str = default("scan.executor")  # local or celery
    dns_servers: tuple[str, ...] = ()  # host or host:port; none: the system resolver's
    dns_timeout_s: int = seconds("scan.dns_timeout")
    celery: CelerySettings = CelerySettings()


@dataclass(frozen=True)
class PeerConfig:
    name: str
    url: str
    collection: str
    api_root: str = default("sharing.peers[].api_root")
    username: str = default("sharing.peers[].username")
    password_env: str = default("sharing.peers[].password_env")
    api_key_env: str = default("sharing.peers[].api_key_env")
    api_key_header: str = default("sharing.peers[].api_key_header")
    verify_tls: bool = default("sharing.peers[].verify_tls")
    ca_bundle: str = default("sharing.peers[].ca_bundle")
    timeout_s: int = seconds("sharing.peers[].timeout")
    direction: str = default("sharing.peers[].direction")  # both, push or pull
    versions_collection: str = default("sharing.peers[].versions_collection")  # "" none: a hub's sealed one

    @property
    def pushes(self) -> bool:
        return self.direction in ("both", "push")

    @property
    def pulls(self) -> bool:
        return self.direction in ("both", "pull")


@dataclass(frozen=True)
class SharingSettings:
    pseudonym_key_env: str = default("sharing.pseudonym_key_env")
    pseudonym_key_file: Path | None = None
    tlp: str = default("sharing.tlp")
    k: int = default("sharing.k")
    outbox: Path = Path(default("sharing.outbox"))
    max_pull_bytes: int = default("sharing.max_pull_bytes")
    peers: tuple[PeerConfig, ...] = ()


@dataclass(frozen=True)
class RagRules:
    kev_days: int = default("reports.rag.kev_days")
    critical_days: int = default("reports.rag.critical_days")
    high_days: int = default("reports.rag.high_days")
    medium_days: int = default("reports.rag.medium_days")

    def past(self, deadline: str, tracked: TrackedFinding, moment: dt.datetime) -> bool:
        """Whether an open finding is past one deadline: "kev" (in CISA KEV), "critical", "high" or
        "medium", each counted from when the finding was first seen."""
        age = (moment - tracked.first_seen).days
        severity = tracked.finding.severity
        if deadline == "kev":
            return bool(tracked.finding.kev_due) and age > self.kev_days
        days = {"critical": self.critical_days, "high": self.high_days, "medium": self.medium_days}[deadline]
        return severity is Severity.parse(deadline) and age > days

    def past_due(self, tracked: TrackedFinding, moment: dt.datetime) -> bool:
        """Past a deadline that turns a category red on the board (and that peers compare)."""
        return any(self.past(deadline, tracked, moment) for deadline in ("kev", "critical", "high"))


@dataclass(frozen=True)
class EmailSettings:
    smtp_host: str
    sender: str
    to: tuple[str, ...]
    smtp_port: int = default("reports.email.smtp_port")
    security: str = default("reports.email.security")
    username: str = default("reports.email.username")
    password_env: str = default("reports.email.password_env")
    subject: str = default("reports.email.subject")
    outbox: Path = Path(default("reports.email.outbox"))
    timeout_s: int = seconds("reports.email.timeout")
    ca_bundle: Path | None = None


@dataclass(frozen=True)
class AlertSettings:
    to: tuple[str, ...]
    subject: str = default("reports.alerts.subject")


@dataclass(frozen=True)
class ReportSettings:
    title: str = default("reports.title")
    logo: Path | None = None
    primary_colour: str = default("reports.primary_colour")
    rag: RagRules = RagRules()
    email: EmailSettings | None = None
    alerts: AlertSettings | None = None


@dataclass(frozen=True)
class ScheduleSettings:
    timezone: str = default("schedule.timezone")
    scan: str = default("schedule.scan")
    feeds: str = default("schedule.feeds")
    estates: tuple[tuple[str, str], ...] = ()
    share_after_scan: bool = default("schedule.share_after_scan")
    pull: str = default("schedule.pull")
    board_report: str = default("schedule.board_report")
    alerts: str = default("schedule.alerts")
    misfire_grace_s: int = seconds("schedule.misfire_grace")
    notify_failures: bool = default("schedule.notify_failures")

    def scan_for(self, estate: str) -> str:
        return dict(self.estates).get(estate, self.scan)


@dataclass(frozen=True)
class HubUser:
    name: str
    role: str  # member, coordinator or reader
    password_env: str = default("hub.users[].password_env")
    password_hash: str = default("hub.users[].password_hash")
    identity: str = default("hub.users[].identity")


@dataclass(frozen=True)
class HubTls:
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class HubSettings:
    users: tuple[HubUser, ...]
    store: str  # a SQLite path (made absolute) or a database URL
    title: str = default("hub.title")
    host: str = default("hub.host")
    port: int = default("hub.port")
    url: str = default("hub.url")
    api_root: str = default("hub.api_root")
    tls: HubTls | None = None
    ca_bundle: str = ""
    threads: int = default("hub.threads")
    page_size: int = default("hub.page_size")
    max_request_bytes: int = default("hub.max_request_bytes")
    max_object_bytes: int = default("hub.max_object_bytes")
    max_objects_per_request: int = default("hub.max_objects_per_request")
    stale_after_s: int = seconds("hub.stale_after")

    @property
    def base_url(self) -> str:
        if self.url:
            return self.url
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/"

    @property
    def database_url(self) -> str:
        return StoreLocation.parse(self.store, Path("/")).url  # a SQLite path here is already absolute


@dataclass(frozen=True)
class Settings:
    source: str  # the file it came from, or EMBEDDED
    organisation: Organisation
    store: StoreLocation
    scan: ScanSettings
    estates: tuple[EstateConfig, ...]
    sharing: SharingSettings = SharingSettings()
    reports: ReportSettings = ReportSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    feeds: FeedSettings = field(default_factory=lambda: FeedSettings(dir=Path("intel")))
    hub: HubSettings | None = None

    def secret(self, env_name: str, key_path: str) -> str:
        """A secret named by an *_env key, read from the environment only when it is needed."""
        value = os.environ.get(env_name, "")
        if not value:
            raise ConfigError([f"{self.source}: At '{key_path}': environment variable {env_name} is not set; "
                               f"export it before running warpagent"])
        return value

    def pseudonym_key(self) -> bytes:
        """The council's pseudonym key, from sharing.pseudonym_key_file (readable by this user only)
        or the environment variable sharing.pseudonym_key_env; never echoed in any message."""
        file = self.sharing.pseudonym_key_file
        if file is not None:
            where = f"{self.source}: At 'sharing.pseudonym_key_file': {file}"
            try:
                if file.is_symlink() or not file.is_file():
                    raise ConfigError([f"{where} is not a file; {MAKE_KEY.format(folder=file.parent, file=file)}"])
                if file.stat().st_mode & 0o077:
                    raise ConfigError([f"{where} can be read by other users; run 'chmod 600 {file}'"])
                text = file.read_text(encoding="ascii").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError([f"{where} cannot be read ({exc.__class__.__name__}); check its owner and "
                                   "permissions"]) from None
        else:
            where = f"{self.source}: At 'sharing.pseudonym_key_env': the key in {self.sharing.pseudonym_key_env}"
            text = self.secret(self.sharing.pseudonym_key_env, "sharing.pseudonym_key_env").strip()
        if len(text) < MIN_KEY_HEX or any(c not in string.hexdigits for c in text):
            raise ConfigError([f"{where} is not a key of at least {MIN_KEY_HEX} hex characters; "
                               f"{MAKE_KEY.format(folder='/etc/warpagent', file='/etc/warpagent/pseudonym.key')}"])
        return text.encode()

    def estate(self, name: str) -> EstateConfig:
        for estate in self.estates:
            if estate.name == name:
                return estate
        known = ", ".join(e.name for e in self.estates)
        raise ConfigError([f"{self.source}: no estate named '{name}'; configured estates: {known}"])


MIN_KEY_HEX = 32  # 16 bytes: a pseudonym no one can reverse by trying organisation names
# python3 rather than openssl: a fresh Debian machine has the one warpagent runs on, not always the other
KEY_COMMAND = ("(umask 077; mkdir -p {folder} && python3 -c 'import secrets; print(secrets.token_hex(32))' "
               "> {file})")
MAKE_KEY = ("make one once with '" + KEY_COMMAND + "' as the user warpagent runs as, point sharing.pseudonym_key_file "
            "at it and keep it: a new key is a new pseudonym, and peers lose the council's trend")
