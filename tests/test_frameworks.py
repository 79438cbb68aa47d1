"""The framework table covers every registered check, names only outcomes it defines, and reaches
each finding's JSON and the CAF evidence report."""

from __future__ import annotations

import csv
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
    assert rows["B5.c"]["open_findings"] == 0 and rows["B5.c"]["checks"] == ["WA701", "WA702", "WA703", "WA704"]
    as_csv = run_cli("--config", str(config), "report", "caf", "--format", "csv", cwd=tmp_path, now=T0)
    table = {r["outcome"]: r for r in csv.DictReader(io.StringIO(as_csv.stdout))}
    assert table["B4.b"]["open_findings"] == "1" and table["B4.d"]["open_findings"] == "0"
    out = tmp_path / "caf.html"
    html = run_cli("--config", str(config), "report", "caf", "--out", str(out), cwd=tmp_path, now=T0)
    assert html.returncode == 0, html.stderr
    assert '<tr data-outcome="B4.b">' in out.read_text() and "Cleartext" in out.read_text()
