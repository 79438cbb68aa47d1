"""Reading an estate's Windows update-level exports: files, or folders of them (one CSV per
computer in a share), into one record per computer.

A computer named in two exports keeps its newest row. Nothing is contacted: the exports are
what the council's own tooling wrote.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from warpagent.evidence.folders import read_file
from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers.windows import exports
from warpagent.model.directory import DirectorySnapshot
from warpagent.model.evidence import WindowsBuild
from warpagent.text import first_few, shown

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_FILES = 100_000
NAMES_SHOWN = 20


@dataclass(frozen=True)
class WindowsEvidence:
    builds: tuple[WindowsBuild, ...]  # one per computer, the newest row
    problems: tuple[str, ...]
    notes: tuple[str, ...]


def _files(paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    files: list[Path] = []
    problems: list[str] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.csv") if p.is_file() and not p.is_symlink())
            if len(files) + len(found) > MAX_FILES:
                problems.append(f"{path}: more than {MAX_FILES:,} exports; point windows_updates at fewer")
                continue
            files += found
        elif path.is_file():
            files.append(path)
        else:
            problems.append(f"{path}: Windows update export not found; check the estate's 'windows_updates' paths")
    return files, problems


def _text(path: Path) -> str:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise EvidenceError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB: not a Windows update export")
    data = path.read_bytes()
    # Windows PowerShell's Export-Csv -Encoding Unicode writes UTF-16 with its BOM
    return data.decode("utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else data.decode("utf-8-sig")


def _names(names: Iterable[str]) -> str:
    return first_few(sorted(shown(n, 64) for n in names), NAMES_SHOWN)


def read(paths: Iterable[Path], now: dt.datetime, max_age: dt.timedelta) -> WindowsEvidence:
    files, problems = _files(paths)
    newest: dict[str, WindowsBuild] = {}
    for path in files:
        builds = read_file(path, lambda p: exports(_text(p), str(p)), "a Windows update export", problems)
        for build in builds or ():
            key = build.name.casefold()
            if key not in newest or build.collected > newest[key].collected:
                newest[key] = build
    notes = []
    stale = [b.name for b in newest.values() if now - b.collected > max_age]
    if stale:
        notes.append(f"Windows update evidence older than {max_age.days} days (judged as of its own date) for "
                     f"{len(stale)} computer(s): {_names(stale)}")
    return WindowsEvidence(builds=tuple(sorted(newest.values(), key=lambda b: b.name.casefold())),
                           problems=tuple(problems), notes=tuple(notes))


def _computer_names(snapshot: DirectorySnapshot) -> set[str]:
    return {c.name.removesuffix("$").casefold() for c in snapshot.computers}


def in_directory(builds: Iterable[WindowsBuild], snapshot: DirectorySnapshot) -> tuple[WindowsBuild, ...]:
    """The builds, each marked when the directory lists its computer (whose support WA205 judges)."""
    listed = _computer_names(snapshot)
    return tuple(dataclasses.replace(b, in_directory=b.name.casefold() in listed) for b in builds)


def unreported(snapshot: DirectorySnapshot, builds: Iterable[WindowsBuild], now: dt.datetime) -> str:
    """A note naming the directory's Windows computers in use that no export reports: their
    update level is not measured."""
    reported = {b.name.casefold() for b in builds}
    missing = [c.name.removesuffix("$") for c in snapshot.computers
               if c.enabled and not c.stale(now) and "windows" in c.operating_system.casefold()
               and c.name.removesuffix("$").casefold() not in reported]
    if not missing:
        return ""
    return (f"Windows update level not measured for {len(missing)} computer(s) in Active Directory with no row in "
            f"the estate's windows_updates exports: {_names(missing)}")
