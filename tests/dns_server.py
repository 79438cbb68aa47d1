"""A real DNS server for the domain tests: Debian's dnsmasq on loopback, serving only the
records a test gives it (no upstream, no hosts file; anything else under .test is NXDOMAIN),
plus a silent UDP socket for a server that never answers. Stopped by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DnsServer:
    address: str
    port: int

    @property
    def server(self) -> str:
        """As scan.dns_servers takes it."""
        return f"{self.address}:{self.port}"


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def _txt(name: str, text: str) -> str:
    # a config-file line, where dnsmasq honours quotes (commas inside stay in the string); the
    # value goes in 255-byte strings as a zone file would hold it, which readers join again
    chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    return f"txt-record={name}," + ",".join('"' + c.replace('\\', '\\\\').replace('"', '\\"') + '"' for c in chunks)


def _servfail(listener: socket.socket, stop: threading.Event) -> None:
    """An upstream that answers every question SERVFAIL (built with dnspython's message API)."""
    import dns.message
    import dns.rcode

    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            data, peer = listener.recvfrom(4096)
        except (TimeoutError, OSError):
            continue
        try:
            reply = dns.message.make_response(dns.message.from_wire(data))
        except Exception:  # noqa: BLE001, S112 - anything unreadable is not answered
            continue
        reply.set_rcode(dns.rcode.SERVFAIL)
        with contextlib.suppress(OSError):
            listener.sendto(reply.to_wire(), peer)


@contextlib.contextmanager
def serving(txt: Sequence[tuple[str, str]], mx: Sequence[tuple[str, str, int]] = (),
            hosts: Sequence[tuple[str, str]] = (), address: str = "127.0.0.1",
            failing: Sequence[str] = ()) -> Iterator[DnsServer]:
    """dnsmasq answering TXT (name, text), MX (domain, host, preference) and A (name, address);
    questions about a domain in `failing` it forwards to an upstream that answers SERVFAIL, and
    passes that on, as a resolver does for a broken delegation."""
    binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    if not os.path.exists(binary):
        raise FileNotFoundError("dnsmasq is not installed (scripts/install.sh --test installs dnsmasq-base)")
    port = _free_port(address)
    stop = threading.Event()
    upstream_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    upstream_socket.bind((address, 0))
    upstream = upstream_socket.getsockname()[1]
    threading.Thread(target=_servfail, args=(upstream_socket, stop), daemon=True).start()
    zone = tempfile.NamedTemporaryFile("w", prefix="wa-dnsmasq-", suffix=".conf", delete=False)  # noqa: SIM115
    with zone:
        zone.write("\n".join([*(_txt(n, t) for n, t in txt), *(f"mx-host={d},{h},{p}" for d, h, p in mx),
                              *(f"host-record={n},{a}" for n, a in hosts),
                              *(f"server=/{d}/{address}#{upstream}" for d in failing)]) + "\n")
    argv = [binary, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
            f"--listen-address={address}", f"--port={port}", "--local=/test/", "--log-facility=-",
            "--pid-file=", "--user=root" if os.geteuid() == 0 else "--user=", f"--conf-file={zone.name}"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"dnsmasq exited: {proc.stderr.read().decode()[-400:] if proc.stderr else ''}")
            with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.2):
                break
            time.sleep(0.05)
        yield DnsServer(address, port)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.unlink(zone.name)
        stop.set()
        upstream_socket.close()


@contextlib.contextmanager
def silent(address: str = "127.0.0.1") -> Iterator[DnsServer]:
    """A UDP and TCP port that takes questions and never answers (a DNS server gone quiet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind((address, 0))
        port = udp.getsockname()[1]
        tcp.bind((address, port))
        tcp.listen()
        yield DnsServer(address, port)
