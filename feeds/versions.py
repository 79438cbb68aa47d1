"""Version comparison: dpkg and rpm through well-kept libraries, upstream versions the same way.

- dpkg (Debian, Ubuntu): python-debian's `version_compare`, which implements dpkg's own rules
  (epochs, `~` sorting before everything, the Debian revision). The tests check it against
  `dpkg --compare-versions` on the versions installed on the machine.
- rpm: univers' `RpmVersion` (rpmvercmp, epoch and release).
- upstream versions (NVD ranges, endoflife.date cycles, nmap banners): dpkg's ordering after
  one normalisation, so that "2.4.0-rc1" and "2.4.0rc1" sort *before* "2.4.0" as upstream
  projects mean them to, while OpenSSH's "9.2p1" sorts after "9.2" and before "9.3".

Comparisons are about 20 microseconds each, so matching never compares row by row: the
compiled intel store keeps every package's fixed versions in library order (their rank is
the precomputed sort key) and a match is a binary search over them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

from debian.debian_support import version_compare as _dpkg_compare
from univers.versions import InvalidVersion, RpmVersion

Compare = Callable[[str, str], int]

_PRE_RELEASE = re.compile(r"[-_.]?(alpha|beta|preview|pre|rc|dev)(?=\d|$)", re.IGNORECASE)
_UPSTREAM_JUNK = re.compile(r"[^A-Za-z0-9.+~:-]")


def dpkg_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as dpkg orders two Debian package versions."""
    result = _dpkg_compare(a, b)
    return (result > 0) - (result < 0)


def rpm_compare(a: str, b: str) -> int:
    try:
        left, right = RpmVersion(a), RpmVersion(b)
    except InvalidVersion as exc:
        raise ValueError(f"not an rpm version: {exc}") from None
    return (left > right) - (left < right)


@functools.lru_cache(maxsize=65536)
def normalise_upstream(version: str) -> str:
    """An upstream version rewritten so that dpkg's ordering means what upstream means."""
    text = _UPSTREAM_JUNK.sub("", version.strip().lower())
    text = text.replace(":", ".").replace("-", ".")  # no epochs or revisions in upstream versions
    text = _PRE_RELEASE.sub(lambda m: "~" + m.group(1), text)
    return text or "0"


def upstream_compare(a: str, b: str) -> int:
    return dpkg_compare(normalise_upstream(a), normalise_upstream(b))


COMPARATORS: dict[str, Compare] = {"dpkg": dpkg_compare, "rpm": rpm_compare, "upstream": upstream_compare}


def scheme_for(ecosystem: str) -> str:
    """Which comparison an OSV ecosystem's versions follow."""
    family = ecosystem.split(":", 1)[0]
    if family in ("Debian", "Ubuntu"):
        return "dpkg"
    if family in ("Red Hat", "AlmaLinux", "Rocky Linux", "openSUSE", "SUSE", "Mageia", "openEuler"):
        return "rpm"
    return "upstream"


def sort_versions(versions: Sequence[str], scheme: str) -> list[str]:
    """Distinct versions in the scheme's order: the rank of each is its sort key."""
    key: Any = functools.cmp_to_key(COMPARATORS[scheme])
    return sorted(set(versions), key=key)


def count_at_or_below(ordered: Sequence[str], version: str, scheme: str) -> int:
    """How many of the ordered versions are <= `version` (a binary search with the library)."""
    compare = COMPARATORS[scheme]
    low, high = 0, len(ordered)
    while low < high:
        middle = (low + high) // 2
        if compare(ordered[middle], version) <= 0:
            low = middle + 1
        else:
            high = middle
    return low


def strip_epoch(version: str) -> str:
    head, sep, tail = version.partition(":")
    return tail if sep and head.isdigit() else version


def upstream_part(debian_version: str) -> str:
    """'1:9.2p1-2+deb12u3' -> '9.2p1' (the upstream part of a Debian version)."""
    bare = strip_epoch(debian_version)
    return bare.rsplit("-", 1)[0] if "-" in bare else bare
