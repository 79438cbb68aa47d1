"""Host evidence folders: one sub-folder per host, named by its address or configured name,
mirroring the host's own paths (config/README.md, "Host evidence folders"). Read here, attached to
the inventory's hosts.

Each file is parsed by its own parser; a malformed file is reported by name and skipped, the
rest is read, and the run counts as partial so that nothing is resolved on the strength of a
file that could not be read. Each host records which evidence kinds were read, so a finding
from, say, sudoers is resolved only on a night when that host's sudoers was read.

A host folder is as hostile as the host it came from. Nothing read may leave it: an include
that climbs out (`@include ../../etc/shadow`) is refused and named, no symbolic link anywhere on
a path is followed, and one host may have at most MAX_READS files and MAX_READ_BYTES read,
includes and all, so a small crafted sshd_config cannot make warpagent read without end.
"""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from warpagent.collect.scope import Scope
from warpagent.evidence import formats
from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers import accounts as parse_accounts
from warpagent.evidence.parsers import policy as parse_policy
from warpagent.evidence.parsers.sudoers import sudoers as parse_sudoers
from warpagent.evidence.table import FORMATS
from warpagent.model.evidence import EvidenceKind, HostEvidence
from warpagent.model.findings import Host, Inventory, Package, Platform
from warpagent.text import capped, shown

MAX_FILE_BYTES = 64 * 2**20
MAX_READS = 2_000  # files one host's folder may have read, includes and all
MAX_READ_BYTES = 512 * 2**20  # and bytes: a dpkg status and its SBOMs fit many times over
MAX_RELATIVE = 1024  # a host path longer than this is not one any host has
# What a parser raises on input its checks did not foresee (a '²' where a digit belongs, JSON nested
# 100,000 deep, a CSV field past the csv module's limit): named as the file's problem, never a crash.
UNFORESEEN = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, csv.Error,
              UnicodeError, OverflowError)
PAM_STACKS = ("etc/pam.d/common-password", "etc/pam.d/system-auth", "etc/pam.d/password-auth")
RPM_EXPORT = "var/lib/rpm-qa.txt"  # `rpm -qa --queryformat` output (formats.RPM_QUERYFORMAT)

T = TypeVar("T")


def read_file(path: Path, read: Callable[[Path], T], what: str, problems: list[str]) -> T | None:
    """One evidence file read whole: its records, or None with one line naming the file and why
    in `problems` (malformed, unreadable, or tripping a parser on input it did not foresee)."""
    try:
        return read(path)
    except EvidenceError as exc:
        problems.append(capped(f"{path}: skipped: {exc}"))
    except (OSError, *UNFORESEEN) as exc:
        problems.append(capped(f"{path}: skipped: not {what} ({exc.__class__.__name__}: {shown(str(exc), 120)})"))
    return None


@dataclass(frozen=True)
class Attached:
    inventory: Inventory
    problems: tuple[str, ...]  # malformed files (make the run partial)
    notes: tuple[str, ...]  # evidence ignored by design (hosts outside scope)


@dataclass(frozen=True)
class HostRead:
    platform: Platform | None
    packages: tuple[Package, ...]
    evidence: HostEvidence
    problems: tuple[str, ...]


class _Folder:
    """One host's evidence folder: reads files by their host path, confined to the folder,
    collecting problems."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[str] = []
        self.reads = 0
        self.bytes_read = 0
        self._walked: dict[str, list[str]] = {}

    def _inside(self, relative: str) -> Path:
        """The file a host path names inside the folder; EvidenceError when it would leave it."""
        parts = relative.split("/")
        if (not relative or len(relative) > MAX_RELATIVE or "\x00" in relative or relative.startswith("/")
                or any(part == ".." or len(part) > 255 for part in parts)):
            raise EvidenceError(f"{shown(relative)}: not a path inside the host's folder; refused")
        path = self.root
        for part in parts:
            if part in ("", "."):
                continue
            path = path / part
            if path.is_symlink():
                raise EvidenceError(f"{path.relative_to(self.root)}: a symbolic link; links in evidence "
                                    "are never followed (copy the file itself into the folder)")
        return path

    def read(self, relative: str) -> str | None:
        """A file's text (None when it is not there); EvidenceError when it may not be read."""
        path = self._inside(relative)
        if not path.is_file():
            return None
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise EvidenceError(f"{relative}: larger than {MAX_FILE_BYTES // 2**20} MiB")
            if self.reads >= MAX_READS or self.bytes_read + size > MAX_READ_BYTES:
                raise EvidenceError(f"{relative}: not read: this host's folder has had {self.reads} files "
                                    f"({self.bytes_read // 2**20} MiB) read, its limit; check its includes")
            self.reads += 1
            self.bytes_read += size
            return path.read_text(encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise EvidenceError(f"{relative}: not UTF-8 text") from None
        except OSError as exc:
            raise EvidenceError(f"{relative}: cannot be read ({exc.strerror or exc})") from None

    def text(self, relative: str) -> str | None:
        """A file's text; a file that may not be read is named as a problem and reads as absent."""
        try:
            return self.read(relative)
        except EvidenceError as exc:
            self._refused(exc)
            return None

    def _refused(self, exc: EvidenceError) -> None:
        where, _sep, why = str(exc).partition(": ")
        self.problems.append(capped(f"{self.root / where}: skipped: {why}" if why else f"{self.root}: skipped: {exc}"))

    def parse(self, relative: str, parser: Callable[[str], T]) -> T | None:
        text = self.text(relative)
        return None if text is None else self.attempt(relative, lambda: parser(text))

    def attempt(self, relative: str, build: Callable[[], T]) -> T | None:
        """Run a parser that reads more than one file; a malformed file is named after `relative`.
        A parser that trips on input it did not foresee names the file too: never an internal error."""
        try:
            return build()
        except EvidenceError as exc:
            self.problems.append(capped(f"{self.root / relative}: skipped: {exc}"))
        except UNFORESEEN as exc:
            self.problems.append(capped(f"{self.root / relative}: skipped: not in the format expected "
                                         f"({exc.__class__.__name__}: {shown(str(exc), 120)})"))
        return None

    def exists(self, relative: str) -> bool:
        """Whether a host file is there (a link is: reading it is then refused and named)."""
        parent, _sep, name = relative.rpartition("/")
        try:
            folder = self._inside(parent) if parent else self.root
        except EvidenceError as exc:
            self._refused(exc)
            return False
        return (folder / name).is_file() or (folder / name).is_symlink()

    def listdir(self, relative: str, strict: bool = False) -> list[str]:
        """The files in a folder of the host (links listed too: reading them is refused and named).
        A folder that may not be listed is named (`strict`: raised, failing what includes it)."""
        try:
            folder = self._inside(relative)
        except EvidenceError as exc:
            if strict:
                raise
            self._refused(exc)
            return []
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_file() or p.is_symlink())

    def _files_under(self, relative_dir: str) -> list[str]:
        """Every file below a folder as host paths, walked once and never through a link."""
        if relative_dir not in self._walked:
            top = self._inside(relative_dir)
            found = []
            for where, dirs, files in os.walk(top, followlinks=False):
                dirs.sort()
                found += [str((Path(where) / name).relative_to(self.root)) for name in sorted(files)]
            self._walked[relative_dir] = found
        return self._walked[relative_dir]

    def included(self, relative_dir: str, pattern: str) -> list[tuple[str, str]]:
        """Files under `relative_dir` whose host path matches an Include pattern, in sshd's
        (sorted) order, as (relative path, text). Only matching files are read: an exported
        etc/ssh may also hold host keys, which have no business being opened. A file that may
        not be read (a link, over the budget) fails the whole sshd_config: half of it is no verdict."""
        if len(pattern) > MAX_RELATIVE or ".." in pattern.split("/"):
            raise EvidenceError(f"Include '{shown(pattern)}' leaves the host's folder; refused")
        out = []
        for relative in self._files_under(relative_dir):
            if fnmatch.fnmatch("/" + relative, pattern):
                text = self.read(relative)
                if text is not None:
                    out.append((relative, text))
        return out


def _accounts(folder: _Folder) -> HostEvidence:
    accounts = folder.parse("etc/passwd", parse_accounts.passwd) or []
    groups = folder.parse("etc/group", parse_accounts.group) or []
    kinds = {EvidenceKind.ACCOUNT} if accounts and groups else set()
    shadow = folder.parse("etc/shadow", parse_accounts.shadow)
    if shadow is not None and accounts:
        accounts = parse_accounts.with_shadow(accounts, shadow)
        kinds.add(EvidenceKind.SHADOW)
    sudo_rules = None
    if folder.exists("etc/sudoers"):
        # includes are read strictly: one that may not be read fails sudoers as a whole, since a
        # verdict on half of the rules would miss what the other half grants
        sudo_rules = folder.attempt("etc/sudoers", lambda: parse_sudoers(
            lambda path: folder.read(path.lstrip("/")), lambda path: folder.listdir(path.lstrip("/"), strict=True)))
        kinds |= {EvidenceKind.SUDO} if sudo_rules is not None else set()
    return HostEvidence(accounts=tuple(accounts), groups=tuple(groups), sudo_rules=tuple(sudo_rules or ()),
                        read=frozenset(kinds))


def _policy(folder: _Folder) -> HostEvidence:
    policy = sshd = None
    pam_file = next((f for f in PAM_STACKS if folder.exists(f)), None)
    if pam_file is not None:
        quality = folder.parse("etc/security/pwquality.conf", parse_policy.pwquality)
        defs = folder.parse("etc/login.defs", parse_policy.login_defs)
        policy = folder.parse(pam_file, lambda pam: parse_policy.password_policy(
            pam, pam_file, quality, defs, load=lambda path: folder.read(path.lstrip("/"))))
    if folder.exists("etc/ssh/sshd_config"):
        sshd = folder.parse("etc/ssh/sshd_config", lambda text: parse_policy.sshd_config(
            text, partial(folder.included, "etc/ssh")))
    kinds = {kind for kind, found in ((EvidenceKind.POLICY, policy), (EvidenceKind.SSHD, sshd)) if found is not None}
    return HostEvidence(policy=policy, sshd=sshd, read=frozenset(kinds))


def _tabled(folder: _Folder) -> HostEvidence:
    """Every format of the table (`table.FORMATS`) the folder holds."""
    found: dict[str, list[Any]] = defaultdict(list)
    kinds: set[EvidenceKind] = set()
    for fmt in FORMATS:
        directory, _slash, name = fmt.path.rpartition("/")
        paths = ([f"{directory}/{n}" for n in folder.listdir(directory) if fnmatch.fnmatchcase(n, name)]
                 if "*" in name else [fmt.path])
        for relative in paths:
            records = folder.parse(relative, partial(fmt.parse, file=relative))
            if records is not None:
                found[fmt.field] += records
                kinds.add(fmt.kind)
    return HostEvidence(**{field: tuple(records) for field, records in found.items()},  # type: ignore[arg-type]
                        read=frozenset(kinds))


def read_host(root: Path) -> HostRead:
    folder = _Folder(root)
    platform = folder.parse("etc/os-release", formats.os_release)
    if platform is not None:
        platform = dataclasses.replace(platform, evidence=str(root / "etc/os-release"))
    ecosystem = platform.osv_ecosystem if platform else ""
    packages: list[Package] = []
    for relative, parser in (("var/lib/dpkg/status", formats.dpkg_status),
                             (RPM_EXPORT, formats.rpm_qa)):
        found = folder.parse(relative, partial(parser, ecosystem=ecosystem))
        if found:
            packages += found
            if not ecosystem:
                folder.problems.append(f"{root / relative}: packages not matched: no usable etc/os-release "
                                       "beside it to say which release they belong to")
    host_evidence = HostEvidence(read=frozenset({EvidenceKind.PACKAGE} if packages else ()))
    for part in (_accounts, _policy, _tabled):
        host_evidence = merge(host_evidence, part(folder))
    return HostRead(platform=platform, packages=tuple(packages), evidence=host_evidence,
                    problems=tuple(folder.problems))


def merge(current: HostEvidence, new: HostEvidence) -> HostEvidence:
    """Evidence from two sources for one host (an export plus an SSH collection, or the parts
    of one folder): both count."""
    merged = {f.name: getattr(current, f.name) + getattr(new, f.name)
              for f in dataclasses.fields(HostEvidence) if isinstance(getattr(current, f.name), tuple)}
    return HostEvidence(**merged, policy=new.policy or current.policy, sshd=new.sshd or current.sshd,
                        directory=new.directory or current.directory, domain=new.domain or current.domain,
                        read=current.read | new.read)


def attach(inventory: Inventory, folders: tuple[str, ...], scope: Scope, own_names: bool = False) -> Attached:
    """Attach each in-scope host's evidence to its inventory host (creating one for a host that
    was down tonight but left evidence). `own_names`: an estate with no network targets (an
    endpoint export of laptops), whose host folders count under their own names."""
    hosts = {h.address: h for h in inventory.hosts}
    problems: list[str] = []
    notes: list[str] = []
    for root in folders:
        base = Path(root)
        if not base.is_dir():
            problems.append(f"{base}: evidence folder not found; check the estate's 'evidence' paths")
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            if folder.is_symlink():
                problems.append(f"{folder}: refused: the host folder is a symbolic link; links in evidence are "
                                "never followed (copy the host's folder in)")
                continue
            if own_names:
                key, address, asset = f"name:{folder.name}", "", folder.name
            else:
                address = scope.address_for(folder.name) or ""
                if not address:
                    notes.append(f"{folder}: evidence ignored: '{folder.name}' is not a host in this estate's scope")
                    continue
                key, asset = address, scope.asset(address)
            found = read_host(folder)
            problems += found.problems
            current = hosts.get(key) or Host(address=address, asset=asset, state="evidence")
            hosts[key] = dataclasses.replace(current, platform=found.platform or current.platform,
                                             packages=current.packages + found.packages,
                                             evidence=merge(current.evidence, found.evidence))
    scanned = [h.address for h in inventory.hosts]
    ordered = tuple(hosts[a] for a in scanned) + tuple(hosts[a] for a in sorted(set(hosts) - set(scanned)))
    return Attached(inventory=dataclasses.replace(inventory, hosts=ordered), problems=tuple(problems),
                    notes=tuple(notes))
