"""Host evidence for privileges, passwords, supply chain and backups: real-format fixtures with
planted weaknesses (tests/assets/evidence/weak) and a clean host (…/clean). Every planted
weakness is found, nothing on the clean host, malformed files are named and skipped, and a
scan resolves evidence findings only when that kind of evidence was read again."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks import CheckContext
from checks.base import EstatePolicy
from feeds.intel_store import IntelStore
from tests.conftest import run_cli
from tests.intel_data import build_intel, import_folder
from warpagent.evidence import folders as evidence
from warpagent.evidence.formats import EvidenceError, rpm_qa
from warpagent.evidence.parsers import accounts, sudoers
from warpagent.evidence.parsers import backups as parse_backups
from warpagent.evidence.parsers import policy as parse_policy
from warpagent.evidence.parsers import supply as parse_supply
from warpagent.model.evidence import PasswordState
from warpagent.model.findings import Finding, Host, Inventory, Service
from warpagent.scan import engine

FIXTURES = Path(__file__).resolve().parent / "assets" / "evidence"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)

PLANTED = {
    ("WA203", "os:debian"),  # Debian 12: only LTS left
    ("WA301", "account:toor"),
    ("WA302", "sudo:etc/sudoers.d/90-backup:backup"),
    ("WA302", "sudo:etc/sudoers.d/helpdesk:legacy, guest"),
    ("WA303", "account:www-data:docker"),
    ("WA303", "shadow:bob:sudo"),
    ("WA304", "account:backup:shell"),
    ("WA401", "shadow:guest:empty"),
    ("WA402", "shadow:legacy:scheme"),
    ("WA402", "shadow:toor:scheme"),
    ("WA403", "policy:password-length"),
    ("WA404", "policy:password-expiry"),
    ("WA405", "sshd:root-password"),
    ("WA601", "sbom:Debian:12:openssh"),
    ("WA601", "sbom:vsftpd"),
    ("WA604", "source:http://deb.debian.org/debian:http"),
    ("WA604", "source:https://repo.vendor.example/apt:trusted"),
    ("WA701", "backup:restic:/srv/data:age"),
    ("WA702", "backup:restic:/srv/data:restore-test"),
    ("WA702", "backup:Veeam:file-server:restore-test"),
    ("WA703", "backup:offline-copy"),
    ("WA704", "backup:Veeam:file-server:restore-failed"),
}


def _iso(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def write_backups(host: Path, weak: bool) -> None:
    """Backup reports dated relative to now: the weak host's last snapshot is 5 days old,
    its restore test failed and nothing is offline; the clean host is current on all three."""
    folder = host / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    age = dt.timedelta(days=5) if weak else dt.timedelta(hours=3)
    snapshots = [{"time": _iso(NOW - age - dt.timedelta(days=d)).replace("Z", ".123456789Z"), "paths": ["/srv/data"],
                  "hostname": "planted-host", "short_id": f"ab{d}cd"} for d in (2, 1, 0)]
    (folder / "restic-snapshots.json").write_text(json.dumps(snapshots))
    rows = ["tool,job,kind,finished,result,offline,detail"]
    if weak:
        rows += [f"Veeam,file-server,backup,{_iso(NOW - dt.timedelta(hours=4))},ok,no,nightly",
                 f"Veeam,file-server,restore-test,{_iso(NOW - dt.timedelta(days=2))},failed,,"
                 "sample came back corrupt"]
    else:
        rows += [f"restic,/srv/data,restore-test,{_iso(NOW - dt.timedelta(days=20))},ok,,quarterly test",
                 f"Veeam,tape,backup,{_iso(NOW - dt.timedelta(hours=5))},ok,yes,tape out of building",
                 f"Veeam,tape,restore-test,{_iso(NOW - dt.timedelta(days=30))},ok,yes,"]
    (folder / "backups.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def intel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IntelStore]:
    settings = build_intel(tmp_path_factory.mktemp("host-evidence-intel"))
    with IntelStore(settings.intel_path) as store:
        yield store


@pytest.fixture
def hosts(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES, tmp_path / "evidence")
    write_backups(tmp_path / "evidence" / "weak", weak=True)
    write_backups(tmp_path / "evidence" / "clean", weak=False)
    return tmp_path / "evidence"


def _evaluate(folder: Path, intel: IntelStore | None) -> list[Finding]:
    read = evidence.read_host(folder)
    assert read.problems == ()
    host = Host(address="198.18.9.9", asset=folder.name, state="evidence", platform=read.platform,
                packages=read.packages, evidence=read.evidence)
    result = engine.evaluate(Inventory(estate="e", hosts=(host,), scanned=()),
                             CheckContext(now=NOW, intel=intel))
    assert result.errors == ()
    return list(result.findings)


def test_admin_group_findings_say_whether_the_group_is_listed_or_primary(tmp_path: Path) -> None:
    host = tmp_path / "rhel1"
    (host / "etc").mkdir(parents=True)
    # RHEL's stock sync account has root as its primary group; www-data is listed in wheel
    (host / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\nsync:x:5:0:sync:/sbin:/bin/sync\n"
                                         "www-data:x:33:33::/var/www:/usr/sbin/nologin\n")
    (host / "etc" / "group").write_text("root:x:0:\nwww-data:x:33:\nwheel:x:10:www-data\n")
    found = {f.subject: f for f in _evaluate(host, None) if f.check_id == "WA303"}
    primary, listed = found["account:sync:root"], found["account:www-data:wheel"]
    assert primary.evidence.startswith("etc/passwd:2: root (gid 0) is sync's primary group")
    assert primary.remediation.startswith("usermod -g <another group> sync")
    assert listed.evidence.startswith("etc/group:3: wheel lists www-data")
    assert listed.remediation.startswith("gpasswd -d www-data wheel")


def test_every_planted_weakness_is_found_and_nothing_on_the_clean_host(hosts: Path, intel: IntelStore) -> None:
    weak = _evaluate(hosts / "weak", intel)
    assert {(f.check_id, f.subject) for f in weak} == PLANTED
    assert _evaluate(hosts / "clean", intel) == []
    by_key = {(f.check_id, f.subject): f for f in weak}
    # findings carry the file and line a technician should open
    assert by_key[("WA301", "account:toor")].evidence.startswith("etc/passwd:8:")
    assert by_key[("WA405", "sshd:root-password")].evidence.startswith("etc/ssh/sshd_config.d/50-legacy.conf:2:")
    assert "sbom/ftp-appliance.spdx.json:packages[0]" in by_key[("WA601", "sbom:vsftpd")].evidence
    assert by_key[("WA601", "sbom:vsftpd")].cves == ("CVE-2011-2523",)
    assert "1:9.2p1-2+deb12u3" in by_key[("WA601", "sbom:Debian:12:openssh")].evidence
    assert "sample came back corrupt" in by_key[("WA704", "backup:Veeam:file-server:restore-failed")].evidence
    assert by_key[("WA302", "sudo:etc/sudoers.d/90-backup:backup")].severity.label == "high"
    assert by_key[("WA404", "policy:password-expiry")].severity.label == "info"


def test_no_password_hash_survives_into_findings(hosts: Path, intel: IntelStore) -> None:
    shadow = (hosts / "weak" / "etc" / "shadow").read_text()
    hashes = [line.split(":")[1].lstrip("!") for line in shadow.splitlines()]
    hashes = [h for h in hashes if len(h) > 4]
    text = json.dumps([f.__dict__ for f in _evaluate(hosts / "weak", intel)], default=str)
    assert hashes and not [h for h in hashes if h in text or h[4:20] in text]


def test_sbom_checks_need_intel_but_the_rest_run_without(hosts: Path) -> None:
    found = {(f.check_id, f.subject) for f in _evaluate(hosts / "weak", None)}
    assert found == {k for k in PLANTED if k[0] not in ("WA601", "WA203")}


def test_backup_policy_comes_from_the_estate(hosts: Path) -> None:
    read = evidence.read_host(hosts / "weak")
    host = Host(address="198.18.9.9", asset="weak", state="evidence", evidence=read.evidence)
    lenient = EstatePolicy(backup_max_age=dt.timedelta(days=7), restore_test_within=dt.timedelta(days=90))
    result = engine.evaluate(Inventory(estate="e", hosts=(host,), scanned=()),
                             CheckContext(now=NOW, policy=lenient))
    assert "WA701" not in {f.check_id for f in result.findings}


def test_a_job_that_runs_weekly_is_held_to_its_own_age(hosts: Path) -> None:
    """Issue 30: one max_age for every job made a weekly tape job "stale" every day."""
    read = evidence.read_host(hosts / "weak")
    host = Host(address="198.18.9.9", asset="weak", state="evidence", evidence=read.evidence)

    def stale(**by_job: dt.timedelta) -> set[str]:
        policy = EstatePolicy(backup_max_age_by_job=tuple(by_job.items()))
        result = engine.evaluate(Inventory(estate="e", hosts=(host,), scanned=()), CheckContext(now=NOW, policy=policy))
        return {f.subject for f in result.findings if f.check_id == "WA701"}

    found = stale()
    assert found, "the weak host plants a stale job"
    subject = sorted(found)[0]
    _backup, tool, job, _age = subject.split(":")
    week = dt.timedelta(days=30)
    assert subject not in stale(**{job: week}) and subject not in stale(**{tool: week})
    assert subject in stale(**{"some-other-job": week})
    assert subject in stale(**{f"{tool}:{job}": dt.timedelta(hours=1), job: week})  # the most specific wins


# --- parsers: real formats and their edge cases ----------------------------------------------

def test_shadow_states_and_schemes_without_the_hash() -> None:
    entries = accounts.shadow("a:$y$j9T$s$h:1:0:99999:7:::\nb:!$6$s$h:1:0:99999:7:::\nc:!:1::::::\n"
                                    "d:*:1::::::\ne::1::::::\nf:$1$s$h:1:0:99999:7::19000:\n")
    assert {k: (v.state, v.scheme) for k, v in entries.items()} == {
        "a": (PasswordState.HASHED, "yescrypt"), "b": (PasswordState.LOCKED, "sha512crypt"),
        "c": (PasswordState.DISABLED, ""), "d": (PasswordState.DISABLED, ""), "e": (PasswordState.EMPTY, ""),
        "f": (PasswordState.HASHED, "md5crypt")}
    assert entries["f"].expires == dt.date(2022, 1, 8)
    redacted = accounts.redact_shadow("f:$1$secretsalt$secrethash:1:0:99999:7::19000:\n")
    assert "secret" not in redacted and accounts.shadow(redacted)["f"].scheme == "md5crypt"


def test_malformed_shadow_error_never_quotes_the_line() -> None:
    with pytest.raises(EvidenceError) as caught:
        accounts.shadow("root:$6$salt$SECRETHASH:1:0\n")
    assert "SECRETHASH" not in str(caught.value) and "line 1" in str(caught.value)


def test_sudoers_includes_aliases_continuations_and_tags() -> None:
    files = {"/etc/sudoers": "User_Alias OPS = alice, \\\n  bob\nCmnd_Alias SVC = /usr/bin/systemctl\n"
                             "OPS ALL=(root, www-data) NOPASSWD: SVC, PASSWD: ALL\n#include /etc/sudoers.local\n"
                             "@includedir /etc/sudoers.d\n",
             "/etc/sudoers.local": "carol web1 = /bin/ls : db1 = NOPASSWD: /bin/cat\n",
             "/etc/sudoers.d/x": "%ops ALL = ALL\n", "/etc/sudoers.d/y~": "eve ALL=NOPASSWD: ALL\n"}
    rules = sudoers.sudoers(files.get, lambda d: ["x", "y~"])
    assert [(r.users, r.runas, r.commands, r.nopasswd) for r in rules] == [
        (("alice", "bob"), ("root", "www-data"), ("/usr/bin/systemctl", "ALL"), ("/usr/bin/systemctl",)),
        (("carol",), ("root",), ("/bin/ls", "/bin/cat"), ("/bin/cat",)),
        (("%ops",), ("root",), ("ALL",), ()),
    ]
    assert rules[1].where.file == "etc/sudoers.local"


def test_pam_stacks_decide_the_policy() -> None:
    quality = parse_policy.pwquality("minlen = 10\ndictcheck = 0\n")
    policy = parse_policy.password_policy("password requisite pam_pwquality.so retry=3\n", "p", quality, None)
    assert policy.min_length is not None and policy.min_length.value == "10" and policy.deny_list is None
    policy = parse_policy.password_policy("password requisite pam_pwquality.so minlen=14\n", "p", quality, None)
    assert policy.min_length is not None and policy.min_length.value == "14"
    cracklib = parse_policy.password_policy("password required pam_cracklib.so\n", "p", None, None)
    assert cracklib.min_length is not None and cracklib.min_length.value == "9" and cracklib.deny_list is not None
    with pytest.raises(EvidenceError, match="minlen must be a whole number"):
        parse_policy.password_policy("password required pam_unix.so minlen=six\n", "p", None, None)


def test_pam_passwdqc_reads_its_config_file_in_order(tmp_path: Path) -> None:
    conf = "# site policy\nmin=disabled,disabled,16,12,12\nmax=40\n"
    files = {"/etc/passwdqc.conf": conf}
    policy = parse_policy.password_policy("password requisite pam_passwdqc.so config=/etc/passwdqc.conf\n",
                                          "etc/pam.d/common-password", None, None, load=files.get)
    assert policy.min_length is not None and policy.min_length.value == "12"
    assert str(policy.min_length.where) == "etc/passwdqc.conf:2"  # the finding names the file that set it
    later = parse_policy.password_policy("password requisite pam_passwdqc.so config=/etc/passwdqc.conf min=8,8,8,8,8\n",
                                         "p", None, None, load=files.get)
    assert later.min_length is not None and later.min_length.value == "8"  # options after config= win
    with pytest.raises(EvidenceError, match=r"config=/etc/missing\.conf is not in the evidence"):
        parse_policy.password_policy("password requisite pam_passwdqc.so config=/etc/missing.conf\n", "p", None,
                                     None, load=files.get)
    # through the evidence folder: the file is read inside it, and an escape is refused and named
    host = tmp_path / "web1"
    (host / "etc" / "pam.d").mkdir(parents=True)
    (host / "etc" / "passwdqc.conf").write_text(conf)
    (host / "etc" / "pam.d" / "common-password").write_text(
        "password requisite pam_passwdqc.so config=/etc/passwdqc.conf\n")
    read = evidence.read_host(host)
    assert read.evidence.policy is not None and read.evidence.policy.min_length.value == "12"  # type: ignore[union-attr]
    (host / "etc" / "pam.d" / "common-password").write_text(
        "password requisite pam_passwdqc.so config=../../../outside.conf\n")
    escaped = evidence.read_host(host)
    assert escaped.evidence.policy is None and "not a path inside the host's folder" in " ".join(escaped.problems)


def test_sshd_first_value_wins_and_match_blocks_are_not_global() -> None:
    config = parse_policy.sshd_config("PasswordAuthentication no\npasswordauthentication yes\n"
                                      "Match Address 10.0.0.0/8\n  PermitRootLogin yes\n",
                                      lambda pattern: [])
    assert config.get("PasswordAuthentication").value == "no"  # type: ignore[union-attr]
    assert config.get("PermitRootLogin") is None


def test_apt_sources_both_styles() -> None:
    listed = parse_supply.apt_list("deb [arch=amd64 trusted=yes] http://x.example/d stable main # note\n", "a.list")
    assert (listed[0].uri, listed[0].trusted, listed[0].where.line) == ("http://x.example/d", True, 1)
    deb822 = parse_supply.apt_deb822("# mirror\nTypes: deb\n# http://snapshot.example/\n"
                                     "URIs: https://a.example https://b.example\nSuites: s\n"
                                     "Trusted: yes\n\nTypes: deb\nURIs: http://c.example\nEnabled: no\n", "b.sources")
    assert [(s.uri, s.trusted) for s in deb822] == [("https://a.example", True), ("https://b.example", True)]
    with pytest.raises(EvidenceError, match="line 1"):
        parse_supply.apt_list("deb\n", "c.list")


def test_rpm_export_with_epochs_and_source_packages() -> None:
    packages = rpm_qa("openssl-libs\t1\t3.0.7\t27.el9\tx86_64\topenssl-3.0.7-27.el9.src.rpm\n"
                      "bash\t(none)\t5.1.8\t9.el9\tx86_64\tbash-5.1.8-9.el9.src.rpm\n", "Rocky Linux:9")
    assert [(p.name, p.version, p.advisory_name) for p in packages] == [
        ("openssl-libs", "1:3.0.7-27.el9", "openssl"), ("bash", "5.1.8-9.el9", "bash")]
    with pytest.raises(EvidenceError, match="queryformat"):
        rpm_qa("bash 5.1.8\n", "Rocky Linux:9")


@pytest.mark.parametrize(("parser", "text", "message"), [
    (parse_backups.restic_snapshots, '{"not": "a list"}', "JSON list"),
    (parse_backups.restic_snapshots, '[{"time": "yesterday", "paths": ["/x"]}]', "not an ISO 8601 time"),
    (parse_backups.restic_snapshots, '[{"time": "2026-01-01T00:00:00Z"', "not JSON"),
    (parse_backups.borg_list, '{"archives": [{"time": "2026-01-01T00:00:00"}]}', "needs a name"),
    (parse_backups.backups_csv, "tool,job,kind\nx,y,backup\n", "missing columns finished, result"),
    (parse_backups.backups_csv, "tool,job,kind,finished,result\nx,y,snapshot,2026-01-01,ok\n", "line 2: kind"),
    (parse_backups.backups_csv, "tool,job,kind,finished,result\nx,y,backup,2026-01-01,maybe\n", "line 2: result"),
    (parse_supply.sbom, '{"bomFormat": "CycloneDX", "specVersion": "1.1", "components": []}', "specVersion"),
    (parse_supply.sbom, '{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [{"type": "nonsense"}]}',
     "cyclonedx-python-lib cannot read"),
    (parse_supply.sbom, '{"spdxVersion": "SPDX-2.3", "packages": [{"versionInfo": "1"}]}', r"packages\[0\]"),
    (parse_supply.sbom, '{"hello": 1}', "neither CycloneDX"),
    (parse_supply.suppliers, "suppliers:\n  - name: A\n    last_review: last week\n", r"suppliers\[0\].last_review"),
    (parse_supply.suppliers, "suppliers:\n  - name: A\n    assurance: [{scheme: CE+, expires: soon}]\n",
     r"assurance\[0\].expires"),
    (parse_supply.suppliers, "suppliers: [\n", "not valid YAML"),
])
def test_malformed_evidence_is_named(parser, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EvidenceError, match=message):
        parser(text, "f")


def test_borg_and_nanosecond_restic_times() -> None:
    records = parse_backups.borg_list('{"archives": [{"archive": "web1-2026-11-24T01:00:03", '
                                      '"time": "2026-11-24T01:00:03.000000"}]}', "b.json")
    assert (records[0].job, records[0].at) == ("web1", dt.datetime(2026, 11, 24, 1, 0, 3, tzinfo=dt.UTC))
    # names as borg's {now} placeholders leave them, microseconds and zones included: one job, not one per archive
    stamped = [f"web1-2018-11-04T23:19:0{n}.864971" for n in range(3)] + ["web1-2018-11-05T01:00:00+00:00",
                                                                         "web1-20181106", "web1_2018-11-07_010000"]
    archives = ", ".join(f'{{"archive": "{name}", "time": "2018-11-04T23:19:04.864971"}}' for name in stamped)
    assert {r.job for r in parse_backups.borg_list(f'{{"archives": [{archives}]}}', "b.json")} == {"web1"}
    [snap] = parse_backups.restic_snapshots('[{"time": "2026-11-24T01:00:00.123456789+01:00", "paths": ["/b", "/a"]}]',
                                            "r.json")
    assert snap.job == "/a,/b" and snap.at == dt.datetime(2026, 11, 24, 0, 0, 0, 123456, tzinfo=dt.UTC)


# --- suppliers and remote access ---------------------------------------------------------------

REGISTER = f"""suppliers:
  - name: Acme Payroll Ltd
    service: Payroll
    access: [vpn, teamviewer]
    assurance: [{{scheme: Cyber Essentials Plus, expires: {(NOW + dt.timedelta(days=200)).date()}}}]
    last_review: {(NOW - dt.timedelta(days=30)).date()}
  - name: Old Print Co
    service: Managed print
    access: [vnc]
    assurance: [{{scheme: Cyber Essentials Plus, expires: {(NOW - dt.timedelta(days=3)).date()}}}]
    last_review: {(NOW - dt.timedelta(days=500)).date()}
  - name: Nobody Checked Ltd
    service: Parking app
    access: none
"""


def test_supplier_register_and_remote_access_tools() -> None:
    suppliers = tuple(parse_supply.suppliers(REGISTER, "suppliers.yaml"))
    assert suppliers[1].where.line == 7
    register = Host(address="", asset="supplier register", state="record",
                    evidence=evidence.HostEvidence(suppliers=suppliers))
    vnc = Service(port=5900, protocol="tcp", state="open", name="vnc", product="VNC", version="3.8")
    rdp = Service(port=3389, protocol="tcp", state="open", name="ms-wbt-server", product="xrdp")
    machine = Host(address="198.18.9.9", asset="desk", services=(vnc, rdp))
    result = engine.evaluate(Inventory(estate="e", hosts=(register, machine), scanned=("198.18.9.9",)),
                             CheckContext(now=NOW, suppliers=suppliers))
    found = {(f.asset, f.check_id, f.subject): f for f in result.findings}
    assert found[("supplier register", "WA602", "supplier:Old Print Co:assurance")].severity.label == "high"
    assert found[("supplier register", "WA602", "supplier:Nobody Checked Ltd:assurance")].severity.label == "medium"
    assert ("supplier register", "WA603", "supplier:Old Print Co:review") in found
    assert ("supplier register", "WA603", "supplier:Nobody Checked Ltd:review") in found
    assert not [k for k in found if "Acme" in k[2]]  # assured and reviewed
    linked = found[("desk", "WA605", "5900/tcp")]
    assert linked.severity.label == "low" and "Old Print Co" in linked.evidence
    orphan = found[("desk", "WA605", "3389/tcp")]
    assert orphan.severity.label == "medium" and "no supplier" in orphan.title


# --- a scan with evidence folders: partial on bad files, resolution per evidence kind ----------

def test_scan_with_evidence_and_register_then_fixes_resolve_per_kind(hosts: Path, tmp_path: Path) -> None:
    (hosts / "127.0.0.1").mkdir()
    for item in (hosts / "weak").iterdir():
        shutil.move(str(item), hosts / "127.0.0.1")
    (tmp_path / "suppliers.yaml").write_text(REGISTER)
    config = tmp_path / "warpagent.yaml"
    config.write_text("organisation: {name: Test Council}\nestates:\n"
                      "  - {name: loop, targets: [127.0.0.1], ports: '9', evidence: [./evidence], "
                      "suppliers: suppliers.yaml}\n")
    assert run_cli("--config", str(config), "feeds", "update", "--from", str(import_folder(tmp_path / "imp")),
                   cwd=tmp_path).returncode == 0
    first = json.loads(run_cli("--config", str(config), "scan", "--json", cwd=tmp_path).stdout)
    found = {(f["asset"], f["check_id"], f["subject"]) for f in first["findings"]}
    assert {("127.0.0.1", c, s) for c, s in PLANTED} <= found
    assert ("supplier register", "WA602", "supplier:Old Print Co:assurance") in found
    assert first["summary"][0]["status"] == "complete"
    assert first["summary"][0]["unmeasured"] == []  # the evidence measured every category

    # what is shared names no account, supplier, file, path or host from the evidence
    bundle = tmp_path / "bundle.json"
    shared = run_cli("--config", str(config), "share", "--dry-run", "--out", str(bundle), cwd=tmp_path,
                     env={"WARPAGENT_PSEUDONYM_KEY": "ed1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c02"})
    assert shared.returncode == 0, shared.stderr
    text = bundle.read_text().casefold()
    assert '"category": "privileges"' in text or "privileges" in text
    identifying = ["toor", "alice", "bob", "guest", "legacy", "www-data", "Acme Payroll", "Old Print Co",
                   "Nobody Checked", "repo.vendor.example", "/srv/data", "sudoers", "etc/passwd", "127.0.0.1",
                   "Test Council", "file-server", "sample came back corrupt", str(tmp_path)]
    assert [s for s in identifying if s.casefold() in text] == []

    host = hosts / "127.0.0.1"
    # tonight's export has no sudoers and a broken shadow file; nothing from them may resolve
    (host / "etc" / "sudoers").unlink()
    (host / "etc" / "shadow").write_text("guest:\n")
    # and the technician fixed the second root account
    passwd = (host / "etc" / "passwd").read_text().splitlines()
    (host / "etc" / "passwd").write_text("\n".join(line for line in passwd if not line.startswith("toor:")) + "\n")
    second = json.loads(run_cli("--config", str(config), "scan", "--json", cwd=tmp_path).stdout)
    [summary] = second["summary"]
    assert summary["status"] == "partial" and summary["resolved"] == 0  # a malformed file resolves nothing
    assert any("etc/shadow: skipped" in p for p in summary["problems"])
    open_now = {(f["check_id"], f["subject"]) for f in second["findings"]}
    assert {("WA401", "shadow:guest:empty"), ("WA302", "sudo:etc/sudoers.d/90-backup:backup")} <= open_now

    (host / "etc" / "shadow").unlink()  # no shadow tonight at all: still not a fix
    third = json.loads(run_cli("--config", str(config), "scan", "--json", cwd=tmp_path).stdout)
    assert third["summary"][0]["status"] == "complete"
    assert third["summary"][0]["resolved"] == 1
    listed = run_cli("--config", str(config), "findings", "--status", "resolved", "--format", "json", cwd=tmp_path)
    resolved = {(f["check_id"], f["subject"]) for f in json.loads(listed.stdout)["findings"]}
    assert resolved == {("WA301", "account:toor")}  # passwd was read without toor: that one is fixed


def test_an_sbom_finding_names_nvds_product_not_the_suppliers_in_house_name(hosts: Path, intel: IntelStore) -> None:
    """A supplier may name a build after its customer; the product a finding carries (and the
    anonymiser may share) is the CPE's, which NVD's dictionary holds."""
    sbom = hosts / "weak" / "sbom" / "ftp-appliance.spdx.json"
    sbom.write_text(sbom.read_text().replace('"name": "vsftpd"', '"name": "fenwickvale-ftp-build"'))
    found = {f.subject: f for f in _evaluate(hosts / "weak", intel) if f.check_id == "WA601"}
    renamed = found["sbom:fenwickvale-ftp-build"]
    assert renamed.cves == ("CVE-2011-2523",) and "fenwickvale-ftp-build 2.3.4" in renamed.title
    assert (renamed.product, renamed.version) == ("vsftpd", "2.3.4")
