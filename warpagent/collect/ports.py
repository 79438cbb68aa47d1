"""Port specifications: "top-N" or an nmap-style list, always turned into an explicit list."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

NMAP_SERVICES = Path("/usr/share/nmap/nmap-services")
TOP_UDP_EXTRAS = (161,)  # SNMP: the one UDP service the configuration checks need

_TOP = re.compile(r"^top-(\d{1,5})$")
_ITEM = re.compile(r"^(?:([TU]):)?(\d{1,5})(?:-(\d{1,5}))?$")


@dataclass(frozen=True)
class PortSet:
    tcp: tuple[int, ...]
    udp: tuple[int, ...]

    def nmap_argument(self) -> str:
        """The -p value: "T:22,80,U:161"."""
        parts = []
        if self.tcp:
            parts.append("T:" + _ranges(self.tcp))
        if self.udp:
            parts.append("U:" + _ranges(self.udp))
        return ",".join(parts)


def _ranges(ports: tuple[int, ...]) -> str:
    out: list[str] = []
    start = prev = ports[0]
    for port in (*ports[1:], -1):
        if port == prev + 1:
            prev = port
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = port
    return ",".join(out)


def problem(spec: str) -> str | None:
    """Why `spec` is not a valid port specification, or None when it is."""
    top = _TOP.match(spec)
    if top:
        count = int(top.group(1))
        return None if 1 <= count <= 65535 else f"'{spec}': N in top-N must be 1..65535"
    if not spec.strip():
        return "empty port list; use top-1000 or a list such as '22,80,443'"
    for raw in spec.split(","):
        match = _ITEM.match(raw.strip())
        if not match:
            return f"{_where(raw, spec)} is not a port, range or T:/U: item; write e.g. '22,80,443,U:161'"
        low = int(match.group(2))
        high = int(match.group(3) or low)
        if not 1 <= low <= high <= 65535:
            return f"{_where(raw, spec)} is outside 1-65535 or runs backwards; use ports 1-65535, low-high"
    return None


def _where(item: str, spec: str) -> str:
    item = item.strip()
    return f"'{item}'" if item == spec.strip() else f"'{item}' in '{spec}'"


def parse(spec: str, services_file: Path = NMAP_SERVICES, checked_tcp: tuple[int, ...] = ()) -> PortSet:
    """Expand a valid spec; an unprefixed item follows the protocol of the item before it (TCP first).
    `top-N` also takes `checked_tcp`, the ports the registered checks exist for (Redis on 6379 is
    not among nmap's top 1000): a default scan never misses what a check was written to find.
    An explicit list is the council's own choice and is kept exactly."""
    top = _TOP.match(spec)
    if top:
        most_used = top_tcp_ports(int(top.group(1)), services_file)
        return PortSet(tcp=tuple(sorted(set(most_used) | set(checked_tcp))), udp=TOP_UDP_EXTRAS)
    tcp: set[int] = set()
    udp: set[int] = set()
    protocol = "T"
    for raw in spec.split(","):
        match = _ITEM.match(raw.strip())
        if not match:
            raise ValueError(problem(spec) or spec)
        protocol = match.group(1) or protocol
        low, high = int(match.group(2)), int(match.group(3) or match.group(2))
        (tcp if protocol == "T" else udp).update(range(low, high + 1))
    return PortSet(tcp=tuple(sorted(tcp)), udp=tuple(sorted(udp)))


def top_tcp_ports(count: int, services_file: Path = NMAP_SERVICES) -> tuple[int, ...]:
    """The `count` most frequent TCP ports in nmap's own frequency table, the list --top-ports uses."""
    ranked: list[tuple[float, int]] = []
    with services_file.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) < 3 or not fields[1].endswith("/tcp"):
                continue
            ranked.append((float(fields[2]), int(fields[1].split("/")[0])))
    ranked.sort(key=lambda item: (-item[0], item[1]))
    return tuple(sorted(port for _freq, port in ranked[:count]))
