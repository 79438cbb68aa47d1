from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from warpagent.errors import StoreError
from warpagent.model.findings import CheckError, Finding, FindingStatus, RunStatus, Severity
from warpagent.store.findings import Store
from warpagent.store.lifecycle import RunReport

T0 = dt.datetime(2026, 11, 1, 1, 0, tzinfo=dt.UTC)


def finding(asset: str = "198.18.0.10", port: int = 23, check_id: str = "WA512") -> Finding:
    return Finding(estate="corp", asset=asset, check_id=check_id, category="configs", severity=Severity.HIGH,
                   title=f"Cleartext Telnet service on {port}/tcp", evidence="nmap -sV: telnet",
                   remediation="Turn off Telnet", subject=f"{port}/tcp", port=port, protocol="tcp")


def record(store: Store, findings: list[Finding], *, day: int, complete: bool = True,
           observed: tuple[str, ...] = ("198.18.0.10", "198.18.0.11"),
           in_scope: tuple[str, ...] = ("198.18.0.10", "198.18.0.11"), **kwargs: object):  # type: ignore[no-untyped-def]
    when = T0 + dt.timedelta(days=day)
    run = store.begin_run("corp", when)
    return store.record_run(run, RunReport(findings=tuple(findings), finished=when, complete=complete,
                                           observed_assets=frozenset(observed), in_scope_assets=frozenset(in_scope),
                                           hosts_scanned=len(observed), **kwargs))  # type: ignore[arg-type]


def status(store: Store, item: Finding) -> FindingStatus:
    return store.findings(ids=[item.id])[0].status


def test_lifecycle_new_open_resolved_reopened(store_url: str) -> None:
    telnet, ftp = finding(), finding(port=21, check_id="WA511")
    with Store(store_url) as store:
        first = record(store, [telnet, ftp], day=0)
        assert set(first.new) == {telnet.id, ftp.id} and first.run.status is RunStatus.COMPLETE
        second = record(store, [telnet, ftp], day=1)
        assert second.new == () and set(second.still_open) == {telnet.id, ftp.id}
        third = record(store, [telnet], day=2)  # ftp fixed
        assert third.resolved == (ftp.id,)
        tracked = store.findings(ids=[ftp.id])[0]
        assert tracked.status is FindingStatus.RESOLVED and tracked.status_reason == "not seen in a complete scan"
        assert tracked.first_seen == T0 and tracked.resolved_at == T0 + dt.timedelta(days=2)
        fourth = record(store, [telnet, ftp], day=3)  # it came back
        assert fourth.reopened == (ftp.id,)
        assert status(store, ftp) is FindingStatus.OPEN
        assert store.findings(ids=[ftp.id])[0].first_seen == T0  # history kept


def test_partial_run_resolves_nothing(store_url: str) -> None:
    telnet = finding()
    with Store(store_url) as store:
        record(store, [telnet], day=0)
        partial = record(store, [], day=1, complete=False, errors=("estate time budget ran out",))
        assert partial.resolved == () and partial.run.status is RunStatus.PARTIAL
        assert partial.run.errors == ("estate time budget ran out",)
        assert status(store, telnet) is FindingStatus.OPEN


def test_down_host_keeps_findings_out_of_scope_host_resolves(store_url: str) -> None:
    on_10, on_11 = finding(), finding(asset="198.18.0.11")
    with Store(store_url) as store:
        record(store, [on_10, on_11], day=0)
        down = record(store, [], day=1, observed=("198.18.0.10",))  # .11 did not answer tonight
        assert down.resolved == (on_10.id,)
        assert status(store, on_11) is FindingStatus.OPEN
        gone = record(store, [], day=2, observed=("198.18.0.10",), in_scope=("198.18.0.10",))
        assert gone.resolved == (on_11.id,)
        assert store.findings(ids=[on_11.id])[0].status_reason == "asset no longer in the estate's scope"


def test_ports_not_scanned_and_failed_checks_resolve_nothing(store_url: str) -> None:
    telnet, ftp = finding(), finding(port=21, check_id="WA511")
    with Store(store_url) as store:
        record(store, [telnet, ftp], day=0)
        narrower = record(store, [], day=1, scanned_ports={("tcp", 22), ("tcp", 23)},
                          check_errors=[CheckError("WA512", "198.18.0.10", "boom")])
        assert narrower.resolved == ()  # telnet's check failed; ftp's port was not scanned
        assert narrower.run.errors == ("check WA512 on 198.18.0.10: boom",)
        assert status(store, telnet) is FindingStatus.OPEN and status(store, ftp) is FindingStatus.OPEN


def test_estates_do_not_resolve_each_other(store_url: str) -> None:
    telnet = finding()
    with Store(store_url) as store:
        record(store, [telnet], day=0)
        other = store.begin_run("schools", T0)
        store.record_run(other, RunReport(findings=(), finished=T0, complete=True,
                                          observed_assets=frozenset({"198.18.0.10"}),
                                          in_scope_assets=frozenset({"198.18.0.10"}), hosts_scanned=1))
        assert status(store, telnet) is FindingStatus.OPEN


KILLER = textwrap.dedent("""
    import datetime as dt, os, signal, sys
    import sqlalchemy as sa
    sys.path.insert(0, {root!r})
    from tests.test_store import finding, T0
    from warpagent.store.findings import Store
    store = Store({url!r})
    run = store.begin_run("corp", T0)
    with store.transaction() as db:
        db.execute(sa.text("UPDATE findings SET status = 'resolved'"))
        db.execute(sa.text("UPDATE runs SET status = 'complete' WHERE id = :run"), {{"run": run}})
        os.kill(os.getpid(), signal.SIGKILL)  # killed halfway through writing the run
""")


def test_sigkill_mid_write_leaves_the_store_as_it_was(store_url: str) -> None:
    telnet = finding()
    with Store(store_url) as store:
        record(store, [telnet], day=0)
    root = str(Path(__file__).parent.parent)
    child = subprocess.run([sys.executable, "-c", KILLER.format(root=root, url=store_url)], timeout=60, check=False)
    assert child.returncode == -signal.SIGKILL
    with Store(store_url) as store:
        assert status(store, telnet) is FindingStatus.OPEN  # the half-written change was rolled back
        runs = store.runs()
        assert [r.status for r in runs] == [RunStatus.FAILED, RunStatus.COMPLETE]
        assert runs[0].errors == ("interrupted: the process ended before the run was recorded",)


def test_a_running_run_of_a_live_process_is_left_alone(store_url: str) -> None:
    with Store(store_url) as store:
        run = store.begin_run("corp", T0)
    with Store(store_url) as store:
        assert store.run(run).status is RunStatus.RUNNING  # this very process is alive


def test_a_run_from_another_machine_is_never_judged_by_this_one(store_url: str) -> None:
    import sqlalchemy as sa

    with Store(store_url) as store:
        run = store.begin_run("corp", T0)
        with store.transaction() as db:  # as if a worker on another machine had started it
            db.execute(sa.text("UPDATE runs SET host = 'elsewhere', pid = 999999 WHERE id = :run"), {"run": run})
    with Store(store_url) as store:
        assert store.run(run).status is RunStatus.RUNNING


def test_an_unreachable_database_is_a_clear_error(postgres: object) -> None:
    from tests.taxii_server import free_port

    url = f"postgresql://warp@127.0.0.1:{free_port()}/nowhere"
    with pytest.raises(StoreError, match=r"cannot reach the store database .*PGPASSWORD"):
        Store(url)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match=r"notes.db: cannot open the findings store \(file is not a database\)"):
        Store(bogus)
    assert bogus.read_text().startswith("these are my notes")


def test_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create the findings store"):
        Store(blocker / "sub" / "w.db")


def test_schema_is_sqlite(tmp_path: Path) -> None:
    with Store(tmp_path / "w.db") as store:
        record(store, [finding()], day=0)
    rows = sqlite3.connect(tmp_path / "w.db").execute("SELECT id, status FROM findings").fetchall()
    assert rows == [(finding().id, "open")]
    assert os.path.getsize(tmp_path / "w.db") > 0


OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, estate TEXT NOT NULL, started TEXT NOT NULL, finished TEXT,
    status TEXT NOT NULL, pid INTEGER, hosts_scanned INTEGER NOT NULL DEFAULT 0, hosts_up INTEGER NOT NULL DEFAULT 0,
    errors TEXT NOT NULL DEFAULT '[]');
CREATE TABLE findings (id TEXT PRIMARY KEY, estate TEXT NOT NULL, asset TEXT NOT NULL, subject TEXT NOT NULL,
    port INTEGER, protocol TEXT NOT NULL, category TEXT NOT NULL, check_id TEXT NOT NULL, title TEXT NOT NULL,
    severity TEXT NOT NULL, cves TEXT NOT NULL, evidence TEXT NOT NULL, remediation TEXT NOT NULL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, status TEXT NOT NULL, resolved_at TEXT,
    status_reason TEXT NOT NULL DEFAULT '', product TEXT NOT NULL DEFAULT '', version TEXT NOT NULL DEFAULT '',
    cpe TEXT NOT NULL DEFAULT '', reopened_at TEXT, last_run INTEGER NOT NULL REFERENCES runs(id));
CREATE TABLE report_log (kind TEXT NOT NULL, generated TEXT NOT NULL);
CREATE TABLE job_results (job TEXT NOT NULL, started TEXT NOT NULL, finished TEXT NOT NULL, status TEXT NOT NULL,
    detail TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO job_results VALUES ('scan:corp', '2026-11-01T01:00:00+00:00', '2026-11-01T01:05:00+00:00', 'ok', 'a');
INSERT INTO job_results VALUES ('share', '2026-11-01T01:04:00+00:00', '2026-11-01T01:05:00+00:00', 'ok', 'b');
"""


def test_a_store_from_the_first_release_opens_and_gains_new_columns(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "old.db")
    db.executescript(OLD_SCHEMA)
    db.close()
    with Store(tmp_path / "old.db") as store:
        record(store, [finding()], day=0)
        store.record_job("pull", T0, T0, "ok", "c")
        assert [j[0] for j in store.job_results()] == ["scan:corp", "share", "pull"]  # as they were written
        assert store.findings()[0].finding.kev_due is None and store.runs()[0].unmeasured == ()
