"""One chunk in three stages, so one odd service costs itself and not the hosts beside it.

nmap probes every service of a host group together and writes no host until the slowest is
done: one TLS service that answers the handshake and then nothing makes nmap wait out each of
its ~30 version probes (about 160 s), while the rest of the chunk finished in 13. So a chunk is:

1. ports: which ports are open on which hosts (no version probes, no scripts). This is the part
   a packet rate limit stretches, so it has no budget of its own beyond the host timeout.
2. services: version detection and the checks' scripts on those hosts' open ports, each host
   given `service_timeout_s` (nmap --host-timeout, which now counts only this work).
3. a light look: hosts that overran stage 2 again, at version intensity 0 (the NULL probe, the
   TLS handshake and the probes for their port numbers) with the scripts, so their
   certificates, ciphers and banners are still judged; the run names them.

The three outputs merge into one nmaprun document that warpagent.collect.nmap_xml reads as before.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path

from warpagent.collect import nmap_runner, ports, scope
from warpagent.collect.nmap_runner import NmapOutput, NmapPlan
from warpagent.collect.nmap_xml import host_key, repair

# A UDP port nmap cannot tell open from filtered may still be a service: stage 2 probes it too.
_LIVE_STATES = {"open", "open|filtered"}

def _root(xml: str) -> ET.Element | None:
    """A stage's document, or None when there is none to read (nmap_xml.parse names the damage later)."""
    text, _complete = repair(xml)
    try:
        return ET.fromstring(text) if text else None  # noqa: S314 - nmap's own output; expat expands no external entities
    except ET.ParseError:
        return None


Runner = Callable[[str, Sequence[str], NmapPlan, Callable[[int], None]], NmapOutput]


def open_ports(xml: str) -> dict[str, ports.PortSet]:
    """Each host's open ports in a stage-1 document (hosts nmap timed out are left out)."""
    root = _root(xml)
    found: dict[str, ports.PortSet] = {}
    for host in root.findall("host") if root is not None else ():
        if host.get("timedout") == "true":
            continue
        tcp: list[int] = []
        udp: list[int] = []
        for port in host.findall("ports/port"):
            state = port.find("state")
            if state is None or state.get("state") not in _LIVE_STATES:
                continue
            number = int(port.get("portid", "0"))
            (udp if port.get("protocol") == "udp" else tcp).append(number)
        if tcp or udp:
            found[host_key(host)] = ports.PortSet(tcp=tuple(sorted(set(tcp))), udp=tuple(sorted(set(udp))))
    return found


def union(sets: Sequence[ports.PortSet]) -> ports.PortSet:
    return ports.PortSet(tcp=tuple(sorted({p for s in sets for p in s.tcp})),
                         udp=tuple(sorted({p for s in sets for p in s.udp})))


def timed_out(xml: str) -> list[str]:
    root = _root(xml)
    return [host_key(h) for h in root.findall("host") if h.get("timedout") == "true"] if root is not None else []


def merge(stages: Sequence[NmapOutput]) -> str:
    """One nmaprun document from the stages in order, each host from the latest stage that
    reported on it. It ends with nmap's runstats only when every stage finished, so a stage cut
    short leaves the run partial and its unfinished hosts unscanned, as one nmap cut short would."""
    complete = all(repair(o.xml)[1] for o in stages)
    roots = [root for root in map(_root, (o.xml for o in stages)) if root is not None]
    if not roots:
        return ""
    chosen: dict[str, ET.Element] = {}
    for root in roots:
        for host in root.findall("host"):
            chosen[host_key(host)] = host  # the first stage's order, the latest stage's report
    base = roots[1] if len(roots) > 1 else roots[0]  # the service stage's header: its scaninfo and args
    runstats = base.find("runstats")
    for element in [*base.findall("host"), *([runstats] if runstats is not None else [])]:
        base.remove(element)
    base.extend(chosen.values())
    if complete and runstats is not None:
        base.append(runstats)
    text = ET.tostring(base, encoding="unicode")
    return text if complete else text.removesuffix("</nmaprun>")


def run(addresses: Sequence[str], plan: NmapPlan, nmap: Runner, on_host_done: Callable[[int], None]) -> NmapOutput:
    """The three stages over one chunk's addresses; `nmap(stage, addresses, plan, on_host_done)` runs one."""
    discovery = nmap("ports", addresses, dataclasses.replace(plan, services=False), lambda n: None)
    found = open_ports(discovery.xml)
    stopped = discovery.timed_out or discovery.interrupted or not repair(discovery.xml)[1]
    if stopped or not found:
        on_host_done(discovery.xml.count("</host>"))
        return discovery
    on_host_done(max(0, discovery.xml.count("</host>") - len(found)))  # hosts with nothing open are done
    live = [a for a in addresses if a in found]
    probed = union([found[a] for a in live])
    services = nmap("services", live, dataclasses.replace(
        plan, port_argument=probed.nmap_argument(), udp=bool(probed.udp), assume_up=True,
        host_timeout_s=min(plan.service_timeout_s, plan.host_timeout_s)), on_host_done)
    cut = [a for a in live if a in set(timed_out(services.xml))]
    light = None
    if cut and not (services.timed_out or services.interrupted):
        again = union([found[a] for a in cut])
        light = nmap("light", cut, dataclasses.replace(
            plan, port_argument=again.nmap_argument(), udp=bool(again.udp), assume_up=True,
            version_intensity=0), lambda n: None)
    stages = [discovery, services] + ([light] if light else [])
    return NmapOutput(
        xml=merge(stages), stderr="".join(o.stderr for o in stages), returncode=stages[-1].returncode,
        timed_out=any(o.timed_out for o in stages), interrupted=any(o.interrupted for o in stages),
        light=tuple(cut) if light else ())


def runner(nmap_path: str, work: Path, deadline: float, on_start: Callable[[int], None],
           cancelled: Callable[[], bool]) -> Runner:
    """A Runner that writes each stage's targets to its own file in `work` (nothing on the command line)."""
    def one(stage: str, addresses: Sequence[str], plan: NmapPlan, on_host_done: Callable[[int], None]) -> NmapOutput:
        targets = work / f"{stage}.txt"
        targets.write_text(scope.targets_file(addresses), encoding="ascii")
        args = nmap_runner.build_args(nmap_path, dataclasses.replace(plan, targets_file=targets))
        return nmap_runner.run(args, deadline, on_host_done=on_host_done, on_start=on_start, cancelled=cancelled)
    return one
