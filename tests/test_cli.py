"""The CLI on loopback: real nmap, a real Redis on 127.0.0.2, a real terminal for progress."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from warpagent.model.findings import RunStatus
from warpagent.store.findings import Store

REDIS = shutil.which("redis-server")


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def loopback_redis(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A Redis with no password on a loopback address; `indirect` parametrisation picks (address, port)."""
    if REDIS is None:
        pytest.skip("redis-server is installed by scripts/install.sh --test")
    address, port = getattr(request, "param", ("127.0.0.2", 0))
    port = port or _free_port(address)
    proc = subprocess.Popen([REDIS, "--bind", address, "--port", str(port), "--protected-mode", "no",
                             "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((address, port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        yield address, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _config(path: Path, address: str, ports: str, extra: str = "") -> Path:
    path.write_text(f"organisation: {{name: Loopback Council}}\nstore: ./w.db\n{extra}estates:\n"
                    f"  - name: loop\n    targets: [{address}]\n    ports: \"{ports}\"\n    timeout: 2m\n")
    return path


def test_embedded_default_scans_loopback_into_a_local_sqlite_file(tmp_path: Path) -> None:
    result = run_cli("scan", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Estate this-machine: run 1 complete - 1 host up of 1 address in scope")
    with Store(tmp_path / "warpagent.db") as store:
        (run,) = store.runs()
        assert run.status is RunStatus.COMPLETE and run.hosts_up == 1


def test_unauthenticated_redis_on_loopback_end_to_end(loopback_redis: tuple[str, int], tmp_path: Path) -> None:
    address, port = loopback_redis
    # no intel: Debian's Redis 7.0 would also be (rightly) past upstream end of life with the bundled snapshot
    config = _config(tmp_path / "w.yaml", address, str(port), extra="feeds: {bundled: false}\n")
    result = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (finding,) = json.loads(result.stdout)["findings"]
    assert (finding["check_id"], finding["asset"], finding["port"], finding["severity"]) == (
        "WA514", address, port, "critical")
    assert finding["evidence"] == f"nmap on {port}/tcp: Redis returned its data to an unauthenticated request"
    failing = run_cli("--config", str(config), "scan", "--fail-on", "high", cwd=tmp_path)
    assert failing.returncode == 1
    assert "1 still open" in failing.stdout
    assert run_cli("--config", str(config), "scan", "--fail-on", "critical", "--json", cwd=tmp_path).returncode == 1
    jobs = json.loads(run_cli("--config", str(config), "jobs", "--json", cwd=tmp_path).stdout)["jobs"]
    (scan_job,) = [j for j in jobs if j["job"].startswith("scan:")]
    assert scan_job["last_result"]["status"] == "ok"  # a scan by hand is the estate's last run too
    assert scan_job["last_result"]["detail"].startswith("by hand: run 3 complete: 0 new, 0 resolved, 1 hosts up")


@pytest.mark.parametrize("loopback_redis", [("127.0.0.3", 6379)], indirect=True)
def test_the_default_ports_cover_what_the_checks_look_for(loopback_redis: tuple[str, int], tmp_path: Path) -> None:
    """6379 is not among nmap's top 1000 ports; a default scan still finds the open Redis on it."""
    address, _port = loopback_redis
    path = tmp_path / "w.yaml"
    path.write_text(f"organisation: {{name: Loopback Council}}\nstore: ./w.db\nfeeds: {{bundled: false}}\n"
                    f"estates:\n  - {{name: loop, targets: [{address}], timeout: 3m}}\n")  # ports: top-1000
    result = run_cli("--config", str(path), "scan", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = {(f["check_id"], f["port"]) for f in json.loads(result.stdout)["findings"]}
    assert ("WA514", 6379) in found


def test_missing_nmap_is_exit_3_with_a_recorded_failed_run(tmp_path: Path) -> None:
    config = _config(tmp_path / "w.yaml", "127.0.0.1", "22", extra="scan: {nmap_path: /nonexistent/nmap}\n")
    result = run_cli("--config", str(config), "scan", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.strip() == ("warpagent: nmap was not found at '/nonexistent/nmap'; install it "
                                     "(apt-get install nmap) or set scan.nmap_path")
    with Store(tmp_path / "w.db") as store:
        assert [r.status for r in store.runs()] == [RunStatus.FAILED]


def test_findings_before_any_scan(tmp_path: Path) -> None:
    result = run_cli("--config", str(_config(tmp_path / "w.yaml", "127.0.0.1", "22")), "findings", cwd=tmp_path)
    assert result.returncode == 2
    assert "no findings store yet; run 'warpagent scan' first" in result.stderr
    assert not (tmp_path / "w.db").exists()


def test_unknown_estate_and_bad_usage(tmp_path: Path) -> None:
    config = _config(tmp_path / "w.yaml", "127.0.0.1", "22")
    result = run_cli("--config", str(config), "scan", "--estate", "schools", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"{config}: no estate named 'schools'; configured estates: loop"
    assert run_cli("scan", "--fail-on", "severe", cwd=tmp_path).returncode == 2
    assert run_cli("frobnicate", cwd=tmp_path).returncode == 2


def test_scope_too_large_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    config = tmp_path / "w.yaml"
    config.write_text("organisation: {name: X}\nstore: ./w.db\nestates:\n  - name: big\n"
                      "    targets: [127.0.0.0/8]\n")
    result = run_cli("--config", str(config), "scan", cwd=tmp_path)
    assert result.returncode == 2
    assert "holds 16777216 addresses, more than max_addresses (65536)" in result.stderr
    assert not (tmp_path / "w.db").exists()


def test_help_teaches() -> None:
    top = run_cli("--help", cwd=ROOT)
    assert top.returncode == 0
    for word in ("unlucky seven", "examples:", "exit codes:", "embedded default", "check-config"):
        assert word in top.stdout
    scan = run_cli("scan", "--help", cwd=ROOT).stdout
    assert "--json" in scan and "partial run resolves nothing" in scan


def test_progress_on_a_terminal_and_quiet_under_json(tmp_path: Path) -> None:
    config = _config(tmp_path / "w.yaml", "127.0.0.1", "22")
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "warpagent", "--config", str(config), "scan"], cwd=tmp_path,
                            stdin=child, stdout=subprocess.PIPE, stderr=child, text=False)
    os.close(child)
    screen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _w, _x = select.select([main], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(main)
    assert proc.returncode == 0
    text = screen.decode(errors="replace")
    assert "scanning loop" in text and "1/1" in text and "hosts" in text
    quiet = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path)
    assert quiet.stderr == ""
