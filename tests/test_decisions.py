"""The council's decisions on findings and every finding's history, on SQLite and PostgreSQL,
with an injected clock, and through the real CLI."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_store import T0, finding, record
from warpagent.errors import DecisionError
from warpagent.model.findings import EventKind, FindingStatus, Severity
from warpagent.store.decisions import FindingDecisions
from warpagent.store.findings import Store

DAY = dt.timedelta(days=1)


def kinds(store: Store, finding_id: str) -> list[EventKind]:
    return [e.kind for e in FindingDecisions(store).history(finding_id)]  # type: ignore[arg-type]


def test_an_accepted_risk_is_kept_with_who_why_and_until_then_lapses(store_url: str) -> None:
    telnet, ftp = finding(), finding(port=21, check_id="WA511")
    with Store(store_url) as store:
        record(store, [telnet, ftp], day=0)
        decided = FindingDecisions(store).accept(telnet.id[:8], reason="isolated VLAN; replacement ordered",
                                                 until=(T0 + 10 * DAY).date(), by="j.smith", now=T0 + DAY)
        assert (decided.status, decided.decided_by, decided.decided_until, decided.status_reason) == (
            FindingStatus.ACCEPTED_RISK, "j.smith", (T0 + 10 * DAY).date(), "isolated VLAN; replacement ordered")
        assert [t.id for t in store.findings(status="accepted_risk")] == [telnet.id]
        assert [t.id for t in store.findings(status="open")] == [ftp.id]
        record(store, [telnet, ftp], day=5)  # seen again: still accepted
        assert store.findings(ids=[telnet.id])[0].status is FindingStatus.ACCEPTED_RISK
        record(store, [telnet, ftp], day=11)  # the date has passed: open again
        lapsed = store.findings(ids=[telnet.id])[0]
        assert (lapsed.status, lapsed.decided_by, lapsed.decided_until) == (FindingStatus.OPEN, "", None)
        assert kinds(store, telnet.id) == [EventKind.OPENED, EventKind.ACCEPTED, EventKind.EXPIRED]
        history = FindingDecisions(store).history(telnet.id)  # type: ignore[arg-type]
        assert history[1].by == "j.smith" and history[2].at == T0 + 11 * DAY


def test_a_lapsed_decision_expires_even_on_a_partial_run_that_did_not_see_it(store_url: str) -> None:
    telnet = finding()
    with Store(store_url) as store:
        record(store, [telnet], day=0)
        FindingDecisions(store).false_positive(telnet.id, reason="banner only", until=(T0 + 2 * DAY).date(),
                                               by="a", now=T0)
        record(store, [], day=3, complete=False)
        assert store.findings(ids=[telnet.id])[0].status is FindingStatus.OPEN


def test_a_false_positive_without_a_date_stays_until_reopened_by_hand(store_url: str) -> None:
    telnet = finding()
    with Store(store_url) as store:
        record(store, [telnet], day=0)
        decisions = FindingDecisions(store)
        decisions.false_positive(telnet.id, reason="a honeypot, by design", until=None, by="soc", now=T0)
        record(store, [telnet], day=400)
        assert store.findings(ids=[telnet.id])[0].status is FindingStatus.FALSE_POSITIVE
        reopened = decisions.reopen(telnet.id, by="ciso", now=T0 + 401 * DAY)
        assert reopened.status is FindingStatus.OPEN and reopened.decided_by == ""
        assert kinds(store, telnet.id) == [EventKind.OPENED, EventKind.FALSE_POSITIVE, EventKind.REOPENED]


def test_runs_record_severity_changes_kev_and_resolution_as_events(store_url: str) -> None:
    telnet = finding()
    with Store(store_url) as store:
        record(store, [telnet], day=0)
        worse = dataclasses.replace(telnet, severity=Severity.CRITICAL, kev_due=dt.date(2026, 12, 1))
        record(store, [worse], day=1)
        record(store, [], day=2)
        record(store, [worse], day=3)
        history = FindingDecisions(store).history(telnet.id)  # type: ignore[arg-type]
        assert [(e.kind, e.detail) for e in history] == [
            (EventKind.OPENED, "high"), (EventKind.SEVERITY_CHANGED, "high to critical"),
            (EventKind.BECAME_KEV, "in CISA KEV, due 2026-12-01"), (EventKind.RESOLVED, "not seen in a complete scan"),
            (EventKind.REOPENED, "seen again")]


@pytest.mark.parametrize(("act", "message"), [
    (lambda d, i: d.accept(i, reason="x", until=T0.date(), by="a", now=T0), "is not after today"),
    (lambda d, i: d.accept(i, reason="  ", until=(T0 + DAY).date(), by="a", now=T0), "--reason: say why"),
    (lambda d, i: d.accept("0000000000", reason="x", until=(T0 + DAY).date(), by="a", now=T0), "no finding 0000000000"),
    (lambda d, i: d.accept("abc", reason="x", until=(T0 + DAY).date(), by="a", now=T0), "is not a finding id"),
    (lambda d, i: d.reopen(i, by="a", now=T0), "there is no decision to undo"),
])
def test_a_decision_that_cannot_be_taken_is_one_clear_line_and_changes_nothing(
        tmp_path: Path, act: object, message: str) -> None:
    telnet = finding()
    with Store(tmp_path / "w.db") as store:
        record(store, [telnet], day=0)
        with pytest.raises(DecisionError, match=message):
            act(FindingDecisions(store), telnet.id)  # type: ignore[operator]
        assert store.findings(ids=[telnet.id])[0].status is FindingStatus.OPEN
        assert kinds(store, telnet.id) == [EventKind.OPENED]


def test_a_resolved_finding_needs_no_decision(tmp_path: Path) -> None:
    telnet = finding()
    with Store(tmp_path / "w.db") as store:
        record(store, [telnet], day=0)
        record(store, [], day=1)
        with pytest.raises(DecisionError, match="is resolved"):
            FindingDecisions(store).accept(telnet.id, reason="x", until=(T0 + 9 * DAY).date(), by="a", now=T0 + DAY)


def cli_store(tmp_path: Path) -> tuple[Path, str]:
    config = tmp_path / "warpagent.yaml"
    config.write_text("organisation: {name: Decisions Council}\nstore: ./w.db\n"
                      "estates: [{name: corp, targets: [198.18.0.10]}]\n", encoding="utf-8")
    telnet = finding()
    with Store(tmp_path / "w.db") as store:
        record(store, [telnet], day=0)
    return config, telnet.id


def test_accept_show_and_reopen_through_the_cli(tmp_path: Path) -> None:
    config, finding_id = cli_store(tmp_path)
    now = T0 + DAY
    accepted = run_cli("--config", str(config), "accept", finding_id[:8], "--reason", "isolated VLAN",
                       "--until", "2026-12-31", "--by", "j.smith", cwd=tmp_path, now=now)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.startswith(f"{finding_id}: accepted_risk until 2026-12-31")
    listed = run_cli("--config", str(config), "findings", "--status", "accepted_risk", "--format", "json",
                     cwd=tmp_path, now=now)
    (row,) = json.loads(listed.stdout)["findings"]
    assert (row["decided_by"], row["decided_until"], row["status_reason"]) == ("j.smith", "2026-12-31",
                                                                               "isolated VLAN")
    shown = run_cli("--config", str(config), "findings", "show", finding_id, "--json", cwd=tmp_path, now=now)
    assert [h["event"] for h in json.loads(shown.stdout)["history"]] == ["opened", "accepted"]
    text = run_cli("--config", str(config), "findings", "show", finding_id[:6], cwd=tmp_path, now=now).stdout
    assert "accepted by j.smith: isolated VLAN (until 2026-12-31)" in text
    reopened = run_cli("--config", str(config), "reopen", finding_id, "--by", "ciso", cwd=tmp_path, now=now)
    assert reopened.returncode == 0 and f"{finding_id}: open" in reopened.stdout


@pytest.mark.parametrize(("args", "said"), [
    (["accept", "ID", "--reason", "r", "--until", "31/12/2026"], "--until: '31/12/2026' is not a date"),
    (["accept", "ID", "--reason", "r", "--until", "2026-11-01"], "is not after today"),
    (["false-positive", "ffffffffff", "--reason", "r"], "no finding ffffffffff"),
    (["findings", "show"], "findings takes 'show ID' or nothing"),
])
def test_cli_mistakes_exit_2_with_one_line(tmp_path: Path, args: list[str], said: str) -> None:
    config, finding_id = cli_store(tmp_path)
    ran = run_cli("--config", str(config), *[finding_id if a == "ID" else a for a in args], cwd=tmp_path,
                  now=T0 + DAY)
    assert ran.returncode == 2 and said in ran.stderr and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert "Traceback" not in ran.stderr


def test_the_table_shows_the_id_to_decide_by_and_the_csv_keeps_the_register(tmp_path: Path) -> None:
    """Issue 30: the table had no id column (every decision needs one) and the CSV export lacked
    what the JSON has, so the accepted-risk register could not be exported."""
    config, finding_id = cli_store(tmp_path)
    now = T0 + DAY
    table = run_cli("--config", str(config), "findings", cwd=tmp_path, now=now).stdout.splitlines()
    assert table[0].split()[:2] == ["ID", "ESTATE"]
    short, estate = table[1].split()[:2]
    assert finding_id.startswith(short) and estate == "corp"
    accepted = run_cli("--config", str(config), "accept", short, "--reason", "isolated VLAN, see RISK-12",
                       "--until", "2026-12-31", "--by", "j.smith", cwd=tmp_path, now=now)
    assert accepted.returncode == 0, accepted.stderr
    exported = run_cli("--config", str(config), "findings", "--status", "accepted_risk", "--format", "csv",
                       cwd=tmp_path, now=now)
    as_json = run_cli("--config", str(config), "findings", "--status", "accepted_risk", "--format", "json",
                      cwd=tmp_path, now=now)
    (row,) = csv.DictReader(io.StringIO(exported.stdout))
    (record,) = json.loads(as_json.stdout)["findings"]
    assert (row["status"], row["status_reason"], row["decided_by"], row["decided_until"]) == (
        "accepted_risk", "isolated VLAN, see RISK-12", "j.smith", "2026-12-31")
    assert row["cyber_essentials"] == "; ".join(record["cyber_essentials"]) and row["caf"] == " ".join(record["caf"])
    assert set(record) - set(row) == set()  # every JSON field is a CSV column
    assert (row["kev"], row["epss"]) == ("False", "")
