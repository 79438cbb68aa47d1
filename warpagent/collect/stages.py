"""One chunk in stages, so one odd service costs itself and not the services beside it.

nmap probes every service of a host group together and writes no host until the slowest is
done: one TLS service that answers the handshake and then nothing makes nmap wait out each of
its ~30 version probes, while the rest of the chunk finished in seconds. So a chunk is:

1. ports: which ports are open on which hosts (no version probes, no scripts). This is the part
   a packet rate limit stretches, so it has no budget of its own beyond the host timeout.
2. at once:
   - scripts: the checks' NSE scripts but the TLS ones on every live host's open ports, without
     version detection (the scripts choose their ports by number and nmap's service table),
     each host given the host timeout.
   - versions: version detection with warpagent's quick probe file (warpagent.collect.versiondb),
     one nmap per port number over the hosts with it open, a few at once; nmap --host-timeout is
     then a budget per service (`service_timeout_s`). A service that overruns it keeps the name
     its port number gives and its scripts' results; the run names it. Each port number's
     version pass is followed at once by the TLS scripts on the hosts where it found TLS or
     overran (see tls_script for why they wait for it).
3. at once, only where needed:
   - stock: nmap's own probes and waits (`fallback_timeout_s`) for services that answered the
     quick probes but were not identified (a banner paused on purpose, a rarer protocol).
   - renamed: version detection with the scripts on services that version detection named
     differently from their port number and no script looked at (SSH on an unusual port: nmap's
     scripts choose those by service).

Each port's service comes from the latest version pass that identified it, its scripts from every
scripts pass; the result is one nmaprun document that warpagent.collect.nmap_xml reads as before.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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


@dataclasses.dataclass(frozen=True)
class Pass:
    """One nmap run of a chunk's stage 2 or 3, and the service it was about (version passes);
    its document is read once, however many of the stages' rules look at it."""

    output: NmapOutput
    service: str = ""  # "tcp/8443" for a version pass over one port number

    @functools.cached_property
    def _document(self) -> ET.Element | None:
        return _root(self.output.xml)

    @functools.cached_property
    def ports(self) -> dict[tuple[str, str, str], ET.Element]:
        return _ports(self._document)

    @functools.cached_property
    def cut(self) -> list[str]:
        """The hosts nmap gave up on in this pass (its --host-timeout)."""
        root = self._document
        return [host_key(h) for h in root.findall("host") if h.get("timedout") == "true"] if root is not None else []


def _ports(root: ET.Element | None) -> dict[tuple[str, str, str], ET.Element]:
    """Every reported port of every host that finished, keyed (address, protocol, port)."""
    found: dict[tuple[str, str, str], ET.Element] = {}
    for host in root.findall("host") if root is not None else ():
        if host.get("timedout") == "true":
            continue
        address = host_key(host)
        for port in host.findall("ports/port"):
            found[(address, port.get("protocol", "tcp"), port.get("portid", ""))] = port
    return found


def _identified(port: ET.Element | None) -> ET.Element | None:
    """The port's service when version detection matched it (a probe's answer, not the table)."""
    service = port.find("service") if port is not None else None
    return service if service is not None and service.get("method") == "probed" else None


def answered_unidentified(port: ET.Element) -> bool:
    """Version detection got an answer it could not match: nmap's stock probes may still."""
    service = port.find("service")
    return service is not None and service.get("method") != "probed" and bool(service.get("servicefp"))


# No script the checks run is an HTTP one (the web checks fetch the page themselves from every
# service version detection calls HTTP), so a web server on an unusual port needs no second look.
_WEB = {"http", "https", "http-alt", "https-alt", "http-proxy"}


def renamed(version_port: ET.Element, scripts_port: ET.Element | None) -> bool:
    """Version detection named the service otherwise than its port number did, and no script
    looked at it: scripts that choose by service name (SSH, FTP, Redis on an unusual port) need
    another go. (TLS needs none: the TLS scripts follow version detection port by port.)"""
    service = _identified(version_port)
    if service is None or scripts_port is None or scripts_port.find("script") is not None:
        return False
    table = scripts_port.find("service")
    named, numbered = service.get("name"), table.get("name") if table is not None else None
    return named != numbered and named not in _WEB


def in_tls(port: ET.Element | None) -> bool:
    service = port.find("service") if port is not None else None
    return service is not None and service.get("tunnel") == "ssl"


def tls_script(name: str) -> bool:
    """nmap's TLS scripts choose their ports with shortport.ssl, which, on a port version
    detection has not named, tries two TLS handshakes itself and waits 7 s for each answer: a
    Redis or memcached says nothing to a ClientHello, so these scripts run only where version
    detection found TLS (or could not finish)."""
    return name.startswith(("ssl", "tls"))


def _place_service(port: ET.Element, service: ET.Element) -> None:
    old = port.find("service")
    children = list(port)
    index = children.index(old) if old is not None else len([c for c in children if c.tag == "state"])
    if old is not None:
        port.remove(old)
    port.insert(index, copy.deepcopy(service))


def merge(discovery: NmapOutput, scripts: NmapOutput, versions: Sequence[Pass] = (),
          later: Sequence[Pass] = ()) -> str:
    """One nmaprun document: each host as the scripts pass reported it (as discovery did when it
    had nothing open), each port's service from the latest version pass that identified it, and
    the scripts of every pass. It ends with nmap's runstats only when every pass finished, so a
    pass cut short leaves the run partial and its unfinished hosts unscanned, as one nmap would."""
    outputs = [discovery, scripts, *(p.output for p in (*versions, *later))]
    complete = all(repair(o.xml)[1] for o in outputs)
    first = _root(discovery.xml)
    script_root = _root(scripts.xml)
    if first is None:
        return ""
    reported = {host_key(h): h for h in script_root.findall("host")} if script_root is not None else {}
    live = set(open_ports(discovery.xml))
    services: dict[tuple[str, str, str], ET.Element] = {}
    extra_scripts: dict[tuple[str, str, str], list[ET.Element]] = {}
    for one in (*versions, *later):
        for key, port in one.ports.items():
            service = _identified(port)
            if service is not None:
                services[key] = service
            extra_scripts.setdefault(key, []).extend(port.findall("script"))
    base = script_root if script_root is not None else first
    runstats = base.find("runstats")
    for element in [*base.findall("host"), *([runstats] if runstats is not None else [])]:
        base.remove(element)
    for host in first.findall("host"):
        address = host_key(host)
        chosen = reported.get(address)
        if chosen is None:
            if address in live:
                continue  # the scripts pass stopped before this host: not scanned
            chosen = host
        for port in chosen.findall("ports/port"):
            key = (address, port.get("protocol", "tcp"), port.get("portid", ""))
            present = {script.get("id") for script in port.findall("script")}
            port.extend(copy.deepcopy(s) for s in extra_scripts.get(key, ()) if s.get("id") not in present)
            if key in services:
                _place_service(port, services[key])
            elif any(tls_script(s.get("id", "")) for s in port.findall("script")):
                table = port.find("service")
                if table is not None:  # a TLS script completed a handshake: the service is in TLS
                    table.set("tunnel", "ssl")
        base.append(chosen)
    if complete and runstats is not None:
        base.append(runstats)
    text = ET.tostring(base, encoding="unicode")
    return text if complete else text.removesuffix("</nmaprun>")


_VERSION_PROCESSES = 4  # version passes of one chunk at once, beside its scripts pass


def _by_service(found: dict[str, ports.PortSet], wanted: Callable[[str, str, int], bool]) -> dict[str, list[str]]:
    """The hosts with each open port number ("tcp/443": [addresses]) that `wanted` keeps."""
    grouped: dict[str, list[str]] = {}
    for address, port_set in found.items():
        for protocol, numbers in (("tcp", port_set.tcp), ("udp", port_set.udp)):
            for number in numbers:
                if wanted(address, protocol, number):
                    grouped.setdefault(f"{protocol}/{number}", []).append(address)
    return grouped


def _protocol_and_port(service: str) -> tuple[str, int]:
    protocol, number = service.split("/")
    return protocol, int(number)


def _port_plan(plan: NmapPlan, service: str, budget_s: int, versiondb: Path | None) -> NmapPlan:
    protocol, number = _protocol_and_port(service)
    return dataclasses.replace(plan, port_argument=f"{protocol[0].upper()}:{number}", udp=protocol == "udp",
                               assume_up=True, run_scripts=False, services=True, versiondb=versiondb,
                               host_timeout_s=min(budget_s, plan.host_timeout_s))


def run(addresses: Sequence[str], plan: NmapPlan, nmap: Runner, on_host_done: Callable[[int], None]) -> NmapOutput:
    """The stages over one chunk's addresses; `nmap(stage, addresses, plan, on_host_done)` runs one.
    `plan.versiondb` is the quick probe file (None: nmap's own probes throughout)."""
    discovery = nmap("ports", addresses, dataclasses.replace(plan, services=False, run_scripts=False), lambda n: None)
    found = open_ports(discovery.xml)
    stopped = discovery.timed_out or discovery.interrupted or not repair(discovery.xml)[1]
    if stopped or not found:
        on_host_done(discovery.xml.count("</host>"))
        return discovery
    on_host_done(max(0, discovery.xml.count("</host>") - len(found)))  # hosts with nothing open are done
    live = [a for a in addresses if a in found]
    probed = union([found[a] for a in live])
    by_service = _by_service(found, lambda a, p, n: True)
    at_once = 1 + min(_VERSION_PROCESSES, len(by_service))
    rate = max(1, plan.max_rate // at_once) if plan.max_rate else None  # the chunk's rate, shared
    shared = dataclasses.replace(plan, max_rate=rate, assume_up=True)
    tls_scripts = tuple(s for s in plan.scripts if tls_script(s))

    def versions_then_tls(service: str, hosts: list[str]) -> list[Pass]:
        """One port number's version pass, then the TLS scripts where it found TLS or overran."""
        slug = service.replace("/", "-")
        versions = Pass(nmap(f"versions-{slug}", hosts, _port_plan(shared, service, plan.service_timeout_s,
                                                                   plan.versiondb), lambda n: None), service)
        protocol, number = _protocol_and_port(service)
        if _stopped(versions.output) or not tls_scripts or protocol == "udp":
            return [versions]
        tls_hosts = [a for a in hosts if a in versions.cut or in_tls(versions.ports.get((a, "tcp", str(number))))]
        if not tls_hosts:
            return [versions]
        tls = nmap(f"tls-{slug}", tls_hosts, dataclasses.replace(
            shared, port_argument=f"T:{number}", udp=False, services=False, run_scripts=True, scripts=tls_scripts),
            lambda n: None)
        return [versions, Pass(tls)]

    with ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="nmap-pass") as pool:
        scripts_future = pool.submit(nmap, "scripts", live, dataclasses.replace(
            shared, port_argument=probed.nmap_argument(), udp=bool(probed.udp), services=False, run_scripts=True,
            scripts=tuple(s for s in plan.scripts if s not in tls_scripts)), on_host_done)
        chains = [pool.submit(versions_then_tls, service, hosts) for service, hosts in by_service.items()]
        scripts = scripts_future.result()
        versions = [one for chain in chains for one in chain.result()]
        if _stopped(scripts) or any(_stopped(p.output) for p in versions):
            return _combined(discovery, scripts, versions, ())
        later = _second_look(live, found, shared, nmap, pool, scripts, [p for p in versions if p.service])
    return _combined(discovery, scripts, versions, later)


def _stopped(output: NmapOutput) -> bool:
    return output.interrupted or output.timed_out


def _second_look(live: Sequence[str], found: dict[str, ports.PortSet], plan: NmapPlan, nmap: Runner,
                 pool: ThreadPoolExecutor, scripts: NmapOutput, versions: Sequence[Pass]) -> list[Pass]:
    """Stage 3: the stock probes where the quick ones got an unmatched answer, and the scripts
    again where version detection renamed a service (both only when the quick probe file was used
    or a service was renamed; usually neither runs)."""
    version_ports = {key: port for one in versions for key, port in one.ports.items()}
    script_ports = _ports(_root(scripts.xml))

    def unidentified(address: str, protocol: str, number: int) -> bool:
        port = version_ports.get((address, protocol, str(number)))
        return plan.versiondb is not None and port is not None and answered_unidentified(port)

    futures: list[tuple[str, Future[NmapOutput]]] = [
        (service, pool.submit(nmap, f"stock-{service.replace('/', '-')}", hosts,
                              _port_plan(plan, service, plan.fallback_timeout_s, None), lambda n: None))
        for service, hosts in _by_service(found, unidentified).items()]
    again = {key for key, port in version_ports.items() if renamed(port, script_ports.get(key))}
    if again:
        hosts = [a for a in live if a in {address for address, _protocol, _port in again}]
        ports_again = ports.PortSet(tcp=tuple(sorted({int(n) for _a, protocol, n in again if protocol == "tcp"})),
                                    udp=tuple(sorted({int(n) for _a, protocol, n in again if protocol == "udp"})))
        futures.append(("", pool.submit(nmap, "renamed", hosts, dataclasses.replace(
            plan, port_argument=ports_again.nmap_argument(), udp=bool(ports_again.udp), services=True,
            run_scripts=True), lambda n: None)))
    return [Pass(future.result(), service) for service, future in futures]


def _combined(discovery: NmapOutput, scripts: NmapOutput, versions: Sequence[Pass],
              later: Sequence[Pass]) -> NmapOutput:
    outputs = [discovery, scripts, *(p.output for p in (*versions, *later))]
    # only the quick version passes have service_timeout as their budget; a stock pass that runs
    # out (fallback_timeout) leaves the quick pass's answer standing
    overran = tuple((address, *_protocol_and_port(p.service)) for p in versions if p.service for address in p.cut)
    return NmapOutput(
        xml=merge(discovery, scripts, versions, later), stderr="".join(o.stderr for o in outputs),
        returncode=scripts.returncode, timed_out=any(o.timed_out for o in outputs),
        interrupted=any(o.interrupted for o in outputs), overran=overran)


def runner(nmap_path: str, work: Path, deadline: float, on_start: Callable[[int], None],
           cancelled: Callable[[], bool]) -> Runner:
    """A Runner that writes each stage's targets to its own file in `work` (nothing on the command line)."""
    def one(stage: str, addresses: Sequence[str], plan: NmapPlan, on_host_done: Callable[[int], None]) -> NmapOutput:
        targets = work / f"{stage}.txt"
        targets.write_text(scope.targets_file(addresses), encoding="ascii")
        args = nmap_runner.build_args(nmap_path, dataclasses.replace(plan, targets_file=targets))
        return nmap_runner.run(args, deadline, on_host_done=on_host_done, on_start=on_start, cancelled=cancelled)
    return one
