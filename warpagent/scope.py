"""The scope guard: targets and exclusions become one explicit address list before nmap runs.

nmap is only ever handed addresses from this list (in a file, with -n), so nothing in the
configuration can reach its command line as an option, and exclusions hold by construction.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from warpagent.errors import ScopeError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], list[str]]

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def target_problem(text: str) -> str | None:
    """Why `text` is not an IP address, CIDR or host name, or None when it is one."""
    kind = _classify(text)
    return None if kind is not None else f"'{text}' is not an IP address, CIDR or host name"


def _classify(text: str) -> IPAddress | IPNetwork | str | None:
    if not text or text != text.strip():
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if "/" in text:
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            return None
    labels = text.rstrip(".").split(".")
    if len(text) > 253 or not all(_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit():  # '10.0.0.300' looks like a name but is a mistyped address
        return None
    return text.rstrip(".").lower()


def system_resolver(name: str) -> list[str]:
    """Resolve a host name to its addresses (IPv4 and IPv6) with the system resolver."""
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return []
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class Scope:
    """The explicit, deduplicated list of addresses an estate's scan may touch."""

    estate: str
    addresses: tuple[str, ...]
    names: dict[str, str] = field(default_factory=dict)  # address -> configured host name
    unresolved: tuple[str, ...] = ()  # host names that gave no address
    excluded: int = 0  # addresses the exclusions removed

    def asset(self, address: str) -> str:
        return self.names.get(address, address)

    @functools.cached_property
    def _by_name(self) -> dict[str, str]:
        return {self.asset(a): a for a in self.addresses} | {a: a for a in self.addresses}

    def address_for(self, name: str) -> str | None:
        """The in-scope address a configured host name or an address stands for (None: out of scope)."""
        return self._by_name.get(name)


def _expand(text: str, limit: int, resolver: Resolver) -> tuple[list[IPAddress], str | None]:
    kind = _classify(text)
    if kind is None:
        raise ScopeError(f"'{text}' is not an IP address, CIDR or host name")
    if isinstance(kind, str):
        return [ipaddress.ip_address(a) for a in resolver(kind)], kind
    if isinstance(kind, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        if kind.num_addresses > limit:
            raise ScopeError(f"'{text}' holds {kind.num_addresses} addresses, more than max_addresses "
                             f"({limit}); narrow the range or raise max_addresses")
        hosts: list[IPAddress] = list(kind.hosts()) if kind.num_addresses > 2 else list(kind)
        return hosts, None
    return [kind], None


def resolve(estate: str, targets: Iterable[str], exclude: Iterable[str], max_addresses: int,
            resolver: Resolver = system_resolver) -> Scope:
    """Turn an estate's targets and exclusions into a Scope, or raise ScopeError."""
    wanted: dict[IPAddress, str | None] = {}
    unresolved: list[str] = []
    for target in targets:
        addresses, name = _expand(target, max_addresses, resolver)
        if name is not None and not addresses:
            unresolved.append(target)
        for address in addresses:
            if wanted.get(address) is None:
                wanted[address] = name
        if len(wanted) > max_addresses:
            raise ScopeError(f"estate '{estate}' expands to more than max_addresses ({max_addresses}) "
                             "addresses; narrow the targets or raise max_addresses")
    excluded_networks: list[IPNetwork] = []
    for item in exclude:
        kind = _classify(item)
        if kind is None:
            raise ScopeError(f"exclusion '{item}' is not an IP address, CIDR or host name")
        if isinstance(kind, str):
            # An exclusion that cannot be resolved must not silently let its host through.
            found = resolver(kind)
            if not found:
                raise ScopeError(f"exclusion '{item}' does not resolve, so it cannot be honoured; "
                                 "use its IP address instead")
            excluded_networks.extend(ipaddress.ip_network(a) for a in found)
        elif isinstance(kind, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            excluded_networks.append(kind)
        else:
            excluded_networks.append(ipaddress.ip_network(kind))
    kept = {a: n for a, n in wanted.items()
            if not any(a.version == net.version and a in net for net in excluded_networks)}
    ordered = sorted(kept, key=lambda a: (a.version, int(a)))
    return Scope(
        estate=estate,
        addresses=tuple(str(a) for a in ordered),
        names={str(a): n for a, n in kept.items() if n},
        unresolved=tuple(unresolved),
        excluded=len(wanted) - len(kept),
    )
