"""The council's Microsoft 365 tenant through ScubaGear's results (WA320, WA420, WA540, WA620).

Evidence: ScubaGear's own sample reports at six releases (tests/assets/scubagear, SOURCES.md).
"""

from __future__ import annotations

import datetime as dt
import json
import lzma
from pathlib import Path

import pytest

from checks.base import CheckContext, EstatePolicy
from checks.tenant import policies, policy_for, tenant_configs, tenant_passwords, tenant_privileges
from tests.conftest import run_cli
from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers import maester, scuba
from warpagent.evidence.tenants import read as read_tenants
from warpagent.model.evidence import EvidenceKind, HostEvidence
from warpagent.model.findings import RECORD_STATE, Host, Severity
from warpagent.model.tenant import ControlResult, TenantResults

ASSETS = Path(__file__).parent / "assets" / "scubagear"
VERSIONS = ("1.4.0", "1.5.0", "1.6.0", "1.7.0", "1.8.0", "main")
KEY = "4b" * 32


def text_of(version: str, suffix: str) -> str:
    [path] = (ASSETS / version).glob(f"ScubaResults*{suffix}.xz")
    return lzma.decompress(path.read_bytes()).decode("utf-8")


def results(version: str) -> TenantResults:
    return scuba.from_json(text_of(version, ".json"), version)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_release_reads(version: str) -> None:
    read = results(version)
    assert read.domain == "tqhjy.onmicrosoft.com" and read.tenant_id and read.tool_version.startswith(
        version if version != "main" else "1.8")
    assert len(read.controls) >= 90
    assert all("<" not in c.details and "policy-indicators" not in c.requirement for c in read.controls)
    by_id = {c.control_id: c for c in read.controls}
    legacy = by_id["MS.AAD.1.1v1"]
    assert legacy.shall and legacy.requirement == "Legacy authentication SHALL be blocked."
    # manual and not-implemented controls are not measured, never green
    assert {c.result for c in read.controls if c.requirement and "Not-Implemented" in c.details} <= {
        ControlResult.NOT_MEASURED}
    assert any(c.result is ControlResult.NOT_MEASURED for c in read.controls)


@pytest.mark.parametrize("version", VERSIONS[1:])
def test_the_json_reads_as_scubagears_own_csv_on_every_control(version: str) -> None:
    from_json = results(version)
    from_csv = scuba.from_csv(text_of(version, ".csv"), version, from_json.assessed)

    def rows(read: TenantResults) -> dict[str, tuple[object, ...]]:
        return {c.control_id: (c.result, c.shall, c.requirement, c.details, c.would_be) for c in read.controls}
    assert rows(from_json) == rows(from_csv)


@pytest.mark.parametrize("version", ("1.7.0", "1.8.0", "main"))
def test_the_global_administrator_count_agrees_with_the_raw_provider_export(version: str) -> None:
    data = json.loads(text_of(version, ".json").removeprefix("\ufeff"))
    listed = [u for u in data["Raw"]["privileged_users"].values() if "Global Administrator" in u["roles"]]
    control = next(c for c in results(version).controls if c.control_id == "MS.AAD.7.1v1")
    assert control.details.startswith(f"{len(listed)} global admin(s) found")


def tenant_host(read: TenantResults) -> Host:
    return Host(address="", asset=f"Microsoft 365 tenant {read.domain}", state=RECORD_STATE,
                evidence=HostEvidence(tenant=read, read=frozenset({EvidenceKind.TENANT})))


def judged(read: TenantResults, has_domains: bool = False) -> dict[str, tuple[Severity, str]]:
    ctx = CheckContext(now=dt.datetime(2026, 5, 10, tzinfo=dt.UTC), policy=EstatePolicy(has_domains=has_domains))
    found = {}
    for item in (tenant_privileges, tenant_passwords, tenant_configs):
        for weakness in item.run(tenant_host(read), ctx):
            found[weakness.subject] = (weakness.severity, weakness.title)
    return found


def test_fails_warnings_and_the_uk_overrides() -> None:
    read = results("main")
    by_id = {c.policy: c for c in read.controls}
    found = judged(read)
    assert by_id["MS.AAD.7.4"].result is ControlResult.FAIL
    assert found["m365:MS.AAD.7.4"] == (
        Severity.HIGH, "Administrator roles are held permanently instead of just-in-time")
    assert by_id["MS.AAD.3.1"].result is ControlResult.FAIL and found["m365:MS.AAD.3.1"][0] is Severity.HIGH
    assert "m365:MS.AAD.1.1" not in found  # it passes
    warned = [c.policy for c in read.controls if c.result is ControlResult.WARNING
              and policy_for(c) and policy_for(c).category in ("privileges", "passwords", "configs")]  # type: ignore[union-attr]
    assert warned and all(found[f"m365:{p}"][0] in (Severity.MEDIUM, Severity.LOW) for p in warned
                          if not p.startswith(("MS.EXO.2", "MS.EXO.3", "MS.EXO.4")))
    assert not [s for s in found if s.startswith("m365:MS.EXO.4.3")]  # the US DHS's DMARC address
    exo_mail = {s for s in found if s.startswith(("m365:MS.EXO.2", "m365:MS.EXO.3", "m365:MS.EXO.4"))}
    # with the estate's domains checked from DNS, ScubaGear's SPF/DKIM/DMARC controls are not counted twice
    assert not {s for s in judged(read, has_domains=True) if s in exo_mail}


def test_every_control_of_every_release_is_mapped_or_named() -> None:
    for version in VERSIONS:
        unknown = scuba.with_unknown(results(version), policies()).unknown
        assert unknown == (), (version, unknown)
    odd = TenantResults(**{**results("main").__dict__, "controls": (
        scuba._control({"Control ID": "MS.COPILOT.1.1v1", "Result": "Fail", "Criticality": "Shall"}, "Copilot",
                       "x"),)})
    assert scuba.with_unknown(odd, policies()).unknown == ("MS.COPILOT.1.1v1",)


def test_maesters_cisa_tests_are_read_as_the_same_controls(tmp_path: Path) -> None:
    """Maester's own results from a real tenant (tests/assets/maester, SOURCES.md): its CISA tests,
    zero-padded ids included, are ScubaGear's controls through the same mapping."""
    assert maester.control_id("CISA.MS.EXO.03.1") == "MS.EXO.3.1" and maester.control_id("MT.1001") == ""
    folder = tmp_path / "test-results"
    folder.mkdir()
    (folder / "TestResults-2025-04-30-082907.json").write_bytes(
        lzma.decompress((ASSETS.parent / "maester" / "test-results.json.xz").read_bytes()))
    [tenant] = read_tenants([folder], dt.datetime(2025, 5, 1, tzinfo=dt.UTC), dt.timedelta(days=30),
                            policies()).tenants
    assert tenant.domain == "Entra.Chat" and tenant.unknown == () and len(tenant.controls) == 73
    by_id = {c.control_id: c for c in tenant.controls}
    assert by_id["MS.EXO.3.1"].result is ControlResult.WARNING  # a failed SHOULD
    assert by_id["MS.AAD.7.1"].result is ControlResult.PASS and "Global Administrators" in by_id["MS.AAD.7.1"].details
    assert by_id["MS.AAD.5.4"].result is ControlResult.NOT_MEASURED  # Skipped: never green
    failing = {f"m365:{c.policy}" for c in tenant.controls
               if c.result in (ControlResult.FAIL, ControlResult.WARNING) and policy_for(c) is not None
               and policy_for(c).category in ("privileges", "passwords", "configs")  # type: ignore[union-attr]
               and policy_for(c).drop != "always"}  # type: ignore[union-attr]
    assert failing and set(judged(tenant)) == failing


def test_board_words_carry_scubagears_figure() -> None:
    from checks.tenant import board_words
    control = next(c for c in results("main").controls if c.control_id == "MS.AAD.7.1v1")
    nine = type(control)(**{**control.__dict__, "details": "9 global admin(s) found: A, B, C"})
    assert board_words(nine, policy_for(nine)) == (  # type: ignore[arg-type]
        "9 accounts can administer the whole Microsoft 365 tenant (the safe range is 2 to 8)")


@pytest.mark.parametrize(("text", "says"), [
    ("{\"MetaData\": {}, \"Results\": {\"AAD\": [{\"Controls\": [{\"Control ID\": \"<img src=x>\"}]}]}}",
     "is not a control id"),
    ("{\"MetaData\": ", "not JSON"),
    ("[1, 2]", "no MetaData and Results"),
    ("\ufeff{\"MetaData\": {\"TimestampZulu\": \"soon\"}, \"Results\": {}}", "TimestampZulu"),
])
def test_a_hostile_results_file_is_refused(text: str, says: str) -> None:
    with pytest.raises(EvidenceError, match=says):
        scuba.from_json(text, "x.json")


def test_html_in_details_is_text() -> None:
    assert scuba.plain("<b>2</b> admins<script>alert(1)</script><br/>found &amp; listed") == "2 admins found & listed"


def test_files_are_found_sized_and_dated(tmp_path: Path) -> None:
    run = tmp_path / "M365BaselineConformance_2026_05_04_17_15_48"
    run.mkdir()
    (run / "ScubaResults.csv").write_text(text_of("main", ".csv"), encoding="utf-8-sig")
    huge = tmp_path / "huge" / "ScubaResults_x.json"
    huge.parent.mkdir()
    with huge.open("wb") as out:
        out.truncate(65 * 1024 * 1024)
    now = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    read = read_tenants([tmp_path / "M365BaselineConformance_2026_05_04_17_15_48", huge.parent, tmp_path / "gone"],
                        now, dt.timedelta(days=30), policies())
    [tenant] = read.tenants
    assert tenant.assessed == dt.datetime(2026, 5, 4, 17, 15, 48, tzinfo=dt.UTC) and len(tenant.controls) == 92
    assert any("larger than 64 MB" in p for p in read.problems) and any("gone: ScubaGear results not found" in p
                                                                         for p in read.problems)
    assert any("older than 30 days" in n for n in read.notes)


def write_estate(folder: Path, results_folder: Path) -> Path:
    config = folder / "warpagent.yaml"
    config.write_text("organisation: {name: Fenwick Vale Council}\nstore: ./w.db\nfeeds: {bundled: false}\n"
                      f"estates:\n  - name: corporate\n    m365: ['{results_folder}']\n")
    return config


def annotated(version: str = "main", *, omit: bool = True) -> str:
    """The sample with the council's decisions as ScubaGear writes them: MS.AAD.7.4 omitted with a
    rationale and an expiry, MS.AAD.3.1's failure marked an incorrect result."""
    data = json.loads(text_of(version, ".json").removeprefix("\ufeff"))
    for group in data["Results"]["AAD"]:
        for control in group["Controls"]:
            if control["Control ID"] == "MS.AAD.7.4v1" and omit:
                control.update({"Result": "Omitted", "OmittedEvaluationResult": "Fail", "ResolutionDate": "2027-04-30",
                                "Comments": ["PIM licences arrive with the E5 renewal"]})
            if control["Control ID"] == "MS.AAD.3.1v1":
                control.update({"Result": "Incorrect result", "IncorrectResult": "Fail",
                                "Comments": ["Phishing-resistant MFA is enforced by a third-party IdP"]})
    return "\ufeff" + json.dumps(data)


def test_a_council_scans_its_tenant_records_its_decisions_and_shares_nothing_identifying(tmp_path: Path) -> None:
    results_folder = tmp_path / "scuba" / "M365BaselineConformance_2026_05_04_17_15_48"
    results_folder.mkdir(parents=True)
    (results_folder / "ScubaResults_fa5589b7-d528-4f80.json").write_text(annotated(), encoding="utf-8")
    config = write_estate(tmp_path, tmp_path / "scuba")
    now = dt.datetime(2026, 5, 10, 2, 0, tzinfo=dt.UTC)
    scanned = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path, now=now)
    assert scanned.returncode == 0, scanned.stderr
    (summary,) = json.loads(scanned.stdout)["summary"]
    assert "privileges" not in summary["unmeasured"] and "passwords" not in summary["unmeasured"]
    found = json.loads(run_cli("--config", str(config), "findings", "--status", "all", "--format", "json",
                               cwd=tmp_path, now=now).stdout)["findings"]
    by_subject = {f["subject"]: f for f in found}
    assert {f["asset"] for f in found} == {"Microsoft 365 tenant tqhjy.onmicrosoft.com"}
    omitted = by_subject["m365:MS.AAD.7.4"]
    assert omitted["status"] == "accepted_risk" and omitted["decided_until"] == "2027-04-30"
    assert omitted["status_reason"] == "PIM licences arrive with the E5 renewal"
    assert omitted["decided_by"].startswith("ScubaGear configuration")
    assert by_subject["m365:MS.AAD.3.1"]["status"] == "false_positive"
    assert by_subject["m365:MS.AAD.7.2"]["status"] == "open"

    # the omission is withdrawn in ScubaGear's config: the next night the finding is open again
    (results_folder / "ScubaResults_fa5589b7-d528-4f80.json").write_text(annotated(omit=False), encoding="utf-8")
    later = now + dt.timedelta(days=1)
    assert run_cli("--config", str(config), "scan", cwd=tmp_path, now=later).returncode == 0
    again = json.loads(run_cli("--config", str(config), "findings", "--status", "all", "--format", "json",
                               cwd=tmp_path, now=later).stdout)["findings"]
    assert {f["subject"]: f["status"] for f in again}["m365:MS.AAD.7.4"] == "open"

    board = run_cli("--config", str(config), "report", "board", cwd=tmp_path, now=later)
    assert board.returncode == 0, board.stderr
    # each of the tenant's controls is a risk of its own, in board words
    assert "Administrator roles are held permanently instead of just-in-time" in board.stdout

    shared = run_cli("--config", str(config), "share", "--dry-run", "--out", "bundle.json", cwd=tmp_path,
                     env={"WARPAGENT_PSEUDONYM_KEY": KEY}, now=later)
    assert shared.returncode == 0, shared.stderr
    bundle = (tmp_path / "bundle.json").read_text().casefold()
    assert "wa320" in bundle
    data = json.loads(text_of("main", ".json").removeprefix("\ufeff"))
    meta = data["MetaData"]
    people = [u["DisplayName"] for u in data["Raw"]["privileged_users"].values()]
    for needle in (meta["TenantId"], meta["DomainName"], meta["DisplayName"], "tqhjy", *people, "Fenwick Vale"):
        assert needle.casefold() not in bundle, needle


def test_one_tenant_read_from_scubagear_and_maester_is_one_asset_whichever_ran_last(tmp_path: Path) -> None:
    """ScubaGear names the tenant by its domain, Maester by its display name; the same tenant id
    makes them one tenant, named by the domain, so its findings keep their asset night after night."""
    scuba_folder, maester_folder = tmp_path / "scuba", tmp_path / "maester"
    scuba_folder.mkdir()
    maester_folder.mkdir()
    scuba_data = json.loads(text_of("main", ".json").removeprefix("\ufeff"))
    maester_data = json.loads(lzma.decompress((ASSETS.parent / "maester" / "test-results.json.xz").read_bytes()))
    maester_data["TenantId"] = scuba_data["MetaData"]["TenantId"]
    domain = scuba_data["MetaData"]["DomainName"]
    for maester_ran in ("2025-04-30T08:29:07Z", "2099-01-01T00:00:00Z"):  # before ScubaGear, then after
        maester_data["ExecutedAt"] = maester_ran
        (maester_folder / "TestResults-2025-04-30-082907.json").write_text(json.dumps(maester_data))
        (scuba_folder / "ScubaResults_1.json").write_text(json.dumps(scuba_data))
        read = read_tenants([scuba_folder, maester_folder], dt.datetime(2099, 1, 2, tzinfo=dt.UTC),
                            dt.timedelta(days=30), policies())
        [tenant] = read.tenants
        assert tenant.domain == domain, maester_ran
        assert tenant.tool_version.startswith("Maester") == (maester_ran.startswith("2099"))  # the newest wins
