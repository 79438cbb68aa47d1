"""NVD applicability statements (`configurations`), evaluated against what a host is known to run.

Semantics as NVD defines them: a CVE applies when any configuration holds; a configuration
holds when its nodes do (all of them for operator AND, any for OR); a node holds when its
cpeMatch criteria do (AND/OR again), negated when `negate` is set. Criteria marked
`vulnerable: false` are platform context (the OS under the vulnerable application): they must
hold for the configuration to hold but never make the host vulnerable themselves. A criterion
with a version range holds for versions inside the range; an unknown host version never falls
inside a range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from feeds import aliases, cpe, versions
from feeds.model import CveMatch


@dataclass(frozen=True)
class _Hit:
    holds: bool
    vulnerable: tuple[Mapping[str, Any], ...] = ()  # vulnerable criteria the subject satisfied


def _version_in_range(version: str, criterion: Mapping[str, Any]) -> bool:
    compare = versions.upstream_compare
    if (start := criterion.get("versionStartIncluding")) and compare(version, start) < 0:
        return False
    if (start := criterion.get("versionStartExcluding")) and compare(version, start) <= 0:
        return False
    if (end := criterion.get("versionEndIncluding")) and compare(version, end) > 0:
        return False
    return not ((end := criterion.get("versionEndExcluding")) and compare(version, end) >= 0)


def _has_range(criterion: Mapping[str, Any]) -> bool:
    return any(k in criterion for k in ("versionStartIncluding", "versionStartExcluding",
                                        "versionEndIncluding", "versionEndExcluding"))


def _attribute_holds(wanted: str, have: str) -> bool:
    return wanted in (cpe.ANY, "") or have in (cpe.ANY, "") or wanted == have


def criterion_holds(criterion: Mapping[str, Any], host: cpe.Cpe) -> bool:
    wanted = cpe.parse(criterion["criteria"])
    if wanted.part != host.part or wanted.key not in aliases.names_for(host.key):
        return False
    for attribute in ("edition", "language", "sw_edition", "target_sw", "target_hw", "other"):
        if not _attribute_holds(getattr(wanted, attribute), getattr(host, attribute)):
            return False
    host_version = host.full_version
    if wanted.version == cpe.ANY:
        if not _has_range(criterion):
            return True
        return host_version not in (cpe.ANY, cpe.NA, "") and _version_in_range(host_version, criterion)
    if wanted.version == cpe.NA:
        return host_version in (cpe.ANY, cpe.NA, "")  # platform "any version" entries
    if host_version in (cpe.ANY, cpe.NA, ""):
        return False
    if versions.upstream_compare(wanted.full_version, host_version) == 0:
        return True
    # NVD's '9.2' update '*' covers every 9.2 build, OpenSSH's '9.2p1' included
    split = cpe.split_openssh_update(host)
    return (wanted.update == cpe.ANY and split.update != cpe.ANY
            and versions.upstream_compare(wanted.version, split.version) == 0)


def _node(node: Mapping[str, Any], subject: cpe.Cpe, platform: Sequence[cpe.Cpe]) -> _Hit:
    results: list[bool] = []
    vulnerable: list[Mapping[str, Any]] = []
    for criterion in node.get("cpeMatch", ()):
        if criterion.get("vulnerable"):
            holds = criterion_holds(criterion, subject)
            if holds:
                vulnerable.append(criterion)
        else:
            holds = any(criterion_holds(criterion, other) for other in (subject, *platform))
        results.append(holds)
    holds = all(results) if node.get("operator") == "AND" else any(results)
    if node.get("negate"):
        return _Hit(not holds)
    return _Hit(holds, tuple(vulnerable) if holds else ())


def evaluate(cve_id: str, configurations: Sequence[Mapping[str, Any]], subject: cpe.Cpe,
             platform: Sequence[cpe.Cpe] = ()) -> CveMatch | None:
    """The CVE's match on the subject product (with the host's other CPEs as platform), or None."""
    for configuration in configurations:
        hits = [_node(node, subject, platform) for node in configuration.get("nodes", ())]
        if not hits:
            continue
        holds = all(h.holds for h in hits) if configuration.get("operator") == "AND" else any(h.holds for h in hits)
        vulnerable = [c for h in hits if h.holds for c in h.vulnerable]
        if holds and vulnerable:
            first = vulnerable[0]
            return CveMatch(cve=cve_id, fixed=str(first.get("versionEndExcluding", "")),
                            last_affected=str(first.get("versionEndIncluding", "")),
                            criteria=str(first.get("criteria", "")))
    return None
