"""The clock seam and the council's calendar: which month a report is for, at the edges of months
and of British Summer Time, from the CLI and from the daemon's monthly job."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import run_cli
from warpagent import clock
from warpagent.daemon import jobs
from warpagent.errors import ConfigError
from warpagent.store.findings import Store
from warpagent.store.lifecycle import RunReport


def _config(tmp_path: Path, timezone: str = "Europe/London") -> Path:
    path = tmp_path / "w.yaml"
    path.write_text("organisation: {name: Calendar Council}\nstore: ./w.db\n"
                    "estates: [{name: loop, targets: [127.0.0.1]}]\n"
                    f"schedule: {{timezone: {timezone}}}\n")
    with Store(tmp_path / "w.db") as store:  # a store with one complete run long before
        run = store.begin_run("loop", dt.datetime(2026, 1, 5, 1, tzinfo=dt.UTC))
        store.record_run(run, RunReport(findings=(), finished=dt.datetime(2026, 1, 5, 1, 5, tzinfo=dt.UTC),
                                        complete=True, observed_assets=frozenset({"127.0.0.1"}),
                                        in_scope_assets=frozenset({"127.0.0.1"}), hosts_scanned=1))
    return path


def _heading(html: str) -> str:
    return html.split("&middot; ", 1)[1].split(" &middot;", 1)[0]


@pytest.mark.parametrize(("now", "timezone", "month"), [
    ("2027-06-30T23:30:00+00:00", "Europe/London", "July 2027"),  # 00:30 BST on 1 July
    ("2027-06-30T23:30:00+00:00", "UTC", "June 2027"),
    ("2027-12-31T23:59:59+00:00", "Europe/London", "December 2027"),  # the last second of the year
    ("2028-01-01T00:00:00+00:00", "Europe/London", "January 2028"),
    ("2028-02-29T12:00:00+00:00", "Europe/London", "February 2028"),
])
def test_report_with_no_month_is_the_council_s_month_in_progress(tmp_path: Path, now: str, timezone: str,
                                                                 month: str) -> None:
    config = _config(tmp_path, timezone)
    result = run_cli("--config", str(config), "report", "board", cwd=tmp_path, env={clock.TEST_NOW_ENV: now})
    assert result.returncode == 0, result.stderr
    assert _heading(result.stdout) == month


def test_a_month_after_now_is_refused_by_the_council_s_calendar(tmp_path: Path) -> None:
    config = _config(tmp_path)
    late_june = {clock.TEST_NOW_ENV: "2027-06-30T23:30:00+00:00"}  # already July in London
    assert run_cli("--config", str(config), "report", "board", "--month", "2027-07", cwd=tmp_path,
                   env=late_june).returncode == 0
    refused = run_cli("--config", str(config), "report", "board", "--month", "2027-08", cwd=tmp_path, env=late_june)
    assert refused.returncode == 2 and "--month: '2027-08' is not a month up to now" in refused.stderr


@pytest.mark.parametrize(("now", "written"), [
    ("2027-06-30T23:30:00+00:00", "2027-06"),  # 00:30 BST on 1 July: June has just ended
    ("2027-01-01T00:00:01+00:00", "2026-12"),  # a year end
    ("2028-03-01T00:10:00+00:00", "2028-02"),  # after a leap day
])
def test_the_daemon_s_monthly_report_is_for_the_month_just_ended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 now: str, written: str) -> None:
    config = _config(tmp_path)
    monkeypatch.setenv(clock.TEST_NOW_ENV, now)
    jobs.board_job(str(config))
    reports = sorted(p.name for p in (tmp_path / "reports").glob("board-*.html"))
    assert reports == [f"board-{written}.html"]
    expected = dt.date.fromisoformat(f"{written}-01").strftime("%B %Y")
    assert _heading((tmp_path / "reports" / reports[0]).read_text()) == expected


def test_the_seam_is_one_variable_and_a_bad_value_is_one_clear_line(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(clock.TEST_NOW_ENV, raising=False)
    assert abs(clock.now() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)
    monkeypatch.setenv(clock.TEST_NOW_ENV, "2027-12-31T23:59:59+00:00")
    assert clock.now() == dt.datetime(2027, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    monkeypatch.setenv(clock.TEST_NOW_ENV, "2027-12-31 23:59")
    with pytest.raises(ConfigError, match="not an ISO 8601 time with an offset"):
        clock.now()
    result = run_cli("--config", str(_config(tmp_path)), "report", "board", cwd=tmp_path,
                     env={clock.TEST_NOW_ENV: "next tuesday"})
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "WARPAGENT_TEST_NOW" in result.stderr
