"""Windows update levels against Microsoft's own monthly documents (WA104).

Intel: five complete, real MSRC CVRF documents (November 2025 to March 2026, tests/assets/msrc,
SOURCES.md). Hosts: real build numbers of those months, in the two export formats councils
produce, read through the real CLI.
"""

from __future__ import annotations

import datetime as dt
import json
import lzma
import shutil
from pathlib import Path

import pytest

from checks.base import Check, CheckContext, EstatePolicy
from checks.windows_updates import windows_missing_update, windows_release_unserviced
from feeds import msrc, sources, windows
from feeds.intel_store import IntelStore, LoadedIntel, compile_store
from feeds.model import FeedError, Month, WindowsUpdate
from tests.conftest import run_cli
from tests.intel_data import EOL_PRODUCTS
from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers.windows import exports
from warpagent.model.evidence import EvidenceKind, HostEvidence, Where, WindowsBuild
from warpagent.model.findings import RECORD_STATE, Host

ASSETS = Path(__file__).parent / "assets" / "msrc"
MONTHS = ("2025-Nov", "2025-Dec", "2026-Jan", "2026-Feb", "2026-Mar")
REGISTRY_HEADER = "ComputerName,ProductName,EditionID,DisplayVersion,InstallationType,CurrentBuild,UBR,CollectedAt"


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("msrc")
    for month in MONTHS:
        (folder / f"cvrfDocument-{month}.xml").write_bytes(
            lzma.decompress((ASSETS / f"cvrfDocument-{month}.xml.xz").read_bytes()))
    return folder


@pytest.fixture(scope="module")
def updates(documents: Path) -> list[WindowsUpdate]:
    return [u for month in MONTHS for u in msrc.load(documents / f"cvrfDocument-{month}.xml")]


@pytest.fixture(scope="module")
def intel(documents: Path, tmp_path_factory: pytest.TempPathFactory) -> IntelStore:
    loaded = LoadedIntel()
    loaded.sources.append(sources.load_source("msrc", documents, loaded))
    endoflife = tmp_path_factory.mktemp("endoflife")
    shutil.copytree(EOL_PRODUCTS, endoflife / "products")
    loaded.sources.append(sources.load_source("endoflife", endoflife, loaded))
    path = tmp_path_factory.mktemp("intel") / "intel.db"
    compile_store(loaded, path, dt.datetime(2026, 3, 31, tzinfo=dt.UTC))
    return IntelStore(path)


def line(updates: list[WindowsUpdate], build: int, server: bool) -> tuple[Month, ...]:
    return windows.ladder(u for u in updates if (u.build, u.server) == (build, server))


def test_march_2026_reads_as_microsoft_published_it(updates: list[WindowsUpdate]) -> None:
    march = {m.month: m for m in line(updates, 26100, False)}["2026-03"]
    assert (march.cumulative, march.cumulative_kb) == (8037, "5079473")
    assert (march.partial, march.partial_kb) == (7979, "5079420")  # the hotpatch, below the cumulative
    assert march.released == dt.date(2026, 3, 10)
    server = {m.month: m for m in line(updates, 26100, True)}["2026-03"]
    assert (server.cumulative, server.partial, server.product) == (32522, 32463, "Windows Server 2025")
    # Windows 10 22H2's updates moved into the ESU family in February; 21H2 (LTSC) did not
    esu = {m.month: m.esu for m in line(updates, 19045, False)}
    assert esu == {"2025-11": False, "2025-12": False, "2026-01": False, "2026-02": True, "2026-03": True}
    assert not any(m.esu for m in line(updates, 19044, False))
    february = {m.month: m for m in line(updates, 22631, False)}["2026-02"]
    assert february.exploited == {"CVE-2026-21510", "CVE-2026-21513", "CVE-2026-21519", "CVE-2026-21525",
                                  "CVE-2026-21533"} & {c for c, _ in february.fixed_at}
    # the documents repeat older KBs for revised CVEs: December's own update is not November's
    december = {m.month: m for m in line(updates, 26100, False)}["2025-12"]
    assert (december.cumulative, december.cumulative_kb) == (7462, "5072033")


def test_the_patch_tuesday_builds_agree_with_an_independent_list(updates: list[WindowsUpdate]) -> None:
    """thkn-hofa/ms-windows-versions, built from Microsoft's update-history pages: every Patch
    Tuesday release it lists for a month loaded has the build and KB the ladder says."""
    listed = json.loads((ASSETS / "ms-windows-versions-2025-10-to-2026-03.json").read_text())
    expected: dict[tuple[int, bool, dt.date], tuple[int, str]] = {}
    for kind, releases in listed.items():
        for entries in releases.values():
            for entry in entries:
                if entry["OutOfBand"] or entry["Preview"]:
                    continue
                build, ubr = (int(x) for x in entry["Build"].split("."))
                day = dt.date.fromisoformat(entry["Date"].replace("/", "-"))
                expected[(build, kind == "server", day)] = (ubr, entry["KB"].removeprefix("KB"))
    compared = 0
    for (build, server, day), (ubr, kb) in sorted(expected.items()):
        months = {m.released: m for m in line(updates, build, server)}
        if day not in months:
            continue
        assert (months[day].cumulative, months[day].cumulative_kb) == (ubr, kb), (build, server, day)
        compared += 1
    assert compared >= 20


def standing(updates: list[WindowsUpdate], build: int, server: bool, ubr: int) -> tuple[str | None, list[str]]:
    found = windows.standing(line(updates, build, server), ubr)
    return (found.level.month if found.level else None), [m.month for m in found.missing]


def test_hosts_at_real_builds_stand_where_they_should(updates: list[WindowsUpdate]) -> None:
    assert standing(updates, 26100, False, 8037) == ("2026-03", [])  # up to date
    assert standing(updates, 22631, False, 6649) == ("2026-02", ["2026-03"])  # one month behind
    assert standing(updates, 26100, False, 7979) == ("2026-03", [])  # hotpatched: below March's 8037
    assert standing(updates, 26100, False, 7781) == ("2026-02", ["2026-03"])  # February's hotpatch
    # February's cumulative 7840 is above February's hotpatch, below March's: not March
    assert standing(updates, 26100, False, 7840) == ("2026-02", ["2026-03"])
    # a Server 2025 host still on the client sequence: patched by no month since January
    assert standing(updates, 26100, True, 7840) == ("2025-12", ["2026-01", "2026-02", "2026-03"])
    assert standing(updates, 26100, True, 32463) == ("2026-03", [])
    assert standing(updates, 22631, False, 4000) == (None, list(msrc_months()))  # older than every month


def msrc_months() -> list[str]:
    return ["2025-11", "2025-12", "2026-01", "2026-02", "2026-03"]


def host(name: str, build: int, ubr: int, *, server: bool = False, collected: str = "2026-03-31",
         in_directory: bool = False, product: str = "") -> Host:
    windows_build = WindowsBuild(name=name, build=build, ubr=ubr, server=server,
                                 collected=dt.datetime.fromisoformat(collected + "T09:00:00+00:00"),
                                 where=Where("exports/builds.csv", 2), in_directory=in_directory,
                                 product_name=product)
    return Host(address="", asset=name, state=RECORD_STATE,
                evidence=HostEvidence(windows=windows_build, read=frozenset({EvidenceKind.WINDOWS})))


def judged(intel: IntelStore, item: Host, deadline_days: int = 14, check: Check = windows_missing_update) -> list[str]:
    ctx = CheckContext(now=dt.datetime(2026, 4, 1, tzinfo=dt.UTC), intel=intel,
                       policy=EstatePolicy(patch_deadline=dt.timedelta(days=deadline_days)))
    return [f"{w.severity.name} {w.title} | {w.evidence}" for w in check.run(item, ctx)]


def test_the_check_names_the_month_the_kb_and_the_cves(intel: IntelStore) -> None:
    assert judged(intel, host("PC-CURRENT", 26100, 8037)) == []
    assert judged(intel, host("PC-HOTPATCH", 26100, 7979)) == []
    behind = judged(intel, host("PC-BEHIND", 22631, 6649))
    assert len(behind) == 1
    assert "missing security updates since March 2026" in behind[0]
    assert "build 10.0.22631.6649" in behind[0] and "KB5078883" in behind[0]
    server = judged(intel, host("SRV-2025", 26100, 7840, server=True))
    assert "since January 2026" in server[0] and "10.0.26100.32522" in server[0]
    # February's exploited zero-days are among what it lacks: critical
    assert server[0].startswith("CRITICAL")
    assert "marked exploited by Microsoft: CVE-2026-20805, CVE-2026-21510" in server[0]
    ancient = judged(intel, host("PC-ANCIENT", 22631, 4000))
    assert "since at least November 2025" in ancient[0]


def test_the_deadline_counts_from_release_to_the_evidence_date(intel: IntelStore) -> None:
    # March's update came out on the 10th: by the 20th it is not yet 14 days late
    assert judged(intel, host("PC-NEW", 22631, 6649, collected="2026-03-20")) == []
    assert judged(intel, host("PC-NEW", 22631, 6649, collected="2026-03-25")) != []
    assert judged(intel, host("PC-NEW", 22631, 6649, collected="2026-03-25"), deadline_days=30) == []


def test_releases_that_need_esu_or_are_no_longer_updated_are_left_to_wa205(intel: IntelStore) -> None:
    # Windows 10 22H2 behind on its ESU-only updates: the release is WA205's, not a second finding
    assert judged(intel, host("PC-WIN10", 19045, 6809)) == []
    # Windows 10 21H2 LTSC is still updated outside ESU: judged
    assert judged(intel, host("PC-LTSC", 19044, 6809)) != []
    # Windows 11 22H2 (22621) got its last update in November 2025: not judged here
    assert judged(intel, host("PC-22H2", 22621, 5000)) == []


def test_releases_no_longer_updated_or_only_under_esu_are_wa206s(intel: IntelStore) -> None:
    def said(item: Host) -> list[str]:
        return judged(intel, item, check=windows_release_unserviced)
    assert said(host("PC-CURRENT", 26100, 8037)) == []
    assert said(host("PC-BEHIND", 22631, 6649)) == []  # behind, but on a release still updated: WA104's
    esu_current = said(host("PC-WIN10", 19045, 7058))
    assert len(esu_current) == 1 and esu_current[0].startswith("LOW")
    assert "relies on Extended Security" in esu_current[0]
    esu_behind = said(host("PC-WIN10", 19045, 6809))
    assert esu_behind[0].startswith("HIGH") and "KB5078885" in esu_behind[0] and "lacks them" in esu_behind[0]
    ended = said(host("PC-22H2", 22621, 6060))
    assert ended[0].startswith("HIGH")
    assert "last security update in the documents loaded is KB5066793 (listed November 2025)" in ended[0]
    # Windows 10 1909 is in no document loaded: endoflife.date's dates decide
    ancient = said(host("PC-1909", 18363, 2274, product="Windows 10 Enterprise"))
    assert ancient[0].startswith("HIGH") and "support ended 2022-05-10" in ancient[0]
    # the directory lists it: WA205 judges its support there, and it is not counted twice
    assert said(host("PC-22H2", 22621, 6060, in_directory=True)) == []


def test_registry_and_intune_exports_are_read(tmp_path: Path) -> None:
    registry = ("\ufeff" + REGISTRY_HEADER + "\r\n"
                '"PC-FIN-01","Windows 10 Pro","Professional","24H2","Client","26100","7840","2026-03-30T08:00:00Z"\r\n'
                '"SRV-DC1","Windows Server 2025 Datacenter","ServerDatacenter","24H2","Server Core","26100",'
                '"32522","2026-03-30T08:00:00.1234567+00:00"\r\n')
    builds = exports(registry, "builds.csv")
    assert [(b.name, b.version, b.server) for b in builds] == [("PC-FIN-01", "10.0.26100.7840", False),
                                                               ("SRV-DC1", "10.0.26100.32522", True)]
    intune = ("deviceName,operatingSystem,osVersion,lastSyncDateTime\n"
              "LT-0042,Windows,10.0.22631.6649,2026-03-29T10:00:00Z\nIPAD-7,iOS,18.3,2026-03-29T10:00:00Z\n")
    assert [(b.name, b.version, b.server) for b in exports(intune, "intune.csv")] == [
        ("LT-0042", "10.0.22631.6649", False)]


@pytest.mark.parametrize(("text", "says"), [
    ("ComputerName,UBR\nPC1,5\n", "missing columns ProductName"),
    (REGISTRY_HEADER + "\nPC1,W,E,24H2,Desktop,26100,1,2026-03-01T00:00:00Z\n", "InstallationType 'Desktop'"),
    (REGISTRY_HEADER + "\nPC1,W,E,24H2,Client,26100,８０３７,2026-03-01T00:00:00Z\n", "UBR"),
    (REGISTRY_HEADER + "\nPC1,W,E,24H2,Client,26100,8037,yesterday\n", "CollectedAt"),
    (REGISTRY_HEADER + "\n<script>,W,E,24H2,Client,26100,8037,2026-03-01T00:00:00Z\n", "not a computer name"),
    (REGISTRY_HEADER + "\nPC1,W,E\n", "3 fields where the header has 8"),
    ("deviceName,operatingSystem,osVersion,lastSyncDateTime\nPC1,Windows,11,2026-03-01T00:00:00Z\n", "osVersion"),
])
def test_a_malformed_export_is_refused_with_the_line(text: str, says: str) -> None:
    with pytest.raises(EvidenceError, match=says):
        exports(text, "x.csv")


@pytest.mark.parametrize("data", [b"<cvrf:cvrfdoc", b"{\"DocumentTracking\": 5}", b"<a/>", b"\xff\xfe\x00",
                                  b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
                                  b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><x>&c;</x>'])
def test_a_hostile_document_is_a_feed_error(data: bytes) -> None:
    with pytest.raises(FeedError):
        msrc.read(data)


def test_the_json_form_reads_like_the_xml(updates: list[WindowsUpdate]) -> None:
    """The API's JSON form (numbered types, {"Value": ...} texts) of one March vulnerability
    gives the same fixes as the XML for it."""
    document = {
        "DocumentTracking": {"Identification": {"ID": {"Value": "2026-Mar"}},
                             "InitialReleaseDate": "2026-03-10T07:00:00Z"},
        "ProductTree": {"Branch": [{"Items": [{"Name": "ESU", "Items": [
            {"ProductID": "12099", "Value": "Windows 10 Version 22H2 for 32-bit Systems"}]}]}],
            "FullProductName": [{"ProductID": "12390", "Value": "Windows 11 Version 24H2 for x64-based Systems"},
                                {"ProductID": "12099", "Value": "Windows 10 Version 22H2 for 32-bit Systems"}]},
        "Vulnerability": [{"CVE": "CVE-2026-21510", "Threats": [
            {"Type": 1, "Description": {"Value": "Publicly Disclosed:No;Exploited:Yes;Latest Software Release:"
                                                 "Exploitation Detected"}}],
            "Remediations": [
                {"Type": 2, "SubType": "Security Update", "Description": {"Value": "5079473"},
                 "FixedBuild": "10.0.26100.8037", "ProductID": ["12390"]},
                {"Type": 2, "SubType": "Security Update", "Description": {"Value": "Release Notes"},
                 "FixedBuild": "", "ProductID": ["12390"]},
                {"Type": 2, "SubType": "Security Update", "Description": {"Value": "5078885"},
                 "FixedBuild": "10.0.19045.7058", "ProductID": ["12099"]}]}]}
    read = msrc.read(("\ufeff" + json.dumps(document)).encode())
    assert [(u.build, u.ubr, u.kb, u.esu, u.exploited) for u in read] == [
        (19045, 7058, "5078885", True, ("CVE-2026-21510",)), (26100, 8037, "5079473", False, ("CVE-2026-21510",))]


def test_a_document_with_a_byte_order_mark_reads_the_same(documents: Path) -> None:
    """Microsoft's 2023-Jan to 2023-Mar XML documents begin with a UTF-8 BOM."""
    plain = (documents / "cvrfDocument-2026-Feb.xml").read_bytes()
    assert msrc.read(b"\xef\xbb\xbf" + plain) == msrc.read(plain) != []


def test_month_ids_wait_for_patch_tuesday() -> None:
    assert msrc.month_ids(dt.date(2026, 3, 9), 3) == ["2025-Dec", "2026-Jan", "2026-Feb"]
    assert msrc.month_ids(dt.date(2026, 3, 15), 2) == ["2026-Feb", "2026-Mar"]


def write_config(folder: Path, exports_folder: Path) -> Path:
    config = folder / "warpagent.yaml"
    config.write_text("organisation: {name: Fenwick Vale Council}\nstore: ./w.db\n"
                      "feeds: {bundled: false, sources: [msrc, kev]}\n"
                      f"estates:\n  - name: corporate\n    windows_updates: ['{exports_folder}']\n")
    return config


def test_a_council_imports_the_documents_and_scans_its_exports(documents: Path, tmp_path: Path) -> None:
    import_folder = tmp_path / "import"
    import_folder.mkdir()
    for month in MONTHS:
        name = f"cvrfDocument-{month}.xml"
        (import_folder / name).write_bytes((documents / name).read_bytes())
    # CISA added February's Windows zero-day to KEV on its release day (a one-entry catalogue in KEV's format)
    (import_folder / "known_exploited_vulnerabilities.json").write_text(json.dumps({
        "title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2026.02.10",
        "dateReleased": "2026-02-10T18:00:00.000Z", "count": 1, "vulnerabilities": [{
            "cveID": "CVE-2026-21510", "vendorProject": "Microsoft", "product": "Windows",
            "vulnerabilityName": "Microsoft Windows Shell Protection Mechanism Failure Vulnerability",
            "dateAdded": "2026-02-10", "shortDescription": "Windows Shell security feature bypass.",
            "requiredAction": "Apply mitigations per vendor instructions.", "dueDate": "2026-03-03",
            "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": []}]}))
    shares = tmp_path / "exports"
    shares.mkdir()
    (shares / "PC-FIN-01.csv").write_bytes(("\ufeff" + REGISTRY_HEADER + "\r\n" + '"PC-FIN-01","Windows 10 Pro",'
                                            '"Professional","24H2","Client","26100","8037","2026-03-30T08:00:00Z"\r\n')
                                           .encode())
    (shares / "SRV-FILES.csv").write_text(REGISTRY_HEADER + "\nSRV-FILES,Windows Server 2025 Standard,ServerStandard,"
                                          "24H2,Server,26100,7840,2026-03-30T08:00:00Z\n")
    (shares / "intune.csv").write_text("deviceName,operatingSystem,osVersion,lastSyncDateTime\n"
                                       "LT-0042,Windows,10.0.22631.6649,2026-03-29T10:00:00Z\n"
                                       "LT-OLD,Windows,10.0.22631.6199,2026-01-02T10:00:00Z\n")
    (shares / "broken.csv").write_text("ComputerName\nPC-X\n")
    config = write_config(tmp_path, shares)
    now = dt.datetime(2026, 3, 31, 2, 0, tzinfo=dt.UTC)
    updated = run_cli("--config", str(config), "feeds", "update", "--from", str(import_folder), cwd=tmp_path, now=now)
    assert updated.returncode == 0, updated.stderr
    scanned = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path, now=now)
    assert scanned.returncode == 3, scanned.stdout + scanned.stderr  # the broken export makes the run partial
    assert "broken.csv: skipped: line 1: not a Windows update export" in scanned.stderr + scanned.stdout
    found = json.loads(run_cli("--config", str(config), "findings", "--format", "json", cwd=tmp_path,
                               now=now).stdout)
    by_asset = {f["asset"]: f for f in found["findings"] if f["check_id"] == "WA104"}
    assert set(by_asset) == {"SRV-FILES", "LT-0042", "LT-OLD"}
    assert by_asset["SRV-FILES"]["severity"] == "critical" and "CVE-2026-21510" in by_asset["SRV-FILES"]["cves"]
    assert by_asset["SRV-FILES"]["kev_due"] == "2026-03-03"
    assert by_asset["LT-0042"]["severity"] == "high"
    assert "older than 30 days" in scanned.stdout + scanned.stderr and "LT-OLD" in scanned.stdout + scanned.stderr

    # shared: the weakness and its CVEs, never a computer's name, the council or the export's path
    env = {"WARPAGENT_PSEUDONYM_KEY": "4b" * 32}
    shared = run_cli("--config", str(config), "share", "--dry-run", "--out", "bundle.json", cwd=tmp_path, env=env,
                     now=now)
    assert shared.returncode == 0, shared.stderr
    bundle = (tmp_path / "bundle.json").read_text().casefold()
    assert "wa104" in bundle and "cve-2026-21510" in bundle
    for needle in ("PC-FIN-01", "SRV-FILES", "LT-0042", "LT-OLD", "Fenwick Vale", "corporate", str(shares)):
        assert needle.casefold() not in bundle, needle


def test_a_directory_computer_with_no_export_row_is_named_not_measured() -> None:
    from warpagent.evidence.windows_exports import unreported
    from warpagent.model.directory import AccountFlag, DirectoryAccount, DirectorySnapshot
    now = dt.datetime(2026, 3, 31, tzinfo=dt.UTC)

    def computer(name: str, flags: AccountFlag = AccountFlag.WORKSTATION_TRUST_ACCOUNT) -> DirectoryAccount:
        return DirectoryAccount(name=name, dn=f"CN={name},DC=x", flags=flags, computer=True,
                                created=now - dt.timedelta(days=400), last_logon=now - dt.timedelta(days=2),
                                operating_system="Windows 11 Enterprise", os_version="10.0 (26100)")
    snapshot = DirectorySnapshot(base_dn="DC=x", accounts=(computer("PC-01$"), computer("PC-02$"),
                                                           computer("PC-OFF$", AccountFlag.ACCOUNTDISABLE)),
                                 groups=(), policies=(), protected_users=frozenset(), machine_account_quota=None,
                                 laps_in_schema=())
    reported = [WindowsBuild(name="pc-01", build=26100, ubr=8037, server=False, collected=now, where=Where("a.csv"))]
    assert unreported(snapshot, reported, now) == (
        "Windows update level not measured for 1 computer(s) in Active Directory with no row in the estate's "
        "windows_updates exports: PC-02")
