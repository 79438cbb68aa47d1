"""The table of evidence formats that stand alone: one file (or one file of a folder) in, records
of one kind out. A new such format is one parser in evidence/parsers/ and one row here.

Formats that combine files (passwd with shadow, a PAM stack with pwquality.conf, sudoers with
its includes, dpkg status with os-release) are read by their own readers in `folders`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from warpagent.evidence.parsers import backups, supply
from warpagent.model.evidence import EvidenceKind


@dataclass(frozen=True)
class EvidenceFormat:
    path: str  # the host path, or "folder/*.suffix" for every such file in a folder
    kind: EvidenceKind  # what reading it (even with no records in it) counts as having read
    parse: Callable[..., Sequence[object]]  # parse(text, file=...) -> records; EvidenceError if malformed
    field: str  # the HostEvidence field the records join


FORMATS: tuple[EvidenceFormat, ...] = (
    EvidenceFormat("etc/apt/sources.list", EvidenceKind.SOURCE, supply.apt_list, "sources"),
    # apt reads only these two suffixes in sources.list.d (not .save, .distUpgrade)
    EvidenceFormat("etc/apt/sources.list.d/*.list", EvidenceKind.SOURCE, supply.apt_list, "sources"),
    EvidenceFormat("etc/apt/sources.list.d/*.sources", EvidenceKind.SOURCE, supply.apt_deb822, "sources"),
    EvidenceFormat("sbom/*.json", EvidenceKind.SBOM, supply.sbom, "sbom"),
    EvidenceFormat("backups/restic-snapshots.json", EvidenceKind.BACKUP, backups.restic_snapshots, "backups"),
    EvidenceFormat("backups/borg-list.json", EvidenceKind.BACKUP, backups.borg_list, "backups"),
    EvidenceFormat("backups/backups.csv", EvidenceKind.BACKUP, backups.backups_csv, "backups"),
)
