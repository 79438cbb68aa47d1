"""Golden tests: each configuration check over recorded nmap XML, positive and negative."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from checks import ALL_CHECKS, CheckContext, by_id
from checks.base import check
from tests.conftest import RECORDED_AT
from warpagent.collect import nmap_xml
from warpagent.model.findings import CATEGORIES, Finding, Inventory, Severity
from warpagent.scan import engine

Golden = set[tuple[str, str, str]]  # (check id, address, subject)


def _findings(xml: str, now: dt.datetime = RECORDED_AT) -> list[Finding]:
    parsed = nmap_xml.parse(xml, {})
    inventory = Inventory(estate="lab", hosts=parsed.hosts, scanned=parsed.finished)
    evaluation = engine.evaluate(inventory, CheckContext(now=now))
    assert evaluation.errors == ()
    return list(evaluation.findings)


def _golden(findings: list[Finding]) -> Golden:
    return {(f.check_id, f.asset, f.subject) for f in findings}


ESTATE_EXPECTED: Golden = {
    *{(cid, "198.18.18.10", f"{port}/tcp") for port in (443, 8443)
      for cid in ("WA501", "WA502", "WA503", "WA504", "WA506")},
    ("WA511", "198.18.18.10", "21/tcp"), ("WA512", "198.18.18.10", "21/tcp"),
    ("WA512", "198.18.18.10", "23/tcp"),
    ("WA507", "198.18.18.11", "22/tcp"), ("WA508", "198.18.18.11", "22/tcp"),
    ("WA508", "198.18.18.11", "22/tcp sha-1"),
    ("WA514", "198.18.18.11", "6379/tcp"), ("WA514", "198.18.18.11", "11211/tcp"),
    ("WA513", "198.18.18.11", "161/udp"),
}


def test_recorded_estate_golden(asset: Callable[[str], str]) -> None:
    findings = _findings(asset("nmap-estate.xml"))
    assert _golden(findings) == ESTATE_EXPECTED
    assert not [f for f in findings if f.asset == "198.18.18.20"], "the hardened control host has no finding"
    assert {f.category for f in findings} == {"configs"}
    for finding in findings:
        assert finding.evidence and finding.remediation and finding.title
        endpoint = finding.subject.removesuffix(" sha-1")  # WA508's SHA-1 finding sits beside its medium one
        assert finding.port is not None and endpoint == f"{finding.port}/{finding.protocol}"


def test_finding_details_name_their_evidence(asset: Callable[[str], str]) -> None:
    by_key = {(f.check_id, f.subject): f for f in _findings(asset("nmap-estate.xml")) if f.asset.endswith(".10")}
    legacy = by_key[("WA501", "443/tcp")]
    assert legacy.evidence == "ssl-enum-ciphers on 443/tcp: server accepts TLSv1.0, TLSv1.1"
    assert legacy.severity is Severity.MEDIUM
    weak = by_key[("WA502", "443/tcp")]
    assert weak.severity is Severity.HIGH
    assert "no encryption (NULL): TLS_ECDHE_RSA_WITH_NULL_SHA" in weak.evidence
    assert "anonymous key exchange" in weak.evidence and "CBC mode with SHA-1" in weak.evidence
    expired = by_key[("WA503", "443/tcp")]
    assert expired.evidence == "ssl-cert on 443/tcp: not valid after 2026-10-21 (35 days ago)"
    assert by_key[("WA506", "443/tcp")].evidence == "ssl-cert on 443/tcp: RSA key of 1024 bits (minimum 2048)"
    assert by_key[("WA512", "23/tcp")].severity is Severity.HIGH


def test_ssh_findings(asset: Callable[[str], str]) -> None:
    ssh = {f.check_id: f for f in _findings(asset("nmap-estate.xml")) if f.subject == "22/tcp"}
    assert ssh["WA507"].evidence == "ssh-auth-methods as user root on 22/tcp: publickey, password"
    legacy = ssh["WA508"].evidence
    for algorithm in ("kex: diffie-hellman-group1-sha1", "kex: diffie-hellman-group14-sha1",
                      "encryption: aes128-cbc", "encryption: 3des-cbc", "mac: hmac-md5", "mac: hmac-sha1-96"):
        assert algorithm in legacy
    assert "hmac-sha1," not in legacy and "curve25519" not in legacy  # SHA-1 MACs are not medium
    sha1 = next(f for f in _findings(asset("nmap-estate.xml")) if f.subject == "22/tcp sha-1")
    assert sha1.check_id == "WA508" and sha1.severity is Severity.LOW and sha1.port == 22
    assert sha1.evidence == ("ssh2-enum-algos on 22/tcp: mac: hmac-sha1-etm@openssh.com, mac: hmac-sha1")


def _ssh_host(host_keys: list[str], macs: list[str]) -> str:
    elems = lambda names: "".join(f"<elem>{n}</elem>" for n in names)  # noqa: E731
    return ('<?xml version="1.0"?><nmaprun scanner="nmap" args="nmap" start="1" version="7.93">'
            '<scaninfo type="connect" protocol="tcp" numservices="1" services="22"/>'
            '<host><status state="up" reason="syn-ack"/><address addr="198.18.0.40" addrtype="ipv4"/><ports>'
            '<port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/>'
            '<service name="ssh" product="OpenSSH" version="9.2p1"/><script id="ssh2-enum-algos" output="">'
            f'<table key="server_host_key_algorithms">{elems(host_keys)}</table>'
            f'<table key="mac_algorithms">{elems(macs)}</table></script></port></ports></host>'
            '<runstats><finished time="2" timestr="" elapsed="1" summary="" exit="success"/>'
            '<hosts up="1" down="0" total="1"/></runstats></nmaprun>')


def test_sha1_host_key_signatures_and_macs_are_low_and_their_sha2_forms_are_not_reported() -> None:
    [sha1] = _findings(_ssh_host(["rsa-sha2-512", "ssh-rsa", "ssh-ed25519"], ["hmac-sha2-256", "hmac-sha1"]))
    assert (sha1.check_id, sha1.severity, sha1.subject) == ("WA508", Severity.LOW, "22/tcp sha-1")
    assert sha1.evidence == "ssh2-enum-algos on 22/tcp: server_host_key: ssh-rsa, mac: hmac-sha1"
    assert _findings(_ssh_host(["rsa-sha2-512", "rsa-sha2-256", "ssh-ed25519"],
                               ["hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com"])) == []
    both = _findings(_ssh_host(["ssh-dss", "ssh-rsa"], ["hmac-md5"]))
    assert sorted((f.severity.label, f.subject) for f in both) == [("low", "22/tcp sha-1"), ("medium", "22/tcp")]


def test_windows_and_datastores(asset: Callable[[str], str]) -> None:
    now = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    assert _golden(_findings(asset("nmap-windows-datastores.xml"), now)) == {
        ("WA509", "198.18.0.30", "smb"), ("WA510", "198.18.0.30", "smb"),
        ("WA515", "198.18.0.30", "3389/tcp"), ("WA515", "198.18.0.30", "5985/tcp"),
        ("WA515", "198.18.0.30", "15900/tcp"),  # VNC off its default port is still VNC
        # the same tools as supplier routes in (supply_chain): no register, so nobody owns them
        ("WA605", "198.18.0.30", "3389/tcp"), ("WA605", "198.18.0.30", "15900/tcp"),
        ("WA514", "198.18.0.32", "27017/tcp"), ("WA514", "198.18.0.32", "9200/tcp"),
        ("WA505", "198.18.0.32", "4443/tcp"),  # expires 2026-12-05: within 30 days
    }  # hardened SMB (.31), Elasticsearch with auth (9201) and Redis with a password: nothing


def test_smb_evidence_and_port(asset: Callable[[str], str]) -> None:
    now = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    smb = {f.check_id: f for f in _findings(asset("nmap-windows-datastores.xml"), now) if f.subject == "smb"}
    assert smb["WA509"].port == 445 and smb["WA509"].severity is Severity.HIGH
    assert "SMB 3:0:2: Message signing enabled but not required" in smb["WA510"].evidence
    assert "SMBv1 message_signing: disabled" in smb["WA510"].evidence


def test_certificate_time_boundaries(asset: Callable[[str], str]) -> None:
    xml = asset("nmap-windows-datastores.xml")
    long_before = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    assert not [f for f in _findings(xml, long_before) if f.check_id in ("WA503", "WA505")]
    after = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    assert {f.check_id for f in _findings(xml, after) if f.subject == "4443/tcp"} == {"WA503"}


def test_registry_ids_categories_and_docs() -> None:
    ids = [c.id for c in ALL_CHECKS]
    assert len(ids) == len(set(ids))
    for item in ALL_CHECKS:
        assert item.category in CATEGORIES
        assert item.id[2] == str(CATEGORIES.index(item.category) + 1), f"{item.id} is not a {item.category} id"
        doc = item.doc
        assert "Why it matters:" in doc and "Fix:" in doc, f"{item.id} docstring is its documentation"
    assert by_id("WA514").name == "datastore-no-auth"
    scripts, args = engine.nse_scripts()
    assert "ssl-enum-ciphers" in scripts and "ssh.user=root" in args


def test_check_ids_must_match_their_category() -> None:
    with pytest.raises(ValueError, match="must be WA5xx"):
        check("WA101", "configs", "misplaced")
    with pytest.raises(ValueError, match="unknown category"):
        check("WA901", "hygiene", "nope")
