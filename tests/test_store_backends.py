"""The store on SQLite and on a real PostgreSQL: the same scans, findings, reports, peer data and
schedule through the real CLI, whichever `store` names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import banner_server
from tests.conftest import run_cli
from warpagent.sharing import stix_bundle
from warpagent.store.peer_intel import PeerIntel

HOST = "127.0.0.23"  # an address of the test's own: banners of an old FTP server and web server


@pytest.fixture(scope="module")
def banners() -> Iterator[None]:
    with banner_server.running(f"{HOST}:2121=ftp-vsftpd-2.3.4", f"{HOST}:8080=http-apache-2.2.34"):
        yield


def test_scan_findings_reports_share_and_jobs_on_either_store(banners: None, store_url: str, tmp_path: Path) -> None:
    config = tmp_path / "w.yaml"
    config.write_text(f"""organisation: {{name: Test Borough Council, region: north-west}}
store: '{store_url}'
estates:
  - {{name: legacy, targets: ['{HOST}'], ports: '2121,8080', timeout: 5m}}
""")
    env = {"WARPAGENT_PSEUDONYM_KEY": "5bacacacacacacacacacacacacacacac03"}
    first = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    found = json.loads(first.stdout)
    assert found["summary"][0]["new"] > 0 and found["summary"][0]["status"] == "complete"
    again = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path, env=env)
    assert json.loads(again.stdout)["summary"][0]["new"] == 0  # the same weaknesses keep their ids
    listed = run_cli("--config", str(config), "findings", "--format", "json", cwd=tmp_path)
    assert sorted(f["id"] for f in json.loads(listed.stdout)["findings"]) == sorted(f["id"] for f in found["findings"])
    assert {f["check_id"] for f in found["findings"]} >= {"WA512"}  # cleartext FTP
    board = run_cli("--config", str(config), "report", "board", "--out", "board.html", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    assert "Insecure configurations" in (tmp_path / "board.html").read_text()
    shared = run_cli("--config", str(config), "share", "--dry-run", "--out", "bundle.json", cwd=tmp_path, env=env)
    assert shared.returncode == 0, shared.stderr
    assert stix_bundle.validate((tmp_path / "bundle.json").read_text()) == []
    jobs = run_cli("--config", str(config), "jobs", "--json", cwd=tmp_path)
    assert jobs.returncode == 0 and json.loads(jobs.stdout)["daemon"]["running"] is False
    if store_url.startswith("postgresql"):
        assert not list(tmp_path.glob("*.db"))  # nothing of the store went to a local file


def test_peer_data_on_either_store(store_url: str) -> None:
    posture = {"type": "x-warpagent-posture", "id": "x-warpagent-posture--1", "created_by_ref": "identity--a",
               "modified": "2026-11-24T00:00:00.000Z", "software": [{"product": "nginx", "version": "1.22.1"}]}
    newer = {**posture, "modified": "2026-11-25T00:00:00.000Z"}
    with PeerIntel(store_url) as intel:
        assert intel.position("warp") is None and intel.region_versions("identity--me") is None
        assert intel.add_page("warp", [posture, posture], "2026-11-24T01:00:00.000000Z") == 1
        assert intel.add_page("warp", [posture, newer], "2026-11-25T01:00:00.000000Z") == 1  # kept once
        assert intel.position("warp") == "2026-11-25T01:00:00.000000Z"
        assert [p["modified"] for p in intel.latest("x-warpagent-posture")] == ["2026-11-25T00:00:00.000Z"]
        assert sorted(p["modified"] for p in intel.versions("warp", "x-warpagent-posture")) == [
            "2026-11-24T00:00:00.000Z", "2026-11-25T00:00:00.000Z"]
        assert intel.region_versions("identity--me") == {("nginx", "1.22.1"): 1}
        assert intel.count() == 2


def test_a_password_in_the_store_url_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "w.yaml"
    config.write_text("organisation: {name: T}\nstore: 'postgresql://warp:hunter2secret@db.example.test/warp'\n"
                      "estates: [{name: e, targets: [127.0.0.1]}]\n")
    result = run_cli("--config", str(config), "check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"{config}: At 'store': the database URL holds a password; remove it and give "
                                     "it in PGPASSWORD or ~/.pgpass")
    assert "hunter2secret" not in result.stderr + result.stdout
