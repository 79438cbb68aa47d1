"""The test estate: real Debian services in network namespaces, with planted weaknesses.

Built for the integration tests and the benchmarks. Everything lives in 198.18.0.0/15
(RFC 2544 benchmarking space) inside namespaces this module creates; teardown kills
every process it started by PID and deletes every namespace and link it made.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

WEAK_TLS_PORTS = (443, 8443)  # 8443 proves the checks do not depend on default ports


@dataclass
class EstateHost:
    name: str
    namespace: str
    address: str
    planted: list[tuple[str, str, int]] = field(default_factory=list)  # (check_id, proto, port)


@dataclass
class TestEstate:
    __test__ = False  # a fixture's type, not a test class
    subnet: str
    gateway: str
    hosts: dict[str, EstateHost]
    workdir: Path
    pids: list[int] = field(default_factory=list)
    services: dict[str, int] = field(default_factory=dict)  # service label -> PID
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        return [h.address for h in self.hosts.values()]

    def teardown(self) -> None:
        _teardown(self)

    def stop_service(self, label: str) -> None:
        """Stop one service (by its PID), as a technician fixing a weakness would."""
        _kill(self.services.pop(label))

    def start_service(self, host: str, argv: list[str], label: str, port: int) -> None:
        """Start one more service on a host (a test's own, to fix or break as it likes)."""
        _start(self, self.hosts[host].namespace, argv, f"{label}.log")
        _wait_tcp(self.hosts[host].address, port, time.monotonic() + 15)

    def ip_in_receives(self, host: str) -> int:
        """IPv4 packets the host's network namespace has received (its own /proc/net/snmp)."""
        out = subprocess.run(["ip", "netns", "exec", self.hosts[host].namespace, "cat", "/proc/net/snmp"],
                             capture_output=True, text=True, check=True, timeout=10).stdout.splitlines()
        names, values = out[0].split(), out[1].split()
        return int(values[names.index("InReceives")])


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def _tls_material(workdir: Path, now: dt.datetime) -> dict[str, Path]:
    """An expired self-signed 1024-bit certificate and a CA-signed 2048-bit one."""

    def write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))

    def cert(subject: str, issuer: str, key: rsa.RSAPrivateKey, signer: rsa.RSAPrivateKey,
             start: dt.datetime, end: dt.datetime, ca: bool = False) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        return builder.sign(signer, hashes.SHA256())

    out: dict[str, Path] = {}
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - planted
    weak = cert("weak-web.estate.test", "weak-web.estate.test", weak_key, weak_key,
                now - dt.timedelta(days=400), now - dt.timedelta(days=35))
    write_key(weak_key, workdir / "weak.key")
    (workdir / "weak.crt").write_bytes(weak.public_bytes(serialization.Encoding.PEM))
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = cert("Estate Test CA", "Estate Test CA", ca_key, ca_key,
              now - dt.timedelta(days=10), now + dt.timedelta(days=3650), ca=True)
    good_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = cert("control.estate.test", "Estate Test CA", good_key, ca_key,
                now - dt.timedelta(days=10), now + dt.timedelta(days=365))
    write_key(good_key, workdir / "good.key")
    (workdir / "good.crt").write_bytes(good.public_bytes(serialization.Encoding.PEM)
                                       + ca.public_bytes(serialization.Encoding.PEM))
    out.update(weak_key=workdir / "weak.key", weak_crt=workdir / "weak.crt",
               good_key=workdir / "good.key", good_crt=workdir / "good.crt")
    return out


def _nginx_conf(workdir: Path, name: str, listens: list[str], tls: str, cert: Path, key: Path) -> Path:
    servers = "\n".join(
        f"server {{ listen {listen} ssl; ssl_certificate {cert}; ssl_certificate_key {key}; {tls}"
        f" location / {{ return 200 'estate test\\n'; }} }}" for listen in listens)
    conf = workdir / f"nginx-{name}.conf"
    conf.write_text(f"""user root;
worker_processes 1;
pid {workdir}/nginx-{name}.pid;
error_log {workdir}/nginx-{name}.error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/nginx-{name}-body;
  proxy_temp_path {workdir}/nginx-{name}-proxy;
  fastcgi_temp_path {workdir}/nginx-{name}-fcgi;
  uwsgi_temp_path {workdir}/nginx-{name}-uwsgi;
  scgi_temp_path {workdir}/nginx-{name}-scgi;
  {servers}
}}
""")
    return conf


def _sshd_conf(workdir: Path, name: str, address: str, body: str) -> Path:
    key = workdir / f"ssh_host_{name}_ed25519"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    rsa_key = workdir / f"ssh_host_{name}_rsa"
    _run("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(rsa_key))
    conf = workdir / f"sshd-{name}.conf"
    conf.write_text(f"""ListenAddress {address}
HostKey {key}
HostKey {rsa_key}
PidFile {workdir}/sshd-{name}.pid
UsePAM no
{body}
""")
    return conf


def _start(estate: TestEstate, namespace: str, argv: list[str], log: str) -> int:
    """Start a service in a namespace; its label is its log file name without '.log'."""
    with open(estate.workdir / log, "wb") as out:
        proc = subprocess.Popen(["ip", "netns", "exec", namespace, *argv],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    estate.pids.append(proc.pid)
    estate.services[log.removesuffix(".log")] = proc.pid
    return proc.pid


def _wait_tcp(address: str, port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"test estate: {address}:{port} did not start listening")


def build(now: dt.datetime | None = None) -> TestEstate:
    """Create the namespaces, start the services and wait until they listen."""
    if os.geteuid() != 0:
        raise PermissionError("the test estate needs root (network namespaces)")
    now = now or dt.datetime.now(dt.UTC)
    tag = secrets.token_hex(2)
    third = 16 + int(tag, 16) % 200  # 198.18.<16..215>.0/24, varied so parallel runs do not collide
    subnet = f"198.18.{third}"
    estate = TestEstate(subnet=f"{subnet}.0/24", gateway=f"{subnet}.1", hosts={},
                        workdir=Path(tempfile.mkdtemp(prefix=f"wa-estate-{tag}-")))
    try:
        _network(estate, tag, subnet)
        _services(estate, now)
    except BaseException:
        _teardown(estate)
        raise
    return estate


def _network(estate: TestEstate, tag: str, subnet: str) -> None:
    bridge = f"wab{tag}"
    _run("ip", "link", "add", bridge, "type", "bridge")
    estate.links.append(bridge)
    _run("ip", "addr", "add", f"{estate.gateway}/24", "dev", bridge)
    _run("ip", "link", "set", bridge, "up")
    for index, (name, last) in enumerate((("web", 10), ("infra", 11), ("control", 20))):
        namespace = f"wa-{tag}-{name}"
        _run("ip", "netns", "add", namespace)
        estate.namespaces.append(namespace)
        outer, inner = f"wav{tag}{index}", f"wai{tag}{index}"
        _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        estate.links.append(outer)
        _run("ip", "link", "set", inner, "netns", namespace)
        _run("ip", "link", "set", outer, "master", bridge)
        _run("ip", "link", "set", outer, "up")
        address = f"{subnet}.{last}"
        _run("ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", inner)
        _run("ip", "-n", namespace, "link", "set", inner, "up")
        _run("ip", "-n", namespace, "link", "set", "lo", "up")
        estate.hosts[name] = EstateHost(name=name, namespace=namespace, address=address)


def _services(estate: TestEstate, now: dt.datetime) -> None:
    work = estate.workdir
    tls = _tls_material(work, now)
    web, infra, control = estate.hosts["web"], estate.hosts["infra"], estate.hosts["control"]
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory

    weak_tls = ("ssl_protocols TLSv1 TLSv1.1 TLSv1.2; "
                "ssl_ciphers 'ALL:NULL:eNULL:RC4:3DES:@SECLEVEL=0'; ssl_prefer_server_ciphers on;")
    conf = _nginx_conf(work, "web", [f"{web.address}:{p}" for p in WEAK_TLS_PORTS], weak_tls,
                       tls["weak_crt"], tls["weak_key"])
    _start(estate, web.namespace, ["nginx", "-c", str(conf), "-g", "daemon off;"], "nginx-web.log")
    for port in WEAK_TLS_PORTS:
        web.planted += [("WA501", "tcp", port), ("WA502", "tcp", port), ("WA503", "tcp", port),
                        ("WA504", "tcp", port), ("WA506", "tcp", port)]

    ftp_root = work / "ftp-root"
    ftp_root.mkdir(mode=0o755)
    (ftp_root / "README.txt").write_text("public files\n")
    empty = work / "vsftpd-empty"
    empty.mkdir(mode=0o755)
    vsftpd_conf = work / "vsftpd.conf"
    vsftpd_conf.write_text(f"""listen=YES
listen_ipv6=NO
listen_address={web.address}
background=NO
anonymous_enable=YES
anon_root={ftp_root}
local_enable=NO
write_enable=NO
ftp_username=ftp
secure_chroot_dir={empty}
seccomp_sandbox=NO
xferlog_enable=NO
""")
    _start(estate, web.namespace, ["vsftpd", str(vsftpd_conf)], "vsftpd.log")
    web.planted += [("WA511", "tcp", 21), ("WA512", "tcp", 21)]

    inetd_conf = work / "inetd.conf"
    inetd_conf.write_text(f"{web.address}:telnet stream tcp nowait root /usr/sbin/telnetd telnetd\n")
    _start(estate, web.namespace, ["inetd", "-d", str(inetd_conf)], "inetd.log")
    web.planted += [("WA512", "tcp", 23)]

    weak_ssh = _sshd_conf(work, "infra", infra.address, """PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
KexAlgorithms +diffie-hellman-group1-sha1,diffie-hellman-group14-sha1
Ciphers +aes128-cbc,3des-cbc
MACs +hmac-md5,hmac-sha1-96
""")
    _start(estate, infra.namespace, ["/usr/sbin/sshd", "-D", "-e", "-f", str(weak_ssh)], "sshd-infra.log")
    infra.planted += [("WA507", "tcp", 22), ("WA508", "tcp", 22)]

    _start(estate, infra.namespace,
           ["redis-server", "--bind", infra.address, "--port", "6379", "--protected-mode", "no",
            "--save", "", "--appendonly", "no", "--dir", str(work), "--daemonize", "no"], "redis.log")
    infra.planted += [("WA514", "tcp", 6379)]

    _start(estate, infra.namespace,
           ["memcached", "-u", "nobody", "-l", infra.address, "-p", "11211", "-U", "0"], "memcached.log")
    infra.planted += [("WA514", "tcp", 11211)]

    snmp_conf = work / "snmpd.conf"
    snmp_dir = work / "snmp"
    snmp_dir.mkdir()
    snmp_conf.write_text(f"rocommunity public default\npersistentDir {snmp_dir}\n"
                         "sysLocation estate test rack\nsysContact nobody@estate.test\n")
    _start(estate, infra.namespace,
           ["snmpd", "-f", "-Lo", "-C", "-c", str(snmp_conf), "-p", str(work / "snmpd.pid"),
            f"udp:{infra.address}:161"], "snmpd.log")
    infra.planted += [("WA513", "udp", 161)]

    strong_tls = ("ssl_protocols TLSv1.2 TLSv1.3; "
                  "ssl_ciphers 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"
                  "ECDHE-RSA-CHACHA20-POLY1305'; ssl_prefer_server_ciphers on;"
                  # and the web checks' hardening: no version, HSTS for a year, the protective headers
                  " server_tokens off; add_header Strict-Transport-Security 'max-age=31536000' always;"
                  " add_header X-Content-Type-Options nosniff always;"
                  " add_header Content-Security-Policy \"default-src 'self'; frame-ancestors 'none'\" always;")
    conf = _nginx_conf(work, "control", [f"{control.address}:443"], strong_tls,
                       tls["good_crt"], tls["good_key"])
    _start(estate, control.namespace, ["nginx", "-c", str(conf), "-g", "daemon off;"], "nginx-control.log")
    strong_ssh = _sshd_conf(work, "control", control.address, """PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com
MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com
HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256
""")
    _start(estate, control.namespace, ["/usr/sbin/sshd", "-D", "-e", "-f", str(strong_ssh)], "sshd-control.log")

    deadline = time.monotonic() + 20
    for address, port in ((web.address, 443), (web.address, 8443), (web.address, 21), (web.address, 23),
                          (infra.address, 22), (infra.address, 6379), (infra.address, 11211),
                          (control.address, 443), (control.address, 22)):
        _wait_tcp(address, port, deadline)
    time.sleep(0.5)  # snmpd (UDP) has no connect to wait on; it starts in well under this


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            waited, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            waited = pid
        if waited == pid:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _teardown(estate: TestEstate) -> None:
    for pid in estate.pids:
        _kill(pid)
    for namespace in estate.namespaces:
        # whatever the services forked (nginx workers, telnetd sessions) is still in the namespace
        listed = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True,
                                check=False, timeout=10)
        for line in listed.stdout.split():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(line), signal.SIGKILL)
    for namespace in estate.namespaces:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False, timeout=10)
    for link in estate.links:
        subprocess.run(["ip", "link", "del", link], capture_output=True, check=False, timeout=10)
    shutil.rmtree(estate.workdir, ignore_errors=True)


if __name__ == "__main__":  # build it by hand to record nmap XML or poke at it
    built = build()
    print({name: host.address for name, host in built.hosts.items()}, built.workdir, flush=True)
    try:
        signal.pause()
    finally:
        built.teardown()
