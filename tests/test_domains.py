"""The council's mail domains against a real DNS server (dnsmasq, tests/dns_server.py): each
planted weakness on its own domain beside a clean one, the exact findings, and NXDOMAIN, a
silent server, truncated answers and malformed records each named with the rest kept."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import run_cli
from tests.dns_server import DnsServer, serving, silent
from warpagent.evidence.parsers import mail_records as mail

NCSC = "mailto:dmarc-rua@dmarc.service.gov.uk"


def _dkim(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def _zone() -> tuple[list[tuple[str, str]], list[tuple[str, str, int]]]:
    txt = [
        ("clean.test", "v=spf1 ip4:198.18.0.0/24 include:_spf.clean.test -all"),
        ("_spf.clean.test", "v=spf1 ip4:198.18.1.0/24 -all"),
        ("_dmarc.clean.test", f"v=DMARC1; p=reject; sp=reject; rua={NCSC},mailto:dmarc@clean.test"),
        ("selector1._domainkey.clean.test", _dkim(2048)), ("selector2._domainkey.clean.test", _dkim(2048)),
        ("_mta-sts.clean.test", "v=STSv1; id=2026120101"),
        ("_smtp._tls.clean.test", "v=TLSRPTv1; rua=mailto:tls@clean.test"),
        # anyone may send; DMARC that only watches, weaker for subdomains, half applied, no reports
        ("spoofable.test", "v=spf1 +all"),
        ("_dmarc.spoofable.test", "v=DMARC1; p=quarantine; sp=none; pct=50"),
        ("selector1._domainkey.spoofable.test", _dkim(1024)),
        # two SPF records, no DMARC, no DKIM key
        ("twice.test", "v=spf1 ip4:198.18.0.1 -all"), ("twice.test", "v=spf1 ip4:198.18.0.2 -all"),
        ("twice.test", "google-site-verification=abc"),
        # eleven lookups and a ptr; DMARC p=none with reports elsewhere
        ("lookups.test", "v=spf1 ptr " + " ".join(f"include:i{n}.lookups.test" for n in range(10)) + " ~all"),
        *((f"i{n}.lookups.test", "v=spf1 -all") for n in range(10)),
        ("_dmarc.lookups.test", "v=DMARC1; p=none; rua=mailto:dmarc@lookups.test"),
        # neutral SPF, DMARC written wrongly, a revoked key and a key that is not base64
        ("syntax.test", "v=spf1 ip4:198.18.0.1 ?all"),
        ("_dmarc.syntax.test", "p=reject; v=DMARC1; colour=blue; rua=mailto:a@x.test,mailto:b@x.test,mailto:c@x.test"),
        ("selector1._domainkey.syntax.test", "v=DKIM1; p="),
        ("selector2._domainkey.syntax.test", "v=DKIM1; k=rsa; p=not*base64!"),
        # a 4096-bit key: its answer is over 512 bytes, truncated over UDP and asked again over TCP
        ("big.test", "v=spf1 -all"),
        ("_dmarc.big.test", f"v=DMARC1; p=reject; rua={NCSC}"),
        ("selector1._domainkey.big.test", _dkim(4096)),
    ]
    mx = [("clean.test", "mx.clean.test", 10), ("spoofable.test", "mx.spoofable.test", 10)]
    return txt, mx


DOMAINS = ("clean.test", "spoofable.test", "twice.test", "lookups.test", "syntax.test", "big.test")


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    txt, mx = _zone()
    with serving(txt, mx, failing=["broken.test"]) as server:
        yield server


def _config(work: Path, servers: list[str], domains: tuple[str, ...] = DOMAINS) -> Path:
    config = work / "warpagent.yaml"
    config.write_text(
        "organisation: {name: Warp Council}\nstore: ./warpagent.db\nfeeds: {bundled: false}\n"
        f"scan: {{dns_servers: {json.dumps(servers)}, dns_timeout: 2s}}\n"
        "estates:\n  - name: council-mail\n"
        f"    domains: {json.dumps(list(domains))}\n"
        "    mail: {dkim_selectors: [selector1, selector2]}\n", encoding="utf-8")
    return config


def _scan(work: Path, servers: list[str], domains: tuple[str, ...] = DOMAINS) -> tuple[int, dict[str, Any]]:
    done = run_cli("--config", str(_config(work, servers, domains)), "scan", "--json", cwd=work, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def _by_domain(out: dict[str, Any]) -> dict[str, set[tuple[str, str, str]]]:
    found: dict[str, set[tuple[str, str, str]]] = {d: set() for d in DOMAINS}
    for f in out["findings"]:
        found.setdefault(f["asset"].removeprefix("domain "), set()).add((f["check_id"], f["subject"], f["severity"]))
    return found


def test_each_planted_weakness_is_found_and_the_clean_domain_has_none(dns: DnsServer, tmp_path: Path) -> None:
    code, out = _scan(tmp_path, [dns.server])
    assert code == 0, out["summary"]
    found = _by_domain(out)
    assert found["clean.test"] == set()
    assert found["spoofable.test"] == {
        ("WA516", "spf:all", "high"), ("WA517", "dmarc:subdomain-policy", "medium"), ("WA517", "dmarc:pct", "low"),
        ("WA517", "dmarc:reporting", "low"), ("WA518", "dkim:selector1", "low"), ("WA518", "dkim:selector2", "medium"),
        ("WA519", "mta-sts:missing", "low"), ("WA520", "tls-rpt:missing", "low")}
    assert found["twice.test"] == {("WA516", "spf:multiple", "medium"), ("WA517", "dmarc:missing", "high"),
                                   ("WA518", "dkim:selector1", "medium"), ("WA518", "dkim:selector2", "medium")}
    assert {(c, s) for c, s, _ in found["lookups.test"]} == {
        ("WA516", "spf:permerror"), ("WA516", "spf:ptr"), ("WA517", "dmarc:policy"), ("WA517", "dmarc:reporting"),
        ("WA518", "dkim:selector1"), ("WA518", "dkim:selector2")}
    assert {(c, s) for c, s, _ in found["syntax.test"]} == {
        ("WA516", "spf:all"), ("WA517", "dmarc:syntax"), ("WA517", "dmarc:reporting"), ("WA518", "dkim:selector1"),
        ("WA518", "dkim:selector2")}
    assert found["big.test"] == {("WA518", "dkim:selector2", "medium")}  # selector1's 4096-bit key came over TCP
    rows = {(f["asset"], f["subject"]): f for f in out["findings"]}
    assert "11 DNS lookups (at most 10)" in rows[("domain lookups.test", "spf:permerror")]["title"]
    syntax = rows[("domain syntax.test", "dmarc:syntax")]
    assert "v=DMARC1 is not the first tag" in syntax["title"] and syntax["evidence"].endswith("at _dmarc.syntax.test")
    assert "revoked" in rows[("domain syntax.test", "dkim:selector1")]["title"]
    assert "cannot be read" in rows[("domain syntax.test", "dkim:selector2")]["title"]
    assert out["summary"][0]["status"] == "complete" and out["summary"][0]["addresses_in_scope"] == 0


def test_a_domain_that_does_not_exist_is_named_and_the_others_are_kept(dns: DnsServer, tmp_path: Path) -> None:
    code, out = _scan(tmp_path, [dns.server], ("clean.test", "gone.test", "spoofable.test"))
    assert code == 3
    (problem,) = [p for p in out["summary"][0]["problems"] if p.startswith("domain gone.test")]
    assert problem == "domain gone.test: does not exist (NXDOMAIN); check estates[].domains"
    assert ("WA516", "spf:all", "high") in _by_domain(out)["spoofable.test"]


def test_servfail_is_named_and_the_other_domains_are_kept(dns: DnsServer, tmp_path: Path) -> None:
    code, out = _scan(tmp_path, [dns.server], ("broken.test", "twice.test"))
    assert code == 3
    (problem,) = [p for p in out["summary"][0]["problems"] if p.startswith("domain broken.test")]
    assert problem == ("domain broken.test: the DNS server answered SERVFAIL; try again, or check the domain's "
                       "delegation and scan.dns_servers")
    assert ("WA516", "spf:multiple", "medium") in _by_domain(out)["twice.test"]


def test_a_silent_dns_server_makes_each_domain_partial_within_the_timeout(tmp_path: Path) -> None:
    with silent() as quiet:
        code, out = _scan(tmp_path, [quiet.server], ("clean.test", "spoofable.test"))
    assert code == 3 and out["findings"] == []
    problems = [p for p in out["summary"][0]["problems"] if "no DNS answer" in p]
    assert problems == [f"domain {d}: no DNS answer within 2s; check scan.dns_servers and scan.dns_timeout"
                        for d in ("clean.test", "spoofable.test")]


def test_a_fixed_domain_resolves_only_on_a_night_it_was_read(dns: DnsServer, tmp_path: Path) -> None:
    code, _out = _scan(tmp_path, [dns.server], ("twice.test",))
    assert code == 0
    with silent() as quiet:
        code, out = _scan(tmp_path, [quiet.server], ("twice.test",))
    assert code == 3 and out["summary"][0]["resolved"] == 0 and len(out["findings"]) == 4


@pytest.mark.parametrize(("record", "problems"), [
    ("v=DMARC1; p=reject", ()),
    ("v=DMARC1;p=reject;;", ()),
    ("p=reject; v=DMARC1", ("v=DMARC1 is not the first tag",)),
    ("v=DMARC1; p=reject; p=none", ("tag 'p' appears twice",)),
    ("v=DMARC1; p=maybe", ("p=maybe is not none, quarantine or reject",)),
    ("v=DMARC1; rua=mailto:a@b", ("no p= tag (the policy)",)),
    ("v=DMARC1; p=none; pct=150", ("pct=150 is not 0-100",)),
    ("v=DMARC1; p=none; rua=a@b", ("rua holds an address that is not a mailto: URI",)),
    ("v=DMARC1; p=none; junk", ("'junk' is not tag=value",)),
])
def test_dmarc_syntax_as_rfc_7489_reads_it(record: str, problems: tuple[str, ...]) -> None:
    assert mail.dmarc(record).problems == problems


@pytest.mark.parametrize(("record", "lookups", "qualifier"), [
    ("v=spf1 -all", 0, "-"),
    ("v=spf1 a mx include:x.test ~all", 3, "~"),
    ("v=spf1 ip4:1.2.3.4 redirect=_spf.x.test", 1, None),
    ("v=spf1 exists:%{i}.x.test ?all", 1, "?"),
    ("v=spf1 a:mail.x.test/24 all", 1, "+"),
])
def test_spf_terms_as_rfc_7208_counts_them(record: str, lookups: int, qualifier: str | None) -> None:
    assert mail.spf_lookups(record)[0] == lookups and mail.spf_all(record) == qualifier


def test_no_domain_selector_or_address_leaves_in_a_shared_bundle(dns: DnsServer, tmp_path: Path) -> None:
    code, _out = _scan(tmp_path, [dns.server])
    assert code == 0
    (tmp_path / "member.key").write_text("cd" * 32 + "\n", encoding="utf-8")
    (tmp_path / "member.key").chmod(0o600)
    config = tmp_path / "warpagent.yaml"
    config.write_text(config.read_text() + "sharing: {pseudonym_key_file: ./member.key}\n", encoding="utf-8")
    out = tmp_path / "bundle.json"
    shared = run_cli("--config", str(config), "share", "--dry-run", "--out", str(out), cwd=tmp_path)
    assert shared.returncode == 0, shared.stderr
    data = out.read_text().casefold()
    assert "wa516" in data  # the counts are shared
    # (the checks' own advice names the NCSC's public report address: that is guidance, not the council)
    for needle in (*DOMAINS, ".test", "selector1", "selector2", "dmarc@", "tls@", "mx.clean",
                   "Warp Council", dns.server):
        assert needle.casefold() not in data, f"{needle!r} left the council"
