"""Property-based: whatever a config, a scanned host, a feed or a peer hands warpagent, only
warpagent's own errors come out, each one line. Examples are bounded (HYPOTHESIS_PROFILE=ci in
tests/conftest.py) so the suite stays within minutes; set HYPOTHESIS_MAX_EXAMPLES to search longer."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds import sources
from feeds.intel_store import LoadedIntel
from feeds.model import FeedError
from warpagent import config
from warpagent.collect import nmap_xml, scope
from warpagent.errors import CollectError, ConfigError, ScopeError
from warpagent.evidence import folders
from warpagent.sharing import guard, share

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
FILES = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# JSON-like values with the awkward corners: bools where numbers go, huge ints, odd strings, nesting
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True), st.text(max_size=30),
                    st.sampled_from(["", "0", "2-5", "21+", "configs", "2026-11-25", "²", "\x00", "~", "../..",
                                     "2026-11-25T00:00:00.000Z", "::1%x 10.0.0.0/8"]))
values = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=5)), max_leaves=25)
texts = st.one_of(st.text(max_size=400), st.binary(max_size=300).map(lambda b: b.decode("latin-1")))


def _one_line(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message


# --- config -----------------------------------------------------------------------------------

@given(document=st.dictionaries(st.sampled_from(["organisation", "estates", "store", "sharing", "feeds", "scan",
                                                 "schedule", "reports", "hub", "x"]), values, max_size=6))
def test_any_config_document_gives_settings_or_config_errors(document: dict[str, Any]) -> None:
    try:
        config.parse_text(yaml.safe_dump(document), "w.yaml", Path("/tmp"))
    except ConfigError as exc:
        for problem in exc.problems:
            _one_line(problem)
            assert len(problem) <= 400


@given(text=texts)
def test_any_config_text_gives_settings_or_config_errors(text: str) -> None:
    try:
        config.parse_text(text, "w.yaml", Path("/tmp"))
    except ConfigError as exc:
        assert all("\n" not in p for p in exc.problems)


# --- scope ------------------------------------------------------------------------------------

@given(targets=st.lists(st.one_of(st.text(max_size=60), st.ip_addresses().map(str)), max_size=4),
       exclude=st.lists(st.text(max_size=40), max_size=2))
def test_any_scope_gives_canonical_addresses_or_a_scope_error(targets: list[str], exclude: list[str]) -> None:
    for text in targets + exclude:
        problem = scope.target_problem(text)
        assert problem is None or "\n" not in problem
    try:
        found = scope.resolve("e", targets, exclude, 4096, lambda name: [])
    except ScopeError as exc:
        _one_line(str(exc))
        return
    assert scope.targets_file(found.addresses).split() == list(found.addresses)


# --- nmap XML ----------------------------------------------------------------------------------

SAMPLE_XML = ('<?xml version="1.0"?><nmaprun scanner="nmap" args="nmap" start="1" version="7.93">'
              '<host><status state="up" reason="syn-ack"/><address addr="198.18.0.1" addrtype="ipv4"/>'
              '<ports><port protocol="tcp" portid="443"><state state="open" reason="syn-ack"/>'
              '<service name="https" product="nginx" version="1.22.1"><cpe>cpe:/a:igor_sysoev:nginx:1.22.1</cpe>'
              '</service><script id="ssl-cert" output="x"><table key="subject"><elem key="cn">a</elem></table>'
              '</script></port></ports></host><runstats><finished time="2" exit="success"/>'
              '<hosts up="1" down="0" total="1"/></runstats></nmaprun>')


@given(cut=st.integers(min_value=0, max_value=len(SAMPLE_XML)), insert=st.text(max_size=40),
       at=st.integers(min_value=0, max_value=len(SAMPLE_XML)))
def test_cut_or_corrupted_nmap_xml_gives_hosts_or_a_collect_error(cut: int, insert: str, at: int) -> None:
    for xml in (SAMPLE_XML[:cut], SAMPLE_XML[:at] + insert + SAMPLE_XML[at:]):
        try:
            nmap_xml.parse(xml, {}, source="nmap")
        except CollectError as exc:
            _one_line(str(exc))


# --- host evidence: every format, through the folder reader the scan uses -----------------------------

EVIDENCE_FILES = ("etc/passwd", "etc/group", "etc/shadow", "etc/sudoers", "etc/login.defs",
                  "etc/security/pwquality.conf", "etc/pam.d/common-password", "etc/ssh/sshd_config",
                  "etc/os-release", "etc/apt/sources.list", "etc/apt/sources.list.d/x.sources",
                  "var/lib/dpkg/status", "var/lib/rpm-qa.txt", "sbom/app.json", "backups/restic-snapshots.json",
                  "backups/borg-list.json", "backups/backups.csv")


@FILES
@given(relative=st.sampled_from(EVIDENCE_FILES), text=st.one_of(texts, values.map(json.dumps)))
def test_any_evidence_file_is_read_or_named_never_raised(relative: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as work:
        host = Path(work) / "web1"
        (host / "etc").mkdir(parents=True)
        (host / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
        (host / relative).parent.mkdir(parents=True, exist_ok=True)
        (host / relative).write_text(text, encoding="utf-8", errors="surrogatepass")
        found = folders.read_host(host)
    for problem in found.problems:
        _one_line(problem)


@FILES
@given(deep=st.integers(min_value=500, max_value=100_000), relative=st.sampled_from(
    ["sbom/app.json", "backups/restic-snapshots.json", "backups/borg-list.json"]))
def test_absurdly_deep_json_evidence_is_named(deep: int, relative: str) -> None:
    with tempfile.TemporaryDirectory() as work:
        host = Path(work) / "web1"
        (host / relative).parent.mkdir(parents=True)
        (host / relative).write_text("[" * deep + "]" * deep)
        found = folders.read_host(host)
    assert any(relative in p for p in found.problems)


# --- feeds ---------------------------------------------------------------------------------------

FEED_FILES = {"kev": "known_exploited_vulnerabilities.json", "epss": "epss_scores-current.csv",
              "nvd": "nvdcve-2.0-2026.json", "osv": "Debian/x.json", "endoflife": "full.json",
              "distro-info": "debian.csv", "security-support": "security-support-ended.deb12",
              "distro-packages": "debian_bookworm_main_Packages"}


@FILES
@given(source=st.sampled_from(sorted(FEED_FILES)), text=st.one_of(texts, values.map(json.dumps)))
def test_any_feed_file_loads_or_is_a_feed_error(source: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / FEED_FILES[source]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            sources.load_source(source, Path(work), LoadedIntel())
        except FeedError as exc:
            _one_line(str(exc))


@FILES
@given(member=st.binary(max_size=200))
def test_a_corrupt_osv_zip_is_a_feed_error(member: bytes) -> None:
    import zipfile

    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "Debian").mkdir()
        archive = Path(work) / "Debian" / "all.zip"
        with zipfile.ZipFile(archive, "w") as out:
            out.writestr("DSA-1.json", member)
        data = bytearray(archive.read_bytes())
        if len(data) > 40:
            data[35] ^= 0xFF  # damage the member's data
        archive.write_bytes(bytes(data))
        try:
            sources.load_source("osv", Path(work), LoadedIntel())
        except FeedError as exc:
            _one_line(str(exc))


# --- what hub members and peers send ------------------------------------------------------------------

stix_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["identity", "x-warpagent-posture", "x-warpagent-regional", "vulnerability",
                              "extension-definition", "note", "software", "marking-definition"]),
     "id": st.sampled_from(["identity--44444444-4444-4444-8444-444444444444", "x-warpagent-posture--1", "bad"]),
     "spec_version": st.sampled_from(["2.1", 2.1, None])},
    optional={"created": values, "modified": values, "created_by_ref": values, "category": values,
              "measured": values, "open_findings": values, "by_severity": values, "checks": values,
              "as_of": values, "k_threshold": values, "categories": values, "extensions": values,
              "extension_types": values, "sectors": values, "name": values, "software": values})


@given(obj=st.one_of(stix_like, values))
def test_the_hub_and_pull_screens_name_every_object_they_refuse(obj: Any) -> None:
    found = guard.content_problem(obj, max_bytes=65536, now=NOW)
    assert found is None or (found[0] in guard.KINDS and "\n" not in found[1])
    problem = share._object_problem(obj)
    assert problem is None or "\n" not in problem


POSTURE = {"type": "x-warpagent-posture", "spec_version": "2.1",
           "id": "x-warpagent-posture--33333333-3333-4333-8333-333333333333", "created": "2000-01-01T00:00:00.000Z",
           "modified": "2026-11-25T00:00:00.000Z", "created_by_ref": "identity--11111111-1111-4111-8111-111111111111",
           "category": "configs", "measured": True, "as_of": "2026-11-25", "open_findings": "2-5",
           "by_severity": {"high": "1"}, "checks": [{"check_id": "WA501", "findings": "1", "assets": "1"}],
           "software": [{"product": "nginx", "version": "1.22.1"}]}
REGIONAL = {"type": "x-warpagent-regional", "spec_version": "2.1",
            "id": "x-warpagent-regional--66666666-6666-4666-8666-666666666666",
            "created_by_ref": "identity--22222222-2222-4222-8222-222222222222", "created": "2000-01-01T00:00:00.000Z",
            "modified": "2026-11-25T00:00:00.000Z", "as_of": "2026-11-25", "k_threshold": 3, "members_total": 5,
            "categories": [{"category": "configs", "measured": {"count": 5, "of": 5}, "median_open": "2-5"}]}


@given(base=st.sampled_from([POSTURE, REGIONAL]), key=st.sampled_from(sorted(set(POSTURE) | set(REGIONAL))),
       value=values, inner=st.sampled_from(["by_severity", "checks", "categories", "software"]), nested=values)
def test_a_near_valid_posture_or_picture_is_screened_never_raised(base: dict[str, Any], key: str, value: Any,
                                                                 inner: str, nested: Any) -> None:
    """The screens' hard cases: everything right but one field, or one field inside a list."""
    for obj in ({**base, key: value}, {**base, inner: [nested]}, {**base, inner: {"high": nested}}):
        found = guard.content_problem(obj, max_bytes=65536, now=NOW)
        assert found is None or (found[0] in guard.KINDS and "\n" not in found[1])
