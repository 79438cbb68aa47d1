"""A stalled service costs itself: a chunk finds its ports, then probes services with a per-host
budget, then looks again lightly at the hosts that overran it (warpagent.collect.stages)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from checks import CheckContext
from tests.tls_servers import serving
from warpagent import config
from warpagent.collect import nmap_runner, nmap_xml
from warpagent.collect import stages as staged_scan
from warpagent.collect.nmap_runner import NmapOutput
from warpagent.scan import engine, pipeline
from warpagent.scan.plan import resolve_scope

HEAD = ('<?xml version="1.0"?><nmaprun scanner="nmap" args="nmap" start="1" version="7.93">'
        '<scaninfo type="connect" protocol="tcp" numservices="1" services="22"/>')
END = ('<runstats><finished time="2" timestr="" elapsed="1" summary="" exit="success"/>'
       '<hosts up="3" down="0" total="3"/></runstats></nmaprun>')


def _host(address: str, ports: str = "", timedout: bool = False) -> str:
    flag = ' timedout="true"' if timedout else ""
    return (f'<host{flag}><status state="up" reason="syn-ack"/><address addr="{address}" addrtype="ipv4"/>'
            f"<ports>{ports}</ports></host>")


def _port(number: int, state: str = "open", protocol: str = "tcp", service: str = "") -> str:
    return (f'<port protocol="{protocol}" portid="{number}"><state state="{state}" reason="syn-ack"/>'
            f"{service}</port>")


def test_open_ports_are_read_per_host_and_timed_out_hosts_left_out() -> None:
    xml = HEAD + _host("198.18.0.1", _port(22) + _port(80, "closed")) + _host("198.18.0.2") \
        + _host("198.18.0.3", _port(161, "open|filtered", "udp") + _port(443)) \
        + _host("198.18.0.4", _port(25), timedout=True) + END
    found = staged_scan.open_ports(xml)
    assert found == {"198.18.0.1": staged_scan.ports.PortSet(tcp=(22,), udp=()),
                     "198.18.0.3": staged_scan.ports.PortSet(tcp=(443,), udp=(161,))}
    assert staged_scan.union(list(found.values())).nmap_argument() == "T:22,443,U:161"


def test_merge_takes_each_host_from_the_latest_stage_that_reported_on_it() -> None:
    nginx = '<service name="http" product="nginx" version="1.22.1" method="probed" conf="10"/>'
    discovery = NmapOutput(HEAD + _host("198.18.0.1", _port(443)) + _host("198.18.0.2")
                           + _host("198.18.0.3", _port(8443)) + END, "", 0)
    services = NmapOutput(HEAD + _host("198.18.0.1", _port(443, service=nginx)) + _host("198.18.0.3", timedout=True)
                          + END, "", 0)
    light = NmapOutput(HEAD + _host("198.18.0.3", _port(8443, service='<service name="https" tunnel="ssl"/>')) + END,
                       "", 0)
    parsed = nmap_xml.parse(staged_scan.merge([discovery, services, light]), {})
    assert parsed.complete and parsed.timed_out == () and set(parsed.finished) == {"198.18.0.1", "198.18.0.2",
                                                                                  "198.18.0.3"}
    by_address = {h.address: h for h in parsed.hosts}
    assert [(s.product, s.version) for s in by_address["198.18.0.1"].services] == [("nginx", "1.22.1")]
    assert by_address["198.18.0.2"].services == ()  # up, nothing open: from the first stage
    assert [(s.name, s.tunnel) for s in by_address["198.18.0.3"].services] == [("https", "ssl")]

    # the light stage stopped before it wrote that host: the run is partial, the host not scanned
    cut = NmapOutput(HEAD, "", None, interrupted=True)
    partial = nmap_xml.parse(staged_scan.merge([discovery, services, cut]), {})
    assert not partial.complete and "198.18.0.3" not in partial.finished
    # without a light stage the overrun host stays nmap's own timed-out host
    assert nmap_xml.parse(staged_scan.merge([discovery, services]), {}).timed_out == ("198.18.0.3",)


def test_one_silent_tls_service_costs_itself_and_every_finding_stays(tmp_path: Path) -> None:
    fine, silent, empty = "127.0.0.41", "127.0.0.42", "127.0.0.43"
    path = tmp_path / "w.yaml"
    path.write_text(f"""organisation: {{name: Test Borough Council}}
store: ./warpagent.db
estates:
  - name: corporate
    targets: [{fine}, {silent}, {empty}]
    ports: "8443"
    host_timeout: 5m
    service_timeout: 20s
""")
    settings = config.load(str(path))
    estate = settings.estates[0]
    stages: list[str] = []

    def started(pid: int) -> None:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        stages.append(f"{Path(argv[argv.index('-iL') + 1]).stem}:{Path(argv[argv.index('-iL') + 1]).read_text()}")

    with serving(tmp_path, https=[(fine, 8443)], silent=[(silent, 8443)]):
        collection = pipeline.collect(estate, settings.scan.timing, resolve_scope(estate),
                                      nmap_runner.find_nmap("nmap"),
                                      pipeline.NoProgress(), on_nmap_start=started)
    assert collection.problems == () and not collection.inventory.unscanned
    assert [s.split(":")[0] for s in stages] == ["ports", "services", "light"]
    assert stages[1] == f"services:{fine}\n{silent}\n" and stages[2] == f"light:{silent}\n"  # the empty host: done
    [note] = [n for n in collection.notes if "service_timeout" in n]
    assert note.startswith(f"{silent}: version detection overran estates[].service_timeout (20s)")
    hosts = {h.address: h for h in collection.inventory.hosts}
    [https] = hosts[fine].services
    assert (https.name, https.tunnel) == ("http", "ssl") and https.product  # fully identified
    [odd] = hosts[silent].services
    assert odd.state == "open" and odd.tunnel == "ssl"
    assert {s.id for s in odd.scripts} >= {"ssl-cert", "ssl-enum-ciphers"}
    evaluation = engine.evaluate(collection.inventory, CheckContext(now=dt.datetime.now(dt.UTC)))
    self_signed = {f.asset for f in evaluation.findings if f.check_id == "WA504"}
    assert self_signed == {fine, silent}  # the silent service's certificate is still judged
