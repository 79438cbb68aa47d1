"""Parsers for host evidence files in their real formats: pure functions from text to data.

A parser raises EvidenceError naming the line that is wrong; the caller names the file.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

from warpagent.model.findings import Package, Platform


class EvidenceError(ValueError):
    """A file that is not what its name says: the message says where and why."""


_SOURCE = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]+)\))?$")


def stanzas(text: str, comments: bool = False) -> Iterator[tuple[int, dict[str, str]]]:
    """deb822 paragraphs: (first line number, fields), continuation lines folded in. With
    `comments`, apt's reading: lines starting with '#' are skipped and an indented line of only
    spaces continues the field (inline Signed-By keys have them); dpkg's status allows neither."""
    fields: dict[str, str] = {}
    start, last = 0, ""
    for number, line in enumerate(text.splitlines(), start=1):
        if comments and line.startswith("#"):
            continue
        if comments and last and line[:1] in (" ", "\t") and not line.strip():
            fields[last] += "\n"  # apt reads a blank-looking indented line as part of the field (inline keys)
            continue
        if not line.strip():
            if fields:
                yield start, fields
            fields, last = {}, ""
            continue
        if line[0] in " \t":
            if not last:
                raise EvidenceError(f"line {number}: continuation line outside a field")
            fields[last] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep or not key or " " in key:
            raise EvidenceError(f"line {number}: expected 'Field: value', got {line[:60]!r}")
        if not fields:
            start = number
        last = key
        fields[key] = value.strip()
    if fields:
        yield start, fields


def dpkg_status(text: str, ecosystem: str) -> list[Package]:
    """Installed packages from /var/lib/dpkg/status, with their source package and version."""
    packages = []
    for start, fields in stanzas(text):
        if "Package" not in fields or "Status" not in fields:
            raise EvidenceError(f"line {start}: a stanza without Package or Status; not a dpkg status file")
        if not fields["Status"].endswith(" installed") or "Version" not in fields:
            continue  # removed, config-files only, half-installed
        source, source_version = fields["Package"], ""
        if "Source" in fields:
            match = _SOURCE.match(fields["Source"])
            if not match:
                raise EvidenceError(f"line {start}: Source {fields['Source']!r} is not 'name' or 'name (version)'")
            source, source_version = match["name"], match["version"] or ""
        packages.append(Package(name=fields["Package"], version=fields["Version"],
                                source=source if source != fields["Package"] else "",
                                source_version=source_version, ecosystem=ecosystem))
    return packages


def os_release(text: str) -> Platform:
    """/etc/os-release: ID, VERSION_ID and VERSION_CODENAME."""
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Z0-9_]+", key):
            raise EvidenceError(f"line {number}: expected KEY=value, got {line[:60]!r}")
        try:
            parts = shlex.split(value)
        except ValueError as exc:
            raise EvidenceError(f"line {number}: {exc}") from None
        values[key] = parts[0] if parts else ""
    if "ID" not in values:
        raise EvidenceError("no ID= line; not an os-release file")
    return Platform(distro=values["ID"].lower(), version=values.get("VERSION_ID", ""),
                    codename=values.get("VERSION_CODENAME", ""))


# The query format the rpm export must use (documented in config/README.md):
#   rpm -qa --queryformat '%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n'
RPM_QUERYFORMAT = r"%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n"
_SOURCE_RPM = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<release>[^-]+)\.(?:no)?src\.rpm$")


def rpm_qa(text: str, ecosystem: str) -> list[Package]:
    """Installed packages from `rpm -qa --queryformat` in RPM_QUERYFORMAT (tab-separated)."""
    packages = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 6:
            raise EvidenceError(f"line {number}: expected 6 tab-separated fields "
                                f"(the export must use --queryformat '{RPM_QUERYFORMAT}')")
        name, epoch, version, release, _arch, source_rpm = fields
        if epoch in ("(none)", "0", ""):
            epoch = ""
        full = f"{epoch + ':' if epoch else ''}{version}-{release}"
        source = _SOURCE_RPM.match(source_rpm)
        packages.append(Package(name=name, version=full, source=source["name"] if source and source["name"] != name
                                else "", source_version="", ecosystem=ecosystem))
    return packages
