"""What a valid config names that must also be there: files, folders and secrets.

A config can pass its schema and still fail every night at 2 a.m.: an evidence folder that does
not exist makes each scan partial (and a partial run resolves nothing, for ever), a supplier
register or CA bundle that is not there stops its part, an *_env variable that is not set stops
whatever needs the secret. `check-config` reports each in one line before the daemon meets it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from warpagent.config.settings import Settings


def _file_keys(settings: Settings) -> Iterator[tuple[str, Path, str]]:
    """(config key, path, "file" or "folder") for every path that must exist before a run."""
    for index, estate in enumerate(settings.estates):
        at = f"estates[{index}]"
        for folder in estate.evidence:
            yield f"{at}.evidence", Path(folder), "folder"
        if estate.suppliers:
            yield f"{at}.suppliers", estate.suppliers, "file"
        for path in estate.windows_updates:
            yield f"{at}.windows_updates", path, "file or folder"
        for path in estate.m365:
            yield f"{at}.m365", path, "file or folder"
        if estate.directory and estate.directory.ca_bundle:
            yield f"{at}.directory.ca_bundle", estate.directory.ca_bundle, "file"
        if estate.mail.ca_bundle:
            yield f"{at}.mail.ca_bundle", estate.mail.ca_bundle, "file"
        for source in estate.ssh:
            yield f"{at}.evidence[].ssh.known_hosts", source.known_hosts, "file"
            if source.key_file:
                yield f"{at}.evidence[].ssh.key_file", source.key_file, "file"
    for index, peer in enumerate(settings.sharing.peers):
        if peer.ca_bundle:
            yield f"sharing.peers[{index}].ca_bundle", Path(peer.ca_bundle), "file"
    if settings.sharing.pseudonym_key_file:
        yield "sharing.pseudonym_key_file", settings.sharing.pseudonym_key_file, "file"
    if settings.reports.logo:
        yield "reports.logo", settings.reports.logo, "file"
    if settings.reports.email and settings.reports.email.ca_bundle:
        yield "reports.email.ca_bundle", settings.reports.email.ca_bundle, "file"
    if settings.feeds.ca_bundle:
        yield "feeds.ca_bundle", settings.feeds.ca_bundle, "file"
    if settings.hub and settings.hub.tls:
        yield "hub.tls.cert_file", settings.hub.tls.cert_file, "file"
        yield "hub.tls.key_file", settings.hub.tls.key_file, "file"


def missing(settings: Settings) -> list[str]:
    """One line for each file or folder the config names that is not there (or not of its kind)."""
    problems = []
    for key, path, kind in _file_keys(settings):
        there = {"folder": path.is_dir(), "file": path.is_file()}.get(kind, path.exists())
        if not there:
            why = f"is not a {kind}" if path.exists() else "does not exist"
            problems.append(f"{settings.source}: At '{key}': {kind} {path} {why}; create it or correct the path "
                            f"(until then every run that needs it is partial)")
    return problems


def _env_keys(value: Any, at: str) -> Iterator[tuple[str, str]]:
    """(key path, variable name) for every non-empty *_env field under `value`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            child = getattr(value, item.name)
            where = f"{at}.{item.name}" if at else item.name
            if item.name.endswith("_env") and isinstance(child, str):
                if child:
                    yield where, child
            else:
                yield from _env_keys(child, where)
    elif isinstance(value, tuple):
        for index, child in enumerate(value):
            yield from _env_keys(child, f"{at}[{index}]")


def unset_secrets(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """A warning line for each secret the config names whose variable is not set here. A warning,
    not an error: the daemon's environment (a systemd EnvironmentFile) may differ from this shell's."""
    named = list(_env_keys(settings, ""))
    if not settings.sharing.peers or settings.sharing.pseudonym_key_file:
        named = [(key, var) for key, var in named if key != "sharing.pseudonym_key_env"]
    return [f"{settings.source}: warning: At '{key}': environment variable {var} is not set in this environment; "
            "set it where warpagent runs (if only the daemon's environment has it, run check-config there)"
            for key, var in named if not environ.get(var)]
