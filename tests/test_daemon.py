"""The scheduler daemon, as a real process: jobs in order, restart after a missed slot, SIGTERM, the lock."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import needs_root, run_cli
from tests.taxii_server import Medallion, free_port
from warpagent.model.findings import RunStatus
from warpagent.store.database import StoreLocation
from warpagent.store.findings import Store


class Daemon:
    def __init__(self, config: Path, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.config, self.cwd = config, cwd
        self.log = (cwd / "daemon.log").open("ab")
        full = {k: v for k, v in os.environ.items() if k != "WARPAGENT_CONFIG"}
        full.update(env or {})
        self.proc = subprocess.Popen([sys.executable, "-m", "warpagent", "--config", str(config), "run"], cwd=cwd,
                                     env=full, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        wait_for(lambda: "next run" in (self.cwd / "daemon.log").read_text(), 30, "the daemon to start")

    def stop(self, timeout: float = 20) -> float:
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        self.log.close()
        return time.monotonic() - started


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def results(store: Path | str) -> list[tuple[str, str]]:
    if not StoreLocation.of(store).exists():
        return []
    with Store(store) as opened:
        return [(job, status) for job, _s, _f, status, _d in opened.job_results()]


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()


def _loop_config(path: Path, schedule: str, store: str = "./w.db") -> Path:
    path.write_text(f"""organisation: {{name: Daemon Council}}
store: '{store}'
estates: [{{name: loop, targets: [127.0.0.1], ports: "22", timeout: 1m}}]
schedule: {{timezone: UTC, feeds: "off", {schedule}}}
""")
    return path


def test_a_second_daemon_on_the_same_store_refuses(tmp_path: Path, daemons: list[Daemon]) -> None:
    config = _loop_config(tmp_path / "w.yaml", 'scan: "0 1 * * *"')
    first = Daemon(config, tmp_path)
    daemons.append(first)
    first.wait_ready()
    second = run_cli("--config", str(config), "run", cwd=tmp_path, timeout=30)
    assert second.returncode == 2
    assert second.stderr.strip() == (f"warpagent: another warpagent daemon (pid {first.proc.pid}) is already running "
                                     f"on this store (lock {tmp_path / 'w.db.daemon.lock'}); stop it first, or give "
                                     "this one its own store")
    jobs = json.loads(run_cli("--config", str(config), "jobs", "--json", cwd=tmp_path).stdout)
    assert jobs["daemon"] == {"running": True, "pid": first.proc.pid}  # a number, as JSON readers expect
    assert [j["job"] for j in jobs["jobs"]] == ["scan:loop", "board-report"]
    assert jobs["jobs"][0]["next_run"].endswith("01:00:00+00:00")
    assert first.stop() < 10
    assert json.loads(run_cli("--config", str(config), "jobs", "--json", cwd=tmp_path).stdout)["daemon"]["running"] \
        is False


def test_a_slot_missed_while_down_runs_once_on_restart(tmp_path: Path, daemons: list[Daemon],
                                                      store_url: str) -> None:
    """On a SQLite store and on PostgreSQL: the job store lives wherever the store does."""
    slot = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=8)
    config = _loop_config(tmp_path / "w.yaml",
                          f'scan: "{slot.second} {slot.minute} {slot.hour} * * *", misfire_grace: 1h', store_url)
    first = Daemon(config, tmp_path)
    daemons.append(first)
    first.wait_ready()
    first.stop()  # the machine goes down before the slot
    wait_for(lambda: dt.datetime.now(dt.UTC) > slot + dt.timedelta(seconds=2), 20, "the slot to pass")
    assert results(store_url) == []
    second = Daemon(config, tmp_path)  # back up: the missed run happens, once
    daemons.append(second)
    wait_for(lambda: results(store_url) == [("scan:loop", "ok")], 30, "the missed scan")
    time.sleep(4)
    assert results(store_url) == [("scan:loop", "ok")]  # coalesced: not twice
    second.stop()
    with Store(store_url) as store:
        assert [r.status for r in store.runs()] == [RunStatus.COMPLETE]


def test_a_slot_missed_beyond_the_grace_is_skipped_and_logged(tmp_path: Path, daemons: list[Daemon]) -> None:
    slot = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=6)
    config = _loop_config(tmp_path / "w.yaml",
                          f'scan: "{slot.second} {slot.minute} {slot.hour} * * *", misfire_grace: 1s')
    first = Daemon(config, tmp_path)
    daemons.append(first)
    first.wait_ready()
    first.stop()
    wait_for(lambda: dt.datetime.now(dt.UTC) > slot + dt.timedelta(seconds=4), 20, "the slot to pass")
    second = Daemon(config, tmp_path)
    daemons.append(second)
    wait_for(lambda: "missed its run" in (tmp_path / "daemon.log").read_text(), 30, "the missed-run warning")
    assert results(tmp_path / "w.db") == []
    second.stop()


def test_scan_share_and_report_in_order(estate: object, tmp_path: Path, daemons: list[Daemon]) -> None:
    needs_root()
    from tests.estate import TestEstate

    assert isinstance(estate, TestEstate)
    hub = Medallion(port=free_port(), workdir=tmp_path, users={"member-a": "pw-for-member-a"}).start()
    try:
        start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=6)
        report_at = start + dt.timedelta(seconds=10)
        (tmp_path / "w.yaml").write_text(f"""organisation: {{name: Scheduled Council, sector: local-government}}
store: ./w.db
estates: [{{name: infra, targets: [{estate.hosts["infra"].address}], ports: "6379", timeout: 2m}}]
sharing:
  peers: [{{name: warp, url: '{hub.url}', collection: members, username: member-a, password_env: WARP_PW}}]
schedule:
  timezone: UTC
  feeds: "off"
  scan: "{start.second} {start.minute} {start.hour} * * *"
  board_report: "{report_at.second} {report_at.minute} {report_at.hour} * * *"
  pull: "0 0 1 1 *"
""")
        daemon = Daemon(tmp_path / "w.yaml", tmp_path, env={"WARP_PW": "pw-for-member-a",
                                                             "WARPAGENT_PSEUDONYM_KEY": "da" + "0" * 30 + "1e"})
        daemons.append(daemon)
        wait_for(lambda: len(results(tmp_path / "w.db")) >= 3, 90, "scan, share and report")
        assert results(tmp_path / "w.db") == [("share", "ok"), ("scan:infra", "ok"), ("board-report", "ok")]
        # share is recorded inside the scan job, so it finishes first: it ran after the scan completed
        with Store(tmp_path / "w.db") as store:
            finished = {job: f for job, _s, f, _st, _d in store.job_results()}
            assert finished["share"] <= finished["scan:infra"] < finished["board-report"]
            assert store.findings(status="open")
        assert any(o["type"] == "x-warpagent-posture" for o in hub.objects())
        assert list((tmp_path / "reports").glob("board-*.html"))
        assert daemon.stop() < 10
    finally:
        hub.stop()


def test_sigterm_mid_scan_leaves_a_partial_run_and_no_nmap(estate: object, tmp_path: Path,
                                                          daemons: list[Daemon]) -> None:
    needs_root()
    from tests.estate import TestEstate

    assert isinstance(estate, TestEstate)
    # far enough ahead that a loaded machine has the daemon scheduling before the slot (a slot that
    # passes before the scheduler starts is next due tomorrow: the test would wait in vain)
    start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=12)
    (tmp_path / "w.yaml").write_text(f"""organisation: {{name: Scheduled Council}}
store: ./w.db
estates: [{{name: web, targets: [{estate.hosts["web"].address}], ports: "443,8443", timeout: 3m}}]
schedule: {{timezone: UTC, feeds: "off", scan: "{start.second} {start.minute} {start.hour} * * *"}}
""")
    daemon = Daemon(tmp_path / "w.yaml", tmp_path)
    daemons.append(daemon)

    seen: set[int] = set()  # every nmap the scan started: the stages run one after another

    def nmap_children() -> set[int]:
        found = set()
        try:
            for task in Path(f"/proc/{daemon.proc.pid}/task").iterdir():
                for child in (task / "children").read_text().split():
                    if "nmap" in Path(f"/proc/{child}/cmdline").read_text():
                        found.add(int(child))
        except OSError:  # a stage's nmap ended while we looked: the next poll sees the next one
            pass
        seen.update(found)
        return found

    wait_for(lambda: bool(nmap_children()), 60, "the scheduled scan's nmap")
    time.sleep(1.5)
    nmap_children()
    assert daemon.stop() < 15  # exits within seconds
    assert seen and not [pid for pid in seen if Path(f"/proc/{pid}").exists()]
    with Store(tmp_path / "w.db") as store:
        (run,) = store.runs()
        assert run.status is RunStatus.PARTIAL
        assert "scan interrupted; what nmap finished was kept" in run.errors
    assert results(tmp_path / "w.db") == [("scan:web", "partial")]


def _stored_func(store: Path, job_id: str) -> str:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    job = SQLAlchemyJobStore(url=StoreLocation.of(store).url).lookup_job(job_id)
    assert job is not None
    return str(job.func_ref)


def test_a_job_stored_by_the_release_before_the_package_layout_still_runs_and_moves_home(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    """Stores from before name the jobs `warpagent.jobs:scan_job`; APScheduler imports that to
    run them. The old name still loads, the missed run still happens, and the daemon re-files the
    job under warpagent.daemon.jobs without losing its stored next run."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    slot = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
    config = _loop_config(tmp_path / "w.yaml", f'scan: "{slot.second} {slot.minute} {slot.hour} * * *", '
                                               "misfire_grace: 1h")
    first = Daemon(config, tmp_path)
    daemons.append(first)
    first.wait_ready()
    first.stop()
    store = tmp_path / "w.db"
    assert _stored_func(store, "scan:loop") == "warpagent.daemon.jobs:scan_job"
    old = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=StoreLocation.of(store).url)})
    old.start(paused=True)
    old.get_job("scan:loop").modify(func="warpagent.jobs:scan_job")  # as the earlier release stored it
    old.shutdown()
    assert _stored_func(store, "scan:loop") == "warpagent.jobs:scan_job"
    wait_for(lambda: dt.datetime.now(dt.UTC) > slot + dt.timedelta(seconds=2), 25, "the slot to pass")
    second = Daemon(config, tmp_path)
    daemons.append(second)
    wait_for(lambda: results(store) == [("scan:loop", "ok")], 30, "the missed scan")
    second.stop()
    assert _stored_func(store, "scan:loop") == "warpagent.daemon.jobs:scan_job"


def test_the_job_store_makes_a_store_a_scan_job_can_open_as_its_slot_fires(tmp_path: Path) -> None:
    """APScheduler with an engine of its own made the store file in rollback-journal mode; a scan job
    opening the store while the scheduler read its jobs then failed "database is locked" (1 run in 5)."""
    import sqlite3

    from apscheduler.schedulers.background import BackgroundScheduler

    from warpagent.daemon.scheduler import job_store

    location = StoreLocation.of(tmp_path / "w.db")
    scheduler = BackgroundScheduler(jobstores={"default": job_store(location)})
    scheduler.start(paused=True)
    reader = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT * FROM apscheduler_jobs").fetchall()  # the scheduler, looking for due jobs
        began = time.monotonic()
        with Store(location) as store:
            store.record_job("scan:x", dt.datetime.now(dt.UTC), dt.datetime.now(dt.UTC), "ok", "")
        assert time.monotonic() - began < 5  # not waiting out the 30 s busy timeout
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        reader.close()
        scheduler.shutdown(wait=False)


def test_a_job_whose_store_cannot_open_logs_one_line_and_no_traceback(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    from warpagent.daemon import jobs

    (tmp_path / "w.db").write_bytes(b"this is not a database" * 100)
    config = _loop_config(tmp_path / "w.yaml", 'scan: "0 1 * * *"')
    with caplog.at_level("INFO", logger="warpagent"):
        jobs.scan_job(str(config), "loop")
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert errors[0].getMessage().startswith("job scan:loop: failed in ")
    assert f"{tmp_path / 'w.db'}: cannot open the findings store" in errors[0].getMessage()
    assert (tmp_path / "w.db").read_bytes() == b"this is not a database" * 100  # nothing written over it
