"""A real Samba AD DC for the directory tests: provisioned offline with Debian's samba-tool,
its weaknesses planted beside a hardened baseline (tests/samba_plant.py), then started in a
network namespace of its own at an address in 198.19.200.0-198.19.249.255 (RFC 2544 space), serving LDAPS
with a certificate from a test CA that names its address and host name.

Teardown kills every process it started by PID (and whatever is left in its namespace), and
deletes the namespace, the link and the folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
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

from tests import netns

REALM = "warp-council.test"
DOMAIN = "WARPCOUNCIL"
BASE_DN = "DC=warp-council,DC=test"
HOST_NAME = "dc1"
PLANT = Path(__file__).with_name("samba_plant.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with Samba's bindings
# every name the planted domain holds: none may leave in a shared bundle
IDENTIFYING = ("warp-council", "WARPCOUNCIL", "dc1", "hardy.admin", "carol.clerk", "svc-sql", "it-admins", "nest.ed",
               "old.admin", "stale.admin", "nopw.user", "asrep.user", "rev.user", "never.user", "app01", "xp-kiosk",
               "srv-2012", "old-pc", "srv-2025", "weak-pso", "warpagent-read", "MSSQLSvc", "staff001",
               "deleg.svc", "web01", "hist.user", "partner-open", "partner-safe", "ex.admin", "svc-web", "sync.svc",
               "MSOL_1a2b3c4d5e6f")


def filetime(moment: dt.datetime) -> int:
    return int((moment - dt.datetime(1601, 1, 1, tzinfo=dt.UTC)).total_seconds() * 10_000_000)


@dataclass
class SambaDC:
    address: str
    workdir: Path
    reader_password: str
    admin_password: str
    provisioned: dt.datetime  # whenCreated and pwdLastSet of every planted object are about now
    logon: dt.datetime  # the lastLogonTimestamp planted on the accounts in use (a year on)
    namespace: str = ""
    link: str = ""
    pids: list[int] = field(default_factory=list)

    @property
    def ca(self) -> Path:
        return self.workdir / "ca.pem"

    @property
    def url(self) -> str:
        return f"ldaps://{self.address}"

    def harden(self) -> None:
        """Fix the domain-wide weaknesses in the running DC's database."""
        _plant(self, "harden")

    def teardown(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        for pid in self.pids:
            with contextlib.suppress(ChildProcessError):
                for _ in range(50):
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        break
                    time.sleep(0.05)
        netns.remove(self.namespace, self.link)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _run(*argv: str, timeout: int = 60) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}: exit {done.returncode}: {(done.stderr or done.stdout)[-800:]}")


def _certificates(dc: SambaDC) -> None:
    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    now = dt.datetime.now(dt.UTC)
    ca_key, key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    ca = (x509.CertificateBuilder().subject_name(name("Test Directory CA")).issuer_name(name("Test Directory CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name(f"{HOST_NAME}.{REALM}")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(dc.address)),
                                                        x509.DNSName(f"{HOST_NAME}.{REALM}")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    dc.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (dc.workdir / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = dc.workdir / "key.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)  # Samba refuses a key others can read


def _plant(dc: SambaDC, action: str) -> None:
    _run(SYSTEM_PYTHON, str(PLANT), str(dc.workdir / "dc/etc/smb.conf"), str(dc.workdir / "dc/private/sam.ldb"),
         action, REALM, dc.reader_password, str(filetime(dc.logon)), timeout=1800)


def _wait(address: str, port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"samba: {address}:{port} did not start listening")


def build(bulk: tuple[int, int, int, int] | None = None) -> SambaDC:
    """`bulk`: (users, computers, groups, GPO folders) to load besides the planted ones (the benchmark's)."""
    if os.geteuid() != 0:
        raise PermissionError("the test domain controller needs root (a network namespace)")
    if not shutil.which("samba-tool") or not Path(SYSTEM_PYTHON).exists():
        raise FileNotFoundError("samba-tool not found: install samba-ad-dc (scripts/install.sh --test)")
    tag = secrets.token_hex(2)
    third = 200 + int(tag, 16) % 50  # 198.19.200-249: clear of the address ranges' /24s
    now = dt.datetime.now(dt.UTC)
    dc = SambaDC(address=f"198.19.{third}.2", workdir=Path(tempfile.mkdtemp(prefix=f"wa-dc-{tag}-")),
                 reader_password=secrets.token_urlsafe(18) + "!9a", admin_password=secrets.token_urlsafe(18) + "!9A",
                 provisioned=now, logon=now + dt.timedelta(days=395))
    try:
        dc.namespace, outer, inner = f"wa-dc-{tag}", f"wadc{tag}o", f"wadc{tag}i"
        _run("ip", "netns", "add", dc.namespace)
        _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        dc.link = outer
        _run("ip", "link", "set", inner, "netns", dc.namespace)
        _run("ip", "addr", "add", f"198.19.{third}.1/24", "dev", outer)
        _run("ip", "link", "set", outer, "up")
        _run("ip", "-n", dc.namespace, "addr", "add", f"{dc.address}/24", "dev", inner)
        _run("ip", "-n", dc.namespace, "link", "set", inner, "up")
        _run("ip", "-n", dc.namespace, "link", "set", "lo", "up")
        _certificates(dc)
        _run("samba-tool", "domain", "provision", f"--realm={REALM}", f"--domain={DOMAIN}", "--server-role=dc",
             "--dns-backend=NONE", f"--adminpass={dc.admin_password}", f"--targetdir={dc.workdir / 'dc'}",
             f"--host-name={HOST_NAME}", f"--option=interfaces={dc.address}", "--option=bind interfaces only=yes",
             # its own pid and lock folders: two test DCs (the suite's and a benchmark's) run side by side
             f"--option=pid directory={dc.workdir / 'dc' / 'run'}",
             f"--option=lock directory={dc.workdir / 'dc' / 'lock'}",
             timeout=120)
        _plant(dc, "plant")
        if bulk:
            _plant(dc, "bulk:" + ":".join(str(n) for n in bulk))
        # the planted Group Policy files get SYSVOL's permissions, as on a real DC
        _run("samba-tool", "ntacl", "sysvolreset", "-s", str(dc.workdir / "dc/etc/smb.conf"), timeout=300)
        # smbd opens SYSVOL's files as the connecting user's own uid: it must be able to pass through
        # the test's folder (0700 from mkdtemp) to reach them; nothing else in it is opened up
        dc.workdir.chmod(0o711)
        (dc.workdir / "dc").chmod(0o711)
        with open(dc.workdir / "samba.log", "wb") as log:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", dc.namespace, "samba", "-F", "--debug-stdout",
                 "-s", str(dc.workdir / "dc/etc/smb.conf"), "--option=server services = ldap s3fs winbindd rpc",
                 "--option=ldap server require strong auth = no",  # planted: LDAP signing not required
                 f"--option=tls keyfile={dc.workdir / 'key.pem'}", f"--option=tls certfile={dc.workdir / 'cert.pem'}",
                 f"--option=tls cafile={dc.ca}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        dc.pids.append(proc.pid)
        _wait(dc.address, 636, time.monotonic() + 30)
        _wait(dc.address, 445, time.monotonic() + 60)
    except BaseException:
        dc.teardown()
        raise
    return dc


if __name__ == "__main__":  # build it by hand to poke at it with ldapsearch
    built = build()
    print(built.url, built.ca, "reader password:", built.reader_password, flush=True)
    try:
        signal.pause()
    finally:
        built.teardown()
