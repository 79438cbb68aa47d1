"""A range of addresses of the test's own: one network namespace holding a few hundred live hosts
(some with a web server) inside a range of thousands, for parallel scanning tests and benchmarks.

Everything is in 198.19.0.0/16 (inside the RFC 2544 benchmarking space 198.18.0.0/15) and on a
veth pair this module creates; addresses that are not live get no ARP answer, as dark space on a
council network would. Teardown kills what it started by PID and deletes the namespace and link.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests import netns
from tests.estate import _kill


@dataclass
class AddressRange:
    network: str  # the CIDR the scanner targets
    live: list[str]  # addresses that answer
    served: list[str]  # of those, the ones with nginx on port 80
    namespace: str
    link: str
    workdir: Path
    pids: list[int] = field(default_factory=list)

    def teardown(self) -> None:
        for pid in self.pids:
            _kill(pid)
        netns.remove(self.namespace, self.link)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _run(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=60, input=stdin, text=True)


def build(network: str, live: int, served: int) -> AddressRange:
    """`live` hosts spread evenly over `network`, the first `served` of them with nginx on :80."""
    if os.geteuid() != 0:
        raise PermissionError("an address range needs root (network namespaces)")
    net = ipaddress.ip_network(network)
    if not net.subnet_of(ipaddress.ip_network("198.19.0.0/16")):
        raise ValueError("address ranges stay inside 198.19.0.0/16")
    hosts = list(net.hosts())
    scanner = hosts[-1]  # the scanner's own side of the link
    step = max(1, (len(hosts) - 1) // live)
    chosen = [str(a) for a in hosts[:-1:step][:live]]
    tag = secrets.token_hex(2)
    built = AddressRange(network=network, live=chosen, served=chosen[:served], namespace=f"wa-r{tag}",
                         link=f"war{tag}o", workdir=Path(tempfile.mkdtemp(prefix=f"wa-range-{tag}-")))
    try:
        _run("ip", "netns", "add", built.namespace)
        _run("ip", "link", "add", built.link, "type", "veth", "peer", "name", f"war{tag}i")
        _run("ip", "link", "set", f"war{tag}i", "netns", built.namespace)
        _run("ip", "addr", "add", f"{scanner}/{net.prefixlen}", "dev", built.link)
        _run("ip", "link", "set", built.link, "up")
        batch = "".join(f"addr add {a}/{net.prefixlen} dev war{tag}i\n" for a in chosen)
        _run("ip", "-n", built.namespace, "-batch", "-", stdin=batch)
        _run("ip", "-n", built.namespace, "link", "set", f"war{tag}i", "up")
        _run("ip", "-n", built.namespace, "link", "set", "lo", "up")
        if served:
            _nginx(built)
    except BaseException:
        built.teardown()
        raise
    return built


def _nginx(built: AddressRange) -> None:
    work = built.workdir
    listens = "\n".join(f"    listen {a}:80;" for a in built.served)
    conf = work / "nginx.conf"
    conf.write_text(f"""worker_processes 1;
user root;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  server {{
{listens}
    location / {{ return 200 "council intranet\\n"; }}
  }}
}}
""")
    proc = subprocess.Popen(["ip", "netns", "exec", built.namespace, "nginx", "-c", str(conf), "-g", "daemon off;"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    built.pids.append(proc.pid)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((built.served[-1], 80)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nginx did not listen in the address range: {(work / 'error.log').read_text()[-500:]}")
