"""Operating system support: Debian's `distro-info-data` CSVs (Debian and Ubuntu release dates)
and `debian-security-support` (packages whose security support ended before their release's)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

from feeds.model import FeedError, OsRelease, SupportEnded

_EXTENDED = {"debian": "eol-lts", "ubuntu": "eol-esm"}


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def load_distro_info(path: Path) -> list[OsRelease]:
    """`debian.csv` or `ubuntu.csv`; the distribution is the file's name."""
    distro = path.stem.lower()
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FeedError(f"{path}: not a readable distro-info CSV ({exc})") from None
    if not rows or not {"version", "codename", "series", "release", "eol"} <= set(rows[0]):
        raise FeedError(f"{path}: not a distro-info CSV (expected columns version,codename,series,release,eol)")
    releases = []
    for number, row in enumerate(rows, start=2):
        try:
            releases.append(OsRelease(
                distro=distro, version=(row["version"] or "").replace(" LTS", "").strip(),
                codename=row["codename"], series=row["series"], released=_date(row.get("release")),
                eol=_date(row.get("eol")), eol_extended=_date(row.get(_EXTENDED.get(distro, "")))))
        except (ValueError, TypeError) as exc:
            raise FeedError(f"{path}: line {number}: {exc}") from None
    return releases


_RELEASE_FILE = re.compile(r"security-support-ended\.(deb\d+)$")


def load_security_support(path: Path) -> list[SupportEnded]:
    """`security-support-ended.debNN`: source package, last supported version, end date, note."""
    match = _RELEASE_FILE.search(path.name)
    if not match:
        raise FeedError(f"{path}: expected a file named security-support-ended.debNN")
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FeedError(f"{path}: not readable ({exc})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(None, 3)
        try:
            out.append(SupportEnded(release=match.group(1), package=fields[0], last_version=fields[1],
                                    ended=dt.date.fromisoformat(fields[2]),
                                    note=fields[3].strip() if len(fields) > 3 else ""))
        except (IndexError, ValueError):
            raise FeedError(f"{path}: line {number}: expected 'package version YYYY-MM-DD [note]'") from None
    return out
