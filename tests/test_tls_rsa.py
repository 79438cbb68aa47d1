"""TLS with static RSA key exchange (issue 29): a server offering only TLS_RSA_WITH_* suites,
the GCM ones included, has no forward secrecy; the real nmap's ssl-enum-ciphers sees it and
WA502 says so, though no other weak-cipher rule matches those suites."""

from __future__ import annotations

import json
from pathlib import Path

from tests import tls_servers
from tests.conftest import run_cli

HOST = "127.0.0.63"


def test_a_server_of_static_rsa_suites_alone_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "warpagent.yaml"
    config.write_text(f"organisation: {{name: RSA Council}}\nstore: ./w.db\nfeeds: {{bundled: false}}\n"
                      f"estates: [{{name: tls, targets: [{HOST}], ports: '8443', timeout: 5m}}]\n")
    with tls_servers.serving(tmp_path, https=[(HOST, 8443)], silent=[], name="rsa.test",
                             ciphers="AES128-GCM-SHA256:AES256-GCM-SHA384"):
        scanned = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path)
    assert scanned.returncode in (0, 1), scanned.stderr
    [weak] = [f for f in json.loads(scanned.stdout)["findings"] if f["check_id"] == "WA502"]
    assert weak["severity"] == "low"
    assert "static RSA key exchange (no forward secrecy): TLS_RSA_WITH_AES_128_GCM_SHA256" in weak["evidence"]
    assert "TLS_RSA_WITH_AES_256_GCM_SHA384" in weak["evidence"]
