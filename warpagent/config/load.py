"""Finding, reading and typing the config: the file, $WARPAGENT_CONFIG, or the embedded default."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from feeds.update import FeedSettings
from warpagent.config import settings as typed
from warpagent.config import strict_yaml
from warpagent.config.defaults import completed, duration_seconds, schema
from warpagent.config.schedule_rules import OFF
from warpagent.config.validate import validate
from warpagent.errors import ConfigError
from warpagent.model.findings import Severity
from warpagent.store.database import StoreLocation
from warpagent.text import capped, shown

DEFAULT_PATH = Path("config/warpagent.yaml")
ENV_VAR = "WARPAGENT_CONFIG"
EMBEDDED = "<embedded default>"


def example_text() -> str:
    """The commented example config; also the embedded default when no config file exists."""
    return resources.files("warpagent.config").joinpath("example.yaml").read_text(encoding="utf-8")


def parse_text(text: str, source: str, base_dir: Path) -> typed.Settings:
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
    document = _schedules_off(document)
    problems = validate(document, source)
    if problems:
        raise ConfigError(problems)
    return _build(document, source, base_dir)


def _schedules_off(document: Any) -> Any:
    """`schedule.feeds: off` as a council writes it: YAML 1.1 reads a bare off (or no, false) as
    the boolean false, and for a schedule that can only mean "off"."""
    schedule = document.get("schedule") if isinstance(document, dict) else None
    if isinstance(schedule, dict):
        keys = schema()["properties"]["schedule"]["properties"]
        crons = {key for key, spec in keys.items() if spec.get("format") == "warpagent-cron"}
        for key, value in list(schedule.items()):
            if value is False and key in crons:
                schedule[key] = OFF
        estates = schedule.get("estates")
        if isinstance(estates, dict):
            for name, value in list(estates.items()):
                if value is False:
                    estates[name] = OFF
    return document


def _build(raw: dict[str, Any], source: str, base_dir: Path) -> typed.Settings:
    """Typed settings from a valid document; every default comes from the schema (`completed`)."""
    doc = completed(raw)
    org, scan, share, rep, fd, sched = (doc[k] for k in ("organisation", "scan", "sharing", "reports", "feeds",
                                                          "schedule"))
    return typed.Settings(
        source=source,
        organisation=typed.Organisation(name=org["name"], region=org["region"], sector=org["sector"]),
        store=StoreLocation.parse(doc["store"], base_dir),
        scan=typed.ScanSettings(fail_on=None if scan["fail_on"] == "none" else Severity.parse(scan["fail_on"]),
                          nmap_path=scan["nmap_path"], timing=scan["timing"], executor=scan["executor"],
                          dns_servers=tuple(scan["dns_servers"]), dns_timeout_s=duration_seconds(scan["dns_timeout"]),
                          celery=typed.CelerySettings(**scan["celery"]) if "celery" in scan
                          else typed.CelerySettings()),
        estates=tuple(_estate(e, base_dir) for e in doc["estates"]),
        sharing=typed.SharingSettings(
            pseudonym_key_env=share["pseudonym_key_env"],
            pseudonym_key_file=_optional_path(share, "pseudonym_key_file", base_dir),
            tlp=share["tlp"], k=share["k"], outbox=_relative(share["outbox"], base_dir),
            max_pull_bytes=share["max_pull_bytes"], peers=tuple(_peer(p, base_dir) for p in share["peers"])),
        reports=typed.ReportSettings(
            title=rep["title"], logo=_optional_path(rep, "logo", base_dir), primary_colour=rep["primary_colour"],
            rag=typed.RagRules(**rep["rag"]), email=_email(rep["email"], base_dir) if "email" in rep else None,
            alerts=typed.AlertSettings(to=tuple(rep["alerts"]["to"]), subject=rep["alerts"]["subject"])
            if "alerts" in rep else None),
        schedule=typed.ScheduleSettings(
            timezone=sched["timezone"], scan=sched["scan"], feeds=sched["feeds"],
            estates=tuple(sorted(sched["estates"].items())), share_after_scan=sched["share_after_scan"],
            pull=sched["pull"], board_report=sched["board_report"], alerts=sched["alerts"],
            misfire_grace_s=duration_seconds(sched["misfire_grace"]), notify_failures=sched["notify_failures"]),
        feeds=FeedSettings(
            dir=_relative(fd["dir"], base_dir), sources=tuple(fd["sources"]), mirror=fd["mirror"],
            nvd_first_year=fd["nvd_first_year"], msrc_months=fd["msrc_months"],
            osv_ecosystems=tuple(fd["osv_ecosystems"]),
            stale_after_days=max(1, duration_seconds(fd["stale_after"]) // 86400),
            timeout_s=duration_seconds(fd["timeout"]), ca_bundle=_optional_path(fd, "ca_bundle", base_dir),
            bundled=fd["bundled"]),
        hub=_hub(doc["hub"], base_dir) if "hub" in doc else None,
    )


def _estate(e: dict[str, Any], base_dir: Path) -> typed.EstateConfig:
    backups = e["backups"]
    probes = e["default_credentials"]
    return typed.EstateConfig(
        name=e["name"], targets=tuple(e["targets"]), exclude=tuple(e["exclude"]), ports=e["ports"],
        evidence=tuple(str(_relative(item, base_dir)) for item in e["evidence"] if isinstance(item, str)),
        ssh=tuple(_ssh_source(item["ssh"], base_dir) for item in e["evidence"] if isinstance(item, dict)),
        suppliers=_optional_path(e, "suppliers", base_dir),
        windows_updates=tuple(_relative(item, base_dir) for item in e["windows_updates"]),
        windows_updates_max_age_s=duration_seconds(e["windows_updates_max_age"]),
        patch_deadline_s=duration_seconds(e["patch_deadline"]),
        m365=tuple(_relative(item, base_dir) for item in e["m365"]),
        m365_max_age_s=duration_seconds(e["m365_max_age"]),
        directory=_directory(e["directory"], base_dir) if "directory" in e else None,
        domains=tuple(e["domains"]),
        mail=typed.MailSettings(dkim_selectors=tuple(e["mail"]["dkim_selectors"]),
                                dmarc_report_to=e["mail"]["dmarc_report_to"],
                                ca_bundle=_optional_path(e["mail"], "ca_bundle", base_dir),
                                timeout_s=duration_seconds(e["mail"]["timeout"])),
        supplier_review_s=duration_seconds(e["supplier_review"]),
        backups=typed.BackupPolicy(
            max_age_s=duration_seconds(backups["max_age"]),
            max_age_by_job_s=tuple((key, duration_seconds(value)) for key, value in backups["max_age_by_job"].items()),
            restore_test_within_s=duration_seconds(backups["restore_test_within"]),
            restic=tuple(typed.ResticRepository(name=r["name"], repository=r["repository"],
                                                password_env=r["password_env"], sample=r["sample"],
                                                read_data_subset=r["read_data_subset"], offline=r["offline"],
                                                timeout_s=duration_seconds(r["timeout"]))
                         for r in backups["restic"])),
        default_credentials=typed.CredentialProbes(enabled=probes["enabled"], max_attempts=probes["max_attempts"],
                                             pause_s=duration_seconds(probes["pause"]),
                                             services=tuple(probes["services"])),
        timeout_s=duration_seconds(e["timeout"]), host_timeout_s=duration_seconds(e["host_timeout"]),
        service_timeout_s=duration_seconds(e["service_timeout"]),
        fallback_timeout_s=duration_seconds(e["fallback_timeout"]), chunk_size=e["chunk_size"],
        parallel=e["parallel"], max_rate=e.get("max_rate"), max_addresses=e["max_addresses"],
        assume_up=e["assume_up"])


def _peer(p: dict[str, Any], base_dir: Path) -> typed.PeerConfig:
    return typed.PeerConfig(name=p["name"], url=p["url"], collection=p["collection"], api_root=p["api_root"],
                      username=p["username"], password_env=p["password_env"], api_key_env=p["api_key_env"],
                      api_key_header=p["api_key_header"], verify_tls=p["verify_tls"],
                      ca_bundle=str(_relative(p["ca_bundle"], base_dir)) if p["ca_bundle"] else "",
                      timeout_s=duration_seconds(p["timeout"]), direction=p["direction"],
                      versions_collection=p["versions_collection"])


def _email(mail: dict[str, Any], base_dir: Path) -> typed.EmailSettings:
    return typed.EmailSettings(
        smtp_host=mail["smtp_host"], sender=mail["from"], to=tuple(mail["to"]), smtp_port=mail["smtp_port"],
        security=mail["security"], username=mail["username"], password_env=mail["password_env"],
        subject=mail["subject"], outbox=_relative(mail["outbox"], base_dir),
        timeout_s=duration_seconds(mail["timeout"]), ca_bundle=_optional_path(mail, "ca_bundle", base_dir))


def _hub(doc: dict[str, Any], base_dir: Path) -> typed.HubSettings:
    store = doc["store"]
    tls = doc.get("tls")
    return typed.HubSettings(
        users=tuple(typed.HubUser(name=u["name"], role=u["role"], password_env=u["password_env"],
                            password_hash=u["password_hash"], identity=u["identity"]) for u in doc["users"]),
        store=store if "://" in store else str(_relative(store, base_dir)),
        title=doc["title"], host=doc["host"], port=doc["port"], url=doc["url"], api_root=doc["api_root"],
        tls=typed.HubTls(cert_file=_relative(tls["cert_file"], base_dir), key_file=_relative(tls["key_file"], base_dir))
        if tls else None,
        ca_bundle=str(_relative(doc["ca_bundle"], base_dir)) if doc.get("ca_bundle") else "",
        threads=doc["threads"], page_size=doc["page_size"], max_request_bytes=doc["max_request_bytes"],
        max_object_bytes=doc["max_object_bytes"], max_objects_per_request=doc["max_objects_per_request"],
        stale_after_s=duration_seconds(doc["stale_after"]))


def _directory(doc: dict[str, Any], base_dir: Path) -> typed.DirectorySettings:
    return typed.DirectorySettings(url=doc["url"], bind_dn=doc["bind_dn"], password_env=doc["password_env"],
                                   start_tls=doc["start_tls"], base_dn=doc["base_dn"],
                                   ca_bundle=_optional_path(doc, "ca_bundle", base_dir),
                                   timeout_s=duration_seconds(doc["timeout"]), page_size=doc["page_size"],
                                   sysvol=doc["sysvol"])


def _ssh_source(doc: dict[str, Any], base_dir: Path) -> typed.SshSource:
    return typed.SshSource(hosts=tuple(doc["hosts"]), username=doc["username"],
                     known_hosts=_relative(doc["known_hosts"], base_dir),
                     key_file=_optional_path(doc, "key_file", base_dir),
                     key_passphrase_env=doc["key_passphrase_env"], password_env=doc["password_env"],
                     port=doc["port"], timeout_s=duration_seconds(doc["timeout"]))


def _optional_path(section: dict[str, Any], key: str, base_dir: Path) -> Path | None:
    """A path key whose absence means "none" (no supplier register, no logo, the system CAs)."""
    return _relative(section[key], base_dir) if section.get(key) else None


def _relative(value: str, base_dir: Path) -> Path:
    """A path key's value: relative paths are relative to the config file's folder, made absolute
    here so that no later join (a database URL, a working folder) can take them elsewhere."""
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else Path(os.path.abspath(base_dir / path))


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


def load(explicit: str | None) -> typed.Settings:
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
    return parse_text(text, str(path), Path(os.path.abspath(path)).parent)
