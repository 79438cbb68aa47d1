"""The last screen before a bundle leaves: what in it would identify the council, a host or a person.

The anonymiser shares only buckets, ids, dates, fixed documentation and shaped product tokens;
this screen assumes it failed. It knows the config's names and targets and every asset in the
store, and it reads the store's evidence for what the config never names: host names that only
a banner, a certificate, the directory or an evidence folder told the scan. It also refuses any
IP address at all, since no shared field may carry one. Words that appear in warpagent's own
public documentation (the checks' fixes, which every member shares alike) are not identifying.

Pure functions; no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

MIN_LENGTH = 3  # shorter strings match by chance in any bundle
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NAME = re.compile(rf"(?<![a-z0-9.-]){_LABEL}(?:\.{_LABEL})+\.?(?![a-z0-9-])", re.IGNORECASE)
_IPV4 = re.compile(r"(?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9])")
_IPV6 = re.compile(r"(?<![0-9a-f:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![0-9a-f:])", re.IGNORECASE)


def host_names(text: str) -> set[str]:
    """Host and domain names in free text (`srv-fin01.fenwickvale.local`), and their first label
    where it holds a digit, as host names do (`srv-fin01`); versions (`9.2p1`) are not names."""
    names: set[str] = set()
    for match in _NAME.finditer(text):
        name = match.group().rstrip(".").casefold()
        labels = name.split(".")
        if not re.search(r"[a-z]", labels[0]) or not re.fullmatch(r"[a-z]{2,63}", labels[-1]):
            continue
        names.add(name)
        if re.search(r"[0-9]", labels[0]) and len(labels[0]) >= MIN_LENGTH:
            names.add(labels[0])
    return names


def addresses(text: str) -> set[str]:
    """Every IPv4 or IPv6 address written in the text."""
    found: set[str] = set()
    for pattern in (_IPV4, _IPV6):
        for match in pattern.finditer(text):
            try:
                found.add(str(ipaddress.ip_address(match.group())))
            except ValueError:
                continue
    return found


# Words in many councils' names: alone they name nobody; the other words together do.
_GENERIC = frozenset({"the", "of", "and", "council", "borough", "county", "city", "district", "metropolitan",
                      "royal", "london", "unitary", "authority", "combined", "shared", "services", "service",
                      "school", "schools", "academy", "trust", "town", "parish", "partnership"})


def organisation_forms(name: str) -> set[str]:
    """How the council's name is written where spaces cannot go: in domains, host names and product
    strings (`Fenwick Vale Borough Council` -> fenwickvale, fenwick-vale, fenwick_vale). Only for
    two words or more: one word run together is just that word, and may be an ordinary one."""
    words = [w for w in re.findall(r"[a-z0-9]+", name.casefold()) if w not in _GENERIC]
    if len(words) < 2:
        return set()
    return {sep.join(words) for sep in ("", "-", "_")}


def evidence_strings(texts: Iterable[str], public: str) -> set[str]:
    """Names and addresses the evidence holds that warpagent's public documentation does not."""
    public = public.casefold()
    found: set[str] = set()
    for text in texts:
        found |= host_names(text) | addresses(text)
    return {s for s in found if len(s) >= MIN_LENGTH and s not in public}


def leaks(bundle_text: str, identifying: Iterable[str], public: str) -> bool:
    """Whether the bundle holds an identifying string, or an address its public text does not."""
    lowered = bundle_text.casefold()
    if any(value.casefold() in lowered for value in identifying if len(value) >= MIN_LENGTH):
        return True
    return bool(addresses(bundle_text) - addresses(public))
