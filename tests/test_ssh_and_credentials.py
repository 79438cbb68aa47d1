"""SSH evidence collection and default-credential probes against real sshd in the test estate.

The control host's namespace gets its own /etc/passwd, /etc/shadow and /etc/group (`ip netns
exec` bind-mounts /etc/netns/<namespace>/* over the files in /etc for processes it starts), so
the sshd started here serves the planted weak host's files and a planted weak account,
without touching this machine's own accounts. Host keys are verified; the attempt cap holds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.estate import TestEstate
from warpagent.config import CredentialProbes, SshSource
from warpagent.evidence import folders
from warpagent.evidence import probes as credential_probe
from warpagent.evidence import ssh as ssh_collect
from warpagent.model.findings import Service

FIXTURE = Path(__file__).resolve().parent / "assets" / "evidence" / "weak"
COLLECT_PORT, WEAK_PORT = 2222, 2223
WEAK_USER, WEAK_PASSWORD = "pi", "raspberry"  # fourth in warpagent's SSH default list


@dataclass
class SshEstate:
    address: str
    known_hosts: Path
    key: Path
    weak_log: Path
    work: Path


def _hash(password: str) -> str:
    return subprocess.run(["openssl", "passwd", "-6", password], capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()


@pytest.fixture(scope="module")
def ssh_estate(estate: TestEstate, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshEstate]:
    control = estate.hosts["control"]
    work = tmp_path_factory.mktemp("ssh-estate")
    etc = Path("/etc/netns") / control.namespace
    etc.mkdir(parents=True)
    try:
        shutil.copy(FIXTURE / "etc" / "group", etc / "group")
        (etc / "passwd").write_text((FIXTURE / "etc" / "passwd").read_text()
                                    + "sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"
                                    + f"{WEAK_USER}:x:1010:1010:Vendor default,,,:/tmp:/bin/sh\n")
        (etc / "shadow").write_text((FIXTURE / "etc" / "shadow").read_text() + "sshd:!:20000::::::\n"
                                    + f"{WEAK_USER}:{_hash(WEAK_PASSWORD)}:20000:0:99999:7:::\n")
        (etc / "shadow").chmod(0o640)
        key = work / "collector"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
        (work / "authorized_keys").write_text((work / "collector.pub").read_text())
        (work / "authorized_keys").chmod(0o600)
        for port, name, body in (
                (COLLECT_PORT, "collect", f"PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                                          f"AuthorizedKeysFile {work / 'authorized_keys'}\n"
                                          "Subsystem sftp internal-sftp\nStrictModes no\n"),
                (WEAK_PORT, "weak", "PermitRootLogin yes\nPasswordAuthentication yes\nLogLevel VERBOSE\n"
                                    "MaxAuthTries 6\n")):
            host_key = work / f"host_{name}"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True,
                           timeout=30)
            conf = work / f"sshd_{name}.conf"
            conf.write_text(f"ListenAddress {control.address}:{port}\nHostKey {host_key}\n"
                            f"PidFile {work / name}.pid\nUsePAM no\n{body}")
            estate.start_service("control", ["/usr/sbin/sshd", "-D", "-f", str(conf), "-E", str(work / f"{name}.log")],
                                 f"sshd-{name}", port)
        known_hosts = work / "known_hosts"
        known_hosts.write_text(f"[{control.address}]:{COLLECT_PORT} {(work / 'host_collect.pub').read_text()}")
        yield SshEstate(address=control.address, known_hosts=known_hosts, key=key, weak_log=work / "weak.log",
                        work=work)
    finally:
        for label in ("sshd-collect", "sshd-weak"):
            if label in estate.services:
                estate.stop_service(label)
        shutil.rmtree(etc, ignore_errors=True)


def _source(ssh: SshEstate, known_hosts: Path | None = None) -> SshSource:
    return SshSource(hosts=(ssh.address,), username="root", known_hosts=known_hosts or ssh.known_hosts,
                     key_file=ssh.key, port=COLLECT_PORT, timeout_s=20)


def test_ssh_collection_reads_the_evidence_layout_and_redacts_shadow(ssh_estate: SshEstate, tmp_path: Path) -> None:
    result = ssh_collect.collect(_source(ssh_estate), ssh_estate.address, ssh_estate.address, "control", tmp_path)
    assert result.ok, result.problem
    folder = tmp_path / "control"
    assert (folder / "etc" / "passwd").read_text().startswith("root:x:0:0")
    assert (folder / "etc" / "os-release").is_file() and (folder / "etc" / "group").is_file()
    planted_hashes = [line.split(":")[1].lstrip("!") for line in (FIXTURE / "etc" / "shadow").read_text().splitlines()]
    collected = (folder / "etc" / "shadow").read_text()
    assert not [h for h in planted_hashes if len(h) > 4 and h in collected]  # no hash written to disk
    read = folders.read_host(folder)
    assert read.problems == ()
    assert {"account", "shadow"} <= read.evidence.read
    toor = read.evidence.account("toor")
    assert toor is not None and toor.uid == 0 and toor.scheme == "md5crypt"


def test_unknown_or_changed_host_keys_are_refused(ssh_estate: SshEstate, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    refused = ssh_collect.collect(_source(ssh_estate, empty), ssh_estate.address, ssh_estate.address, "c", tmp_path)
    assert not refused.ok and "REFUSED: no key for" in refused.problem and str(empty) in refused.problem
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True, timeout=30)
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[{ssh_estate.address}]:{COLLECT_PORT} {(tmp_path / 'other_key.pub').read_text()}")
    changed = ssh_collect.collect(_source(ssh_estate, wrong), ssh_estate.address, ssh_estate.address, "c", tmp_path)
    assert not changed.ok and "REFUSED: the host key does not match" in changed.problem
    assert not (tmp_path / "c").exists()  # nothing collected from a host that was not verified


def test_scan_collects_over_ssh_and_refuses_out_of_scope_hosts(ssh_estate: SshEstate, tmp_path: Path) -> None:
    config = tmp_path / "warpagent.yaml"
    config.write_text(f"""organisation: {{name: Test Council}}
estates:
  - name: control
    targets: [{ssh_estate.address}]
    ports: "{COLLECT_PORT}"
    evidence:
      - ssh: {{hosts: [{ssh_estate.address}], username: root, key_file: {ssh_estate.key},
              known_hosts: {ssh_estate.known_hosts}, port: {COLLECT_PORT}, timeout: 20s}}
""")
    scanned = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path)
    assert scanned.returncode == 0, scanned.stderr
    out = json.loads(scanned.stdout)
    found = {(f["check_id"], f["subject"]) for f in out["findings"]}
    assert {("WA301", "account:toor"), ("WA303", "shadow:bob:sudo"), ("WA401", "shadow:guest:empty")} <= found
    assert out["summary"][0]["status"] == "complete"

    outside = config.read_text().replace(f"hosts: [{ssh_estate.address}]", "hosts: [198.18.255.254]")
    config.write_text(outside)
    refused = json.loads(run_cli("--config", str(config), "scan", "--json", cwd=tmp_path).stdout)["summary"][0]
    assert refused["status"] == "partial" and refused["resolved"] == 0
    assert any("198.18.255.254" in p and "not in estate 'control''s scope" in p for p in refused["problems"])


def _attempts(log: Path) -> int:
    text = log.read_text()
    return text.count("Failed password for") + text.count("Accepted password for")


def test_default_credential_probe_finds_the_planted_account_within_the_cap(ssh_estate: SshEstate,
                                                                            tmp_path: Path) -> None:
    config = tmp_path / "warpagent.yaml"
    settings = f"""organisation: {{name: Test Council}}
estates:
  - name: control
    targets: [{ssh_estate.address}]
    ports: "{WEAK_PORT}"
    default_credentials: {{enabled: true, max_attempts: MAX, pause: 1s, services: [ssh]}}
"""
    before = _attempts(ssh_estate.weak_log)
    config.write_text(settings.replace("MAX", "3"))
    capped = json.loads(run_cli("--config", str(config), "scan", "--json", cwd=tmp_path).stdout)
    assert "WA406" not in {f["check_id"] for f in capped["findings"]}
    assert _attempts(ssh_estate.weak_log) - before == 3  # the cap held: the right password is fourth

    before = _attempts(ssh_estate.weak_log)
    config.write_text(settings.replace("MAX", "4"))
    found = json.loads(run_cli("--config", str(config), "scan", "--json", cwd=tmp_path).stdout)
    [weak] = [f for f in found["findings"] if f["check_id"] == "WA406"]
    assert weak["subject"] == f"credential:{WEAK_PORT}/tcp:{WEAK_USER}" and weak["severity"] == "critical"
    assert WEAK_PASSWORD not in json.dumps(found)  # the password is never recorded
    assert _attempts(ssh_estate.weak_log) - before == 4
    assert "passwords" not in found["summary"][0]["unmeasured"]


def test_snmp_default_community_probe(estate: TestEstate) -> None:
    snmp = Service(port=161, protocol="udp", state="open", name="snmp")
    probe = credential_probe.probe_service(estate.hosts["infra"].address, snmp, "snmp",
                                           CredentialProbes(enabled=True, max_attempts=1), sleep=lambda s: None)
    assert probe.attempts == 1 and probe.accepted is not None and probe.accepted.user == "public"
    none = credential_probe.probe_service(estate.hosts["control"].address, snmp, "snmp",
                                          CredentialProbes(enabled=True, max_attempts=2), sleep=lambda s: None)
    assert none.accepted is None and none.attempts == 2  # nothing answers: both communities tried, no more


def _logged(access: Path) -> list[str]:
    return [line for line in access.read_text().splitlines() if line.strip()] if access.exists() else []


def test_http_basic_auth_probe_against_nginx_with_a_default_password(estate: TestEstate, tmp_path: Path) -> None:
    control = estate.hosts["control"]
    port = 8081
    htpasswd = tmp_path / "htpasswd"
    hashed = subprocess.run(["openssl", "passwd", "-apr1", "1234"], capture_output=True, text=True, check=True,
                            timeout=10).stdout.strip()
    htpasswd.write_text(f"admin:{hashed}\n")  # admin/1234: fourth in the HTTP default list
    access = tmp_path / "access.log"
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("printer admin\n")  # static: 'return' would skip auth_basic
    conf = tmp_path / "nginx-basic.conf"
    conf.write_text(f"""user root;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 16; }}
http {{
  access_log {access};
  client_body_temp_path {tmp_path}/body;
  proxy_temp_path {tmp_path}/proxy;
  fastcgi_temp_path {tmp_path}/fcgi;
  uwsgi_temp_path {tmp_path}/uwsgi;
  scgi_temp_path {tmp_path}/scgi;
  server {{ listen {control.address}:{port}; root {tmp_path}/www;
           location / {{ auth_basic "printer"; auth_basic_user_file {htpasswd}; }} }}
}}
""")
    estate.start_service("control", ["nginx", "-c", str(conf), "-g", "daemon off;"], "nginx-basic", port)
    try:
        web = Service(port=port, protocol="tcp", state="open", name="http")
        capped = credential_probe.probe_service(control.address, web, "http-basic",
                                                CredentialProbes(enabled=True, max_attempts=3), sleep=lambda s: None)
        assert capped.accepted is None and capped.attempts == 3
        found = credential_probe.probe_service(control.address, web, "http-basic",
                                               CredentialProbes(enabled=True, max_attempts=4), sleep=lambda s: None)
        assert found.accepted is not None and found.accepted.user == "admin" and found.attempts == 4
        # the server saw one plain request per probe (does it ask for basic auth?) and then only the
        # capped attempts: 1 + 3, then 1 + 4
        # nginx logs a request after answering it, so the last line may trail the probe by a moment
        deadline = time.monotonic() + 5
        while len(_logged(access)) < 2 + 3 + 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # and nothing more arrives
        assert len(_logged(access)) == 2 + 3 + 4
    finally:
        estate.stop_service("nginx-basic")
