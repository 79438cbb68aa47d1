"""patches and unsupported end to end: the real nmap fingerprints old products from their banners
(served on loopback addresses the test owns), and the scan turns them into findings with intel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import banner_server
from tests.conftest import run_cli
from tests.intel_data import import_folder

ROOT = Path(__file__).resolve().parent.parent
OLD = "127.0.0.21"  # vsftpd 2.3.4, OpenSSH 5.5p1 on Debian squeeze, Apache 2.2.34
PATCHED = "127.0.0.22"  # OpenSSH 9.2p1 Debian 2+deb12u3: upstream inside CVE-2024-6387's NVD range, fixed by Debian
PORTS = "2121,2222,8080"


@pytest.fixture(scope="module")
def banners() -> Iterator[None]:
    with banner_server.running(f"{OLD}:2121=ftp-vsftpd-2.3.4", f"{OLD}:2222=ssh-openssh-5.5p1-squeeze",
                               f"{OLD}:8080=http-apache-2.2.34", f"{PATCHED}:2222=ssh-openssh-9.2p1-deb12u3"):
        yield


def test_old_products_are_patches_and_unsupported_findings(banners: None, tmp_path: Path) -> None:
    config = tmp_path / "warpagent.yaml"
    config.write_text(f"organisation: {{name: Test Council}}\nfeeds: {{bundled: false}}\nestates:\n"
                      f"  - {{name: legacy, targets: [{OLD}, {PATCHED}], ports: '{PORTS}', timeout: 5m}}\n")
    without = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path)
    assert without.returncode == 0, without.stderr
    [summary] = json.loads(without.stdout)["summary"]
    assert summary["unmeasured"] == ["backups", "passwords", "patches", "privileges", "supply_chain", "unsupported"]
    assert any("patches and unsupported not measured" in p for p in summary["problems"])

    imported = run_cli("--config", str(config), "feeds", "update", "--from", str(import_folder(tmp_path / "imp")),
                       cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    scanned = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path)
    assert scanned.returncode == 0, scanned.stderr
    out = json.loads(scanned.stdout)
    assert out["summary"][0]["unmeasured"] == ["backups", "passwords", "privileges", "supply_chain"]  # no evidence
    found = {(f["asset"], f["check_id"], f["subject"]): f for f in out["findings"]}
    vsftpd = found[(OLD, "WA101", "2121/tcp")]
    assert vsftpd["cves"] == ["CVE-2011-2523"] and vsftpd["severity"] == "critical"
    assert vsftpd["epss"] == pytest.approx(0.93012) and vsftpd["cvss"] == 9.8 and vsftpd["kev"] is False
    apache = found[(OLD, "WA101", "8080/tcp")]
    assert apache["cves"] == ["CVE-2017-9798"] and "a release later than 2.2.34" in apache["remediation"]
    assert found[(OLD, "WA201", "8080/tcp")]["title"] == "Apache HTTP Server 2.2 is past end of life"
    squeeze = found[(OLD, "WA203", "os:debian")]
    assert squeeze["severity"] == "high" and "Squeeze" in squeeze["title"]
    # the backport: Debian's +deb12u3 carries the fix, so no patches finding on the patched host
    assert not [k for k in found if k[0] == PATCHED and k[1].startswith("WA1")]
    assert found[(PATCHED, "WA203", "os:debian")]["severity"] == "medium"  # bookworm: LTS only
    listed = run_cli("--config", str(config), "findings", "--category", "patches", "--format", "json", cwd=tmp_path)
    rows = json.loads(listed.stdout)["findings"]
    assert {r["check_id"] for r in rows} == {"WA101"} and all(r["asset"] == OLD for r in rows)
