"""Intel feeds: loaders on real data, matching semantics, backports, priority, and the checks."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import subprocess
from pathlib import Path

import pytest

from checks import CheckContext, patches, unsupported
from checks.priority import prioritise
from feeds import applicability, cpe, endoflife, epss, kev, nvd, osv, versions
from feeds.intel_store import IntelStore
from feeds.model import CveFacts, FeedError, KevEntry
from tests.intel_data import ASSETS, EOL_PRODUCTS, KEV_FILE, build_intel
from warpagent.model.findings import Host, Package, Platform, Service, Severity

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def intel(tmp_path_factory: pytest.TempPathFactory) -> IntelStore:
    settings = build_intel(tmp_path_factory.mktemp("intel"))
    store = IntelStore(settings.intel_path)
    yield store
    store.close()


def ssh(version: str, port: int = 22) -> Service:
    upstream = version.split()[0]
    return Service(port=port, protocol="tcp", state="open", name="ssh", product="OpenSSH", version=version,
                   extrainfo="protocol 2.0", cpes=(f"cpe:/a:openbsd:openssh:{upstream}", "cpe:/o:linux:linux_kernel"))


def host(*services: Service, packages: tuple[Package, ...] = (), platform: Platform | None = None) -> Host:
    return Host(address="198.18.9.9", asset="host-a", services=services, packages=packages, platform=platform)


def run(check: object, target: Host, intel: IntelStore) -> list:
    return list(check.run(target, CheckContext(now=NOW, intel=intel)))  # type: ignore[attr-defined]


# --- loaders on real data -------------------------------------------------------------------

def test_real_kev_catalog_loads_with_ransomware_flags() -> None:
    version, entries = kev.load(KEV_FILE)
    assert version == "2025.08.25" and len(entries) == 1404
    by_cve = {e.cve: e for e in entries}
    log4shell = by_cve["CVE-2021-44228"]
    assert log4shell.ransomware and log4shell.due_date == dt.date(2021, 12, 24)
    assert by_cve["CVE-2021-41773"].vendor == "Apache"


def test_real_endoflife_pages_load_with_cycles_and_cpes() -> None:
    products = {p.name: p for p in endoflife.load(EOL_PRODUCTS.parent)}
    assert len(products) == 464
    apache = products["apache-http-server"]
    assert "cpe:2.3:a:apache:http_server" in apache.cpes
    cycle = next(c for c in apache.cycles if c.cycle == "2.2")
    assert cycle.eol == dt.date(2017, 7, 11) and cycle.latest == "2.2.34"


def test_endoflife_api_v1_json_loads(tmp_path: Path) -> None:
    doc = {"schema_version": "1.2.0", "total": 1, "result": [{
        "name": "nginx", "label": "nginx", "category": "server-app",
        "identifiers": [{"type": "cpe", "id": "cpe:2.3:a:f5:nginx"}, {"type": "purl", "id": "pkg:generic/nginx"}],
        "releases": [{"name": "1.18", "releaseDate": "2020-04-21", "isEol": True, "eolFrom": "2021-04-20",
                      "isLts": False, "latest": {"name": "1.18.0", "date": "2020-04-21"}}]}]}
    path = tmp_path / "full.json"
    path.write_text(json.dumps(doc))
    [product] = endoflife.load(path)
    assert product.cpes == ("cpe:2.3:a:f5:nginx",) and product.purls == ("pkg:generic/nginx",)
    assert product.cycles[0].eol == dt.date(2021, 4, 20) and product.cycles[0].latest == "1.18.0"


def test_epss_gzip_with_metadata_line(tmp_path: Path) -> None:
    path = tmp_path / "epss.csv.gz"
    path.write_bytes(gzip.compress((ASSETS / "epss.csv").read_bytes()))
    date, scores = epss.load(path)
    assert date.startswith("2026-11-24")
    assert {s.cve: s.score for s in scores}["CVE-2021-41773"] == pytest.approx(0.94441)


@pytest.mark.parametrize("name, content, loader, message", [
    ("kev.json", b'{"count": 3, "catalogVersion": "x", "vulnerabilities": [{"cveID": "CVE-2021-44228"}]}',
     lambda p: kev.load(p), "truncated"),
    ("kev.json", b'{"vulnerabilities": [{"cveID": "CVE-1", "dateAdded": "2021-01-01", "dueDate": "x"}]}',
     lambda p: kev.load(p), "vulnerabilities[0]"),
    ("e.csv.gz", gzip.compress(b"#model_version:v1,score_date:2026-01-01\ncve,epss,percentile\nCVE-2021-1,0.5,0.9\n"
                               )[:-12],
     lambda p: epss.load(p), "truncated"),
    ("e.csv", b"cve,epss,percentile\nCVE-2021-1,1.7,0.9\n", lambda p: epss.load(p), "between 0 and 1"),
    ("nvd.json", b'{"resultsPerPage": 2, "vulnerabilities": [{"cve": {"id": "CVE-2024-1"}}]}',
     lambda p: nvd.load(p), "truncated"),
    ("nvd.json", b'{"vulnerabilities": [{"cve": {"id": "CVE-2024-1"', lambda p: nvd.load(p), "not a readable"),
    ("all.zip", b"PK\x03\x04 not really a zip", lambda p: osv.load(p), "not a readable OSV archive"),
    ("p.md", b"---\ntitle: x\n---\n", lambda p: endoflife.product_from_page(p), "releases"),
])
def test_malformed_feed_files_are_rejected_naming_the_file(tmp_path: Path, name: str, content: bytes,
                                                           loader: object, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FeedError) as caught:
        loader(path)  # type: ignore[operator]
    assert str(path) in str(caught.value) and message in str(caught.value)


# --- version comparison and CPEs ------------------------------------------------------------

def test_dpkg_comparison_agrees_with_dpkg_on_this_machines_versions() -> None:
    installed = subprocess.run(["dpkg-query", "-W", "-f", "${Version}\n"], capture_output=True, text=True,
                               check=True).stdout.split()
    tricky = ["1:9.2p1-2+deb12u3", "1:9.2p1-2+deb12u10", "9.2p1-2", "1.0~rc1-1", "1.0-1", "1.0+b1", "2.36-9+deb12u7"]
    pool = sorted(set(installed + tricky))
    rng = random.Random(7)  # noqa: S311 - a repeatable sample, not a secret
    pairs = [(rng.choice(pool), rng.choice(pool)) for _ in range(300)] + [(a, b) for a in tricky for b in tricky]
    script = "\n".join(f"if dpkg --compare-versions '{a}' lt '{b}'; then echo -1; "
                       f"elif dpkg --compare-versions '{a}' eq '{b}'; then echo 0; else echo 1; fi" for a, b in pairs)
    expected = [int(x) for x in subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                                               check=True).stdout.split()]
    assert len(pairs) >= 300
    assert [versions.dpkg_compare(a, b) for a, b in pairs] == expected


@pytest.mark.parametrize("a, b, expected", [
    ("9.2p1", "9.8", -1), ("9.8p1", "9.8", 1), ("9.8", "9.8", 0), ("2.4.0-rc1", "2.4.0", -1),
    ("2.4.0rc1", "2.4.0", -1), ("2.4.49", "2.4.5", 1), ("1.0.2k", "1.0.2", 1), ("4.4", "4.4p1", -1)])
def test_upstream_versions_compare_as_upstream_means(a: str, b: str, expected: int) -> None:
    assert versions.upstream_compare(a, b) == expected


def test_rpm_comparison_through_univers() -> None:
    assert versions.rpm_compare("1.2.3-4.el8", "1.2.3-10.el8") == -1
    assert versions.rpm_compare("1:1.0-1", "2.0-1") == 1


def test_cpe_22_uri_from_nmap_becomes_23() -> None:
    name = cpe.parse("cpe:/a:openbsd:openssh:9.2p1")
    assert name.uri23() == "cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*"
    assert cpe.split_openssh_update(name).version == "9.2" and cpe.split_openssh_update(name).update == "p1"
    assert cpe.parse(r"cpe:2.3:a:foo\:bar:baz:1.0:*:*:*:*:*:*:*").vendor == "foo:bar"
    with pytest.raises(ValueError):
        cpe.parse("cpe:2.3:a:too:few")


# --- NVD applicability ----------------------------------------------------------------------

RANGED = [{"nodes": [{"operator": "OR", "cpeMatch": [
    {"vulnerable": True, "criteria": "cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*",
     "versionStartIncluding": "8.5", "versionEndExcluding": "9.8"}]}]}]
PLATFORM = [{"operator": "AND", "nodes": [
    {"operator": "OR", "cpeMatch": [{"vulnerable": True, "criteria": "cpe:2.3:a:acme:agent:*:*:*:*:*:*:*:*",
                                     "versionEndIncluding": "2.0"}]},
    {"operator": "OR", "cpeMatch": [{"vulnerable": False,
                                     "criteria": "cpe:2.3:o:microsoft:windows:-:*:*:*:*:*:*:*"}]}]}]


@pytest.mark.parametrize("version, vulnerable", [("8.4p1", False), ("8.5p1", True), ("9.2p1", True),
                                                 ("9.7p1", True), ("9.8p1", False), ("9.8", False)])
def test_version_ranges_start_including_end_excluding(version: str, vulnerable: bool) -> None:
    match = applicability.evaluate("CVE-2024-6387", RANGED, cpe.parse(f"cpe:/a:openbsd:openssh:{version}"))
    assert (match is not None) is vulnerable
    if match:
        assert match.fixed == "9.8"


def test_platform_context_must_hold_but_is_not_itself_vulnerable() -> None:
    agent = cpe.parse("cpe:/a:acme:agent:1.5")
    assert applicability.evaluate("CVE-X", PLATFORM, agent, [cpe.parse("cpe:/o:linux:linux_kernel")]) is None
    on_windows = applicability.evaluate("CVE-X", PLATFORM, agent, [cpe.parse("cpe:/o:microsoft:windows")])
    assert on_windows is not None and on_windows.last_affected == "2.0"
    # the platform alone (no vulnerable application) never matches
    windows = cpe.parse("cpe:/o:microsoft:windows")
    assert applicability.evaluate("CVE-X", PLATFORM, windows, [windows]) is None
    negated = [{"nodes": [{"operator": "OR", "negate": True, "cpeMatch": PLATFORM[0]["nodes"][0]["cpeMatch"]}]}]
    assert applicability.evaluate("CVE-X", negated, agent) is None


def test_unknown_version_never_falls_inside_a_range() -> None:
    assert applicability.evaluate("CVE-2024-6387", RANGED, cpe.parse("cpe:/a:openbsd:openssh")) is None


# --- the compiled store and the checks ------------------------------------------------------

def test_nmap_vendor_names_are_aliased_to_nvds(intel: IntelStore) -> None:
    [match] = intel.nvd_matches("cpe:/a:vsftpd:vsftpd:2.3.4", [])
    assert match.cve == "CVE-2011-2523"
    assert intel.nvd_matches("cpe:/a:vsftpd:vsftpd:3.0.3", []) == []


def test_old_openssh_banner_is_a_patches_finding_with_priority(intel: IntelStore) -> None:
    [weakness] = run(patches.vulnerable_service_version, host(ssh("9.2p1")), intel)
    assert weakness.cves == ("CVE-2024-6387",) and weakness.subject == "22/tcp"
    assert weakness.severity == Severity.HIGH  # CVSS 8.1, EPSS 0.36 (>= 0.1): high, not in KEV
    assert weakness.epss == pytest.approx(0.36401) and weakness.cvss == pytest.approx(8.1)
    assert "9.8 or later" in weakness.remediation and "confidence medium" in weakness.evidence


def test_kev_cve_makes_a_critical_finding_with_its_due_date(intel: IntelStore) -> None:
    apache = Service(port=80, protocol="tcp", state="open", name="http", product="Apache httpd", version="2.4.49",
                     extrainfo="(Unix)", cpes=("cpe:/a:apache:http_server:2.4.49",))
    [weakness] = run(patches.vulnerable_service_version, host(apache), intel)
    assert weakness.cves[0] == "CVE-2021-41773" and weakness.severity == Severity.CRITICAL
    assert weakness.kev_due == dt.date(2021, 11, 17)
    assert "actively exploited (CISA KEV, due 2021-11-17" in weakness.evidence


def test_backported_debian_fix_is_not_reported_though_upstream_is_in_the_nvd_range(intel: IntelStore) -> None:
    patched = host(ssh("9.2p1 Debian 2+deb12u3"))
    assert run(patches.vulnerable_service_version, patched, intel) == []  # never judged by NVD ranges
    assert run(patches.distro_service_missing_fixes, patched, intel) == []
    [older] = run(patches.distro_service_missing_fixes, host(ssh("9.2p1 Debian 2+deb12u2")), intel)
    assert older.cves == ("CVE-2024-6387",) and "DSA-5724-1" in older.evidence
    assert "1:9.2p1-2+deb12u3" in older.remediation and "confidence high" in older.evidence
    [oldest] = run(patches.distro_service_missing_fixes, host(ssh("9.2p1 Debian 2+deb12u1")), intel)
    assert set(oldest.cves) == {"CVE-2024-6387", "CVE-2023-48795"}
    assert oldest.severity == Severity.CRITICAL  # EPSS 0.55 for Terrapin


def test_installed_packages_are_matched_to_advisories_by_source_package(intel: IntelStore) -> None:
    packages = (Package("openssh-server", "1:9.2p1-2+deb12u2", source="openssh", ecosystem="Debian:12"),
                Package("openssh-client", "1:9.2p1-2+deb12u2", source="openssh", ecosystem="Debian:12"),
                Package("openssh-sftp-server", "1:9.2p1-2+deb12u3", source="openssh", ecosystem="Debian:12"))
    found = run(patches.packages_missing_fixes, host(packages=packages), intel)
    [weakness] = [w for w in found if w.version == "1:9.2p1-2+deb12u2"]
    assert weakness.subject == "package:openssh" and weakness.cves == ("CVE-2024-6387",)
    assert "openssh-client openssh-server" in weakness.remediation
    assert all(w.version != "1:9.2p1-2+deb12u3" for w in found)


def test_eol_product_and_squeeze_banner_are_unsupported(intel: IntelStore) -> None:
    apache = Service(port=80, protocol="tcp", state="open", name="http", product="Apache httpd", version="2.2.34",
                     extrainfo="(Unix)", cpes=("cpe:/a:apache:http_server:2.2.34",))
    [eol] = run(unsupported.product_past_eol, host(apache), intel)
    assert eol.title == "Apache HTTP Server 2.2 is past end of life" and eol.severity == Severity.HIGH
    assert "2.4" in eol.remediation
    [os_eol] = run(unsupported.os_past_support, host(ssh("5.5p1 Debian 6+squeeze5")), intel)
    assert os_eol.subject == "os:debian" and os_eol.severity == Severity.HIGH and "Squeeze" in os_eol.title
    # bookworm's regular support ended on 2026-07-11; Debian LTS carries it to 2028: medium, not high
    [lts] = run(unsupported.os_past_support, host(ssh("9.2p1 Debian 2+deb12u3")), intel)
    assert lts.severity == Severity.MEDIUM and "extended support remains, until 2028-06-30" in lts.evidence
    assert run(unsupported.os_past_support, host(ssh("10.0p1 Debian 7+deb13u1")), intel) == []


def test_package_whose_security_support_ended(intel: IntelStore) -> None:
    ended = IntelStore.support_ended  # the real debian-security-support list names these for bookworm
    assert ended(intel, "deb12", "wpewebkit") is not None
    packages = (Package("libwpewebkit-1.1-0", "2.38.6-1", source="wpewebkit", ecosystem="Debian:12"),)
    [weakness] = run(unsupported.package_support_ended, host(packages=packages), intel)
    assert weakness.subject == "package:wpewebkit" and weakness.severity == Severity.MEDIUM


def test_priority_orders_kev_ransomware_then_epss_then_cvss() -> None:
    def kev_entry(cve: str, ransomware: bool) -> KevEntry:
        return KevEntry(cve, "v", "p", "n", dt.date(2025, 1, 1), dt.date(2025, 1, 22), ransomware, "patch")
    facts = {
        "CVE-1": CveFacts("CVE-1", cvss=10.0),
        "CVE-2": CveFacts("CVE-2", cvss=5.0, kev=kev_entry("CVE-2", False)),
        "CVE-3": CveFacts("CVE-3", cvss=4.0, kev=kev_entry("CVE-3", True)),
        "CVE-4": CveFacts("CVE-4", cvss=3.0),
    }
    from feeds.model import EpssScore
    facts["CVE-4"] = CveFacts("CVE-4", cvss=3.0, epss=EpssScore("CVE-4", 0.2, 0.9))
    priority = prioritise(facts, facts)
    assert priority.cves == ("CVE-3", "CVE-2", "CVE-4", "CVE-1")
    assert priority.severity == Severity.CRITICAL and priority.ransomware
    assert prioritise(["CVE-4"], facts).severity == Severity.HIGH  # EPSS 0.2 lifts a low CVSS
    assert prioritise(["CVE-9"], {}).severity == Severity.MEDIUM  # unknown is not harmless


def test_board_counts_kev_findings_past_due_and_turns_red() -> None:
    from reports import board
    from warpagent.config import RagRules
    from warpagent.model.findings import Finding, FindingStatus, TrackedFinding

    def tracked(age_days: int, kev: bool) -> TrackedFinding:
        finding = Finding(estate="e", asset=f"h{age_days}", check_id="WA101", category="patches",
                          severity=Severity.MEDIUM, title="t", evidence="e", remediation="r", subject="80/tcp",
                          cves=("CVE-2021-41773",), kev_due=dt.date(2021, 11, 17) if kev else None)
        seen = NOW - dt.timedelta(days=age_days)
        return TrackedFinding(finding=finding, first_seen=seen, last_seen=NOW, status=FindingStatus.OPEN)

    findings = [tracked(20, True), tracked(3, True), tracked(40, False)]
    from warpagent.model.findings import RunId, RunStatus, ScanRun

    scanned = [ScanRun(id=RunId(1), estate="e", started=NOW - dt.timedelta(days=60),
                       finished=NOW - dt.timedelta(days=60), status=RunStatus.COMPLETE)]
    report = board.build(findings, scanned, organisation="T", title="t", month="2026-11", now=NOW, rules=RagRules(),
                         measured={"patches", "configs"})
    assert (report.remediation.kev_open, report.remediation.kev_past_due) == (2, 1)
    patches_row = next(c for c in report.categories if c.category == "patches")
    assert patches_row.rag == "red" and "1 actively exploited (CISA KEV) open longer than 14 days" in patches_row.rule
    unmeasured = board.build(findings, scanned, organisation="T", title="t", month="2026-11", now=NOW, rules=RagRules(),
                             measured={"configs"})
    assert unmeasured.remediation.kev_open is None


def test_osv_all_zip_loads_like_the_records_it_holds(tmp_path: Path) -> None:
    import zipfile

    records = sorted((ASSETS / "osv" / "Debian").glob("*.json"))
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for record in records:
            out.write(record, record.name)
    from_zip = osv.load(archive)
    assert sorted(from_zip, key=repr) == sorted(osv.load(ASSETS / "osv" / "Debian"), key=repr)
    assert {(f.ecosystem, f.fixed) for f in from_zip} == {
        ("Debian:12", "1:9.2p1-2+deb12u3"), ("Debian:12", "1:9.2p1-2+deb12u2"), ("Debian:11", "1:8.4p1-5+deb11u3")}
    terrapin = next(f for f in from_zip if f.advisory == "DEBIAN-CVE-2023-48795")
    assert terrapin.cves == ("CVE-2023-48795",) and terrapin.cvss == pytest.approx(5.9)  # from the CVSS vector
