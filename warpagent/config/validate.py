"""The config checked against the schema and against itself, every problem one line naming the key path."""

from __future__ import annotations

import difflib
import urllib.parse
import zoneinfo
from collections.abc import Iterable
from typing import Any

import jsonschema

from warpagent.collect import ports, scope
from warpagent.config.defaults import DURATION, UNIT_SECONDS, completed, schema
from warpagent.config.schedule_rules import OFF, cron_trigger
from warpagent.store.database import url_has_credentials, url_password
from warpagent.text import capped, shown

MAX_DURATION_S = 3650 * 86400  # ten years: longer is a typo, and overflows the clocks it feeds


_FORMAT_CHECKER = jsonschema.FormatChecker(formats=())


@_FORMAT_CHECKER.checks("warpagent-target")
def _is_target(value: object) -> bool:
    return not isinstance(value, str) or scope.target_problem(value) is None


@_FORMAT_CHECKER.checks("warpagent-domain")
def _is_domain(value: object) -> bool:
    return not isinstance(value, str) or scope.domain_problem(value) is None


@_FORMAT_CHECKER.checks("warpagent-dns-server")
def _is_dns_server(value: object) -> bool:
    return not isinstance(value, str) or _dns_server_problem(value) is None


def _dns_server_problem(value: str) -> str | None:
    try:
        scope.server_address(value, 53)
    except ValueError as exc:
        return str(exc)
    return None


@_FORMAT_CHECKER.checks("warpagent-ports")
def _is_ports(value: object) -> bool:
    return not isinstance(value, str) or ports.problem(value) is None


@_FORMAT_CHECKER.checks("warpagent-cron")
def _is_cron(value: object) -> bool:
    return not isinstance(value, str) or value == OFF or cron_problem(value) is None


def cron_problem(expression: str) -> str | None:
    """Why a cron expression is not valid, or None."""
    try:
        cron_trigger(expression, "UTC")
    except ValueError as exc:
        return f"'{expression}' is not a cron expression ({exc}); write e.g. '0 1 * * *' for 01:00 daily"
    return None


@_FORMAT_CHECKER.checks("warpagent-duration")
def _is_duration(value: object) -> bool:
    if not isinstance(value, str):
        return True
    match = DURATION.match(value.strip())
    return match is not None and int(match.group(1)) * UNIT_SECONDS[match.group(2)] <= MAX_DURATION_S


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
        if fmt == "warpagent-domain":
            return f"{scope.domain_problem(str(value))}"
        if fmt == "warpagent-dns-server":
            return f"{_dns_server_problem(str(value))}; write an address, optionally with :port"
        if fmt == "warpagent-ports":
            return f"{ports.problem(str(value))}"
        if fmt == "warpagent-cron":
            return str(cron_problem(str(value)))
        if fmt == "warpagent-duration":
            if DURATION.match(str(value).strip()):
                return f"'{shown(str(value))}' is longer than ten years; write a duration such as 90m, 6h or 1d"
            return f"'{shown(str(value))}' is not a duration; write a number and a unit, such as 90m, 6h or 1d"
    if error.validator == "additionalProperties":
        known = [str(k) for k in error_schema.get("properties", {})]
        extra = sorted(set(value) - set(known), key=str)
        guesses = [f"did you mean '{close[0]}'?" for k in extra[:5]
                   if (close := difflib.get_close_matches(str(k), known, n=1, cutoff=0.7))]
        return (f"unknown key {', '.join(repr(shown(str(k), 40)) for k in extra[:5])}; "
                + (" ".join(guesses) if guesses else "check the spelling against config/README.md"))
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
    if error.validator == "pattern" and list(error.path)[-2:] == ["directory", "url"]:
        return ("the directory URL must be ldaps://HOST[:PORT] (or ldap://HOST with start_tls), with no user name "
                "or password in it (the value given is not shown; give them in bind_dn and password_env)")
    if error.validator == "pattern" and error.path and error.path[-1] == "name":
        return f"{value!r} is not a valid name; use letters, digits, dot, dash and underscore"
    if error.validator == "pattern":  # never the regular expression itself: the key's form, by example
        example = (error_schema.get("examples") or [None])[0]
        return (f"'{shown(str(value))}' is not in the form this key takes"
                + (f"; for example {example}" if example is not None else "; see config/README.md"))
    return error.message


def validate(document: object, source: str) -> list[str]:
    """Every problem in a parsed document, one line each."""
    validator = jsonschema.Draft202012Validator(schema(), format_checker=_FORMAT_CHECKER)
    problems = [capped(f"{source}: At '{shown(_key_path(e.absolute_path), 120)}': {_explain(e)}")
                for e in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))]
    if not isinstance(document, dict):
        return problems
    try:  # what the schema cannot say, even where it said something: every problem at once
        more = _consistency(completed(document), source)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError):
        more = []  # a part too broken to check further; the schema's lines above name it
    return problems + [p for p in more if p not in problems]


def _port_ok(url: str) -> bool:
    try:
        port = urllib.parse.urlsplit(url).port
    except ValueError:
        return False
    return port is None or port > 0


def _consistency(document: dict[str, Any], source: str) -> list[str]:
    """What the schema cannot say: names used twice, references to estates, URLs holding secrets."""
    problems: list[str] = []
    seen: set[str] = set()
    for index, estate in enumerate(document.get("estates", [])):
        name = estate.get("name")
        if name in seen:
            problems.append(f"{source}: At 'estates[{index}].name': estate name '{name}' is used twice; "
                            "give each estate its own name")
        seen.add(name)
        if not (estate.get("targets") or estate.get("evidence") or estate.get("domains") or "directory" in estate
                or estate.get("windows_updates") or estate.get("m365")):
            problems.append(f"{source}: At 'estates[{index}]': estate '{name}' has nothing to audit; give it targets, "
                            "evidence folders, domains, a directory, Windows update exports or Microsoft 365 results")
        directory = estate.get("directory")
        if directory and not _port_ok(directory["url"]):
            problems.append(f"{source}: At 'estates[{index}].directory.url': the port is not 1-65535; "
                            "give ldaps://HOST or ldaps://HOST:PORT")
        if directory and directory["url"].startswith("ldap://") and not directory["start_tls"]:
            problems.append(f"{source}: At 'estates[{index}].directory.url': plain ldap:// would send the password "
                            "unencrypted; use ldaps:// or set start_tls: true")
    schedule = document["schedule"]
    names = {e.get("name") for e in document.get("estates", [])}
    for name in schedule.get("estates", {}):
        if name not in names:
            problems.append(f"{source}: At 'schedule.estates.{name}': no estate named '{name}'; use one of "
                            f"{', '.join(sorted(str(n) for n in names))}")
    try:
        zoneinfo.ZoneInfo(schedule["timezone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # a folder (America), or too long a name
        problems.append(f"{source}: At 'schedule.timezone': '{shown(str(schedule.get('timezone')))}' is not a "
                        "time zone; use an IANA name such as Europe/London")
    peers_seen: set[str] = set()
    for index, peer in enumerate(document["sharing"]["peers"]):
        if peer["name"] in peers_seen:
            problems.append(f"{source}: At 'sharing.peers[{index}].name': peer name '{peer['name']}' is used "
                            "twice; give each peer its own name")
        peers_seen.add(peer["name"])
        if isinstance(peer.get("url"), str) and url_has_credentials(peer["url"]):
            problems.append(f"{source}: At 'sharing.peers[{index}].url': the URL holds a user name or password "
                            "(not shown); remove it and give them in username and password_env")
        if peer["password_env"] and not peer["username"]:
            problems.append(f"{source}: At 'sharing.peers[{index}]': password_env needs a username; add "
                            "username or use api_key_env")
        if peer["versions_collection"] and peer["versions_collection"] == peer.get("collection"):
            problems.append(f"{source}: At 'sharing.peers[{index}].versions_collection': it names the peer's own "
                            "collection, which every member reads; give the hub's sealed one (versions)")
        if peer["versions_collection"] and peer["direction"] == "pull":
            problems.append(f"{source}: At 'sharing.peers[{index}].versions_collection': a pull-only peer sends "
                            "nothing; give it on the peer share pushes to")
    for key, value in (("store", document["store"]), ("hub.store", document.get("hub", {}).get("store", ""))):
        if isinstance(value, str) and "://" in value:
            if url_password(value):
                problems.append(f"{source}: At '{key}': the database URL holds a password; remove it and give it "
                                "in PGPASSWORD or ~/.pgpass")
            elif not value.startswith(("postgresql://", "postgres://", "sqlite:///")):
                problems.append(f"{source}: At '{key}': '{value.split('://')[0]}' databases are not supported; "
                                "use a file path or a postgresql:// URL")
    if "alerts" in document["reports"] and "email" not in document["reports"]:
        problems.append(f"{source}: At 'reports.alerts': alerts are sent through reports.email's SMTP server; add "
                        "reports.email (smtp_host, from, to)")
    scan_doc = document["scan"]
    if scan_doc.get("executor") == "celery" and "celery" not in scan_doc:
        problems.append(f"{source}: At 'scan': executor celery needs scan.celery.broker (redis://host:6379/0)")
    users_seen: set[str] = set()
    for index, user in enumerate(document.get("hub", {}).get("users", [])):
        if user["name"] in users_seen:
            problems.append(f"{source}: At 'hub.users[{index}].name': user '{user['name']}' is listed twice; "
                            "give each account its own name")
        users_seen.add(user["name"])
        if bool(user["password_env"]) == bool(user["password_hash"]):
            problems.append(f"{source}: At 'hub.users[{index}]': give exactly one of password_env or password_hash "
                            "(from 'warpagent hub hash-password')")
    return problems
