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
from warpagent.numbers import whole_or_none
from warpagent.text import shown

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], list[str]]

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
# An IPv6 zone is a network interface's name (Linux: at most 15 characters, no spaces or slashes).
# Python's ipaddress accepts any text after '%', and nmap would read that text as more targets.
_INTERFACE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def target_problem(text: str) -> str | None:
    """Why `text` is not an IP address, CIDR or host name, or None when it is one."""
    return None if _classify(text) is not None else _not_a_target(text)


def canonical_address(text: str) -> str:
    """An address as the scope lists it ("::ffff:10.0.0.1" is "10.0.0.1"); "" for anything else."""
    try:
        return str(canonical(ipaddress.ip_address(text)))
    except ValueError:
        return ""


def server_address(text: str, default_port: int) -> tuple[str, int]:
    """A server given as an address with an optional port ("10.20.0.53", "10.20.0.53:5353",
    "[fd00::53]:53", "fd00::53"), or ValueError saying what is wrong."""
    host, port = text, str(default_port)
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"'{shown(text)}' is not [IPv6 address] or [IPv6 address]:port")
        port = rest[1:] or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"'{shown(text)}' is not an IP address (with an optional :port)") from None
    number = whole_or_none(port, "port", digits=5, minimum=1, maximum=65535)
    if number is None:
        raise ValueError(f"'{shown(text)}' has port '{shown(port, 10)}', not 1-65535")
    return str(address), number


def domain_problem(text: str) -> str | None:
    """Why `text` is not a DNS domain name (example.gov.uk), or None when it is one."""
    kind = _classify(text)
    if isinstance(kind, str) and "." in kind:
        return None
    return f"'{shown(text)}' is not a domain name; write it as example.gov.uk (no scheme, address or path)"


def _not_a_target(text: str) -> str:
    address, zone, scope_id = text.partition("%")
    if zone and _classify(address) is not None:
        return (f"'{shown(text)}' has an IPv6 zone ('%{shown(scope_id)}') that is not a network interface "
                "name; write the interface (fe80::1%eth0) or leave the zone out")
    return f"'{shown(text)}' is not an IP address, CIDR or host name"


def targets_file(addresses: Iterable[str]) -> str:
    """nmap's -iL input: one canonical address a line, each checked again as it is written, so
    nothing but an address from the scope can ever reach nmap's target parser."""
    lines = []
    for text in addresses:
        kind = _classify(text)
        if not isinstance(kind, ipaddress.IPv4Address | ipaddress.IPv6Address) or str(kind) != text:
            raise ScopeError(f"'{shown(text)}' is not a canonical address; refusing to hand it to nmap")
        lines.append(text)
    return "\n".join(lines) + "\n"


def canonical(value: IPAddress | IPNetwork) -> IPAddress | IPNetwork:
    """An IPv4-mapped IPv6 address or network (::ffff:10.20.0.1) is the IPv4 one it stands for."""
    if isinstance(value, ipaddress.IPv6Address) and value.ipv4_mapped is not None and not value.scope_id:
        return value.ipv4_mapped
    if isinstance(value, ipaddress.IPv6Network) and value.prefixlen >= 96 and value.subnet_of(_MAPPED):
        return ipaddress.IPv4Network((int(value.network_address) & 0xFFFFFFFF, value.prefixlen - 96))
    return value


def _classify(text: str) -> IPAddress | IPNetwork | str | None:
    if not text or text != text.strip() or not text.isascii() or not text.isprintable():
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None \
                and not _INTERFACE.match(address.scope_id):
            return None
        return canonical(address)
    if "/" in text and "%" not in text:  # a zone belongs to one address, never to a range
        try:
            return canonical(ipaddress.ip_network(text, strict=False))
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
        raise ScopeError(_not_a_target(text))
    if isinstance(kind, str):
        return [_resolved(a) for a in resolver(kind)], kind
    if isinstance(kind, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        if kind.num_addresses > limit:
            raise ScopeError(f"'{text}' holds {kind.num_addresses} addresses, more than max_addresses "
                             f"({limit}); narrow the range or raise max_addresses")
        hosts: list[IPAddress] = list(kind.hosts()) if kind.num_addresses > 2 else list(kind)
        return hosts, None
    return [kind], None


def _resolved(text: str) -> IPAddress:
    """An address a resolver gave: held to the same rules as a configured one."""
    kind = _classify(text)
    if not isinstance(kind, ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise ScopeError(f"the resolver answered '{shown(text)}', which is not an IP address")
    return kind


def resolve(estate: str, targets: Iterable[str], exclude: Iterable[str], max_addresses: int,
            resolver: Resolver = system_resolver) -> Scope:
    """Turn an estate's targets and exclusions into a Scope, or raise ScopeError (its `key` names
    the target or exclusion at fault, as `targets[2]`)."""
    wanted: dict[IPAddress, str | None] = {}
    unresolved: list[str] = []
    for index, target in enumerate(targets):
        try:
            addresses, name = _expand(target, max_addresses, resolver)
        except ScopeError as exc:
            raise ScopeError(str(exc), key=f"targets[{index}]") from None
        if name is not None and not addresses:
            unresolved.append(target)
        for address in addresses:
            if wanted.get(address) is None:
                wanted[address] = name
        if len(wanted) > max_addresses:
            raise ScopeError(f"estate '{estate}' expands to more than max_addresses ({max_addresses}) "
                             "addresses; narrow the targets or raise max_addresses")
    excluded_networks: list[IPNetwork] = []
    for index, item in enumerate(exclude):
        kind = _classify(item)
        if kind is None:
            raise ScopeError(f"exclusion {_not_a_target(item)}", key=f"exclude[{index}]")
        if isinstance(kind, str):
            # An exclusion that cannot be resolved must not silently let its host through.
            found = resolver(kind)
            if not found:
                raise ScopeError(f"exclusion '{item}' does not resolve, so it cannot be honoured; "
                                 "use its IP address instead", key=f"exclude[{index}]")
            excluded_networks.extend(ipaddress.ip_network(_resolved(a)) for a in found)
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
