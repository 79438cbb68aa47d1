"""Opt-in default-credential probes: a tiny built-in list of vendor defaults tried against the
SSH, FTP, telnet, HTTP basic-auth and SNMP services nmap found on in-scope hosts.

Lockout-aware by construction: at most `max_attempts` tries per service (port) per scan,
never more, with a pause between tries; the first accepted credential ends that service's
probe. Only hosts and ports from tonight's inventory are touched. Passwords come from the
public default list below and are never written to a finding or a log.
"""

from __future__ import annotations

import ftplib
import functools
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import paramiko
import requests
import urllib3

from warpagent.config import CredentialProbes
from warpagent.model.evidence import AcceptedCredential
from warpagent.model.findings import Host, Service

log = logging.getLogger(__name__)

# (user, password) in the order tried: the commonest vendor defaults first.
DEFAULTS: dict[str, tuple[tuple[str, str], ...]] = {
    "ssh": (("root", "root"), ("admin", "admin"), ("admin", "password"), ("pi", "raspberry"), ("ubnt", "ubnt")),
    "ftp": (("admin", "admin"), ("ftp", "ftp"), ("root", "root"), ("admin", "password")),
    "telnet": (("admin", "admin"), ("root", "root"), ("admin", "password"), ("admin", "1234")),
    "http-basic": (("admin", "admin"), ("admin", "password"), ("root", "root"), ("admin", "1234")),
    "snmp": (("public", ""), ("private", "")),  # SNMP v2c communities
}
TIMEOUT_S = 10


@dataclass(frozen=True)
class ServiceProbe:
    service: str  # key of DEFAULTS
    port: int
    protocol: str
    attempts: int
    accepted: AcceptedCredential | None


Attempt = Callable[[str, int, str, str], bool]


class _AnyHostKey(paramiko.MissingHostKeyPolicy):
    """A probe sends only public default passwords, so the host key does not matter here
    (evidence collection, which does log in for real, verifies keys strictly)."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        return None


def _ssh(address: str, port: int, user: str, password: str) -> bool:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(_AnyHostKey())
    try:
        client.connect(address, port=port, username=user, password=password, timeout=TIMEOUT_S,
                       banner_timeout=TIMEOUT_S, auth_timeout=TIMEOUT_S, allow_agent=False, look_for_keys=False)
        return True
    except paramiko.AuthenticationException:
        return False
    finally:
        client.close()


def _ftp(address: str, port: int, user: str, password: str) -> bool:
    with ftplib.FTP(timeout=TIMEOUT_S) as ftp:  # noqa: S321 - probing the FTP service is the point
        ftp.connect(address, port)
        try:
            ftp.login(user, password)
        except ftplib.error_perm:
            return False
        return True


def _get(url: str, auth: tuple[str, str] | None = None) -> requests.Response:
    """One direct request: never through a proxy from the environment (credentials go only to
    the in-scope host), and a device's own self-signed certificate is expected."""
    with requests.Session() as session, urllib3.warnings.catch_warnings():
        session.trust_env = False
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        return session.get(url, auth=auth, timeout=TIMEOUT_S, verify=False, allow_redirects=False)


def _http_basic(address: str, port: int, user: str, password: str, tls: bool = False) -> bool:
    answer = _get(f"{'https' if tls else 'http'}://{address}:{port}/", (user, password))
    return answer.status_code not in (401, 403)


def _basic_auth_required(address: str, port: int, tls: bool) -> bool:
    """Whether the web root asks for HTTP basic auth (this request carries no credential)."""
    try:
        answer = _get(f"{'https' if tls else 'http'}://{address}:{port}/")
    except requests.RequestException:
        return False
    return answer.status_code == 401 and answer.headers.get("WWW-Authenticate", "").lower().startswith("basic")


def _telnet(address: str, port: int, user: str, password: str) -> bool:
    with socket.create_connection((address, port), timeout=TIMEOUT_S) as sock:
        def read_until(*markers: bytes) -> bytes:
            seen = b""
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline and not any(m in seen.lower() for m in markers):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                # refuse every telnet option the server offers: IAC DO/WILL x -> IAC WONT/DONT x
                while b"\xff" in chunk:
                    at = chunk.index(b"\xff")
                    if at + 2 < len(chunk) and chunk[at + 1] in (251, 252, 253, 254):
                        reply = {251: 254, 252: 254, 253: 252, 254: 252}[chunk[at + 1]]
                        sock.sendall(bytes([255, reply, chunk[at + 2]]))
                        chunk = chunk[:at] + chunk[at + 3:]
                    else:
                        chunk = chunk[:at] + chunk[at + 2:]
                seen += chunk
            return seen.lower()
        read_until(b"login:", b"username:")
        sock.sendall(user.encode() + b"\r\n")
        read_until(b"password:")
        sock.sendall(password.encode() + b"\r\n")
        answer = read_until(b"incorrect", b"failed", b"denied", b"invalid", b"$ ", b"# ", b"> ")
        return not any(word in answer for word in (b"incorrect", b"failed", b"denied", b"invalid", b"login:")) \
            and any(prompt in answer for prompt in (b"$ ", b"# ", b"> "))


def _ber_length(length: int) -> bytes:
    return bytes([length]) if length < 128 else bytes([0x81, length])


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _ber_length(len(value)) + value


SYS_DESCR = bytes([0x2B, 6, 1, 2, 1, 1, 1, 0])  # 1.3.6.1.2.1.1.1.0


def snmp_get_request(community: str, request_id: int = 0x5741) -> bytes:
    """An SNMPv2c GetRequest for sysDescr.0 (hand-encoded BER: one fixed message shape)."""
    varbind = _tlv(0x30, _tlv(0x06, SYS_DESCR) + b"\x05\x00")
    pdu = _tlv(0xA0, _tlv(0x02, request_id.to_bytes(2, "big")) + _tlv(0x02, b"\x00") + _tlv(0x02, b"\x00")
               + _tlv(0x30, varbind))
    return _tlv(0x30, _tlv(0x02, b"\x01") + _tlv(0x04, community.encode()) + pdu)


def _snmp(address: str, port: int, community: str, _password: str) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(snmp_get_request(community), (address, port))
        try:
            answer, _ = sock.recvfrom(65535)
        except TimeoutError:
            return False  # agents stay silent on a wrong community
        return answer[:1] == b"\x30" and b"\xa2" in answer  # a GetResponse PDU


ATTEMPTS: dict[str, Attempt] = {"ssh": _ssh, "ftp": _ftp, "telnet": _telnet, "snmp": _snmp, "http-basic": _http_basic}


def _kind(service: Service) -> str | None:
    if service.name == "ssh":
        return "ssh"
    if service.name == "ftp" and service.tunnel != "ssl":
        return "ftp"
    if service.name == "telnet":
        return "telnet"
    if service.name == "snmp" and service.protocol == "udp":
        return "snmp"
    if service.name in ("http", "https", "http-alt", "http-proxy") or service.name.startswith("http"):
        return "http-basic"
    return None


def probe_service(address: str, service: Service, kind: str, settings: CredentialProbes,
                  sleep: Callable[[float], None] = time.sleep) -> ServiceProbe:
    """Try at most settings.max_attempts defaults on one service, pausing between tries."""
    attempt = ATTEMPTS[kind]
    if kind == "http-basic":
        tls = service.tunnel == "ssl" or service.name == "https"
        if not _basic_auth_required(address, service.port, tls):
            return ServiceProbe(kind, service.port, service.protocol, 0, None)
        attempt = functools.partial(_http_basic, tls=tls)
    tried = 0
    for user, password in DEFAULTS[kind][:settings.max_attempts]:
        if tried:
            sleep(settings.pause_s)
        tried += 1
        try:
            accepted = attempt(address, service.port, user, password)
        except (OSError, EOFError, paramiko.SSHException, ftplib.Error, requests.RequestException) as exc:
            log.info("default-credential probe of %s:%s (%s) stopped: %s", address, service.port, kind,
                     exc.__class__.__name__)
            break  # a service that drops us is not tried again tonight
        if accepted:
            return ServiceProbe(kind, service.port, service.protocol, tried,
                                AcceptedCredential(kind, service.port, service.protocol, user))
    return ServiceProbe(kind, service.port, service.protocol, tried, None)


def probe_host(host: Host, settings: CredentialProbes,
               sleep: Callable[[float], None] = time.sleep) -> list[ServiceProbe]:
    probes = []
    for service in host.services:
        if service.state not in ("open", "open|filtered"):
            continue
        kind = _kind(service)
        if kind is None or kind not in settings.services:
            continue
        probes.append(probe_service(host.address, service, kind, settings, sleep))
    return probes
