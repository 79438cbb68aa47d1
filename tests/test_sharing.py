"""Anonymised sharing: the anonymiser, the STIX bundle, and real TAXII 2.1 round trips through medallion."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stix2

from checks import CheckContext
from tests.conftest import ASSETS, RECORDED_AT, run_cli
from tests.taxii_server import REGIONAL_ID, FaultProxy, Medallion, free_port
from warpagent import config
from warpagent.collect import nmap_xml
from warpagent.model.findings import CATEGORY_NAMES, Finding, FindingStatus, Inventory, Severity, TrackedFinding
from warpagent.scan import engine
from warpagent.sharing import anonymise, buckets, share, software, stix_bundle
from warpagent.sharing.outbox import Outbox
from warpagent.store.findings import Store
from warpagent.store.lifecycle import RunReport
from warpagent.store.peer_intel import PeerIntel

ORG = "Test Borough Council"
RECORDED_DAY = RECORDED_AT.date()
KEY = "0123456789abcdef0123456789abcdef"  # tests only
NMAP_NAMES = share.scanned_products("nmap")  # the products a network service's finding may share
NAMES = {"198.18.18.10": "weak-web.council.test", "198.18.18.11": "infra01.council.test"}
# Every string of the test estate and config that identifies the council, a host or a person.
IDENTIFYING = [ORG, "Test Borough", "corporate-estate", "member-a", "pw-for-member-a", "198.18.18.10",
               "198.18.18.11", "198.18.18.20", "198.18.18", "weak-web.council.test", "infra01.council.test",
               "weak-web.estate.test", "control.estate.test", "Estate Test CA", "nobody@estate.test",
               "council.test", "estate.test", KEY]


def deliver(settings: config.Settings, outbox: Outbox | None = None, **options: Any) -> list[share.PeerReport]:
    return share.deliver(settings.sharing, settings.secret, outbox or Outbox(settings.sharing.outbox), **options)


def pull(settings: config.Settings, intel: PeerIntel, **options: Any) -> list[share.PeerReport]:
    return share.pull(settings.sharing, settings.secret, intel, **options)


def _config(path: Path, peers: str = "", extra: str = "") -> Path:
    path.write_text(f"""organisation: {{name: {ORG}, region: north-west, sector: local-government}}
store: ./warpagent.db
estates:
  - name: corporate-estate
    targets: [198.18.18.0/24, weak-web.council.test]
sharing:
  k: 3
{extra}  peers: [{peers}]
""")
    return path


def _populate(db: Path, when: dt.datetime = RECORDED_AT) -> int:
    """A store holding the recorded estate's findings, as a real scan would leave it."""
    parsed = nmap_xml.parse((ASSETS / "nmap-estate.xml").read_text(), NAMES)
    inventory = Inventory(estate="corporate-estate", hosts=parsed.hosts, scanned=parsed.finished)
    findings = engine.evaluate(inventory, CheckContext(now=when)).findings
    with Store(db) as store:
        run = store.begin_run("corporate-estate", when)
        assets = frozenset(h.asset for h in parsed.hosts)
        store.record_run(run, RunReport(findings=tuple(findings), finished=when, complete=True,
                                        observed_assets=assets, in_scope_assets=assets, hosts_scanned=3))
    return len(findings)


def _peer(name: str, url: str, user: str = "member-a", extra: str = "") -> str:
    return (f"{{name: {name}, url: '{url}', collection: members, username: {user}, password_env: WARP_PW, "
            f"timeout: 2s{extra}}}")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"WARPAGENT_PSEUDONYM_KEY": KEY, "WARP_PW": "pw-for-member-a"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Medallion]:
    server = Medallion(port=free_port(), workdir=tmp_path_factory.mktemp("medallion"),
                       users={"member-a": "pw-for-member-a", "member-b": "pw-for-member-b"}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def proxy(hub: Medallion) -> Iterator[FaultProxy]:
    front = FaultProxy(upstream_port=hub.port).start()
    try:
        yield front
    finally:
        front.stop()


# --- the anonymiser -----------------------------------------------------------------------

def _tracked(check_id: str = "WA502", asset: str = "198.18.0.1", severity: Severity = Severity.HIGH,
             product: str = "nginx", version: str = "1.22.1", cves: tuple[str, ...] = (),
             port: int | None = 443) -> TrackedFinding:
    finding = Finding(estate="corp", asset=asset, check_id=check_id, category="configs", severity=severity,
                      title=f"x on {asset}", evidence=f"seen on {asset}", remediation="r",
                      subject=f"{port}/tcp" if port else "os:debian", port=port, protocol="tcp" if port else "",
                      product=product, version=version, cves=cves)
    return TrackedFinding(finding=finding, first_seen=RECORDED_AT - dt.timedelta(days=9), last_seen=RECORDED_AT,
                          status=FindingStatus.OPEN)


def test_buckets() -> None:
    assert [buckets.bucket(n) for n in (0, 1, 2, 5, 6, 20, 21, 5000)] == [
        "0", "1", "2-5", "2-5", "6-20", "6-20", "21+", "21+"]


def test_pseudonym_is_keyed_and_stable() -> None:
    first = anonymise.pseudonym(b"secret", ORG)
    assert first == anonymise.pseudonym(b"secret", "  test borough   COUNCIL ")
    assert first != anonymise.pseudonym(b"other-secret", ORG)
    assert len(first) == 32 and ORG.casefold() not in first


def test_posture_counts_are_bucketed_and_free_text_dropped() -> None:
    findings = [_tracked(asset=f"198.18.0.{i}") for i in range(7)] + [
        _tracked("WA512", severity=Severity.MEDIUM, cves=("CVE-2024-6387", "not-a-cve"))]
    posture = anonymise.anonymise(findings, member="m", sector="local-government", region="north-west",
                                  as_of=RECORDED_AT.date(), k=3, measured={"configs"})
    configs = next(c for c in posture.categories if c.category == "configs")
    assert configs.open_findings == "6-20" and configs.measured
    assert dict(configs.by_severity) == {"critical": "0", "high": "6-20", "medium": "1", "low": "0", "info": "0"}
    assert [(c.check_id, c.findings, c.assets) for c in configs.checks] == [("WA502", "6-20", "6-20"),
                                                                            ("WA512", "1", "1")]
    assert not next(c for c in posture.categories if c.category == "backups").measured
    assert [c.cve for c in posture.cves] == ["CVE-2024-6387"]
    assert [r.check_id for r in posture.remediations] == ["WA502", "WA512"]
    assert posture.remediations[0].fix.startswith("offer only AEAD suites")
    assert "198.18" not in repr(posture)


def test_decided_findings_are_shared_as_their_own_count_apart_from_the_open_ones() -> None:
    accepted = [dataclasses.replace(_tracked(asset=f"198.18.1.{i}"), status=FindingStatus.ACCEPTED_RISK)
                for i in range(3)]
    posture = anonymise.anonymise([_tracked()], member="m", sector="", region="", as_of=RECORDED_AT.date(), k=3,
                                  measured={"configs"}, decided=accepted)
    configs = next(c for c in posture.categories if c.category == "configs")
    assert (configs.open_findings, configs.decided) == ("1", "2-5")
    bundle = stix_bundle.build(posture, "amber")
    (shared,) = [o for o in bundle["objects"] if o["type"] == "x-warpagent-posture" and o["category"] == "configs"]
    assert shared["decided"] == "2-5" and shared["open_findings"] == "1"
    assert stix_bundle.validate(stix_bundle.to_json(bundle)) == []
    assert "198.18.1" not in stix_bundle.to_json(bundle)


def test_a_version_is_shared_only_where_k_members_report_it() -> None:
    findings = [_tracked(), _tracked(product="OpenSSH", version="9.2p1 Debian 2+deb12u3")]
    common = {("nginx", "1.22.1"): 2, ("openssh", "9.2p1"): 1}
    posture = anonymise.anonymise(findings, member="m", sector="", region="", as_of=RECORDED_AT.date(), k=3,
                                  measured={"configs"}, region_versions=common, service_products=NMAP_NAMES)
    assert {(s.product, s.version) for s in posture.software} == {("nginx", "1.22.1"), ("openssh", "")}
    assert posture.withheld_versions == 1
    at_the_edge = anonymise.anonymise(findings, member="m", sector="", region="", as_of=RECORDED_AT.date(), k=2,
                                      measured={"configs"}, region_versions=common, service_products=NMAP_NAMES)
    assert {(s.product, s.version) for s in at_the_edge.software} == {("nginx", "1.22.1"), ("openssh", "9.2p1")}


def test_with_no_peer_data_no_version_is_shared() -> None:
    """The first share of a council: rarity cannot be judged, so every version is held back
    (members read each other's postures: a rare version would single one out)."""
    findings = [_tracked(product="SimpleHTTPServer", version="0.6"),
                _tracked(product="debian", version="10", port=None)]
    posture = anonymise.anonymise(findings, member="m", sector="", region="", as_of=RECORDED_AT.date(), k=3,
                                  measured={"configs"}, region_versions=None, service_products=NMAP_NAMES)
    assert {(s.product, s.version) for s in posture.software} == {("simplehttpserver", ""), ("debian", "")}
    assert posture.withheld_versions == 2
    text = stix_bundle.to_json(stix_bundle.build(posture, "amber"))
    assert "0.6" not in text and '"10"' not in text


# Version strings and products as hostile hosts have put them in banners (issue 28).
HOSTILE_SOFTWARE = [
    ("nginx", "1.18.0 (10.20.0.77)"), ("PHP", "7.4.3 srv-fin01.fenwickvale.local"),
    ("PHP 7.4.3 srv-fin01.fenwickvale.local", ""), ("Postfix smtpd", "mail.fenwickvale.gov.uk ESMTP"),
    ("nginx", "10.20.0.77"), ("Apache httpd", "2.4.57 (Debian) admin@fenwickvale.gov.uk"),
    ("fenwickvale.gov.uk portal", "1.0"), ("x" * 80, "1.0"), ("nginx", "1." + "9" * 40),
    ("OpenSSH", "9.2p1; rm -rf /"), ("Microsoft IIS httpd", "10.0\u0000srv-fin01"),
]


@pytest.mark.parametrize(("product", "version"), HOSTILE_SOFTWARE)
def test_banner_text_is_reduced_to_a_product_token_and_a_version_or_dropped(product: str, version: str) -> None:
    shaped = software.shareable(product, version)
    assert shaped.dropped
    for leaked in ("10.20.0.77", "srv-fin01", "fenwickvale", "admin@", "rm -rf", "\\u0000", "x" * 49):
        assert leaked not in shaped.product + " " + shaped.version
    assert shaped.product in ("", "nginx", "php", "postfix_smtpd", "apache_httpd", "openssh", "microsoft_iis_httpd")
    assert shaped.version in ("", "1.18.0", "7.4.3", "2.4.57", "9.2p1", "10.0")


def test_a_service_product_is_shared_only_where_nmaps_probe_database_names_it() -> None:
    probes = "\n".join([
        "Probe TCP GetRequest q|GET / HTTP/1.0\\r\\n\\r\\n|",
        "match http m|^HTTP/1\\.[01] \\d\\d\\d.*\\r\\nServer: nginx/([\\d.]+)|s p/nginx/ v/$1/ "
        "cpe:/a:igor_sysoev:nginx:$1/",
        "match aastra-pbx m|^BUSY$| p|Aastra/Mitel PBX service port|",
        "softmatch ftp m|^220 ([-\\w.]+) FTP| p/generic ftpd/ h/$1/",
        "match http m=^Server: (EWS-NIC\\w+)/([\\d.]+)= p/$1/ v/$2/ i/Xerox printer http config/",
        "match printer m|^@PJL (\\w+)| p/HP LaserJet $1 printer/ d/printer/",
        "match weird m|^ p/sneaky/ | i/p/ p/SSH server/",  # a p/ in the pattern or in another field is not one
    ])
    assert software.nmap_products(probes) == {"nginx", "aastra/mitel_pbx_service_port", "generic_ftpd",
                                               "ssh_server"}
    installed = share.scanned_products("nmap")  # the real database this machine's nmap reads
    assert {"nginx", "openssh", "apache_httpd", "vsftpd", "redis_key-value_store", "wordpress"} <= installed
    assert not [t for t in installed if "$" in t] and "" not in installed
    findings = [_tracked(product="nginx"), _tracked(product="EWS-NICcouncilname", version="2.1"),
                _tracked(product="srv-fin01", version=""), _tracked(product="debian", version="10", port=None)]
    posture = anonymise.anonymise(findings, member="m", sector="", region="", as_of=RECORDED_AT.date(), k=3,
                                  measured={"configs"}, service_products=installed)
    assert {s.product for s in posture.software} == {"nginx", "debian"}  # host evidence: an advisory's name
    assert posture.dropped_software == 2
    no_probe_file = anonymise.anonymise(findings, member="m", sector="", region="", as_of=RECORDED_AT.date(),
                                        k=3, measured={"configs"})
    assert {s.product for s in no_probe_file.software} == {"debian"}  # fails closed


def test_ordinary_products_and_versions_keep_their_shape() -> None:
    cases = {("nginx", "1.22.1"): ("nginx", "1.22.1", False),
             ("OpenSSH", "9.2p1 Debian 2+deb12u3"): ("openssh", "9.2p1", False),
             ("Apache httpd", "2.4.57"): ("apache_httpd", "2.4.57", False),
             ("openssl", "3.0.11-1~deb12u2"): ("openssl", "3.0.11", False),
             ("apache2", "1:2.4.57-2"): ("apache2", "2.4.57", False),
             ("Apache Tomcat/Coyote JSP engine", "1.1"): ("apache_tomcat/coyote_jsp_engine", "1.1", False),
             ("OpenSSL", "1.1.1w"): ("openssl", "1.1.1w", False),
             ("Redis key-value store", ""): ("redis_key-value_store", "", False)}
    for (product, version), expected in cases.items():
        shaped = software.shareable(product, version)
        assert (shaped.product, shaped.version, shaped.dropped) == expected, (product, version)


def test_the_anonymiser_counts_what_it_dropped_and_shares_none_of_it() -> None:
    findings = [_tracked(product=p, version=v) for p, v in HOSTILE_SOFTWARE]
    common = {(software.shareable(p, v).product, software.shareable(p, v).version): 5 for p, v in HOSTILE_SOFTWARE}
    posture = anonymise.anonymise(findings, member="m", sector="", region="", as_of=RECORDED_AT.date(), k=3,
                                  measured={"configs"}, region_versions=common, service_products=NMAP_NAMES)
    assert posture.dropped_software == len(HOSTILE_SOFTWARE)
    text = stix_bundle.to_json(stix_bundle.build(posture, "amber")).casefold()
    for leaked in ("10.20.0.77", "srv-fin01", "fenwickvale", "admin@", "rm -rf"):
        assert leaked not in text


def test_sector_and_region_text_that_is_not_plain_is_dropped() -> None:
    assert anonymise.safe_text("north-west") == "north-west"
    assert anonymise.safe_text("admin@council.test's region") == ""
    assert anonymise.safe_text("x" * 65) == ""


# --- the bundle ---------------------------------------------------------------------------

def _bundle(tmp_path: Path, env: dict[str, str], when: dt.date = RECORDED_DAY,
            tlp: str = "amber") -> dict[str, Any]:
    settings = config.load(str(_config(tmp_path / "w.yaml", extra=f"  tlp: {tlp}\n")))
    if not settings.store.exists():
        _populate(settings.store)
    with Store(settings.store) as store, PeerIntel(settings.store) as intel:
        return share.build_bundle(settings, store, intel, when).bundle


def test_bundle_validates_and_carries_the_expected_objects(tmp_path: Path, env: dict[str, str]) -> None:
    bundle = _bundle(tmp_path, env)
    assert stix_bundle.validate(json.dumps(bundle)) == []
    types = [o["type"] for o in bundle["objects"]]
    for kind in ("marking-definition", "identity", "x-warpagent-posture", "software", "course-of-action", "report"):
        assert kind in types
    # no top-level `version` anywhere: medallion 3.0.0 fails every GET of a collection holding one
    assert not [o["id"] for o in bundle["objects"] if "version" in o]
    assert types.count("x-warpagent-posture") == 7
    marking = bundle["objects"][0]
    assert marking["id"] == "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
    assert all(stix_bundle.TLP2_IDS["amber"] in o["object_marking_refs"]
               for o in bundle["objects"] if o["type"] != "marking-definition")
    member = next(o for o in bundle["objects"] if o["type"] == "identity" and o["identity_class"] == "organization")
    assert member["sectors"] == ["government-local"] and member["name"].startswith("WARP member ")
    report = next(o for o in bundle["objects"] if o["type"] == "report")
    assert len(report["object_refs"]) == len(bundle["objects"]) - 2  # all but the marking and the report
    configs = next(o for o in bundle["objects"] if o["type"] == "x-warpagent-posture" and o["category"] == "configs")
    assert configs["region"] == "north-west" and configs["open_findings"] == "6-20"
    # the first share, with no peer data to judge rarity by: products without their versions
    assert {"product": "nginx"} in configs["software"] and {"product": "redis_key-value_store"} in configs["software"]
    assert not any("version" in s for s in configs["software"])
    assert {c["check_id"] for c in configs["checks"]} == {"WA501", "WA502", "WA503", "WA504", "WA506", "WA507",
                                                          "WA508", "WA511", "WA512", "WA513", "WA514"}


def test_bundle_is_deterministic_and_a_new_day_is_a_new_version(tmp_path: Path, env: dict[str, str]) -> None:
    first, again = _bundle(tmp_path, env), _bundle(tmp_path, env)
    assert first == again
    tomorrow = _bundle(tmp_path, env, RECORDED_AT.date() + dt.timedelta(days=1))
    ids = lambda b: sorted(o["id"] for o in b["objects"])  # noqa: E731
    assert ids(first) == ids(tomorrow)
    modified = {o["modified"] for o in tomorrow["objects"] if o["type"] == "x-warpagent-posture"}
    assert modified == {"2026-11-26T00:00:00.000Z"}


def test_tlp_from_config(tmp_path: Path, env: dict[str, str]) -> None:
    bundle = _bundle(tmp_path, env, tlp="green")
    assert bundle["objects"][0]["name"] == "TLP:GREEN"
    assert stix_bundle.validate(json.dumps(bundle)) == []


def test_bundle_imports_into_misp(tmp_path: Path, env: dict[str, str]) -> None:
    from misp_stix_converter import ExternalSTIX2toMISPParser

    bundle = _bundle(tmp_path, env)
    parser = ExternalSTIX2toMISPParser()
    parser.load_stix_bundle(stix2.parsing.parse(json.dumps(bundle), allow_custom=True))
    parser.parse_stix_bundle()
    event = json.loads(parser.misp_event.to_json())
    software = [o for o in event.get("Object", []) if o["name"] == "software"]
    assert {a["value"] for o in software for a in o["Attribute"] if a["object_relation"] == "name"} >= {
        "vsftpd", "openssh", "nginx"}
    galaxies = {c["value"] for g in event.get("Galaxy", []) for c in g["GalaxyCluster"]}
    assert "WA502 tls-weak-cipher" in galaxies
    # each category's posture, in words, as an event note
    notes = {n["comment"].split(" (", 1)[0]: n["note"] for n in event["Note"]}
    assert set(notes) == set(CATEGORY_NAMES.values())
    assert "Open findings: between 6 and 20 (6-20)." in notes["Insecure configurations"]
    # MISP knows no x-warpagent-posture: that, and only that, is what it could not load
    problems = {p for msgs in parser.errors.values() for p in msgs}
    assert problems and all("x-warpagent-posture" in p for p in problems)


def test_missing_pseudonym_key_is_a_clear_error(tmp_path: Path) -> None:
    config_path = _config(tmp_path / "w.yaml")
    _populate(tmp_path / "warpagent.db")
    result = run_cli("--config", str(config_path), "share", "--dry-run", cwd=tmp_path,
                     env={"WARPAGENT_PSEUDONYM_KEY": ""})
    assert result.returncode == 2
    assert result.stderr.strip() == (f"{config_path}: At 'sharing.pseudonym_key_env': environment variable "
                                     "WARPAGENT_PSEUDONYM_KEY is not set; export it before running warpagent")


def test_share_without_peers_needs_dry_run(tmp_path: Path, env: dict[str, str]) -> None:
    config_path = _config(tmp_path / "w.yaml")
    _populate(tmp_path / "warpagent.db")
    result = run_cli("--config", str(config_path), "share", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "no peers configured" in result.stderr
    dry = run_cli("--config", str(config_path), "share", "--dry-run", "--out", "b.json", cwd=tmp_path, env=env)
    assert dry.returncode == 0, dry.stderr
    assert stix_bundle.validate((tmp_path / "b.json").read_text()) == []
    assert not (tmp_path / "outbox").exists()


# --- over TAXII ---------------------------------------------------------------------------

def _shared_bytes(tmp_path: Path, proxy: FaultProxy, hub: Medallion) -> bytes:
    outbox = b"".join(p.read_bytes() for p in (tmp_path / "outbox").rglob("*") if p.is_file()) \
        if (tmp_path / "outbox").exists() else b""
    return b"".join(proxy.bodies) + json.dumps(hub.objects()).encode() + outbox


def test_share_then_a_second_agent_pulls_the_same_objects(tmp_path: Path, env: dict[str, str], hub: Medallion,
                                                          proxy: FaultProxy) -> None:
    a = tmp_path / "a"
    a.mkdir()
    config_a = _config(a / "w.yaml", _peer("warp", proxy.url))
    _populate(a / "warpagent.db")
    shared = run_cli("--config", str(config_a), "share", "--json", "--out", "sent.json", cwd=a, env=env)
    assert shared.returncode == 0, shared.stderr
    assert json.loads(shared.stdout)["peers"][0]["delivered"] == 1
    sent = json.loads((a / "sent.json").read_text())
    held = hub.objects()
    assert {(o["id"], o.get("modified")) for o in held} == {(o["id"], o.get("modified")) for o in sent["objects"]}
    assert not list((a / "outbox").rglob("*.json"))  # delivered: nothing left waiting

    b = tmp_path / "b"
    b.mkdir()
    (b / "w.yaml").write_text(f"""organisation: {{name: Another Council}}
store: ./b.db
estates: [{{name: x, targets: [127.0.0.1]}}]
sharing:
  peers: [{_peer("warp", hub.url, user="member-b").replace("WARP_PW", "WARP_PW_B")}]
""")
    env_b = {**env, "WARP_PW_B": "pw-for-member-b"}
    pulled = run_cli("--config", str(b / "w.yaml"), "pull", "--json", cwd=b, env=env_b)
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["peers"][0]["accepted_objects"] == len(sent["objects"])
    # a pull reports a pull's figures, a share a share's (issue 30)
    assert set(json.loads(pulled.stdout)["peers"][0]) == {"peer", "ok", "accepted_objects", "rejected_objects",
                                                          "errors"}
    assert set(json.loads(shared.stdout)["peers"][0]) == {"peer", "ok", "delivered", "pending", "errors"}
    with PeerIntel(b / "b.db") as intel:
        assert intel.count() == len(sent["objects"])
        assert len(intel.latest("x-warpagent-posture")) == 7
    again = run_cli("--config", str(b / "w.yaml"), "pull", "--json", cwd=b, env=env_b)
    assert json.loads(again.stdout)["peers"][0]["accepted_objects"] == 0  # position remembered

    leaked = _shared_bytes(a, proxy, hub).decode().casefold()
    for needle in IDENTIFYING:
        assert needle.casefold() not in leaked, f"identifying string {needle!r} left the council"


def test_reshare_same_day_sends_nothing_twice(tmp_path: Path, env: dict[str, str], hub: Medallion) -> None:
    config_path = _config(tmp_path / "w.yaml", _peer("warp", hub.url))
    _populate(tmp_path / "warpagent.db")
    for _ in range(2):
        result = run_cli("--config", str(config_path), "share", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
    held = hub.objects()
    assert len(held) == len({(o["id"], o.get("modified")) for o in held})


def test_a_changed_posture_the_same_day_is_a_later_version_and_the_same_one_is_not_sent_again(
        tmp_path: Path, env: dict[str, str], hub: Medallion) -> None:
    """A council with two estates shares after each night's scan: the second share must replace
    the first at every peer, or the region sees the day's first scan only."""
    config_path = _config(tmp_path / "w.yaml", _peer("warp", hub.url))
    _populate(tmp_path / "warpagent.db")

    def shared() -> None:
        result = run_cli("--config", str(config_path), "share", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr

    def latest() -> dict[str, dict[str, Any]]:
        postures: dict[str, dict[str, Any]] = {}
        for o in (o for o in hub.objects() if o["type"] == "x-warpagent-posture"):
            if o["modified"] > postures.get(o["category"], {}).get("modified", ""):
                postures[o["category"]] = o
        return postures

    def content(postures: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {c: {k: v for k, v in o.items() if k != "modified"} for c, o in postures.items()}

    shared()
    first = latest()
    (midnight,) = {o["modified"] for o in first.values()}
    assert midnight.endswith("T00:00:00.000Z")  # the day's first share: midnight, as before
    with Store(tmp_path / "warpagent.db") as store:  # the second estate's scan: the web host is fixed
        run = store.begin_run("corporate-estate", RECORDED_AT + dt.timedelta(hours=2))
        kept = tuple(t.finding for t in store.findings(status="open") if t.finding.asset != "weak-web.council.test")
        assets = frozenset({"weak-web.council.test", "infra01.council.test", "198.18.18.20"})
        store.record_run(run, RunReport(findings=kept, finished=RECORDED_AT + dt.timedelta(hours=2), complete=True,
                                        observed_assets=assets, in_scope_assets=assets, hosts_scanned=3))
    shared()
    second = latest()
    (stamp,) = {o["modified"] for o in second.values()}
    assert stamp == midnight.replace("T00:00:00.000Z", "T00:00:00.001Z")  # the day's second: not the clock
    assert content(second) != content(first)
    count = len(hub.objects())
    shared()  # nothing changed since: the same version, which the peer holds already
    assert len(hub.objects()) == count and latest() == second


def test_version_stamps_follow_the_last_share_and_never_the_clock() -> None:
    day, midnight = dt.date(2026, 12, 5), dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    ms = dt.timedelta(milliseconds=1)
    assert share.version_stamp(day, "a", None) == midnight
    assert share.version_stamp(day, "a", (day - dt.timedelta(days=1), "a", midnight - ms)) == midnight
    assert share.version_stamp(day, "a", (day, "a", midnight + ms)) == midnight + ms  # the same posture
    assert share.version_stamp(day, "b", (day, "a", midnight)) == midnight + ms  # the day's second
    assert share.version_stamp(day, "c", (day, "b", midnight + ms)) == midnight + 2 * ms
    late = dt.datetime(2026, 12, 5, 23, 59, 59, 999000, tzinfo=dt.UTC)
    assert share.version_stamp(day, "d", (day, "c", late)) == late  # never into tomorrow


def test_versions_go_to_no_collection_a_member_can_read(tmp_path: Path, env: dict[str, str], hub: Medallion) -> None:
    """Plain medallion's regional collection is readable by every account: not the hub's sealed
    one. Every version would be there for every member to see, so none is sent and none is kept."""
    config_path = _config(tmp_path / "w.yaml", _peer("warp", hub.url, extra=", versions_collection: regional"))
    _populate(tmp_path / "warpagent.db")
    result = run_cli("--config", str(config_path), "share", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 3  # a peer failed
    peers = {p["peer"]: p for p in json.loads(result.stdout)["peers"]}
    assert peers["warp"]["ok"] and peers["warp"]["delivered"] == 1
    assert peers["warp/versions"]["delivered"] == 0 and peers["warp/versions"]["pending"] == 0
    assert "collection 'regional' can be read by this account, so it is not sealed" in result.stderr
    assert hub.objects(REGIONAL_ID) == [] and not list((tmp_path / "outbox" / "warp" / "versions").glob("*.json"))
    assert not [o for o in hub.objects() if o["type"] in ("observed-data",) or o.get("version")]


@pytest.mark.parametrize(("peer", "says"), [
    ("collection: members, versions_collection: members", "it names the peer's own collection"),
    ("collection: regional, direction: pull, versions_collection: versions", "a pull-only peer sends nothing"),
])
def test_a_versions_collection_that_cannot_be_sealed_is_a_config_error(tmp_path: Path, peer: str, says: str) -> None:
    config_path = _config(tmp_path / "w.yaml", f"{{name: warp, url: 'https://warp.example.org/taxii2/', {peer}}}")
    result = run_cli("--config", str(config_path), "check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert f"At 'sharing.peers[0].versions_collection': {says}" in result.stderr


def _settings(tmp_path: Path, peers: str) -> config.Settings:
    _populate(tmp_path / "warpagent.db")
    return config.load(str(_config(tmp_path / "w.yaml", peers)))


def _queue(settings: config.Settings) -> dict[str, Any]:
    with Store(settings.store) as store, PeerIntel(settings.store) as intel:
        built = share.build_bundle(settings, store, intel, RECORDED_AT.date())
    outbox = Outbox(settings.sharing.outbox)
    for peer in settings.sharing.peers:
        outbox.put(peer.name, built.bundle["id"], built.text, RECORDED_AT)
    return built.bundle


def _exactly_once(hub: Medallion, bundle: dict[str, Any]) -> None:
    held = [(o["id"], o.get("modified")) for o in hub.objects()]
    assert len(held) == len(set(held)) == len(bundle["objects"])


def test_server_down_then_back(tmp_path: Path, env: dict[str, str]) -> None:
    port = free_port()
    settings = _settings(tmp_path, _peer("warp", f"http://127.0.0.1:{port}/taxii2/"))
    bundle = _queue(settings)
    outbox = Outbox(settings.sharing.outbox)
    (report,) = deliver(settings, outbox=outbox, backoff_s=0.01)
    assert not report.ok and report.pending == 1
    assert "not delivered after 3 attempts (ConnectionError" in report.errors[0]
    hub = Medallion(port=port, workdir=tmp_path, users={"member-a": "pw-for-member-a"}).start()
    try:
        (report,) = deliver(settings, outbox=outbox, backoff_s=0.01)  # the next night, or a restart
        assert report.ok and report.delivered == 1 and report.pending == 0
        _exactly_once(hub, bundle)
    finally:
        hub.stop()


@pytest.mark.parametrize("fault", ["fail_next", "stall_next", "halve_next_post"])
def test_transient_faults_end_delivered_exactly_once(fault: str, tmp_path: Path, env: dict[str, str],
                                                     hub: Medallion, proxy: FaultProxy) -> None:
    settings = _settings(tmp_path, _peer("warp", proxy.url))
    bundle = _queue(settings)
    setattr(proxy, fault, 1 if fault != "fail_next" else 2)
    sleeps: list[float] = []
    (report,) = deliver(settings, backoff_s=0.25, sleep=sleeps.append)
    assert report.ok and report.delivered == 1, report.errors
    assert sleeps and sleeps == [0.25, 0.5][: len(sleeps)]  # exponential backoff between attempts
    _exactly_once(hub, bundle)


def test_a_partial_acceptance_that_persists_keeps_the_bundle(tmp_path: Path, env: dict[str, str], hub: Medallion,
                                                             proxy: FaultProxy) -> None:
    settings = _settings(tmp_path, _peer("warp", proxy.url))
    bundle = _queue(settings)
    proxy.halve_next_post = 3
    (report,) = deliver(settings, backoff_s=0, sleep=lambda s: None)
    assert not report.ok and report.pending == 1 and "the server lacks" in report.errors[0]
    (report,) = deliver(settings, backoff_s=0, sleep=lambda s: None)
    assert report.ok and report.pending == 0
    _exactly_once(hub, bundle)


def test_a_peer_that_is_down_never_blocks_the_others(tmp_path: Path, env: dict[str, str], hub: Medallion) -> None:
    dead = f"http://127.0.0.1:{free_port()}/taxii2/"
    settings = _settings(tmp_path, _peer("dead", dead) + ", " + _peer("live", hub.url))
    bundle = _queue(settings)
    dead_report, live_report = deliver(settings, backoff_s=0,
                                             sleep=lambda s: None)
    assert not dead_report.ok and dead_report.pending == 1
    assert live_report.ok and live_report.delivered == 1
    _exactly_once(hub, bundle)


def test_wrong_password_fails_that_peer_and_never_prints_it(tmp_path: Path, hub: Medallion) -> None:
    config_path = _config(tmp_path / "w.yaml", _peer("warp", hub.url))
    _populate(tmp_path / "warpagent.db")
    result = run_cli("--config", str(config_path), "-vv", "share", cwd=tmp_path,
                     env={"WARPAGENT_PSEUDONYM_KEY": KEY, "WARP_PW": "not-the-password-xyz"})
    assert result.returncode == 3
    assert "401" in result.stderr and "kept in the outbox" in result.stderr
    assert "not-the-password-xyz" not in result.stderr + result.stdout
    assert KEY not in result.stderr + result.stdout


def test_pull_rejects_malformed_and_oversized_input_and_keeps_the_rest(
        tmp_path: Path, env: dict[str, str], hub: Medallion, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "member").mkdir()
    good = _bundle(tmp_path / "member", env)
    hub.add_raw(good["objects"])
    hub.add_raw([{"type": "indicator", "id": "indicator--0b3f003e-5047-49ff-a4ef-278b2a5661d3",
                  "spec_version": "2.1", "created": "2026-11-25T00:00:00Z", "modified": "2026-11-25T00:00:00Z"},
                 {"type": "note", "id": "note--6b1f003e-5047-49ff-a4ef-278b2a5661d3", "spec_version": "2.1",
                  "created": "2026-11-25T00:00:00Z", "modified": "2026-11-25T00:00:00Z",
                  "content": "x" * (1024 * 1024 + 10), "object_refs": [good["objects"][3]["id"]]}])
    settings = config.load(str(_config(tmp_path / "w.yaml", _peer("warp", hub.url))))
    with caplog.at_level(logging.WARNING), PeerIntel(settings.store) as intel:
        (report,) = pull(settings, intel, per_page=7)
        assert report.ok and report.accepted_objects == len(good["objects"]) and report.rejected_objects == 2
        assert intel.count() == len(good["objects"])
    messages = [r.getMessage() for r in caplog.records]
    assert any("rejected object indicator--0b3f003e" in m and "invalid STIX 2.1" in m for m in messages)
    assert any("rejected object note--6b1f003e" in m and "over the limit of 1048576 per object" in m for m in messages)

    small = config.load(str(_config(tmp_path / "small.yaml", _peer("warp2", hub.url),
                                    extra="  max_pull_bytes: 65536\n")))
    with PeerIntel(tmp_path / "small.db") as intel:
        (report,) = pull(small, intel, per_page=100)
        assert report.rejected_objects > 0 and "over sharing.max_pull_bytes" in report.errors[0]


def test_hostile_peer_objects_are_rejected_one_by_one_and_every_peer_is_pulled(
        tmp_path: Path, env: dict[str, str], hub: Medallion, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "member").mkdir()
    good = _bundle(tmp_path / "member", env)
    stamp = {"spec_version": "2.1", "created": "2026-11-25T00:00:00.000Z", "modified": "2026-11-25T00:00:00.000Z"}
    posture = next(o for o in good["objects"] if o["type"] == "x-warpagent-posture")
    nested: list[Any] = []
    for _ in range(200):
        nested = [nested]
    hostile = [
        {"type": "identity", "id": "identity--0b3f003e-5047-49ff-a4ef-278b2a5661d1", "name": "x", "sectors": -1,
         **stamp},
        {"type": "identity", "id": "identity--0b3f003e-5047-49ff-a4ef-278b2a5661d2", "name": "x", "extensions": "x",
         **stamp},
        {"type": "note", "id": "note--0b3f003e-5047-49ff-a4ef-278b2a5661d3", "content": "deep", "labels": nested,
         "object_refs": [posture["id"]], **stamp},
        {**posture, "id": "x-warpagent-posture--0b3f003e-5047-49ff-a4ef-278b2a5661d4", "open_findings": 7},
        {**{k: v for k, v in posture.items() if k != "created_by_ref"},
         "id": "x-warpagent-posture--0b3f003e-5047-49ff-a4ef-278b2a5661d5"},
        {"type": "x-warpagent-regional", "id": "x-warpagent-regional--0b3f003e-5047-49ff-a4ef-278b2a5661d6",
         "created_by_ref": posture["created_by_ref"], "as_of": "2026-11-25", "k_threshold": "three",
         "categories": "all", **stamp},
    ]
    hub.add_raw(hostile[:3])
    hub.add_raw(good["objects"])
    hub.add_raw(hostile[3:])
    settings = config.load(str(_config(tmp_path / "w.yaml", f"{_peer('warp', hub.url)}, {_peer('warp2', hub.url)}")))
    with caplog.at_level(logging.WARNING), PeerIntel(settings.store) as intel:
        first, second = pull(settings, intel, per_page=4)
        assert first.ok and second.ok
        assert (first.accepted_objects, first.rejected_objects) == (len(good["objects"]), len(hostile))
        assert second.rejected_objects == len(hostile)
        assert intel.position("warp") is not None and intel.position("warp") == intel.position("warp2")
        again = pull(settings, intel, per_page=4)
        assert [(r.accepted_objects, r.rejected_objects) for r in again] == [(0, 0), (0, 0)]  # the position moved on
    rejected = [r.getMessage() for r in caplog.records if "rejected object" in r.getMessage()]
    assert len(rejected) == 2 * len(hostile) and all("\n" not in m for m in rejected)
    # what was kept reads back into a board report without tripping on anything
    board = run_cli("--config", str(tmp_path / "w.yaml"), "report", "board", cwd=tmp_path)
    assert board.returncode == 0, board.stderr


def test_pull_from_a_server_that_is_down_is_reported(tmp_path: Path, env: dict[str, str]) -> None:
    settings = config.load(str(_config(tmp_path / "w.yaml", _peer("warp", f"http://127.0.0.1:{free_port()}/taxii2/"))))
    with PeerIntel(tmp_path / "p.db") as intel:
        (report,) = pull(settings, intel)
    assert not report.ok and "pull stopped (ConnectionError" in report.errors[0]


def test_pull_resumes_without_losing_objects_that_share_a_timestamp(
        tmp_path: Path, env: dict[str, str], hub: Medallion, proxy: FaultProxy) -> None:
    (tmp_path / "member").mkdir()
    good = _bundle(tmp_path / "member", env)
    objects = good["objects"]
    for start in range(0, len(objects), 9):  # three member pushes: three date_added groups
        hub.add_raw(objects[start:start + 9])
    settings = config.load(str(_config(tmp_path / "w.yaml", _peer("warp", proxy.url))))
    proxy.object_pages_before_outage = 3  # the hub falls over mid-pull, inside the second group
    with PeerIntel(tmp_path / "p.db") as intel:
        (first,) = pull(settings, intel, per_page=5)
        assert not first.ok and first.accepted_objects == 15
        assert "next pull resumes from there" in first.errors[0]
        proxy.object_pages_before_outage = None
        (second,) = pull(settings, intel, per_page=5)
        assert second.ok and second.accepted_objects == len(objects) - 15  # every object, each kept once
        assert intel.count() == len(objects)
        assert intel.position("warp") is not None
        (third,) = pull(settings, intel, per_page=5)
        assert third.ok and third.accepted_objects == 0


def test_published_extension_definition_validates() -> None:
    bundle = {"type": "bundle", "id": "bundle--1c3e9d7a-4b5f-4c6d-8e9f-0a1b2c3d4e5f",
              "objects": stix_bundle.extension_definition()}
    assert stix_bundle.validate(json.dumps(bundle)) == []
    extension = bundle["objects"][1]
    assert extension["id"] == stix_bundle.POSTURE_EXTENSION and extension["extension_types"] == ["new-sdo"]


def test_docs_publish_the_extension_definition_as_built() -> None:
    from tests.conftest import ROOT

    doc = (ROOT / "docs/sharing.md").read_text()
    block = doc.split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == stix_bundle.extension_definition()


def test_docs_publish_the_versions_extension_definition_as_built() -> None:
    from tests.conftest import ROOT

    doc = (ROOT / "docs/sharing.md").read_text()
    block = doc.split("```json\n", 2)[2].split("```", 1)[0]
    published = json.loads(block)
    assert published == stix_bundle.versions_extension_definition()
    bundle = {"type": "bundle", "id": "bundle--1c3e9d7a-4b5f-4c6d-8e9f-0a1b2c3d4e5f",
              "objects": [stix_bundle.extension_definition()[0], published]}
    assert stix_bundle.validate(json.dumps(bundle)) == []


def test_large_bundles_go_in_batches_and_land_once(tmp_path: Path, env: dict[str, str], hub: Medallion,
                                                   proxy: FaultProxy) -> None:
    settings = _settings(tmp_path, _peer("warp", proxy.url))
    bundle = _queue(settings)
    (report,) = deliver(settings, batch_size=7)
    assert report.ok, report.errors
    posts = [json.loads(b) for b in proxy.bodies if b]
    assert [len(p["objects"]) for p in posts] == [7] * (len(bundle["objects"]) // 7) + (
        [len(bundle["objects"]) % 7] if len(bundle["objects"]) % 7 else [])
    _exactly_once(hub, bundle)


def test_api_key_goes_in_its_header_and_never_into_output(tmp_path: Path, hub: Medallion, proxy: FaultProxy) -> None:
    config_path = _config(tmp_path / "w.yaml", f"{{name: warp, url: '{proxy.url}', collection: members, "
                                               "api_key_env: WARP_KEY, api_key_header: X-API-Key, timeout: 2s}")
    _populate(tmp_path / "warpagent.db")
    result = run_cli("--config", str(config_path), "-vv", "share", cwd=tmp_path,
                     env={"WARPAGENT_PSEUDONYM_KEY": KEY, "WARP_KEY": "key-abc-123-secret"})
    assert proxy.headers and all(h.get("X-API-Key") == "key-abc-123-secret" for h in proxy.headers)
    assert result.returncode == 3  # medallion wants basic auth: the peer refuses, the bundle stays queued
    assert "key-abc-123-secret" not in result.stdout + result.stderr


def test_tls_is_verified_and_a_private_ca_can_be_trusted(tmp_path: Path, env: dict[str, str], hub: Medallion) -> None:
    from tests.tls import tls_context

    context, ca = tls_context(tmp_path)
    front = FaultProxy(upstream_port=hub.port, tls=context).start()
    try:
        untrusted = _settings(tmp_path, _peer("warp", front.url))
        bundle = _queue(untrusted)
        (report,) = deliver(untrusted, backoff_s=0, sleep=lambda s: None)
        assert not report.ok and "CERTIFICATE_VERIFY_FAILED" in report.errors[0]
        assert hub.objects() == []
        trusted = config.load(str(_config(tmp_path / "w.yaml", _peer("warp", front.url, extra=f", ca_bundle: '{ca}'"))))
        (report,) = deliver(trusted, backoff_s=0, sleep=lambda s: None)
        assert report.ok and report.delivered == 1, report.errors
        _exactly_once(hub, bundle)
    finally:
        front.stop()
