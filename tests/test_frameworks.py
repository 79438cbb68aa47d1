"""The framework table covers every registered check, names only outcomes it defines, and reaches
each finding's JSON and the CAF evidence report."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import checks
from checks import frameworks
from tests.conftest import ROOT, run_cli
from tests.test_decisions import cli_store
from tests.test_store import T0

CE_AREAS = {"Firewalls", "Secure configuration", "Security update management", "User access control",
            "Malware protection"}


def test_every_registered_check_has_a_row_and_every_row_a_check() -> None:
    table = frameworks.table()
    assert set(table.checks) == {c.id for c in checks.ALL_CHECKS}


def test_rows_name_only_defined_areas_and_outcomes_and_every_check_some_caf_outcome() -> None:
    table = frameworks.table()
    assert set(table.cyber_essentials.values()) == CE_AREAS
    for check_id, (areas, outcomes) in table.checks.items():
        assert set(areas) <= set(table.cyber_essentials), check_id
        assert outcomes and set(outcomes) <= set(table.caf), check_id
    assert {"B4.b", "B4.d", "B2.a", "B2.c", "B5.c", "A4.a"} <= set(table.caf)


def test_the_table_cites_its_sources() -> None:
    text = (ROOT / "checks/frameworks.yaml").read_text(encoding="utf-8")
    assert "https://www.ncsc.gov.uk/collection/cyber-assessment-framework" in text
    assert "cyber-essentials-requirements-for-it-infrastructure" in text


def test_a_findings_json_carries_its_frameworks(tmp_path: Path) -> None:
    config, _finding_id = cli_store(tmp_path)  # a Telnet finding: WA512
    listed = run_cli("--config", str(config), "findings", "--format", "json", cwd=tmp_path, now=T0)
    (row,) = json.loads(listed.stdout)["findings"]
    assert row["cyber_essentials"] == ["Secure configuration"] and row["caf"] == ["B4.b", "B3.b"]


def test_the_caf_report_gives_the_evidence_per_outcome_in_three_formats(tmp_path: Path) -> None:
    config, _finding_id = cli_store(tmp_path)
    as_json = run_cli("--config", str(config), "report", "caf", "--format", "json", cwd=tmp_path, now=T0)
    rows = {r["outcome"]: r for r in json.loads(as_json.stdout)["caf"]}
    assert rows["B4.b"]["open_findings"] == 1 and rows["B4.b"]["open_by_severity"]["high"] == 1
    assert rows["B5.c"]["open_findings"] == 0
    assert rows["B5.c"]["checks"] == ["WA701", "WA702", "WA703", "WA704", "WA705"]
    as_csv = run_cli("--config", str(config), "report", "caf", "--format", "csv", cwd=tmp_path, now=T0)
    table = {r["outcome"]: r for r in csv.DictReader(io.StringIO(as_csv.stdout))}
    assert table["B4.b"]["open_findings"] == "1" and table["B4.d"]["open_findings"] == "0"
    out = tmp_path / "caf.html"
    html = run_cli("--config", str(config), "report", "caf", "--out", str(out), cwd=tmp_path, now=T0)
    assert html.returncode == 0, html.stderr
    assert html.stderr.strip() == f"wrote {out}"  # as every command that writes a file says it (issue 30)
    assert '<tr data-outcome="B4.b">' in out.read_text() and "Cleartext" in out.read_text()


def test_an_outcome_is_measured_only_where_one_of_its_checks_measured() -> None:
    """Issue 30: B4.d said "measured: yes" while every check behind it that ran could not (no NVD/OSV)."""
    import datetime as dt

    from reports import caf
    from warpagent.model.findings import RunId, RunStatus, ScanRun
    from warpagent.scan import coverage

    when = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    # a night with only the bundled snapshot: endoflife and KEV, no NVD, OSV or Debian data
    night = ScanRun(id=RunId(1), estate="corporate", started=when, finished=when, status=RunStatus.COMPLETE,
                    unmeasured=("patches",), intel=("endoflife", "kev"),
                    unmeasured_checks=("WA101", "WA102", "WA103", "WA203", "WA204", "WA601"))
    measured = coverage.measured_checks([night])
    assert measured["WA201"] == ("endoflife",) and "WA101" not in measured and "WA203" not in measured
    rows = {r.outcome: r for r in caf.build([], measured, frameworks.table())}
    b4d = rows["B4.d"]
    # WA104 is a patches check too, and patches was not measured that night
    assert b4d.measured and set(b4d.not_measured) == {"WA101", "WA102", "WA103", "WA104", "WA203", "WA204", "WA601"}
    assert "WA101 (not measured)" in b4d.check_words()
    assert "WA201 (measured with endoflife.date support dates)" in b4d.check_words()
    without_eol = coverage.measured_checks([dataclasses.replace(
        night, unmeasured=("patches", "unsupported"), intel=(),
        unmeasured_checks=(*(night.unmeasured_checks or ()), "WA201", "WA202", "WA205"))])
    assert not {r.outcome: r for r in caf.build([], without_eol, frameworks.table())}["B4.d"].measured
