"""Host evidence folders: one sub-folder per host, named by its address or configured name,
mirroring the host's own paths (see design.md). Read here, attached to the inventory's hosts.

Evidence read today: `etc/os-release` and `var/lib/dpkg/status` (packages for the patches and
unsupported checks). A malformed file is reported by name and skipped; the run then counts as
partial so that nothing is resolved on the strength of a file that could not be read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from warpagent import evidence_parsers
from warpagent.evidence_parsers import EvidenceError
from warpagent.models import Host, Inventory, Package, Platform
from warpagent.scope import Scope

MAX_FILE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Attached:
    inventory: Inventory
    problems: tuple[str, ...]  # malformed files (make the run partial)
    notes: tuple[str, ...]  # evidence ignored by design (hosts outside scope)
    evidence_assets: tuple[str, ...] = ()  # hosts whose evidence was read this run


def _read(path: Path) -> str:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise EvidenceError(f"larger than {MAX_FILE_BYTES // 2**20} MiB")
    return path.read_text(encoding="utf-8", errors="strict")


def read_host(folder: Path) -> tuple[Platform | None, tuple[Package, ...], list[str]]:
    problems: list[str] = []
    platform = None
    os_file = folder / "etc" / "os-release"
    if os_file.is_file():
        try:
            platform = dataclasses.replace(evidence_parsers.os_release(_read(os_file)),
                                           evidence=f"{os_file}")
        except (EvidenceError, UnicodeDecodeError, OSError) as exc:
            problems.append(f"{os_file}: skipped: {exc}")
    packages: tuple[Package, ...] = ()
    status = folder / "var" / "lib" / "dpkg" / "status"
    if status.is_file():
        ecosystem = evidence_parsers.osv_ecosystem(platform) if platform else ""
        try:
            packages = tuple(evidence_parsers.dpkg_status(_read(status), ecosystem))
        except (EvidenceError, UnicodeDecodeError, OSError) as exc:
            problems.append(f"{status}: skipped: {exc}")
        if packages and not ecosystem:
            problems.append(f"{status}: packages not matched: no usable etc/os-release beside it to say "
                            "which release they belong to")
    return platform, packages, problems


def attach(inventory: Inventory, folders: tuple[str, ...], scope: Scope) -> Attached:
    """Attach each in-scope host's evidence to its inventory host (creating one for a host that
    was down tonight but left evidence)."""
    by_name = {scope.asset(a): a for a in scope.addresses} | {a: a for a in scope.addresses}
    hosts = {h.address: h for h in inventory.hosts}
    problems: list[str] = []
    notes: list[str] = []
    read: list[str] = []
    for root in folders:
        base = Path(root)
        if not base.is_dir():
            problems.append(f"{base}: evidence folder not found; check the estate's 'evidence' paths")
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            address = by_name.get(folder.name)
            if address is None:
                notes.append(f"{folder}: evidence ignored: '{folder.name}' is not a host in this estate's scope")
                continue
            platform, packages, found = read_host(folder)
            problems += found
            if packages:
                read.append(scope.asset(address))
            current = hosts.get(address) or Host(address=address, asset=scope.asset(address), state="evidence")
            hosts[address] = dataclasses.replace(current, platform=platform or current.platform,
                                                 packages=current.packages + packages)
    scanned = [h.address for h in inventory.hosts]
    ordered = tuple(hosts[a] for a in scanned) + tuple(hosts[a] for a in sorted(set(hosts) - set(scanned)))
    return Attached(inventory=dataclasses.replace(inventory, hosts=ordered), problems=tuple(problems),
                    notes=tuple(notes), evidence_assets=tuple(read))
