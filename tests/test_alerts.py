"""Alerts the same night, to a real SMTP server: once per event, kept while the server is down,
never sent twice; and stored findings re-prioritised after a KEV import without a rescan."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import json
from pathlib import Path

from tests.conftest import run_cli
from tests.test_reports import Inbox, free_port, start_smtp
from tests.test_store import T0, finding, record
from warpagent import config
from warpagent.model.findings import EventKind, Finding, Severity
from warpagent.store.decisions import FindingDecisions
from warpagent.store.findings import Store

DAY = dt.timedelta(days=1)
KEV_CVE = "CVE-2021-41773"  # Apache httpd path traversal: in CISA KEV, due 2021-11-17


def _config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "w.yaml"
    path.write_text(f"""organisation: {{name: Alert Borough Council}}
store: ./w.db
estates: [{{name: corp, targets: [198.18.0.10, 198.18.0.11]}}]
reports:
  email: {{smtp_host: 127.0.0.1, smtp_port: {port}, security: none, from: warpagent@council.test,
           to: [board@council.test]}}
  alerts: {{to: [soc@council.test]}}
""", encoding="utf-8")
    return path


def _subjects(inbox: Inbox) -> list[str]:
    return [str(email.message_from_bytes(m, policy=email.policy.default)["Subject"]) for m in inbox.messages]


def _critical(port: int = 6379) -> Finding:
    return dataclasses.replace(finding(port=port, check_id="WA514"), severity=Severity.CRITICAL,
                               title=f"Redis answers without a password on {port}/tcp", subject=f"{port}/tcp")


def test_each_event_is_told_once_and_a_down_server_only_delays_it(tmp_path: Path) -> None:
    port = free_port()
    config_path = _config(tmp_path, port)
    with Store(tmp_path / "w.db") as store:
        record(store, [_critical(), finding()], day=0)  # a new critical and a new high
    down = run_cli("--config", str(config_path), "alerts", cwd=tmp_path, now=T0)
    assert down.returncode == 3 and "SMTP 127.0.0.1" in down.stderr and "kept" in down.stderr, down.stderr
    assert len(list((tmp_path / "mail-outbox").glob("alert-*.eml"))) == 1  # only the critical is worth an alert
    controller, inbox = start_smtp(port)
    try:
        sent = run_cli("--config", str(config_path), "alerts", cwd=tmp_path, now=T0)
        assert sent.returncode == 0, sent.stderr
        assert _subjects(inbox) == ["Alert Borough Council: security alert: new critical finding: Redis answers "
                                    "without a password on 6379/tcp on 198.18.0.10"]
        message = email.message_from_bytes(inbox.messages[0], policy=email.policy.default)
        assert message["To"] == "soc@council.test"
        # issue 30: the body opened "New critical finding (...): critical"
        first = message.get_content().splitlines()[0]  # type: ignore[attr-defined]
        assert first.startswith("A new critical finding, first seen ") and first.endswith(" UTC.")
        again = run_cli("--config", str(config_path), "alerts", cwd=tmp_path, now=T0)
        assert again.returncode == 0 and len(inbox.messages) == 1  # never twice
    finally:
        controller.stop()


def test_rises_kev_expiry_and_kev_due_dates_each_alert(tmp_path: Path) -> None:
    port = free_port()
    config_path = _config(tmp_path, port)
    high = finding()
    with Store(tmp_path / "w.db") as store:
        record(store, [high], day=0)
        FindingDecisions(store).accept(high.id, reason="isolated", until=(T0 + 3 * DAY).date(), by="ciso", now=T0)
        worse = dataclasses.replace(high, severity=Severity.CRITICAL, cves=(KEV_CVE,),
                                    kev_due=(T0 + 5 * DAY).date())
        record(store, [worse], day=1)  # severity rose and it became KEV (still accepted)
        record(store, [worse], day=4)  # the acceptance lapsed
    controller, inbox = start_smtp(port)
    try:
        dry = run_cli("--config", str(config_path), "alerts", "--dry-run", "--json", cwd=tmp_path, now=T0 + 6 * DAY)
        assert [a["event"] for a in json.loads(dry.stdout)["alerts"]] == [
            "severity_changed", "became_kev", "expired", "kev_past_due"]
        assert inbox.messages == []  # a dry run sends nothing
        run_cli("--config", str(config_path), "alerts", cwd=tmp_path, now=T0 + 6 * DAY)
        assert [s.split(": ")[2] for s in _subjects(inbox)] == [
            "severity rose", "now actively exploited (CISA KEV)", "accepted risk lapsed", "CISA KEV due date passed"]
        run_cli("--config", str(config_path), "alerts", cwd=tmp_path, now=T0 + 9 * DAY)
        assert len(inbox.messages) == 4  # the KEV due date passing is told once, not every day after
    finally:
        controller.stop()


def test_a_kev_import_reprioritises_stored_findings_without_a_rescan(tmp_path: Path) -> None:
    from feeds.intel_store import IntelStore
    from tests.test_feeds import build_intel
    from warpagent.scan.reprioritise import reprioritise

    httpd = dataclasses.replace(finding(port=80, check_id="WA101"), severity=Severity.MEDIUM, cves=(KEV_CVE,),
                                title="Apache httpd 2.4.49 with known vulnerabilities", subject="80/tcp")
    with Store(tmp_path / "w.db") as store:
        record(store, [httpd], day=0)
        with IntelStore(build_intel(tmp_path / "intel").intel_path) as intel:
            changes = reprioritise(store, intel, T0 + DAY)
            assert len(changes) == 1
            assert reprioritise(store, intel, T0 + 2 * DAY) == []  # applied once
        stored = store.findings(ids=[httpd.id])[0].finding
        assert stored.severity is Severity.CRITICAL and stored.kev_due == dt.date(2021, 11, 17)
        kinds = [e.kind for e in FindingDecisions(store).history(httpd.id)]  # type: ignore[arg-type]
        assert kinds == [EventKind.OPENED, EventKind.SEVERITY_CHANGED, EventKind.BECAME_KEV]


def test_alerts_need_the_smtp_server_of_reports_email(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("organisation: {name: X}\nestates: [{name: a, targets: [198.18.0.1]}]\n"
                    "reports: {alerts: {to: [soc@council.test]}}\n", encoding="utf-8")
    problems = config.validate(config.strict_yaml.load(path.read_text()), "w.yaml")
    assert problems == ["w.yaml: At 'reports.alerts': alerts are sent through reports.email's SMTP server; add "
                        "reports.email (smtp_host, from, to)"]


def test_an_acceptance_that_lapses_between_scans_is_reopened_and_told_the_same_night(tmp_path: Path) -> None:
    port = free_port()
    config_path = _config(tmp_path, port)
    high = finding()
    with Store(tmp_path / "w.db") as store:
        record(store, [high], day=0)
        FindingDecisions(store).accept(high.id, reason="isolated", until=(T0 + 2 * DAY).date(), by="ciso", now=T0)
    controller, inbox = start_smtp(port)
    try:
        run_cli("--config", str(config_path), "alerts", cwd=tmp_path, now=T0 + 3 * DAY)  # no scan since
        assert [s.split(": ")[2] for s in _subjects(inbox)] == ["accepted risk lapsed"]
    finally:
        controller.stop()
    with Store(tmp_path / "w.db") as store:
        reopened = store.findings(ids=[high.id])[0]
        assert reopened.status.value == "open" and reopened.decided_until is None
