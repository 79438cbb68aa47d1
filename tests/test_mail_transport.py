"""MTA-STS policies and STARTTLS on MX hosts, against real servers on loopback: nginx serving
the policies with a test CA's certificates, aiosmtpd with and without STARTTLS. Only hosts whose
addresses are in the estate's scope are contacted; the rest are judged from DNS alone."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import needs_root, run_cli
from tests.dns_server import serving
from tests.estate import _kill, _nginx_conf, _wait_tcp

POLICY_HOST, GOOD_MX, PLAIN_MX, WRONG_MX = "127.0.0.31", "127.0.0.32", "127.0.0.33", "127.0.0.34"
OUTSIDE = "198.18.99.99"  # never in scope, never contacted


def _ca(work: Path) -> tuple[Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Mail CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    (work / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return ca, key


def _leaf(work: Path, ca: Any, ca_key: Any, host: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = work / f"{host}.crt", work / f"{host}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture(scope="module")
def mail_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    needs_root()  # ports 25 and 443
    import ssl

    from aiosmtpd.controller import Controller

    work = tmp_path_factory.mktemp("mail-servers")
    ca, ca_key = _ca(work)
    good_cert, good_key = _leaf(work, ca, ca_key, "mta-sts.mts.test")
    wrong_cert, wrong_key = _leaf(work, ca, ca_key, "somebody-else.test")

    def server(name: str, cert: Path, key: Path, policy: str) -> str:
        return (f"server {{ listen {POLICY_HOST}:443 ssl; server_name {name}; ssl_certificate {cert}; "
                f"ssl_certificate_key {key}; location = /.well-known/mta-sts.txt {{ default_type text/plain; "
                f"return 200 '{policy}'; }} }}")

    conf = _nginx_conf(work, "mta-sts", [], "", good_cert, good_key)
    servers = "\n  ".join([
        server("mta-sts.mts.test", good_cert, good_key, "version: STSv1\\nmode: testing\\nmx: mx1.mts.test\\n"
               "max_age: 3600\\n"),
        # the second domain's policy host presents a certificate for another name
        server("mta-sts.badcert.test", wrong_cert, wrong_key, "version: STSv1\\nmode: enforce\\n"
               "mx: *.badcert.test\\nmax_age: 1209600\\n")])
    conf.write_text(conf.read_text().replace("  \n}", f"  {servers}\n}}"))
    nginx = subprocess.Popen(["nginx", "-c", str(conf), "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)

    class Nobody:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "550 not a real mail server"

    def context(cert: Path, key: Path) -> ssl.SSLContext:
        made = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        made.load_cert_chain(cert, key)
        return made

    mx1_cert, mx1_key = _leaf(work, ca, ca_key, "mx1.mts.test")
    smtp = [Controller(Nobody(), hostname=GOOD_MX, port=25, tls_context=context(mx1_cert, mx1_key)),
            Controller(Nobody(), hostname=PLAIN_MX, port=25),
            Controller(Nobody(), hostname=WRONG_MX, port=25, tls_context=context(wrong_cert, wrong_key))]
    try:
        for server in smtp:
            server.start()
        _wait_tcp(POLICY_HOST, 443, time.monotonic() + 10)
        yield work
    finally:
        for server in smtp:
            server.stop()
        _kill(nginx.pid)


def test_policies_and_starttls_are_judged_for_in_scope_hosts_only(mail_servers: Path, tmp_path: Path) -> None:
    txt = [(d, "v=spf1 -all") for d in ("mts.test", "plain.test", "badcert.test")]
    txt += [(f"_dmarc.{d}", "v=DMARC1; p=reject; rua=mailto:dmarc-rua@dmarc.service.gov.uk")
            for d in ("mts.test", "plain.test", "badcert.test")]
    txt += [(f"_mta-sts.{d}", "v=STSv1; id=1") for d in ("mts.test", "plain.test", "badcert.test")]
    txt += [(f"_smtp._tls.{d}", "v=TLSRPTv1; rua=mailto:t@x.test") for d in ("mts.test", "plain.test", "badcert.test")]
    mx = [("mts.test", "mx1.mts.test", 10), ("mts.test", "mx2.mts.test", 20), ("plain.test", "mx.plain.test", 10),
          ("badcert.test", "mx.badcert.test", 10)]
    hosts = [("mta-sts.mts.test", POLICY_HOST), ("mta-sts.badcert.test", POLICY_HOST),
             ("mta-sts.plain.test", OUTSIDE), ("mx1.mts.test", GOOD_MX), ("mx2.mts.test", OUTSIDE),
             ("mx.plain.test", PLAIN_MX), ("mx.badcert.test", WRONG_MX)]
    with serving(txt, mx, hosts) as dns:
        config = tmp_path / "warpagent.yaml"
        config.write_text(
            "organisation: {name: Warp Council}\nstore: ./w.db\nfeeds: {bundled: false}\n"
            f"scan: {{dns_servers: ['{dns.server}']}}\n"
            "estates:\n  - name: mail\n"
            f"    targets: [{POLICY_HOST}, {GOOD_MX}, {PLAIN_MX}, {WRONG_MX}]\n    ports: '9'\n"
            "    domains: [mts.test, plain.test, badcert.test]\n"
            f"    mail: {{ca_bundle: {mail_servers / 'ca.pem'}, timeout: 5s}}\n", encoding="utf-8")
        done = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    found = {(f["asset"], f["check_id"], f["subject"], f["severity"]) for f in out["findings"]}
    assert found == {
        ("domain mts.test", "WA521", "mta-sts:mode", "low"), ("domain mts.test", "WA521", "mta-sts:max-age", "low"),
        ("domain mts.test", "WA521", "mta-sts:mx", "medium"),  # mx2 is not in the policy
        ("domain plain.test", "WA522", "mx:mx.plain.test", "high"),
        ("domain badcert.test", "WA521", "mta-sts:policy", "medium"),
        ("domain badcert.test", "WA522", "mx:mx.badcert.test", "medium")}
    rows = {(f["asset"], f["subject"]): f for f in out["findings"]}
    assert "certificate" in rows[("domain badcert.test", "mta-sts:policy")]["evidence"]
    assert "not valid for mx.badcert.test" in rows[("domain badcert.test", "mx:mx.badcert.test")]["evidence"]
    problems = out["summary"][0]["problems"]
    assert out["summary"][0]["status"] == "complete"
    assert any("mta-sts.plain.test is not in the estate's scope" in p for p in problems)
    assert not any(OUTSIDE in p for p in problems)  # mx2 and plain's policy host: never contacted, nothing to say


def test_a_policy_host_that_is_down_makes_its_domain_partial_and_keeps_the_rest(tmp_path: Path) -> None:
    down = "127.0.0.35"  # in scope, nothing listening
    txt = [("down.test", "v=spf1 +all"), ("_mta-sts.down.test", "v=STSv1; id=1")]
    with serving(txt, [], [("mta-sts.down.test", down)]) as dns:
        config = tmp_path / "warpagent.yaml"
        config.write_text(
            "organisation: {name: Warp Council}\nstore: ./w.db\nfeeds: {bundled: false}\n"
            f"scan: {{dns_servers: ['{dns.server}']}}\n"
            f"estates:\n  - {{name: mail, targets: [{down}], ports: '9', domains: [down.test],\n"
            "     mail: {timeout: 2s}}\n",
            encoding="utf-8")
        done = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path, timeout=120)
    assert done.returncode == 3, done.stderr
    out = json.loads(done.stdout)
    (problem,) = [p for p in out["summary"][0]["problems"] if "mta-sts.down.test" in p]
    assert problem.startswith(f"domain down.test: mta-sts.down.test at {down}: the MTA-STS policy host did not answer")
    found = {(f["check_id"], f["subject"]) for f in out["findings"]}
    assert ("WA516", "spf:all") in found and not any(c == "WA521" for c, _ in found)  # down is not a finding
