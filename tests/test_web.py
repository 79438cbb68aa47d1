"""The web checks against real nginx on loopback, found by the real nmap: a careless site (plain
HTTP, no HSTS or headers, an unprotected session cookie, version tokens, an old WordPress
named by its generator tag) beside a hardened one that gives no finding."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import needs_root, run_cli
from tests.estate import _kill, _nginx_conf, _wait_tcp
from warpagent.evidence import web

CARELESS, HARDENED = "127.0.0.41", "127.0.0.42"
WORDPRESS_PAGE = ('<html><head><meta name="generator" content="WordPress 5.0.3" /><title>Council news</title>'
                  "</head><body>news</body></html>")


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    needs_root()  # ports 80 and 443
    from tests.tls import tls_context

    work = tmp_path_factory.mktemp("web-sites")
    tls_context(work)  # cert.pem / key.pem (the checks here are not about the certificate)
    cert, key = work / "cert.pem", work / "key.pem"
    page = WORDPRESS_PAGE.replace('"', '\\"')
    careless = (f"server {{ listen {CARELESS}:80; location / {{ add_header Set-Cookie 'PHPSESSID=abc123; path=/'; "
                f"add_header X-Powered-By 'PHP/7.2.1'; default_type text/html; return 200 \"{page}\"; }} }}\n"
                f"  server {{ listen {CARELESS}:443 ssl; ssl_certificate {cert}; ssl_certificate_key {key}; "
                "location / { add_header Set-Cookie 'wp_session=xyz; path=/; HttpOnly'; return 200 'hello'; } }")
    hardened = (f"server {{ listen {HARDENED}:80; server_tokens off; location / {{ "
                f"return 301 https://{HARDENED}$request_uri; }} }}\n"
                f"  server {{ listen {HARDENED}:443 ssl; ssl_certificate {cert}; ssl_certificate_key {key}; "
                "server_tokens off; add_header Strict-Transport-Security 'max-age=63072000; includeSubDomains' always; "
                "add_header X-Content-Type-Options nosniff always; "
                "add_header Content-Security-Policy \"default-src 'self'; frame-ancestors 'none'\" always; "
                "location / { add_header Set-Cookie 'SESSIONID=s3; path=/; Secure; HttpOnly; SameSite=Lax'; "
                "add_header Strict-Transport-Security 'max-age=63072000; includeSubDomains' always; "
                "add_header X-Content-Type-Options nosniff always; "
                "add_header Content-Security-Policy \"default-src 'self'; frame-ancestors 'none'\" always; "
                "return 200 'hello'; } }")
    conf = _nginx_conf(work, "sites", [], "", cert, key)
    conf.write_text(conf.read_text().replace("  \n}", f"  {careless}\n  {hardened}\n}}"))
    nginx = subprocess.Popen(["nginx", "-c", str(conf), "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for address in (CARELESS, HARDENED):
            _wait_tcp(address, 443, time.monotonic() + 10)
        yield work
    finally:
        _kill(nginx.pid)


def test_the_careless_site_is_found_out_and_the_hardened_one_is_clean(sites: Path, tmp_path: Path) -> None:
    config = tmp_path / "warpagent.yaml"
    config.write_text("organisation: {name: Web Council}\nstore: ./w.db\n"
                      f"estates:\n  - {{name: web, targets: [{CARELESS}, {HARDENED}], ports: '80,443', timeout: 3m}}\n",
                      encoding="utf-8")
    done = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout)["findings"]
    web_checks = {"WA523", "WA524", "WA525", "WA526", "WA527"}
    found = {(f["asset"], f["check_id"], f["subject"], f["severity"]) for f in findings if f["check_id"] in web_checks}
    assert {x for x in found if x[0] == HARDENED} == set()
    assert {x for x in found if x[0] == CARELESS} == {
        (CARELESS, "WA523", "80/tcp", "medium"),
        (CARELESS, "WA524", "443/tcp:hsts", "low"),
        *((CARELESS, "WA525", f"{port}/tcp:header:{h}", "info")
          for port in (80, 443) for h in ("nosniff", "frame", "csp")),
        (CARELESS, "WA526", "80/tcp:cookie:phpsessid", "low"),  # no HttpOnly; Secure is moot over HTTP
        (CARELESS, "WA526", "443/tcp:cookie:wp_session", "medium"),  # no Secure over HTTPS
        (CARELESS, "WA527", "80/tcp:version-headers", "info"), (CARELESS, "WA527", "443/tcp:version-headers", "info")}
    # the generator tag names WordPress 5.0.3: judged by endoflife.date (the bundled snapshot)
    wordpress = [f for f in findings if f["subject"] == "80/tcp:wordpress"]
    assert [(f["check_id"], f["product"], f["version"]) for f in wordpress] == [("WA201", "WordPress", "5.0.3")]
    versions = next(f for f in findings if f["subject"] == "80/tcp:version-headers")
    assert "x-powered-by: PHP/7.2.1" in versions["evidence"] and "server: nginx/" in versions["evidence"]


@pytest.mark.parametrize(("body", "generator"), [
    (b'<meta name="generator" content="Drupal 10 (https://www.drupal.org)">', "Drupal 10 (https://www.drupal.org)"),
    (b"<META NAME=GENERATOR CONTENT='Joomla! 3.9.1 - Open Source Content Management'>",
     "Joomla! 3.9.1 - Open Source Content Management"),
    (b"<html><head><title>x</title></head></html>", ""),
    (b"<meta name=\"generator\" content=\"" + b"A" * 500 + b"\">", "A" * 120),
    (b"\xff\xfe<meta <<< name=generator", ""),
])
def test_the_generator_tag_is_read_from_any_page(body: bytes, generator: str) -> None:
    assert web.generator_of(body) == generator
