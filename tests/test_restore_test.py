"""warpagent's own restore test against real restic repositories made by the test (Debian's
restic): a fresh snapshot passes; an old one, a corrupted pack file, a sample missing from the
snapshot and a restored file that differs from the original each give the right finding."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from checks import CheckContext
from tests.conftest import run_cli
from warpagent.config import ResticRepository
from warpagent.evidence.restore_test import mask, run_restore_test
from warpagent.model.evidence import BackupKind, HostEvidence
from warpagent.model.findings import Finding, Host, Inventory
from warpagent.scan import engine

PASSWORD_ENV = "WARPAGENT_TEST_RESTIC_PASSWORD"  # noqa: S105 - a variable name
PASSWORD = "restore-test-password-0123"  # noqa: S105 - the test repository's own
pytestmark = [pytest.mark.skipif(shutil.which("restic") is None, reason="restic is installed by scripts/install.sh"),
              pytest.mark.wall_clock]  # restic is Go: libfaketime cannot shift its clock


def _restic(repo: Path, *args: str) -> str:
    env = {**os.environ, "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD": PASSWORD}
    return subprocess.run(["restic", "--no-cache", *args], env=env, capture_output=True, text=True, check=True,
                          timeout=120).stdout


@pytest.fixture
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A real restic repository holding one snapshot of a small data folder; returns (repo, sample)."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    data = tmp_path / "data"
    data.mkdir()
    sample = data / "ledger.csv"
    sample.write_text("account,amount\n" + "".join(f"{i},{i * 7}\n" for i in range(2000)))
    (data / "other.bin").write_bytes(os.urandom(200_000))
    repo = tmp_path / "repo"
    _restic(repo, "init")
    return repo, sample


def _backup(repo: Path, sample: Path, when: dt.datetime | None = None) -> None:
    extra = ["--time", when.astimezone().strftime("%Y-%m-%d %H:%M:%S")] if when else []
    _restic(repo, "backup", str(sample.parent), *extra)


def _settings(repo: Path, sample: Path | str) -> ResticRepository:
    return ResticRepository(name="finance", repository=str(repo), password_env=PASSWORD_ENV, sample=str(sample),
                            read_data_subset="100%", offline=True)


def _findings(evidence: HostEvidence, now: dt.datetime) -> dict[str, Finding]:
    host = Host(address="", asset="backup repository finance", state="record", evidence=evidence)
    result = engine.evaluate(Inventory(estate="e", hosts=(host,), scanned=()), CheckContext(now=now))
    return {f.check_id: f for f in result.findings}


def test_a_fresh_snapshot_passes_every_step(repository: tuple[Path, Path]) -> None:
    repo, sample = repository
    _backup(repo, sample)
    now = dt.datetime.now(dt.UTC)
    tested = run_restore_test(_settings(repo, sample), now)
    assert tested.problems == ()
    [backup] = [r for r in tested.records if r.kind is BackupKind.BACKUP]
    [test] = [r for r in tested.records if r.kind is BackupKind.RESTORE_TEST]
    assert test.ok and "SHA-256 matches the live file" in test.detail
    assert "--read-data-subset=100% passed" in test.detail
    assert abs((now - backup.at).total_seconds()) < 120
    assert _findings(HostEvidence(backups=tested.records), now) == {}


def test_an_old_snapshot_is_stale(repository: tuple[Path, Path]) -> None:
    repo, sample = repository
    _backup(repo, sample, dt.datetime.now(dt.UTC) - dt.timedelta(days=4))
    now = dt.datetime.now(dt.UTC)
    tested = run_restore_test(_settings(repo, sample), now)
    found = _findings(HostEvidence(backups=tested.records), now)
    assert set(found) == {"WA701"}  # the restore itself still works: only the age is wrong
    assert "4 days ago" in found["WA701"].title or "96 hours" in found["WA701"].title


def test_a_corrupted_pack_file_fails_the_check(repository: tuple[Path, Path]) -> None:
    repo, sample = repository
    _backup(repo, sample)
    packs = sorted((repo / "data").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
    pack = packs[-1]
    blob = bytearray(pack.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte in the biggest pack
    pack.chmod(0o600)
    pack.write_bytes(bytes(blob))
    now = dt.datetime.now(dt.UTC)
    tested = run_restore_test(_settings(repo, sample), now)
    found = _findings(HostEvidence(backups=tested.records), now)
    assert set(found) == {"WA704", "WA702"}  # failed, so no successful test within policy either
    assert "restic check failed" in found["WA704"].evidence


def test_a_sample_missing_from_the_snapshot_is_a_failed_restore(repository: tuple[Path, Path]) -> None:
    repo, sample = repository
    _backup(repo, sample)
    now = dt.datetime.now(dt.UTC)
    tested = run_restore_test(_settings(repo, "/srv/not-backed-up.txt"), now)
    assert "not in the latest snapshot" in _findings(HostEvidence(backups=tested.records), now)["WA704"].evidence


def test_a_restored_file_that_differs_from_the_original_fails(repository: tuple[Path, Path]) -> None:
    repo, sample = repository
    _backup(repo, sample)
    stamp = sample.stat().st_mtime
    sample.write_text(sample.read_text().replace("1,7", "1,8"))  # changed without its time changing
    os.utime(sample, (stamp, stamp))
    now = dt.datetime.now(dt.UTC)
    tested = run_restore_test(_settings(repo, sample), now)
    assert "differs from the live file" in _findings(HostEvidence(backups=tested.records), now)["WA704"].evidence


def test_wrong_password_and_missing_env_are_clear(repository: tuple[Path, Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    repo, sample = repository
    _backup(repo, sample)
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    failed = run_restore_test(_settings(repo, sample), dt.datetime.now(dt.UTC))
    [test] = failed.records
    assert not test.ok and "restic snapshots failed" in test.detail and "not-the-password" not in test.detail
    monkeypatch.delenv(PASSWORD_ENV)
    missing = run_restore_test(_settings(repo, sample), dt.datetime.now(dt.UTC))
    assert missing.records == () and PASSWORD_ENV in missing.problems[0]
    assert mask("rest:https://user:s3cret@backup.example/repo") == "rest:https://***@backup.example/repo"


def test_scan_runs_the_restore_test_and_tracks_its_findings(repository: tuple[Path, Path], tmp_path: Path) -> None:
    repo, sample = repository
    _backup(repo, sample)
    config = tmp_path / "warpagent.yaml"
    config.write_text(f"organisation: {{name: Test Council}}\nestates:\n"
                      f"  - name: loop\n    targets: [127.0.0.1]\n    ports: '9'\n    backups:\n      restic:\n"
                      f"        - {{name: finance, repository: {repo}, password_env: {PASSWORD_ENV}, "
                      f"sample: {sample}, offline: true}}\n")
    clean = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path, env={PASSWORD_ENV: PASSWORD})
    assert clean.returncode == 0, clean.stderr
    summary = json.loads(clean.stdout)["summary"][0]
    assert summary["status"] == "complete" and "backups" not in summary["unmeasured"]
    assert PASSWORD not in clean.stdout + clean.stderr

    # the repository is damaged overnight: the next scan reports it against the repository
    for pack in (repo / "data").rglob("*"):
        if pack.is_file():
            pack.chmod(0o600)
            pack.write_bytes(b"\0" * pack.stat().st_size)
    broken = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path, env={PASSWORD_ENV: PASSWORD})
    found = {(f["asset"], f["check_id"]) for f in json.loads(broken.stdout)["findings"]}
    assert ("backup repository finance", "WA704") in found

    unset = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path, env={PASSWORD_ENV: ""})
    summary = json.loads(unset.stdout)["summary"][0]
    assert summary["status"] == "partial" and summary["resolved"] == 0
    assert any(PASSWORD_ENV in p and "is not set" in p for p in summary["problems"])
