"""OSV advisories: one JSON record, a folder of them, or an ecosystem's `all.zip` from osv.dev.

Only distribution ecosystems (Debian, Ubuntu, ...) become distro fixes: their version ranges
are in the distribution's own package versions, so they know about backported fixes.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from feeds.model import DistroFix, FeedError

_CVE = re.compile(r"CVE-\d{4}-\d{4,19}")
DISTRO_FAMILIES = ("Debian", "Ubuntu", "AlmaLinux", "Rocky Linux")


def _cvss(record: Mapping[str, Any]) -> float | None:
    best = None
    for entry in record.get("severity") or ():
        vector = str(entry.get("score", ""))
        try:
            if vector.startswith("CVSS:4"):
                score = float(CVSS4(vector).base_score)
            elif vector.startswith("CVSS:3"):
                score = float(CVSS3(vector).base_score)
            elif entry.get("type") == "CVSS_V2":
                score = float(CVSS2(vector).base_score)
            else:
                continue
        except (CVSSError, ValueError, KeyError):
            continue
        best = score if best is None else max(best, score)
    return best


def _cves(record: Mapping[str, Any]) -> tuple[str, ...]:
    names = [record.get("id", ""), *list(record.get("aliases") or ()), *list(record.get("upstream") or ())]
    found = {m.group(0) for name in names for m in _CVE.finditer(str(name))}
    return tuple(sorted(found))


def fixes(record: Mapping[str, Any]) -> list[DistroFix]:
    """The distro fixes one OSV record states (none when it is about another ecosystem)."""
    advisory = record["id"]
    if not isinstance(advisory, str):
        raise ValueError("id is not a string")
    if record.get("withdrawn"):
        return []
    cves = _cves(record)
    score = _cvss(record)
    out = []
    for affected in record.get("affected") or ():
        package = affected.get("package") or {}
        ecosystem, name = package.get("ecosystem", ""), package.get("name", "")
        if ecosystem.split(":", 1)[0] not in DISTRO_FAMILIES or not name:
            continue
        for version_range in affected.get("ranges") or ():
            if version_range.get("type") != "ECOSYSTEM":
                continue
            introduced, fixed = "0", ""
            for event in version_range.get("events") or ():
                if "introduced" in event:
                    introduced, fixed = str(event["introduced"]), ""
                elif "fixed" in event:
                    fixed = str(event["fixed"])
                    out.append(DistroFix(ecosystem, name, advisory, cves, introduced, fixed, score))
                    introduced = ""
            if introduced:  # introduced and never fixed: affected, no fix released
                out.append(DistroFix(ecosystem, name, advisory, cves, introduced, "", score))
    return out


def _records(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    if member.endswith(".json"):
                        yield f"{path}!{member}", archive.read(member)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FeedError(f"{path}: not a readable OSV archive ({exc}); the download may be truncated") from None
    elif path.is_dir():
        for record_file in sorted(path.rglob("*.json")):
            yield str(record_file), record_file.read_bytes()
    else:
        yield str(path), path.read_bytes()


def load(path: Path) -> list[DistroFix]:
    out: list[DistroFix] = []
    count = 0
    for name, raw in _records(path):
        count += 1
        try:
            record = json.loads(raw)
            out += fixes(record)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FeedError(f"{name}: not an OSV record ({exc.__class__.__name__}: {exc})") from None
    if count == 0:
        raise FeedError(f"{path}: holds no OSV records")
    return out
