"""Nothing identifying leaves, when the hosts themselves try to leak it (issue 28).

A real nmap scans loopback services whose banners and certificate carry host names and
addresses (an SSH version string, an SMTP greeting, an HTTP Server header, an FTP greeting, a
certificate subject), beside an evidence folder named by a host's FQDN holding a person's
account; then warpagent shares, and every shared byte is searched for every one of those
strings. The anonymiser is the first line; the leak gate, which reads the stored evidence for
names the config never gave, is the second, and is tested apart.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import banner_server, tls_servers
from tests.conftest import RECORDED_AT, run_cli
from tests.intel_data import import_folder
from warpagent.model.findings import Finding, FindingStatus, Severity, TrackedFinding
from warpagent.sharing import anonymise, identifying, share, stix_bundle

HOST = "127.0.0.61"
ORG = "Fenwick Vale Borough Council"
KEY = "fedcba9876543210fedcba9876543210"  # tests only
EVIDENCE_HOST = "srv-hr02.fenwickvale.local"
# Every string of this estate that names the council, a host or a person: the config's, and
# those only the banners, the certificate and the evidence folder hold.
IDENTIFYING = [ORG, "Fenwick Vale", "fenwickvale", "fenwick-corporate", "fenwick-servers", HOST, "srv-fin01",
               "srv-web01", "mail01", "ftp01", "intranet.fenwickvale", "srv-hr02", "10.20.0.77", "10.20.0.78",
               "10.20.0.79", "10.20.0.80", "jsmith", "Jane Smith", KEY]


@pytest.fixture(scope="module")
def hostile_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    folder = tmp_path_factory.mktemp("tls")
    with banner_server.running(f"{HOST}:2222=ssh-openssh-hostile", f"{HOST}:2525=smtp-postfix-hostile",
                               f"{HOST}:2121=ftp-vsftpd-hostile", f"{HOST}:8080=http-apache-hostile",
                               f"{HOST}:8081=http-printer-hostile"), \
            tls_servers.serving(folder, https=[(HOST, 8443)], silent=[], name="intranet.fenwickvale.local"):
        yield


def _estate(tmp_path: Path) -> Path:
    host = tmp_path / "evidence" / EVIDENCE_HOST
    (host / "etc").mkdir(parents=True)
    (host / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n"
                                         "jsmith:x:0:1000:Jane Smith,,,:/home/jsmith:/bin/bash\n")
    (host / "etc" / "sudoers").write_text("jsmith ALL=(ALL) NOPASSWD: ALL\n")
    (host / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="10"\nVERSION_CODENAME=buster\n')
    config = tmp_path / "warpagent.yaml"
    config.write_text(f"""organisation: {{name: {ORG}, region: north-west, sector: local-government}}
store: ./warpagent.db
estates:
  - name: fenwick-corporate
    targets: [{HOST}]
    ports: '2121,2222,2525,8080,8081,8443'
    timeout: 5m
  - name: fenwick-servers
    evidence: [./evidence]
sharing:
  peers: [{{name: warp, url: 'https://warp.example.org/taxii2/', collection: members, versions_collection: versions}}]
""")
    return config


def test_nothing_a_hostile_host_says_about_itself_is_shared(hostile_services: None, tmp_path: Path) -> None:
    config = _estate(tmp_path)
    env = {"WARPAGENT_PSEUDONYM_KEY": KEY}
    # CVE data, so the SSH server's version string (which carries a host name and an address)
    # is matched to CVEs and reaches findings, and through them the anonymiser
    imported = run_cli("--config", str(config), "feeds", "update", "--from", str(import_folder(tmp_path / "imp")),
                       cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    scanned = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path, env=env)
    assert scanned.returncode in (0, 1), scanned.stderr
    findings = json.loads(scanned.stdout)["findings"]
    stored = json.dumps(findings)
    # the scan saw what the hosts said: the test would prove nothing otherwise
    for said in ("srv-fin01.fenwickvale.local", "10.20.0.77", "jsmith", EVIDENCE_HOST, "EWS-NICfenwickvale"):
        assert said in stored, f"the scan did not record {said!r}; the hostile input never arrived"
    shared = run_cli("--config", str(config), "share", "--dry-run", "--out", "bundle.json", cwd=tmp_path, env=env)
    assert shared.returncode == 0, shared.stderr
    assert "held back: " in shared.stderr and "not in a shareable shape" in shared.stderr
    assert "the coordinator alone gets all 3 versions, through the hub's sealed collection" in shared.stderr
    sealed = (tmp_path / "bundle.versions.json").read_text()  # every version in shape, for the coordinator
    assert stix_bundle.validate(sealed) == []
    (listed,) = [o["software"] for o in json.loads(sealed)["objects"] if o["type"] == "x-warpagent-versions"]
    assert {(s["product"], s["version"]) for s in listed} == {
        ("apache_httpd", "2.4.57"), ("simplehttpserver", "0.6"), ("debian", "10")}  # the banners' tails cut
    text = (tmp_path / "bundle.json").read_text()
    assert stix_bundle.validate(text) == []
    lowered = text.casefold() + sealed.casefold()
    for needle in IDENTIFYING:
        assert needle.casefold() not in lowered, f"identifying string {needle!r} in the shared bundle"
    assert identifying.addresses(text) == set() and identifying.addresses(sealed) == set()
    products = {s["product"] for o in json.loads(text)["objects"] if o["type"] == "x-warpagent-posture"
                for s in o.get("software", [])}
    assert {"debian", "apache_httpd", "simplehttpserver"} <= products  # the software is still shared, as tokens


def _finding(product: str, version: str, evidence: str) -> TrackedFinding:
    finding = Finding(estate="e", asset="198.18.0.9", check_id="WA502", category="configs", severity=Severity.HIGH,
                      title="t", evidence=evidence, remediation="r", subject="22/tcp", port=22, protocol="tcp",
                      product=product, version=version)
    return TrackedFinding(finding=finding, first_seen=RECORDED_AT, last_seen=RECORDED_AT, status=FindingStatus.OPEN)


def test_the_leak_gate_knows_the_names_only_the_evidence_holds() -> None:
    evidence = ["banner: SSH-2.0-OpenSSH_9.2p1 Debian-2 srv-fin01.fenwickvale.local",
                "certificate subject CN=intranet.fenwickvale.local, issued to 10.20.0.77",
                "Edit /etc/login.defs and restart sshd.service"]
    found = identifying.evidence_strings(evidence, public=share.public_text())
    assert {"srv-fin01.fenwickvale.local", "srv-fin01", "intranet.fenwickvale.local", "10.20.0.77"} <= found
    assert "login.defs" not in found and "9.2p1" not in found  # warpagent's own words and versions are not names
    # a host's name as a service's product fits the shape but is no name nmap's probe database
    # gives, so the anonymiser drops it; were it let through, the gate stops it
    hostile = [_finding("srv-fin01", "", evidence[0])]
    posture = anonymise.anonymise(hostile, member="m", sector="", region="", as_of=RECORDED_AT.date(), k=3,
                                  measured={"configs"}, service_products=share.scanned_products("nmap"))
    assert (posture.software, posture.dropped_software) == ((), 1)
    let_through = anonymise.anonymise(hostile, member="m", sector="", region="", as_of=RECORDED_AT.date(), k=3,
                                      measured={"configs"}, service_products=frozenset({"srv-fin01"}))
    text = stix_bundle.to_json(stix_bundle.build(let_through, "amber"))
    assert "srv-fin01" in text
    assert identifying.leaks(text, found, share.public_text())
    assert identifying.leaks('{"note": "seen at 10.1.2.3"}', set(), share.public_text())
    assert identifying.leaks('{"note": "seen at fd00::7"}', set(), share.public_text())
    assert not identifying.leaks('{"modified": "2026-12-05T00:00:00.000Z"}', set(), share.public_text())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_what_warpagent_writes_is_for_its_owner_alone(tmp_path: Path) -> None:
    """The store, reports, the outbox and the mail queue hold names, addresses and weaknesses:
    0600 files in 0700 folders, whatever umask the caller had (issue 28)."""
    config = tmp_path / "warpagent.yaml"
    evidence = tmp_path / "evidence" / "host01"
    (evidence / "etc").mkdir(parents=True)
    (evidence / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\n")
    config.write_text("""organisation: {name: Mode Council}
store: ./data/warpagent.db
estates:
  - name: corp
    evidence: [./evidence]
sharing:
  outbox: ./data/outbox
  peers: [{name: warp, url: 'http://127.0.0.1:9/taxii2/', collection: members, username: u, password_env: P,
           timeout: 1s}]
reports:
  email: {smtp_host: 127.0.0.1, smtp_port: 9, security: none, from: warpagent@council.test,
          to: [board@council.test], outbox: ./data/mail-outbox, timeout: 1s}
""")
    env = {"WARPAGENT_PSEUDONYM_KEY": KEY, "P": "pw"}
    assert run_cli("--config", str(config), "scan", cwd=tmp_path, env=env).returncode in (0, 1)
    run_cli("--config", str(config), "share", cwd=tmp_path, env=env)  # the peer is down: the bundle stays queued
    assert run_cli("--config", str(config), "report", "board", "--out", "data/board.html", cwd=tmp_path,
                   env=env).returncode == 0
    run_cli("--config", str(config), "report", "board", "--email", cwd=tmp_path, env=env)  # SMTP down: queued
    written = list((tmp_path / "data").rglob("*"))
    files = [p for p in written if p.is_file()]
    names = {p.name for p in files}
    assert {"warpagent.db", "board.html"} <= names and any(p.suffix == ".json" for p in files)  # store, report, outbox
    assert any("mail-outbox" in p.parts for p in files)  # the board report waiting for the SMTP server
    assert {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in files if _mode(p) != 0o600} == {}
    folders = [p for p in written if p.is_dir()] + [tmp_path / "data"]
    assert {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in folders if _mode(p) != 0o700} == {}


def test_the_umask_holds_whatever_the_caller_set(tmp_path: Path) -> None:
    """A cron job with umask 000 still gets owner-only files."""
    import os

    config = tmp_path / "w.yaml"
    config.write_text("organisation: {name: X}\nstore: ./w.db\nestates: [{name: e, targets: [127.0.0.1], "
                      "ports: '9'}]\n")
    before = os.umask(0)
    try:
        assert run_cli("--config", str(config), "init", str(tmp_path / "new"), cwd=tmp_path).returncode == 0
    finally:
        os.umask(before)
    created = [p for p in (tmp_path / "new").rglob("*")] + [tmp_path / "new"]
    assert created and all(_mode(p) in (0o600, 0o700) for p in created), {str(p): oct(_mode(p)) for p in created}


def test_the_councils_name_run_together_is_identifying_as_hosts_and_domains_write_it() -> None:
    assert identifying.organisation_forms(ORG) == {"fenwickvale", "fenwick-vale", "fenwick_vale"}
    assert identifying.organisation_forms("Royal Borough of Kensington and Chelsea") >= {"kensingtonchelsea"}
    # one distinctive word run together is only that word (already screened as the name itself)
    assert identifying.organisation_forms("Hart District Council") == set()
    posture = anonymise.anonymise([_finding("EWS-NICfenwickvale", "2.1", "printer")], member="m", sector="",
                                  region="", as_of=RECORDED_AT.date(), k=3, measured={"configs"},
                                  service_products=frozenset({"ews-nicfenwickvale"}))  # as if let through
    text = stix_bundle.to_json(stix_bundle.build(posture, "amber"))
    assert identifying.leaks(text, identifying.organisation_forms(ORG), share.public_text())
