"""Windows update-level exports: warpagent's registry CSV and Intune's device export.

The registry CSV is one row per computer (or one file per computer in a share) with the values
of HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion (docs/windows.md gives the PowerShell
line). Intune's export gives deviceName, operatingSystem, osVersion ("10.0.22631.4890") and
lastSyncDateTime; Intune holds clients, so its rows are clients, and rows of other systems
(iOS, Android, macOS) are passed over. PowerShell writes a byte-order mark: it is read through.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping

from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers.backups import timestamp
from warpagent.model.evidence import Where, WindowsBuild
from warpagent.numbers import NotANumber, whole

REGISTRY_COLUMNS = ("ComputerName", "ProductName", "EditionID", "DisplayVersion", "InstallationType", "CurrentBuild",
                    "UBR", "CollectedAt")
# Graph's property names, and the same columns as the Intune portal's CSV names them
INTUNE_COLUMNS = {"deviceName": ("deviceName", "Device name"), "operatingSystem": ("operatingSystem", "OS"),
                  "osVersion": ("osVersion", "OS version"), "lastSyncDateTime": ("lastSyncDateTime", "Last check-in")}
INSTALLATION_TYPES = {"client": False, "server": True, "server core": True, "nano server": True}
MAX_ROWS = 200_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.$-]{0,254}$")  # NetBIOS or DNS names; nothing else is a computer
_OS_VERSION = re.compile(r"^10\.0\.(\d{1,6})\.(\d{1,6})$")


def _name(value: str, line: int, column: str) -> str:
    name = value.strip()
    if not _NAME.match(name):
        raise EvidenceError(f"line {line}: {column} {name[:40]!r} is not a computer name")
    return name.removesuffix("$")


def _number(value: str, line: int, column: str) -> int:
    try:
        return whole(value.strip(), column, digits=6)
    except NotANumber as exc:
        raise EvidenceError(f"line {line}: {exc}") from None


def _registry(row: Mapping[str, str], line: int, file: str) -> WindowsBuild | None:
    kind = row["InstallationType"].strip()
    if kind.casefold() not in INSTALLATION_TYPES:
        raise EvidenceError(f"line {line}: InstallationType {kind[:30]!r} is not Client, Server, Server Core or "
                            "Nano Server")
    return WindowsBuild(name=_name(row["ComputerName"], line, "ComputerName"),
                        build=_number(row["CurrentBuild"], line, "CurrentBuild"),
                        ubr=_number(row["UBR"], line, "UBR"), server=INSTALLATION_TYPES[kind.casefold()],
                        collected=timestamp(row["CollectedAt"], f"line {line}: CollectedAt"), where=Where(file, line),
                        product_name=row["ProductName"].strip()[:80], edition=row["EditionID"].strip()[:40],
                        display_version=row["DisplayVersion"].strip()[:10])


def _intune(row: Mapping[str, str], line: int, file: str) -> WindowsBuild | None:
    if not row["operatingSystem"].strip().casefold().startswith("windows"):
        return None
    version = _OS_VERSION.match(row["osVersion"].strip())
    if not version:
        raise EvidenceError(f"line {line}: osVersion {row['osVersion'][:30]!r} is not a Windows build such as "
                            "10.0.22631.4890")
    return WindowsBuild(name=_name(row["deviceName"], line, "deviceName"), build=int(version[1]), ubr=int(version[2]),
                        server=False,
                        collected=timestamp(row["lastSyncDateTime"], f"line {line}: lastSyncDateTime"),
                        where=Where(file, line))


def _columns(header: list[str]) -> tuple[dict[str, str], Callable[..., WindowsBuild | None]]:
    """Which export this is: (our column name -> the file's, the row reader)."""
    if all(c in header for c in REGISTRY_COLUMNS):
        return {c: c for c in REGISTRY_COLUMNS}, _registry
    intune = {ours: next((n for n in names if n in header), "") for ours, names in INTUNE_COLUMNS.items()}
    if all(intune.values()):
        return intune, _intune
    lacking = [c for c in REGISTRY_COLUMNS if c not in header]
    raise EvidenceError(f"line 1: not a Windows update export: missing column{'s' if len(lacking) > 1 else ''} "
                        f"{', '.join(lacking)} (or Intune's {', '.join(INTUNE_COLUMNS)})")


def exports(text: str, file: str) -> list[WindowsBuild]:
    """Every Windows computer in one export (registry CSV or Intune device export)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = [h.strip() for h in next(reader, [])]
    columns, read_row = _columns(header)
    index = {ours: header.index(theirs) for ours, theirs in columns.items()}
    builds: list[WindowsBuild] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise EvidenceError(f"line {line}: {len(row)} fields where the header has {len(header)}")
        if len(builds) >= MAX_ROWS:
            raise EvidenceError(f"more than {MAX_ROWS:,} rows: split the export")
        found = read_row({ours: row[i] for ours, i in index.items()}, line, file)
        if found is not None:
            builds.append(found)
    return builds
