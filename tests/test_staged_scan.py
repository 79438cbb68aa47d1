"""A stalled service costs itself: a chunk finds its ports, then runs the scripts beside version
detection with a budget per service and quick waits, then gives nmap's stock probes only to the
services that answered unmatched and the scripts again to services renamed by version detection
(warpagent.collect.stages)."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from checks import CheckContext
from tests.conftest import needs_root
from tests.tls_servers import accept_each, serving
from warpagent import config
from warpagent.collect import nmap_runner, nmap_xml, versiondb
from warpagent.collect import stages as staged_scan
from warpagent.collect.nmap_runner import NmapOutput
from warpagent.evidence import web
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


def test_merge_takes_services_from_version_passes_and_scripts_from_every_scripts_pass() -> None:
    nginx = '<service name="http" product="nginx" version="1.22.1" tunnel="ssl" method="probed" conf="10"/>'
    table = '<service name="https-alt" method="table" conf="3"/>'
    cert = '<script id="ssl-cert" output="Subject: commonName=x.test"/>'
    discovery = NmapOutput(HEAD + _host("198.18.0.1", _port(8443, service=table)) + _host("198.18.0.2")
                           + _host("198.18.0.3", _port(8443, service=table) + _port(7000)) + END, "", 0)
    scripts = NmapOutput(HEAD + _host("198.18.0.1", _port(8443, service=table + cert))
                         + _host("198.18.0.3", _port(8443, service=table + cert) + _port(7000)) + END, "", 0)
    versions = [staged_scan.Pass(NmapOutput(HEAD + _host("198.18.0.1", _port(8443, service=nginx))
                                            + _host("198.18.0.3", timedout=True) + END, "", 0), "tcp/8443"),
                staged_scan.Pass(NmapOutput(HEAD + _host("198.18.0.3", _port(7000, service=nginx)) + END, "", 0),
                                 "tcp/7000")]
    renamed = [staged_scan.Pass(NmapOutput(HEAD + _host("198.18.0.3", _port(7000, service=nginx + cert)) + END,
                                           "", 0))]
    parsed = nmap_xml.parse(staged_scan.merge(discovery, scripts, versions, renamed), {})
    assert parsed.complete and parsed.timed_out == () and set(parsed.finished) == {"198.18.0.1", "198.18.0.2",
                                                                                  "198.18.0.3"}
    by_address = {h.address: h for h in parsed.hosts}
    [fine] = by_address["198.18.0.1"].services
    assert (fine.name, fine.tunnel, fine.product, fine.version) == ("http", "ssl", "nginx", "1.22.1")
    assert [s.id for s in fine.scripts] == ["ssl-cert"]  # the scripts pass's, under the version pass's service
    assert by_address["198.18.0.2"].services == ()  # up, nothing open: from discovery
    silent, unusual = sorted(by_address["198.18.0.3"].services, key=lambda s: s.port, reverse=True)
    # the version pass overran on 8443: its name from the port number, in TLS because a TLS script
    # completed a handshake; 7000 identified, and its scripts from the pass after the rename
    assert (silent.name, silent.tunnel, silent.product) == ("https-alt", "ssl", "")
    assert (unusual.port, unusual.product, [s.id for s in unusual.scripts]) == (7000, "nginx", ["ssl-cert"])

    # the scripts pass stopped before it wrote a live host: the run is partial, that host not scanned
    cut = NmapOutput(HEAD + _host("198.18.0.1", _port(8443, service=table + cert)), "", None, interrupted=True)
    partial = nmap_xml.parse(staged_scan.merge(discovery, cut, versions), {})
    assert not partial.complete and "198.18.0.3" not in partial.finished and "198.18.0.1" in partial.finished
    # a version pass stopped by the operator makes the run partial too, though every host was written
    stopped = staged_scan.Pass(NmapOutput(HEAD, "", None, interrupted=True), "tcp/8443")
    assert not nmap_xml.parse(staged_scan.merge(discovery, scripts, [stopped]), {}).complete
    # the overrun services the run names are the version passes' (service_timeout), not a stock
    # pass's that ran out of fallback_timeout
    stock = staged_scan.Pass(NmapOutput(HEAD + _host("198.18.0.1", timedout=True) + END, "", 0), "tcp/8443")
    assert staged_scan._combined(discovery, scripts, versions, [stock]).overran == (("198.18.0.3", "tcp", 8443),)
    # a host the scripts pass timed out on stays nmap's own timed-out host (host_timeout)
    late = NmapOutput(HEAD + _host("198.18.0.1", _port(8443, service=table + cert)) + _host("198.18.0.3", timedout=True)
                      + END, "", 0)
    assert nmap_xml.parse(staged_scan.merge(discovery, late, versions), {}).timed_out == ("198.18.0.3",)


def _element(xml: str) -> ET.Element:
    return ET.fromstring(xml)  # noqa: S314 - the test's own literals


def test_a_second_look_only_where_the_quick_probes_fell_short() -> None:
    quick_unknown = _element('<port protocol="tcp" portid="2222"><state state="open"/><service name="EtherNetIP-1" '
                             'servicefp="SF-Port2222-TCP:V=7.93%r(NULL,1,&quot;x&quot;)" method="table"/></port>')
    silent = _element('<port protocol="tcp" portid="8443"><state state="open"/>'
                      '<service name="https-alt" tunnel="ssl" method="table" conf="3"/></port>')
    ssh = _element('<port protocol="tcp" portid="2222"><state state="open"/>'
                   '<service name="ssh" product="OpenSSH" method="probed" conf="10"/></port>')
    table = _element('<port protocol="tcp" portid="2222"><state state="open"/>'
                     '<service name="EtherNetIP-1" method="table" conf="3"/></port>')
    scripted = _element('<port protocol="tcp" portid="22"><state state="open"/><service name="ssh" method="table"/>'
                        '<script id="ssh2-enum-algos" output=""/></port>')
    https = _element('<port protocol="tcp" portid="443"><state state="open"/>'
                     '<service name="http" tunnel="ssl" method="probed"/></port>')
    # answered but not matched: the stock probes may name it; silent: they would wait in vain too
    assert staged_scan.answered_unidentified(quick_unknown) and not staged_scan.answered_unidentified(silent)
    assert not staged_scan.answered_unidentified(ssh)
    # SSH on 2222: the scripts chose by port number and ran none; after the rename they will
    assert staged_scan.renamed(ssh, table)
    assert not staged_scan.renamed(ssh, scripted)  # a script already looked: nothing to add
    assert not staged_scan.renamed(silent, table)  # not identified: no new name to choose by
    # http over TLS on 443 is what the table's https means: no script of ours tells them apart
    assert not staged_scan.renamed(https, _element('<port protocol="tcp" portid="443"><state state="open"/>'
                                                   '<service name="https" method="table"/></port>'))
    assert staged_scan.in_tls(https) and staged_scan.in_tls(silent) and not staged_scan.in_tls(ssh)
    assert staged_scan.tls_script("ssl-enum-ciphers") and not staged_scan.tls_script("ssh2-enum-algos")


def test_the_quick_probe_file_keeps_every_probe_and_match_and_only_shortens_the_waits() -> None:
    stock_path = versiondb.stock_probes(nmap_runner.find_nmap("nmap"))
    assert stock_path is not None
    stock = stock_path.read_text(encoding="latin-1")
    quick = versiondb.quick(stock)

    def kept(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith(("totalwaitms", "tcpwrappedms"))]

    assert kept(quick) == kept(stock)
    sections = quick.split("\nProbe ")[1:]
    assert len(sections) == stock.count("\nProbe ") > 100
    for section in sections:
        waits = [int(line.split()[1]) for line in section.splitlines() if line.startswith("totalwaitms")]
        assert len(waits) == 1 and waits[0] <= versiondb.QUICK_WAIT_MS, section.splitlines()[0]
    assert all(int(line.split()[1]) <= versiondb.QUICK_WAIT_MS
               for line in quick.splitlines() if line.startswith("tcpwrappedms"))


@contextmanager
def _paused_banner(address: str, port: int, pause_s: float = 1.0) -> Iterator[None]:
    """An SSH server that gives its banner only after a pause (as Sendmail's greet_pause does for
    SMTP) and answers a client that talks first with a complaint: the quick probes get an answer
    they cannot match; nmap's stock NULL probe, waiting 6 s, gets the banner."""
    listener = socket.create_server((address, port))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(pause_s)
            try:
                conn.recv(1024)
                conn.sendall(b"Invalid SSH identification string.\r\n")
            except TimeoutError:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n")
                conn.settimeout(5)
                with suppress(OSError):
                    conn.recv(1024)
            except OSError:
                pass

    thread = threading.Thread(target=accept_each, args=(listener, serve, stop), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def _stages(started: list[str]) -> Callable[[int], None]:
    def record(pid: int) -> None:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        targets = Path(argv[argv.index("-iL") + 1])
        started.append(f"{targets.stem}:{' '.join(targets.read_text().split())}")
    return record


def _estate(folder: Path, targets: list[str], ports: str, budget: str) -> tuple[config.EstateConfig, str]:
    """One estate of `targets` with `ports` and a service_timeout of `budget`, and the scan timing."""
    path = folder / "w.yaml"
    path.write_text(f"""organisation: {{name: Test Borough Council}}
store: ./warpagent.db
estates:
  - name: corporate
    targets: [{", ".join(targets)}]
    ports: "{ports}"
    host_timeout: 5m
    service_timeout: {budget}
""")
    settings = config.load(str(path))
    return settings.estates[0], settings.scan.timing


def test_one_silent_tls_service_costs_itself_and_every_finding_stays(tmp_path: Path) -> None:
    fine, silent, empty = "127.0.0.41", "127.0.0.42", "127.0.0.43"
    estate, timing = _estate(tmp_path, [fine, silent, empty], "8443", "4s")
    stages: list[str] = []
    with serving(tmp_path, https=[(fine, 8443)], silent=[(silent, 8443)]):
        collection = pipeline.collect(estate, timing, resolve_scope(estate),
                                      nmap_runner.find_nmap("nmap"),
                                      pipeline.NoProgress(), on_nmap_start=_stages(stages))
        # the web checks' GET goes to the ordinary service, not to the one that overran (it would
        # only wait out its own timeout)
        assert collection.overran == frozenset({(silent, 8443)})
        ordinary = next(h for h in collection.inventory.hosts if h.address == fine)
        assert web.probe(ordinary).evidence.web
        assert not web.probe(ordinary, silent=frozenset({8443})).evidence.web
    assert collection.problems == () and not collection.inventory.unscanned
    # the empty host is done after its ports; the two live ones go to the scripts and to one
    # version pass for port 8443, at once, then to the TLS scripts (one found TLS, one overran);
    # nothing answered unidentified, nothing was renamed
    assert stages[0] == f"ports:{fine} {silent} {empty}"
    assert sorted(stages[1:]) == [f"scripts:{fine} {silent}", f"tls-tcp-8443:{fine} {silent}",
                                  f"versions-tcp-8443:{fine} {silent}"]
    [note] = [n for n in collection.notes if "service_timeout" in n]
    assert note.startswith(f"{silent} tcp/8443: version detection overran estates[].service_timeout (4s)")
    hosts = {h.address: h for h in collection.inventory.hosts}
    [https] = hosts[fine].services
    assert (https.name, https.tunnel) == ("http", "ssl") and https.product  # fully identified
    [odd] = hosts[silent].services
    assert odd.state == "open" and odd.tunnel == "ssl" and not odd.product
    assert {s.id for s in odd.scripts} >= {"ssl-cert", "ssl-enum-ciphers"}
    evaluation = engine.evaluate(collection.inventory, CheckContext(now=dt.datetime.now(dt.UTC)))
    self_signed = {f.asset for f in evaluation.findings if f.check_id == "WA504"}
    assert self_signed == {fine, silent}  # the silent service's certificate is still judged


@contextmanager
def _sshd(folder: Path, address: str, port: int) -> Iterator[None]:
    """A real OpenSSH server on a loopback address and a port nmap's table does not call ssh."""
    keys = [folder / "ssh_host_ed25519"]
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys[0])], check=True)
    conf = folder / "sshd.conf"
    conf.write_text(f"ListenAddress {address}:{port}\nHostKey {keys[0]}\nPidFile {folder}/sshd.pid\nUsePAM no\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(conf)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with suppress(OSError), socket.create_connection((address, port), timeout=1):
                break
            time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_paused_banner_gets_the_stock_probes_and_ssh_on_an_unusual_port_gets_its_scripts(tmp_path: Path) -> None:
    needs_root()
    tls_host, paused_host, ssh_host = "127.0.0.45", "127.0.0.46", "127.0.0.47"
    estate, timing = _estate(tmp_path, [tls_host, paused_host, ssh_host], "7000,2200,2022", "20s")
    stages: list[str] = []
    with serving(tmp_path, https=[(tls_host, 7000)], silent=[]), _paused_banner(paused_host, 2200), \
            _sshd(tmp_path, ssh_host, 2022):
        collection = pipeline.collect(estate, timing, resolve_scope(estate),
                                      nmap_runner.find_nmap("nmap"),
                                      pipeline.NoProgress(), on_nmap_start=_stages(stages))
    assert collection.problems == () and collection.notes == ()
    assert sorted(stages) == sorted([f"ports:{tls_host} {paused_host} {ssh_host}",
                                     f"scripts:{tls_host} {paused_host} {ssh_host}",
                                     f"versions-tcp-7000:{tls_host}", f"versions-tcp-2200:{paused_host}",
                                     f"versions-tcp-2022:{ssh_host}", f"tls-tcp-7000:{tls_host}",
                                     f"stock-tcp-2200:{paused_host}", f"renamed:{ssh_host}"])
    hosts = {h.address: h for h in collection.inventory.hosts}
    services = {a: next(s for s in hosts[a].services if s.state == "open") for a in hosts}
    # port 7000 is "afs3-fileserver" to nmap's table: the TLS scripts ran there once version
    # detection had found TLS
    tls = services[tls_host]
    assert (tls.name, tls.tunnel) == ("http", "ssl") and {s.id for s in tls.scripts} >= {"ssl-cert",
                                                                                         "ssl-enum-ciphers"}
    paused = services[paused_host]  # named only by the stock probes' 6 s wait for a banner
    assert (paused.name, paused.product, paused.version) == ("ssh", "OpenSSH", "9.2p1 Debian 2+deb12u10")
    # 2022 is "down" to nmap's table and not among the ports nmap's SSH scripts try: they ran on it
    # once version detection had named it
    ssh = services[ssh_host]
    assert (ssh.name, ssh.product) == ("ssh", "OpenSSH") and {s.id for s in ssh.scripts} >= {"ssh2-enum-algos"}
