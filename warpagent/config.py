"""Load, validate and type the YAML configuration.

Every problem is reported as one line naming the file and key path and saying what to do;
all problems are collected before anything runs, so one fix-up pass is enough.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from feeds.sources import SOURCES as FEED_SOURCES
from feeds.update import FeedSettings
from warpagent import ports, scope, strict_yaml
from warpagent.database import StoreLocation, url_has_credentials, url_password
from warpagent.errors import ConfigError
from warpagent.models import Severity, TrackedFinding
from warpagent.text import capped, shown

DEFAULT_PATH = Path("config/warpagent.yaml")
ENV_VAR = "WARPAGENT_CONFIG"
EMBEDDED = "<embedded default>"

_DURATION = re.compile(r"^(\d{1,12})\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION_S = 3650 * 86400  # ten years: longer is a typo, and overflows the clocks it feeds


@dataclass(frozen=True)
class Organisation:
    name: str
    region: str = ""
    sector: str = ""


@dataclass(frozen=True)
class SshSource:
    """Hosts to collect evidence from over SSH; secrets stay in the environment."""

    hosts: tuple[str, ...]
    username: str
    known_hosts: Path
    key_file: Path | None = None
    key_passphrase_env: str = ""
    password_env: str = ""
    port: int = 22
    timeout_s: int = 60


@dataclass(frozen=True)
class ResticRepository:
    name: str
    repository: str
    password_env: str
    sample: str = ""
    read_data_subset: str = "5%"
    offline: bool = False
    timeout_s: int = 3600


@dataclass(frozen=True)
class BackupPolicy:
    max_age_s: int = 26 * 3600
    restore_test_within_s: int = 90 * 86400
    restic: tuple[ResticRepository, ...] = ()


@dataclass(frozen=True)
class CredentialProbes:
    enabled: bool = False
    max_attempts: int = 3
    pause_s: int = 2
    services: tuple[str, ...] = ("ssh", "ftp", "telnet", "http-basic", "snmp")


@dataclass(frozen=True)
class EstateConfig:
    name: str
    targets: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    ports: str = "top-1000"
    evidence: tuple[str, ...] = ()
    ssh: tuple[SshSource, ...] = ()
    suppliers: Path | None = None
    supplier_review_s: int = 365 * 86400
    backups: BackupPolicy = BackupPolicy()
    default_credentials: CredentialProbes = CredentialProbes()
    timeout_s: int = 6 * 3600
    host_timeout_s: int = 15 * 60
    service_timeout_s: int = 90
    chunk_size: int = 256
    parallel: int = 4
    max_rate: int | None = None  # packets per second across the estate's concurrent nmap processes
    max_addresses: int = 65536
    assume_up: bool = False


@dataclass(frozen=True)
class CelerySettings:
    broker: str = ""
    password_env: str = ""
    queue: str = "warpagent-scans"


@dataclass(frozen=True)
class ScanSettings:
    fail_on: Severity | None = None
    nmap_path: str = "nmap"
    timing: str = "T4"
    executor: str = "local"  # local or celery
    celery: CelerySettings = CelerySettings()


@dataclass(frozen=True)
class PeerConfig:
    name: str
    url: str
    collection: str
    api_root: str = ""
    username: str = ""
    password_env: str = ""
    api_key_env: str = ""
    api_key_header: str = "Authorization"
    verify_tls: bool = True
    ca_bundle: str = ""
    timeout_s: int = 30
    direction: str = "both"  # both, push or pull

    @property
    def pushes(self) -> bool:
        return self.direction in ("both", "push")

    @property
    def pulls(self) -> bool:
        return self.direction in ("both", "pull")


@dataclass(frozen=True)
class SharingSettings:
    pseudonym_key_env: str = "WARPAGENT_PSEUDONYM_KEY"
    pseudonym_key_file: Path | None = None
    tlp: str = "amber"
    k: int = 3
    outbox: Path = Path("outbox")
    max_pull_bytes: int = 20 * 1024 * 1024
    peers: tuple[PeerConfig, ...] = ()


@dataclass(frozen=True)
class RagRules:
    kev_days: int = 14
    critical_days: int = 15
    high_days: int = 30
    medium_days: int = 90

    def past_due(self, tracked: TrackedFinding, moment: dt.datetime) -> bool:
        """Open past its deadline: what turns a category red on the board, and what peers compare."""
        age = (moment - tracked.first_seen).days
        severity = tracked.finding.severity
        return bool((tracked.finding.kev_due and age > self.kev_days)
                    or (severity is Severity.CRITICAL and age > self.critical_days)
                    or (severity is Severity.HIGH and age > self.high_days))


@dataclass(frozen=True)
class EmailSettings:
    smtp_host: str
    sender: str
    to: tuple[str, ...]
    smtp_port: int = 587
    security: str = "starttls"
    username: str = ""
    password_env: str = ""
    subject: str = "{organisation}: cyber hygiene report {month}"
    outbox: Path = Path("mail-outbox")
    timeout_s: int = 30
    ca_bundle: Path | None = None


@dataclass(frozen=True)
class ReportSettings:
    title: str = "Cyber hygiene report"
    logo: Path | None = None
    primary_colour: str = "#1d4f91"
    rag: RagRules = RagRules()
    email: EmailSettings | None = None


@dataclass(frozen=True)
class ScheduleSettings:
    timezone: str = "Europe/London"
    scan: str = "0 1 * * *"
    feeds: str = "30 0 * * *"
    estates: tuple[tuple[str, str], ...] = ()
    share_after_scan: bool = True
    pull: str = "0 * * * *"
    board_report: str = "0 7 1 * *"
    misfire_grace_s: int = 12 * 3600
    notify_failures: bool = False

    def scan_for(self, estate: str) -> str:
        return dict(self.estates).get(estate, self.scan)


@dataclass(frozen=True)
class HubUser:
    name: str
    role: str  # member, coordinator or reader
    password_env: str = ""
    password_hash: str = ""
    identity: str = ""


@dataclass(frozen=True)
class HubTls:
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class HubSettings:
    users: tuple[HubUser, ...]
    store: str  # a SQLite path (made absolute) or a database URL
    title: str = "WARP hub"
    host: str = "127.0.0.1"
    port: int = 6443
    url: str = ""
    api_root: str = "warp"
    tls: HubTls | None = None
    ca_bundle: str = ""
    threads: int = 16
    page_size: int = 1000
    max_request_bytes: int = 10 * 1024 * 1024
    max_object_bytes: int = 256 * 1024
    max_objects_per_request: int = 1000
    stale_after_s: int = 45 * 86400

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
                    raise ConfigError([f"{where} is not a file; {MAKE_KEY.format(file=file)}"])
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
                               f"{MAKE_KEY.format(file='/etc/warpagent/pseudonym.key')}"])
        return text.encode()

    def estate(self, name: str) -> EstateConfig:
        for estate in self.estates:
            if estate.name == name:
                return estate
        known = ", ".join(e.name for e in self.estates)
        raise ConfigError([f"{self.source}: no estate named '{name}'; configured estates: {known}"])


MIN_KEY_HEX = 32  # 16 bytes: a pseudonym no one can reverse by trying organisation names
MAKE_KEY = ("make one once with '(umask 077; openssl rand -hex 32 > {file})', point sharing.pseudonym_key_file "
            "at it and keep it: a new key is a new pseudonym, and peers lose the council's trend")


def duration_seconds(text: str) -> int:
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(text)
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        resources.files("warpagent").joinpath("schema.yaml").read_text(encoding="utf-8"))
    return loaded


def example_text() -> str:
    """The commented example config; also the embedded default when no config file exists."""
    return resources.files("warpagent").joinpath("example.yaml").read_text(encoding="utf-8")


_FORMAT_CHECKER = jsonschema.FormatChecker(formats=())


@_FORMAT_CHECKER.checks("warpagent-target")
def _is_target(value: object) -> bool:
    return not isinstance(value, str) or scope.target_problem(value) is None


@_FORMAT_CHECKER.checks("warpagent-ports")
def _is_ports(value: object) -> bool:
    return not isinstance(value, str) or ports.problem(value) is None


@_FORMAT_CHECKER.checks("warpagent-cron")
def _is_cron(value: object) -> bool:
    return not isinstance(value, str) or value == "off" or cron_problem(value) is None


def cron_problem(expression: str) -> str | None:
    """Why a cron expression is not valid, or None."""
    from warpagent.schedule_rules import cron_trigger

    try:
        cron_trigger(expression, "UTC")
    except ValueError as exc:
        return f"'{expression}' is not a cron expression ({exc}); write e.g. '0 1 * * *' for 01:00 daily"
    return None


@_FORMAT_CHECKER.checks("warpagent-duration")
def _is_duration(value: object) -> bool:
    if not isinstance(value, str):
        return True
    match = _DURATION.match(value.strip())
    return match is not None and int(match.group(1)) * _UNIT_SECONDS[match.group(2)] <= MAX_DURATION_S


def _key_path(path: Iterable[object]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _secret_key(path: Iterable[object]) -> bool:
    """Keys that name where a secret is (an *_env variable, a key file): a mistake there is often
    the secret itself pasted in, so its value is never echoed."""
    last = list(path)[-1:] or [""]
    return isinstance(last[0], str) and (last[0].endswith("_env") or last[0] in ("password_hash", "pseudonym_key_file"))


def _explain(error: jsonschema.ValidationError) -> str:
    value: Any = error.instance
    if _secret_key(error.absolute_path) and error.validator in ("pattern", "type", "minLength", "format"):
        return ("not the name of an environment variable (capitals, digits and _, such as WARPAGENT_SMTP_PASSWORD); "
                "write the variable's name here and put the secret in it (the value given is not shown)"
                if str(error.absolute_path[-1]).endswith("_env") else "not valid (the value given is not shown)")
    error_schema: Any = error.schema
    validator_value: Any = error.validator_value
    if error.validator == "format":
        fmt = validator_value
        if fmt == "warpagent-target":
            return f"{scope.target_problem(str(value))}; fix or remove it"
        if fmt == "warpagent-ports":
            return f"{ports.problem(str(value))}"
        if fmt == "warpagent-cron":
            return str(cron_problem(str(value)))
        if fmt == "warpagent-duration":
            if _DURATION.match(str(value).strip()):
                return f"'{shown(str(value))}' is longer than ten years; write a duration such as 90m, 6h or 1d"
            return f"'{shown(str(value))}' is not a duration; write a number and a unit, such as 90m, 6h or 1d"
    if error.validator == "additionalProperties":
        extra = sorted(set(value) - set(error_schema.get("properties", {})), key=str)
        return (f"unknown key {', '.join(repr(shown(str(k), 40)) for k in extra[:5])}; check the spelling "
                "against config/README.md")
    if error.validator == "anyOf" and not error.absolute_path:
        return "'estates' is a required property; add the estates to scan (or a 'hub' section for a WARP hub)"
    if error.validator == "required":
        return f"{error.message}; add it (see config/README.md)"
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in validator_value)
        return f"{value!r} is not one of: {allowed}"
    if error.validator == "pattern" and error.path and error.path[-1] == "broker":
        return ("the broker URL must be redis://host:port/db or rediss://..., without a password (give that in "
                "scan.celery.password_env)")
    if error.validator == "pattern" and error.path and error.path[-1] == "name":
        return f"{value!r} is not a valid name; use letters, digits, dot, dash and underscore"
    return error.message


def validate(document: object, source: str) -> list[str]:
    """Every problem in a parsed document, one line each."""
    validator = jsonschema.Draft202012Validator(schema(), format_checker=_FORMAT_CHECKER)
    problems = [capped(f"{source}: At '{shown(_key_path(e.absolute_path), 120)}': {_explain(e)}")
                for e in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))]
    if problems or not isinstance(document, dict):
        return problems
    seen: set[str] = set()
    for index, estate in enumerate(document.get("estates", [])):
        name = estate.get("name")
        if name in seen:
            problems.append(f"{source}: At 'estates[{index}].name': estate name '{name}' is used twice; "
                            "give each estate its own name")
        seen.add(name)
    schedule = document.get("schedule", {})
    names = {e.get("name") for e in document.get("estates", [])}
    for name in schedule.get("estates", {}):
        if name not in names:
            problems.append(f"{source}: At 'schedule.estates.{name}': no estate named '{name}'; use one of "
                            f"{', '.join(sorted(str(n) for n in names))}")
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(schedule.get("timezone", "Europe/London"))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # a folder (America), or too long a name
        problems.append(f"{source}: At 'schedule.timezone': '{shown(str(schedule.get('timezone')))}' is not a "
                        "time zone; use an IANA name such as Europe/London")
    peers_seen: set[str] = set()
    for index, peer in enumerate(document.get("sharing", {}).get("peers", [])):
        if peer["name"] in peers_seen:
            problems.append(f"{source}: At 'sharing.peers[{index}].name': peer name '{peer['name']}' is used "
                            "twice; give each peer its own name")
        peers_seen.add(peer["name"])
        if isinstance(peer.get("url"), str) and url_has_credentials(peer["url"]):
            problems.append(f"{source}: At 'sharing.peers[{index}].url': the URL holds a user name or password "
                            "(not shown); remove it and give them in username and password_env")
        if peer.get("password_env") and not peer.get("username"):
            problems.append(f"{source}: At 'sharing.peers[{index}]': password_env needs a username; add "
                            "username or use api_key_env")
    for key, value in (("store", document.get("store", "")), ("hub.store", document.get("hub", {}).get("store", ""))):
        if isinstance(value, str) and "://" in value:
            if url_password(value):
                problems.append(f"{source}: At '{key}': the database URL holds a password; remove it and give it "
                                "in PGPASSWORD or ~/.pgpass")
            elif not value.startswith(("postgresql://", "postgres://", "sqlite:///")):
                problems.append(f"{source}: At '{key}': '{value.split('://')[0]}' databases are not supported; "
                                "use a file path or a postgresql:// URL")
    scan_doc = document.get("scan", {})
    if scan_doc.get("executor") == "celery" and "celery" not in scan_doc:
        problems.append(f"{source}: At 'scan': executor celery needs scan.celery.broker (redis://host:6379/0)")
    users_seen: set[str] = set()
    for index, user in enumerate(document.get("hub", {}).get("users", [])):
        if user["name"] in users_seen:
            problems.append(f"{source}: At 'hub.users[{index}].name': user '{user['name']}' is listed twice; "
                            "give each account its own name")
        users_seen.add(user["name"])
        if bool(user.get("password_env")) == bool(user.get("password_hash")):
            problems.append(f"{source}: At 'hub.users[{index}]': give exactly one of password_env or password_hash "
                            "(from 'warpagent hub hash-password')")
    return problems


def parse_text(text: str, source: str, base_dir: Path) -> Settings:
    try:
        document = strict_yaml.load(text)
    except strict_yaml.YamlRefused as exc:
        raise ConfigError([capped(f"{source}: line {exc.line}: {exc.reason}")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([capped(f"{source}: {where}not valid YAML ({shown(str(reason), 120)}); fix the syntax "
                                   "there")]) from None
    except RecursionError:
        raise ConfigError([f"{source}: nested too deeply to be a config; look for runaway brackets"]) from None
    too_big = strict_yaml.too_big(document)
    if too_big:
        raise ConfigError([f"{source}: {too_big}"])
    if document is None:
        raise ConfigError([f"{source}: the file is empty; run 'warpagent init' for a commented example"])
    problems = validate(document, source)
    if problems:
        raise ConfigError(problems)
    return _build(document, source, base_dir)


def _build(doc: dict[str, Any], source: str, base_dir: Path) -> Settings:
    org = doc["organisation"]
    scan = doc.get("scan", {})
    fail_on = scan.get("fail_on", "none")
    store = StoreLocation.parse(doc.get("store", "./warpagent.db"), base_dir)
    estates = tuple(
        EstateConfig(
            name=e["name"],
            targets=tuple(e["targets"]),
            exclude=tuple(e.get("exclude", ())),
            ports=e.get("ports", "top-1000"),
            evidence=tuple(str(_relative(item, base_dir)) for item in e.get("evidence", ()) if isinstance(item, str)),
            ssh=tuple(_ssh_source(item["ssh"], base_dir) for item in e.get("evidence", ()) if isinstance(item, dict)),
            suppliers=_relative(e["suppliers"], base_dir) if e.get("suppliers") else None,
            supplier_review_s=duration_seconds(e.get("supplier_review", "365d")),
            backups=_backup_policy(e.get("backups", {})),
            default_credentials=_credential_probes(e.get("default_credentials", {})),
            timeout_s=duration_seconds(e.get("timeout", "6h")),
            host_timeout_s=duration_seconds(e.get("host_timeout", "15m")),
            service_timeout_s=duration_seconds(e.get("service_timeout", "90s")),
            chunk_size=e.get("chunk_size", 256), parallel=e.get("parallel", 4), max_rate=e.get("max_rate"),
            max_addresses=e.get("max_addresses", 65536),
            assume_up=e.get("assume_up", False),
        )
        for e in doc.get("estates", ())
    )
    share = doc.get("sharing", {})
    outbox = Path(os.path.expanduser(share.get("outbox", "./outbox")))
    sharing = SharingSettings(
        pseudonym_key_env=share.get("pseudonym_key_env", "WARPAGENT_PSEUDONYM_KEY"),
        pseudonym_key_file=_relative(share["pseudonym_key_file"], base_dir) if share.get("pseudonym_key_file")
        else None,
        tlp=share.get("tlp", "amber"), k=share.get("k", 3),
        outbox=outbox if outbox.is_absolute() else base_dir / outbox,
        max_pull_bytes=share.get("max_pull_bytes", 20 * 1024 * 1024),
        peers=tuple(
            PeerConfig(name=p["name"], url=p["url"], collection=p["collection"], api_root=p.get("api_root", ""),
                       username=p.get("username", ""), password_env=p.get("password_env", ""),
                       api_key_env=p.get("api_key_env", ""), api_key_header=p.get("api_key_header", "Authorization"),
                       verify_tls=p.get("verify_tls", True), ca_bundle=p.get("ca_bundle", ""),
                       timeout_s=duration_seconds(p.get("timeout", "30s")), direction=p.get("direction", "both"))
            for p in share.get("peers", ())),
    )
    rep = doc.get("reports", {})
    mail = rep.get("email")
    email = None
    if mail:
        email = EmailSettings(
            smtp_host=mail["smtp_host"], sender=mail["from"], to=tuple(mail["to"]),
            smtp_port=mail.get("smtp_port", 587), security=mail.get("security", "starttls"),
            username=mail.get("username", ""), password_env=mail.get("password_env", ""),
            subject=mail.get("subject", "{organisation}: cyber hygiene report {month}"),
            outbox=_relative(mail.get("outbox", "./mail-outbox"), base_dir),
            timeout_s=duration_seconds(mail.get("timeout", "30s")),
            ca_bundle=_relative(mail["ca_bundle"], base_dir) if mail.get("ca_bundle") else None)
    rag = rep.get("rag", {})
    reports = ReportSettings(
        title=rep.get("title", "Cyber hygiene report"),
        logo=_relative(rep["logo"], base_dir) if rep.get("logo") else None,
        primary_colour=rep.get("primary_colour", "#1d4f91"),
        rag=RagRules(kev_days=rag.get("kev_days", 14), critical_days=rag.get("critical_days", 15),
                     high_days=rag.get("high_days", 30), medium_days=rag.get("medium_days", 90)),
        email=email)
    fd = doc.get("feeds", {})
    feeds = FeedSettings(
        dir=_relative(fd.get("dir", "./intel"), base_dir),
        sources=tuple(fd.get("sources", FEED_SOURCES)), mirror=fd.get("mirror", ""),
        nvd_first_year=fd.get("nvd_first_year", 2002),
        osv_ecosystems=tuple(fd.get("osv_ecosystems", ("Debian", "Ubuntu"))),
        stale_after_days=max(1, duration_seconds(fd.get("stale_after", "3d")) // 86400),
        timeout_s=duration_seconds(fd.get("timeout", "60s")),
        ca_bundle=_relative(fd["ca_bundle"], base_dir) if fd.get("ca_bundle") else None,
        bundled=fd.get("bundled", True))
    sched = doc.get("schedule", {})
    schedule = ScheduleSettings(
        timezone=sched.get("timezone", "Europe/London"), scan=sched.get("scan", "0 1 * * *"),
        feeds=sched.get("feeds", "30 0 * * *"),
        estates=tuple(sorted(sched.get("estates", {}).items())),
        share_after_scan=sched.get("share_after_scan", True), pull=sched.get("pull", "0 * * * *"),
        board_report=sched.get("board_report", "0 7 1 * *"),
        misfire_grace_s=duration_seconds(sched.get("misfire_grace", "12h")),
        notify_failures=sched.get("notify_failures", False))
    return Settings(
        source=source, sharing=sharing, reports=reports, schedule=schedule, feeds=feeds,
        organisation=Organisation(name=org["name"], region=org.get("region", ""),
                                  sector=org.get("sector", "")),
        store=store,
        scan=ScanSettings(fail_on=None if fail_on == "none" else Severity.parse(fail_on),
                          nmap_path=scan.get("nmap_path", "nmap"), timing=scan.get("timing", "T4"),
                          executor=scan.get("executor", "local"),
                          celery=CelerySettings(**scan["celery"]) if "celery" in scan else CelerySettings()),
        estates=estates, hub=_hub(doc["hub"], base_dir) if "hub" in doc else None,
    )


def _hub(doc: dict[str, Any], base_dir: Path) -> HubSettings:
    store = doc.get("store", "./hub.db")
    tls = doc.get("tls")
    return HubSettings(
        users=tuple(HubUser(name=u["name"], role=u["role"], password_env=u.get("password_env", ""),
                            password_hash=u.get("password_hash", ""), identity=u.get("identity", ""))
                    for u in doc["users"]),
        store=store if "://" in store else str(_relative(store, base_dir)),
        title=doc.get("title", "WARP hub"), host=doc.get("host", "127.0.0.1"), port=doc.get("port", 6443),
        url=doc.get("url", ""), api_root=doc.get("api_root", "warp"),
        tls=HubTls(cert_file=_relative(tls["cert_file"], base_dir), key_file=_relative(tls["key_file"], base_dir))
        if tls else None,
        ca_bundle=str(_relative(doc["ca_bundle"], base_dir)) if doc.get("ca_bundle") else "",
        threads=doc.get("threads", 16), page_size=doc.get("page_size", 1000),
        max_request_bytes=doc.get("max_request_bytes", 10 * 1024 * 1024),
        max_object_bytes=doc.get("max_object_bytes", 256 * 1024),
        max_objects_per_request=doc.get("max_objects_per_request", 1000),
        stale_after_s=duration_seconds(doc.get("stale_after", "45d")))


def _ssh_source(doc: dict[str, Any], base_dir: Path) -> SshSource:
    return SshSource(hosts=tuple(doc["hosts"]), username=doc["username"],
                     known_hosts=_relative(doc["known_hosts"], base_dir),
                     key_file=_relative(doc["key_file"], base_dir) if doc.get("key_file") else None,
                     key_passphrase_env=doc.get("key_passphrase_env", ""), password_env=doc.get("password_env", ""),
                     port=doc.get("port", 22), timeout_s=duration_seconds(doc.get("timeout", "60s")))


def _backup_policy(doc: dict[str, Any]) -> BackupPolicy:
    return BackupPolicy(
        max_age_s=duration_seconds(doc.get("max_age", "26h")),
        restore_test_within_s=duration_seconds(doc.get("restore_test_within", "90d")),
        restic=tuple(ResticRepository(name=r["name"], repository=r["repository"], password_env=r["password_env"],
                                      sample=r.get("sample", ""), read_data_subset=r.get("read_data_subset", "5%"),
                                      offline=r.get("offline", False),
                                      timeout_s=duration_seconds(r.get("timeout", "1h")))
                     for r in doc.get("restic", ())))


def _credential_probes(doc: dict[str, Any]) -> CredentialProbes:
    return CredentialProbes(enabled=doc.get("enabled", False), max_attempts=doc.get("max_attempts", 3),
                            pause_s=duration_seconds(doc.get("pause", "2s")),
                            services=tuple(doc.get("services", CredentialProbes.services)))


def _relative(value: str, base_dir: Path) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else base_dir / path


def locate(explicit: str | None) -> Path | None:
    """The config file to use: --config, then $WARPAGENT_CONFIG, then ./config/warpagent.yaml.

    None means no file was named and the default path does not exist: use the embedded default.
    """
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return Path(from_env)
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def load(explicit: str | None) -> Settings:
    path = locate(explicit)
    if path is None:
        return parse_text(example_text(), EMBEDDED, Path.cwd())
    if path.is_dir():
        raise ConfigError([f"{path}: is a folder, not a config file; pass --config {path / 'warpagent.yaml'} "
                           f"(write one there with 'warpagent init {path}')"])
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        written = path.parent / "warpagent.yaml"
        how = (f"run 'warpagent init {path.parent}' to write one" if path.name == written.name else
               f"run 'warpagent init {path.parent}' to write {written}, then pass --config {written}")
        raise ConfigError([f"{path}: no such file; {how}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.__class__.__name__}: {exc}); "
                           "check its permissions and encoding"]) from None
    return parse_text(text, str(path), path.parent)
