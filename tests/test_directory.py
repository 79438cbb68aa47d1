"""Active Directory checks against a real Samba AD DC (tests/samba_dc.py): the exact findings
its planted weaknesses give beside a hardened baseline, ageing by an injected clock, what
hardening resolves, every way the read can fail, and that nothing of the directory is shared."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.samba_dc import BASE_DN, IDENTIFYING, REALM, SambaDC

ASSET = "Active Directory"
PATH_CHECKS = ("WA321", "WA322", "WA323", "WA324", "WA325", "WA326", "WA327", "WA328", "WA415", "WA416", "WA417",
               "WA418",
               "WA541", "WA542", "WA705")
ENABLED_ADMINS = {"administrator", "svc-sql", "nest.ed", "stale.admin", "prim.admin"}  # prim.admin by primary group


def _config(work: Path, dc: SambaDC, *, targets: str | None = None, url: str | None = None,
            ca: Path | None = None, extra: str = "") -> Path:
    config = work / "warpagent.yaml"
    (work / "member.key").write_text("ab" * 32 + "\n", encoding="utf-8")
    (work / "member.key").chmod(0o600)
    config.write_text(
        "organisation: {name: Warp Council, region: north-west, sector: local-government}\n"
        "store: ./warpagent.db\n"
        "sharing: {pseudonym_key_file: ./member.key}\n"
        "estates:\n"
        "  - name: corporate\n"
        f"    targets: [{targets or dc.address}]\n"
        "    ports: '9'\n"  # nmap still runs on the DC; its own services are not what these tests are about"
        "    timeout: 2m\n"
        "    directory:\n"
        f"      url: {url or dc.url}\n"
        f"      bind_dn: warpagent-read@{REALM}\n"
        "      password_env: WARPAGENT_AD_PASSWORD\n"
        f"      ca_bundle: {ca or dc.ca}\n"
        "      timeout: 5s\n"
        f"{extra}", encoding="utf-8")
    return config


def _scan(work: Path, dc: SambaDC, now: dt.datetime, password: str | None = None,
          config: Path | None = None) -> tuple[int, dict[str, Any], str]:
    config = config or _config(work, dc)
    env = {"WARPAGENT_AD_PASSWORD": dc.reader_password if password is None else password}
    done = run_cli("--config", str(config), "scan", "--json", cwd=work, env=env, now=now, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def _open(work: Path, now: dt.datetime) -> set[tuple[str, str, str]]:
    listed = run_cli("--config", str(work / "warpagent.yaml"), "findings", "--format", "json", "--status", "open",
                     cwd=work, now=now)
    assert listed.returncode == 0, listed.stderr
    return {(f["check_id"], f["subject"], f["severity"]) for f in json.loads(listed.stdout)["findings"]
            if f["asset"] == ASSET}


def _accounts(subjects: set[tuple[str, str, str]], check_id: str) -> set[str]:
    return {s.split(":")[1] for c, s, _ in subjects if c == check_id}


@pytest.fixture(scope="module")
def first_night(samba_dc: SambaDC, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("directory")
    now = samba_dc.provisioned + dt.timedelta(days=1)
    code, summary, stderr = _scan(work, samba_dc, now)
    assert code == 0, stderr
    return {"work": work, "now": now, "summary": summary, "open": _open(work, now), "stderr": stderr,
            "summary_text": json.dumps(summary)}


def test_the_planted_weaknesses_are_found_exactly(first_night: dict[str, Any]) -> None:
    found = first_night["open"]
    assert {(c, s) for c, s, _ in found if c in ("WA311", "WA319", "WA413", "WA410")} == {
        ("WA311", "ad-group:enterprise admins"), ("WA311", "ad-group:schema admins"),
        ("WA319", "ad-domain:machine-account-quota"), ("WA413", "ad-domain:laps"),
        ("WA410", "ad-policy:domain policy:min-length"), ("WA410", "ad-policy:domain policy:lockout"),
        ("WA410", "ad-policy:weak-pso:min-length"), ("WA410", "ad-policy:weak-pso:lockout"),
        ("WA410", "ad-policy:weak-pso:reversible")}
    assert ("WA410", "ad-policy:domain policy:min-length", "high") in found  # Samba's default 7
    assert ("WA410", "ad-policy:weak-pso:reversible", "high") in found
    # privileged accounts, nesting resolved (nest.ed is in Administrators through it-admins)
    assert _accounts(found, "WA316") == ENABLED_ADMINS  # hardy.admin is protected: the baseline
    assert _accounts(found, "WA314") == {"svc-sql"}
    assert _accounts(found, "WA313") == {"svc-sql"}
    assert {(s, sev) for c, s, sev in found if c == "WA312"} == {("ad-account:old.admin", "low")}
    assert _accounts(found, "WA318") == {"app01$"}  # not the DC, which is trusted for delegation by design
    assert {s for c, s, _ in found if c == "WA411"} == {
        "ad-account:nopw.user:passwd_notreqd", "ad-account:asrep.user:dont_req_preauth",
        "ad-account:rev.user:encrypted_text_pwd_allowed",
        "ad-account:guest:passwd_notreqd"}  # Samba's Guest needs no password: planted enabled (issue 33)
    assert {(s, sev) for c, s, sev in found if c == "WA205"} == {
        ("ad-account:xp-kiosk$", "high"), ("ad-account:srv-2012$", "high"),
        ("ad-computers:unsupported-idle", "low")}  # old-pc is disabled: counted apart
    assert ("WA412", "ad-accounts:password-never-expires", "low") in found
    # nothing about time yet: every password was set a day ago, nobody is stale, 5 admins of 120 users
    assert not {c for c, _, _ in found} & {"WA310", "WA315", "WA317", "WA414"}
    # the paths PingCastle finds (issue 33), each beside a control that stays clean: a quarantined
    # trust, an AES-only service account, a disabled Guest's siblings
    # permissions (issue 33 items 2-3): only the planted entries, none of Samba's own defaults
    acl = sorted((c, s.rpartition(":")[0] if c == "WA326" else "dcsync", sev) for c, s, sev in found
                 if c in ("WA325", "WA326"))
    assert acl == [("WA325", "dcsync", "high"), ("WA325", "dcsync", "info"),
                   ("WA326", f"ad-acl:write:cn=adminsdholder,cn=system,{BASE_DN.casefold()}", "critical"),
                   ("WA326", f"ad-acl:write:cn=backup operators,cn=builtin,{BASE_DN.casefold()}", "critical"),
                   ("WA326", "ad-acl:write:cn={6ac1786c-016f-11d2-945f-00c04fb984f9},cn=policies,cn=system,"
                             f"{BASE_DN.casefold()}", "critical")]
    # what Group Policy grants (SYSVOL): Domain Users local admins through a GPO on the domain (and so
    # the DCs), Authenticated Users' local logon on the DCs, LM/NTLMv1 accepted; not Everyone's network logon
    gpo = sorted((c, s.split(":")[2], sev) for c, s, sev in found if c in ("WA327", "WA418"))
    assert gpo == [("WA327", "local-admin", "critical"), ("WA327", "seinteractivelogonright", "high"),
                   ("WA418", "lmcompatibilitylevel", "high")]
    # AD CS (LDIF plants): ESC1, ESC3, ESC4 on the published templates; manager approval and an
    # unpublished template stay clean
    assert sorted((s, sev) for c, s, sev in found if c == "WA328") == [
        ("ad-adcs:warpagent-esc3:esc3", "critical"), ("ad-adcs:warpuser-esc1:esc1", "critical"),
        ("ad-adcs:warpweb-esc4:esc4:domain users", "critical")]
    assert sorted(f for f in found if f[0] in PATH_CHECKS and f[0] not in ("WA325", "WA326", "WA327", "WA328",
                                                                            "WA418")) == [
        ("WA321", "ad-account:dc1$:rbcd", "high"), ("WA321", "ad-account:deleg.svc:delegation", "high"),
        ("WA321", "ad-account:web01$:delegation", "low"), ("WA322", "ad-account:hist.user:sid-history", "high"),
        ("WA323", "ad-trust:partner-open.test", "high"), ("WA324", "ad-accounts:leftover-admincount", "low"),
        ("WA415", "ad-account:guest:guest-enabled", "high"), ("WA416", "ad-account:svc-sql:weak-etypes", "medium"),
        ("WA417", "ad-gpp:policies/{31b2f340-016d-11d2-945f-00c04fb984f9}/machine/preferences/groups/groups.xml"
                  ":user:administrator (built-in)", "critical"),
        ("WA541", "ad-domain:dsheuristics-anonymous", "high"), ("WA541", "ad-domain:functional-level", "medium"),
        ("WA541", "ad-domain:pre2000-anonymous", "high"), ("WA542", "ad-domain:ldap-signing", "high"),
        ("WA705", "ad-domain:recycle-bin", "medium")]
    assert {c for c, _, _ in found} == {"WA205", "WA311", "WA312", "WA313", "WA314", "WA316", "WA318", "WA319",
                                        "WA410", "WA411", "WA412", "WA413", *PATH_CHECKS}


def test_a_finding_names_the_attribute_and_value_behind_it(first_night: dict[str, Any]) -> None:
    listed = run_cli("--config", str(first_night["work"] / "warpagent.yaml"), "findings", "--format", "json",
                     cwd=first_night["work"], now=first_night["now"])
    rows = {(f["check_id"], f["subject"]): f for f in json.loads(listed.stdout)["findings"]}
    asrep = rows[("WA411", "ad-account:asrep.user:dont_req_preauth")]
    assert "userAccountControl 4194816 (0x400200) includes DONT_REQ_PREAUTH (0x400000)" in asrep["evidence"]
    assert "Set-ADAccountControl asrep.user -DoesNotRequirePreAuth $false" in asrep["remediation"]
    assert "minPwdLength 7" in rows[("WA410", "ad-policy:domain policy:min-length")]["evidence"]
    assert "ms-DS-MachineAccountQuota 10" in rows[("WA319", "ad-domain:machine-account-quota")]["evidence"]
    xp = rows[("WA205", "ad-account:xp-kiosk$")]
    assert "operatingSystemVersion '5.1 (2600)'" in xp["evidence"] and "2014-04-08" in xp["evidence"]
    assert rows[("WA316", "ad-account:nest.ed")]["evidence"].startswith("nest.ed in Administrators: ")
    assert first_night["summary"]["summary"][0]["status"] == "complete"
    # the exact object, attribute and right behind each path (the read-only account saw them all)
    assert rows[("WA324", "ad-accounts:leftover-admincount")]["evidence"] == (
        "adminCount 1, in no privileged group: ex.admin")
    assert "msDS-AllowedToDelegateTo ldap/dc1.warp-council.test; TRUSTED_TO_AUTH_FOR_DELEGATION (0x1000000)" in rows[
        ("WA321", "ad-account:deleg.svc:delegation")]["evidence"]
    assert rows[("WA322", "ad-account:hist.user:sid-history")]["evidence"].endswith("-512")
    assert "trustAttributes 0x0" in rows[("WA323", "ad-trust:partner-open.test")]["evidence"]
    assert "S-1-5-7 (Anonymous Logon)" in rows[("WA541", "ad-domain:pre2000-anonymous")]["evidence"]
    assert "msDS-SupportedEncryptionTypes 4" in rows[("WA416", "ad-account:svc-sql:weak-etypes")]["evidence"]
    dcsync = {f["severity"]: f for (c, _s), f in rows.items() if c == "WA325"}
    assert "sync.svc" in dcsync["high"]["title"] and "DS-Replication-Get-Changes-All" in dcsync["high"]["evidence"]
    assert dcsync["info"]["title"].endswith("Entra Connect's account, expected")
    writes = [f["evidence"] for (c, _s), f in rows.items() if c == "WA326"]
    assert any("Authenticated Users (S-1-5-11) WriteDacl" in e for e in writes)
    assert any("Domain Users" in e and "write member" in e for e in writes)


def test_a_year_on_the_clock_ages_passwords_krbtgt_and_idle_accounts(samba_dc: SambaDC, tmp_path: Path) -> None:
    now = samba_dc.provisioned + dt.timedelta(days=400)
    code, _summary, stderr = _scan(tmp_path, samba_dc, now)
    assert code == 0, stderr
    found = _open(tmp_path, now)
    assert ("WA317", "ad-account:krbtgt", "high") in found
    # Administrator has not logged on since provisioning: stale; the others logged on at day 395
    assert _accounts(found, "WA315") == ENABLED_ADMINS | {"hardy.admin"}
    assert {s for c, s, _ in found if c == "WA312"} == {"ad-account:old.admin", "ad-account:stale.admin",
                                                         "ad-account:administrator"}
    assert ("WA414", "ad-accounts:stale", "low") in found
    # the built-in Administrator (RID 500) on a password over a year old (issue 33)
    assert ("WA415", "ad-account:administrator:builtin-admin", "medium") in found
    half = samba_dc.provisioned + dt.timedelta(days=200)
    (tmp_path / "half").mkdir()
    code, _summary, stderr = _scan(tmp_path / "half", samba_dc, half)
    assert code == 0, stderr
    assert ("WA317", "ad-account:krbtgt", "medium") in _open(tmp_path / "half", half)


@pytest.mark.parametrize("case", ["wrong password", "unknown CA", "outside scope", "unreachable", "no password"])
def test_a_failed_read_is_one_line_a_partial_run_and_nothing_else_lost(
        samba_dc: SambaDC, tmp_path: Path, case: str) -> None:
    prefix = samba_dc.address.rsplit(".", 1)[0]
    other_ca = tmp_path / "other-ca.pem"
    from tests.tls import tls_context
    tls_context(tmp_path)  # writes a CA of its own as ca.pem
    (tmp_path / "ca.pem").rename(other_ca)
    config = {  # each written only for its own case: they share the file name
        "wrong password": lambda: _config(tmp_path, samba_dc),
        "unknown CA": lambda: _config(tmp_path, samba_dc, ca=other_ca),
        "outside scope": lambda: _config(tmp_path, samba_dc, targets=f"{prefix}.1"),
        "unreachable": lambda: _config(tmp_path, samba_dc, targets=f"{prefix}.9", url=f"ldaps://{prefix}.9"),
        "no password": lambda: _config(tmp_path, samba_dc),
    }[case]()
    password = {"wrong password": "Not-The-Password-42", "no password": ""}.get(case)
    code, summary, stderr = _scan(tmp_path, samba_dc, samba_dc.provisioned + dt.timedelta(days=1), password=password,
                                  config=config)
    assert code == 3, stderr
    problems = [p for p in summary["summary"][0]["problems"] if p.startswith("directory ")]
    assert len(problems) == 1 and "\n" not in problems[0], summary["summary"][0]["problems"]
    expected = {"wrong password": "the bind as warpagent-read@warp-council.test was refused",
                "unknown CA": "its TLS certificate was not accepted",
                "outside scope": "is not in estate 'corporate''s scope (or is excluded); not contacted",
                "unreachable": "could not be reached on port 636",
                "no password": "environment variable WARPAGENT_AD_PASSWORD is not set"}[case]
    assert expected in problems[0]
    assert samba_dc.reader_password not in stderr + json.dumps(summary)
    assert "Not-The-Password-42" not in stderr + json.dumps(summary)
    assert summary["summary"][0]["status"] == "partial"
    # the run is recorded with the rest of what it measured; the directory's categories are not
    # claimed clean: privileges and passwords have no evidence tonight
    assert {"privileges", "passwords"} <= set(summary["summary"][0]["unmeasured"])
    assert _open(tmp_path, samba_dc.provisioned + dt.timedelta(days=1)) == set()


def test_ldap_with_starttls_reads_the_same_directory(samba_dc: SambaDC, tmp_path: Path) -> None:
    config = _config(tmp_path, samba_dc, url=f"ldap://{samba_dc.address}", extra="      start_tls: true\n")
    now = samba_dc.provisioned + dt.timedelta(days=1)
    code, summary, stderr = _scan(tmp_path, samba_dc, now, config=config)
    assert code == 0 and summary["summary"][0]["status"] == "complete", stderr
    assert ("WA411", "ad-account:nopw.user:passwd_notreqd", "high") in _open(tmp_path, now)


def test_a_group_policy_password_is_named_by_gpo_and_file_and_never_kept(samba_dc: SambaDC,
                                                                          first_night: dict[str, Any]) -> None:
    """Read over SMB from SYSVOL by the read-only account: the finding names the GPO and the file;
    the cpassword is in no finding, log line, report or byte of the store."""
    work = first_night["work"]
    [planted] = samba_dc.workdir.glob("dc/state/sysvol/*/Policies/*/Machine/Preferences/Groups/Groups.xml")
    cpassword = planted.read_text().split('cpassword="')[1].split('"')[0]
    assert len(cpassword) > 20
    listed = json.loads(run_cli("--config", str(work / "warpagent.yaml"), "findings", "--format", "json",
                                cwd=work, now=first_night["now"]).stdout)["findings"]
    [gpp] = [f for f in listed if f["check_id"] == "WA417"]
    assert gpp["title"] == "A Group Policy Preferences password in GPO {31B2F340-016D-11D2-945F-00C04FB984F9}"
    assert "Machine/Preferences/Groups/Groups.xml" in gpp["evidence"] and "not read further" in gpp["evidence"]
    technical = run_cli("--config", str(work / "warpagent.yaml"), "report", "technical", cwd=work,
                        now=first_night["now"])
    for text in (json.dumps(listed), technical.stdout, first_night["stderr"], first_night["summary_text"]):
        assert cpassword not in text
    for path in work.rglob("*"):
        if path.is_file():
            assert cpassword.encode() not in path.read_bytes(), path


def test_nothing_of_the_directory_leaves_in_a_shared_bundle(samba_dc: SambaDC, first_night: dict[str, Any]) -> None:
    work = first_night["work"]
    out = work / "bundle.json"
    shared = run_cli("--config", str(work / "warpagent.yaml"), "share", "--dry-run", "--out", str(out),
                     cwd=work, now=first_night["now"])
    assert shared.returncode == 0, shared.stderr
    data = out.read_bytes().decode().casefold()
    for needle in (*IDENTIFYING, samba_dc.address, BASE_DN, REALM, "Warp Council", "corporate"):
        assert needle.casefold() not in data, f"{needle!r} left the council"
    bundle = json.loads(out.read_text())
    assert "WA316" in out.read_text() and bundle["type"] == "bundle"  # the counts are shared


def test_hardening_resolves_what_it_fixed_and_nothing_else(samba_dc: SambaDC, first_night: dict[str, Any]) -> None:
    """Last in the module: it changes the shared DC."""
    work = first_night["work"]
    # a night the directory could not be read resolves nothing (not read is not fixed)
    wrong = "wrong-pw-1"
    code, summary, _stderr = _scan(work, samba_dc, first_night["now"] + dt.timedelta(hours=12), password=wrong)
    assert code == 3 and summary["summary"][0]["resolved"] == 0
    assert _open(work, first_night["now"] + dt.timedelta(hours=12)) == first_night["open"]
    samba_dc.harden()
    now = first_night["now"] + dt.timedelta(days=1)
    code, _summary, stderr = _scan(work, samba_dc, now)
    assert code == 0, stderr
    after = _open(work, now)
    fixed = {("WA410", "ad-policy:domain policy:min-length"), ("WA410", "ad-policy:domain policy:lockout"),
             ("WA410", "ad-policy:weak-pso:min-length"), ("WA410", "ad-policy:weak-pso:lockout"),
             ("WA410", "ad-policy:weak-pso:reversible"), ("WA319", "ad-domain:machine-account-quota"),
             ("WA411", "ad-account:asrep.user:dont_req_preauth"), ("WA411", "ad-account:guest:passwd_notreqd"),
             ("WA415", "ad-account:guest:guest-enabled"), ("WA541", "ad-domain:pre2000-anonymous"),
             ("WA541", "ad-domain:dsheuristics-anonymous")}
    assert {(c, s) for c, s, _ in first_night["open"]} - {(c, s) for c, s, _ in after} == fixed
    assert {(c, s) for c, s, _ in after} <= {(c, s) for c, s, _ in first_night["open"]}
