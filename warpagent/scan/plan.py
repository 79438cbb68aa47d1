"""What one estate's scan will do before it does it: the addresses in scope and the nmap plan."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from checks import ALL_CHECKS, Check
from warpagent.collect import nmap_runner, ports, scope
from warpagent.config import EstateConfig
from warpagent.scan import engine


def resolve_scope(estate: EstateConfig, resolver: scope.Resolver = scope.system_resolver) -> scope.Scope:
    return scope.resolve(estate.name, estate.targets, estate.exclude, estate.max_addresses, resolver)


def plan_for(estate: EstateConfig, timing: str, targets_file: Path,
             checks: Sequence[Check] = ALL_CHECKS) -> tuple[nmap_runner.NmapPlan, ports.PortSet, list[str]]:
    """The nmap plan for an estate, the ports it covers, and the coverage it gives up (UDP without root)."""
    port_set = ports.parse(estate.ports, checked_tcp=engine.check_ports(checks))
    # NMAP_PRIVILEGED is nmap's own switch for a non-root user whose nmap has raw-socket
    # capabilities (the Docker image sets it); warpagent honours it the same way.
    privileged = os.geteuid() == 0 or os.environ.get("NMAP_PRIVILEGED", "") not in ("", "0")
    notes = []
    if port_set.udp and not privileged:
        notes.append(f"UDP ports {ports.PortSet(tcp=(), udp=port_set.udp).nmap_argument()} not scanned: "
                     "UDP scanning needs root (or CAP_NET_RAW)")
        port_set = ports.PortSet(tcp=port_set.tcp, udp=())
    scripts, script_args = engine.nse_scripts(checks)
    plan = nmap_runner.NmapPlan(
        targets_file=targets_file, port_argument=port_set.nmap_argument(), scripts=scripts,
        script_args=script_args, host_timeout_s=estate.host_timeout_s, timing=timing,
        service_timeout_s=estate.service_timeout_s, fallback_timeout_s=estate.fallback_timeout_s,
        assume_up=estate.assume_up, privileged=privileged, udp=bool(port_set.udp))
    return plan, port_set, notes
