"""scan --verify ID with the real nmap on loopback: one finding re-measured (its host and port
only), resolved if gone, nothing else touched, and the estate's night not replaced by it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from warpagent.model.findings import EventKind, FindingStatus
from warpagent.store.decisions import FindingDecisions
from warpagent.store.findings import Store

REDIS = shutil.which("redis-server")
ADDRESS = "127.0.0.5"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((ADDRESS, 0))
        return int(sock.getsockname()[1])


def _redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    assert REDIS is not None
    proc = subprocess.Popen([REDIS, "--bind", ADDRESS, "--port", str(port), "--protected-mode", "no", "--save", "",
                             "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((ADDRESS, port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis did not start")


@pytest.fixture
def two_redis(tmp_path: Path) -> Iterator[list[tuple[int, subprocess.Popen[bytes]]]]:
    if REDIS is None:
        pytest.skip("redis-server is installed by scripts/install.sh --test")
    servers = []
    try:
        for _ in range(2):
            port = _free_port()
            servers.append((port, _redis(port, tmp_path)))
        yield servers
    finally:
        for _port, proc in servers:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)


def test_verify_resolves_only_the_finding_it_re_measured(tmp_path: Path,
                                                          two_redis: list[tuple[int, subprocess.Popen[bytes]]]) -> None:
    (first_port, first), (second_port, _second) = two_redis
    config = tmp_path / "w.yaml"
    config.write_text(f"organisation: {{name: Verify Council}}\nstore: ./w.db\nfeeds: {{bundled: false}}\n"
                      f"estates:\n  - name: loop\n    targets: [{ADDRESS}]\n    ports: \"{first_port},{second_port}\"\n"
                      "    timeout: 2m\n", encoding="utf-8")
    night = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path)
    assert night.returncode == 0, night.stderr
    by_port = {f["port"]: f["id"] for f in json.loads(night.stdout)["findings"]}
    assert set(by_port) == {first_port, second_port}
    with Store(tmp_path / "w.db") as store:
        night_run = store.latest_finished_runs()["loop"]
        before = store.findings(ids=[by_port[second_port]])[0].last_seen

    still = run_cli("--config", str(config), "scan", "--verify", by_port[first_port][:8], "--json", cwd=tmp_path)
    assert still.returncode == 0, still.stderr
    first.terminate()
    first.wait(timeout=10)  # the fix: the first Redis is gone
    fixed = run_cli("--config", str(config), "scan", "--verify", by_port[first_port], "--json", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr

    with Store(tmp_path / "w.db") as store:
        verified = store.findings(ids=[by_port[first_port]])[0]
        other = store.findings(ids=[by_port[second_port]])[0]
        assert verified.status is FindingStatus.RESOLVED
        assert other.status is FindingStatus.OPEN and other.last_seen == before  # not even looked at
        assert store.latest_finished_runs()["loop"].id == night_run.id  # a verify run is not the night
        events = FindingDecisions(store).history(verified.id)
        assert [(e.kind, e.detail) for e in events if e.kind is EventKind.VERIFIED] == [
            (EventKind.VERIFIED, "re-measured: still there"), (EventKind.VERIFIED, "re-measured: gone")]
        assert [r.verifying for r in store.runs()] == [True, True, False]


def test_verify_of_a_finding_whose_host_left_the_scope_touches_nothing(
        tmp_path: Path, two_redis: list[tuple[int, subprocess.Popen[bytes]]]) -> None:
    (port, _proc), _other = two_redis
    config = tmp_path / "w.yaml"
    body = (f"organisation: {{name: Verify Council}}\nstore: ./w.db\nfeeds: {{bundled: false}}\n"
            f"estates:\n  - name: loop\n    targets: [{ADDRESS}]\n    ports: \"{port}\"\n    timeout: 2m\n")
    config.write_text(body, encoding="utf-8")
    (finding,) = json.loads(run_cli("--config", str(config), "scan", "--json", cwd=tmp_path).stdout)["findings"]
    config.write_text(body + f"    exclude: [{ADDRESS}]\n    assume_up: true\n", encoding="utf-8")
    refused = run_cli("--config", str(config), "scan", "--verify", finding["id"], cwd=tmp_path)
    assert refused.returncode == 2 and "is not a host in estate 'loop' now" in refused.stderr, refused.stderr
    with Store(tmp_path / "w.db") as store:
        assert len(store.runs()) == 1  # nothing was scanned, no run recorded
