"""Board and technical reports: numbers against the store, RAG rules, Chromium rendering, real SMTP."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import json
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checks import ALL_CHECKS
from reports import board
from tests.conftest import run_cli
from tests.taxii_server import free_port
from tests.tls import tls_context
from warpagent import clock
from warpagent.config import RagRules
from warpagent.model.findings import Finding, Severity
from warpagent.sharing import buckets
from warpagent.store.findings import Store
from warpagent.store.lifecycle import RunReport

DAY0 = dt.datetime(2026, 8, 20, 1, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
CHROMIUM = shutil.which("chromium")


def _finding(check_id: str, severity: Severity, asset: str, port: int) -> Finding:
    return Finding(estate="corporate", asset=asset, check_id=check_id, category="configs", severity=severity,
                   title=f"{check_id} on <{asset}>", evidence="<script>alert(1)</script>", remediation="fix it",
                   subject=f"{port}/tcp", port=port, protocol="tcp")


A = _finding("WA514", Severity.CRITICAL, "db1.council.test", 6379)
B = _finding("WA512", Severity.HIGH, "web1.council.test", 23)
C = _finding("WA508", Severity.MEDIUM, "web1.council.test", 22)
D = _finding("WA503", Severity.HIGH, "web2.council.test", 443)
E = _finding("WA505", Severity.LOW, "web2.council.test", 8443)
ASSETS = ("db1.council.test", "web1.council.test", "web2.council.test")


def _run(store: Store, when: dt.datetime, findings: list[Finding]) -> None:
    run = store.begin_run("corporate", when)
    # as a network-only scan with no intel fetched yet records it: only configs is measured
    store.record_run(run, RunReport(
        findings=tuple(findings), finished=when, complete=True, observed_assets=frozenset(ASSETS),
        in_scope_assets=frozenset(ASSETS), hosts_scanned=3,
        unmeasured_checks=frozenset(c.id for c in ALL_CHECKS if c.needs_intel),
        unmeasured_categories=frozenset({"patches", "unsupported", "privileges", "passwords", "supply_chain",
                                         "backups"})))


def history(db: Path) -> None:
    """Three months of nightly life: B fixed in October, E appears in September."""
    with Store(db) as store:
        _run(store, DAY0, [A, B, C, D])
        _run(store, dt.datetime(2026, 9, 25, 1, 0, tzinfo=dt.UTC), [A, B, C, D, E])
        _run(store, dt.datetime(2026, 10, 16, 1, 0, tzinfo=dt.UTC), [A, C, D, E])
        _run(store, NOW - dt.timedelta(hours=8), [A, C, D, E])


def metrics(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-metric="([^"]+)">([^<]*)<', html))


def test_rag_rules() -> None:
    from warpagent.model.findings import FindingStatus, TrackedFinding

    rules = RagRules()

    def tracked(severity: Severity, age_days: int) -> TrackedFinding:
        return TrackedFinding(finding=_finding("WA501", severity, "h", 443),
                              first_seen=NOW - dt.timedelta(days=age_days), last_seen=NOW, status=FindingStatus.OPEN)

    assert board.rag_for([], NOW, rules)[0] == "green"
    assert board.rag_for([tracked(Severity.LOW, 400)], NOW, rules)[0] == "green"
    assert board.rag_for([tracked(Severity.MEDIUM, 91)], NOW, rules) == (
        "amber", "Amber: 1 medium open longer than 90 days")
    assert board.rag_for([tracked(Severity.HIGH, 14)], NOW, rules)[0] == "amber"  # Cyber Essentials: 14 days
    assert board.rag_for([tracked(Severity.HIGH, 15)], NOW, rules) == ("red", "Red: 1 high open longer than 14 days")
    assert board.rag_for([tracked(Severity.CRITICAL, 15)], NOW, rules)[0] == "red"
    assert board.rag_for([tracked(Severity.CRITICAL, 15)], NOW, RagRules(critical_days=20))[0] == "amber"
    assert board.rag_for([tracked(Severity.HIGH, 31)], NOW, RagRules(high_days=30)) == (
        "red", "Red: 1 high open longer than 30 days")
    # issue 30: a critical within its deadline shown amber says why, and when it turns red
    assert board.rag_for([tracked(Severity.CRITICAL, 4), tracked(Severity.HIGH, 10)], NOW, rules) == (
        "amber", f"Amber: 2 critical or high open, still within their deadline (the first falls due on "
                 f"{(NOW + dt.timedelta(days=4)).day} {NOW + dt.timedelta(days=4):%B})")


def test_notes_for_information_are_counted_apart_from_open_weaknesses() -> None:
    """Issue 30: a Green row read "5 open" where 4 were notes for information."""
    from warpagent.model.findings import FindingStatus, TrackedFinding

    found = [TrackedFinding(finding=_finding("WA525", Severity.INFO, f"h{i}", 443), first_seen=DAY0,
                            last_seen=NOW, status=FindingStatus.OPEN) for i in range(4)]
    found.append(TrackedFinding(finding=_finding("WA505", Severity.LOW, "h9", 443), first_seen=DAY0, last_seen=NOW,
                                status=FindingStatus.OPEN))
    report = board.build(found, [], organisation="X", title="T", month="2026-11", now=NOW, rules=RagRules(),
                         measured={"configs"})
    configs = next(c for c in report.categories if c.category == "configs")
    assert (configs.open_total, configs.open_info) == (1, 4)


def test_month_bounds_and_trend_labels() -> None:
    assert clock.month_bounds("2026-10", NOW, dt.UTC) == (dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
                                                          dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    assert clock.month_bounds("2026-12", NOW, dt.UTC)[1] == NOW
    report = board.build([], [], organisation="X", title="T", month="2026-10", now=NOW, rules=RagRules())
    assert report.months == ("May", "Jun", "Jul", "Aug", "Sep", "Oct")
    # the council's months: October in London began at 23:00 UTC on 30 September (BST)
    london = clock.zone("Europe/London")
    assert clock.month_bounds("2026-10", NOW, london) == (dt.datetime(2026, 9, 30, 23, tzinfo=dt.UTC),
                                                          dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    assert clock.month_of(dt.datetime(2027, 6, 30, 23, 30, tzinfo=dt.UTC), london) == "2027-07"
    assert clock.shift_month("2027-01", -1) == "2026-12" and clock.shift_month("2026-12", 1) == "2027-01"
    january = board.build([], [], organisation="X", title="T", month="2027-01",
                          now=dt.datetime(2027, 2, 1, tzinfo=dt.UTC), rules=RagRules(), tz=london)
    assert january.months == ("Aug", "Sep", "Oct", "Nov", "Dec", "Jan") and january.month == "January 2027"


def _config(path: Path, extra: str = "") -> Path:
    path.write_text(f"""organisation: {{name: "Test <b>Borough</b> Council"}}
store: ./warpagent.db
estates: [{{name: corporate, targets: [127.0.0.1]}}]
reports:
  title: Cyber hygiene report
  primary_colour: "#123456"
{extra}""")
    return path


def november_board(tmp_path: Path, config: Path) -> str:
    """The November board report from the store beside `config`, as the CLI writes it."""
    result = run_cli("--config", str(config), "report", "board", "--month", "2026-11", "--out", "board.html",
                     cwd=tmp_path, now=NOW)
    assert result.returncode == 0, result.stderr
    return (tmp_path / "board.html").read_text()


def test_board_numbers_equal_the_store(tmp_path: Path) -> None:
    history(tmp_path / "warpagent.db")
    config = _config(tmp_path / "w.yaml")
    html = november_board(tmp_path, config)
    found = metrics(html)
    db = sqlite3.connect(tmp_path / "warpagent.db")
    open_configs = db.execute("SELECT COUNT(*) FROM findings WHERE status='open' AND category='configs'").fetchone()[0]
    new_in_month = db.execute("SELECT COUNT(*) FROM findings WHERE first_seen >= '2026-11-01'").fetchone()[0]
    fixed = db.execute(
        "SELECT first_seen, resolved_at, severity FROM findings WHERE resolved_at IS NOT NULL").fetchall()
    assert found["open-configs"] == str(open_configs) == "4"
    assert found["rag-configs"] == "Red"
    assert "1 critical open longer than 14 days and 1 high open longer than 14 days" in html
    assert found["new-month"] == str(new_in_month) == "0"
    assert found["fixed-month"] == "0"
    assert len(fixed) == 1 and fixed[0][2] == "high"
    days = (dt.datetime.fromisoformat(fixed[0][1]) - dt.datetime.fromisoformat(fixed[0][0])).total_seconds() / 86400
    assert found["median-high"] == str(round(days, 1)) == "57.0"
    assert found["fixed-high"] == "1" and found["median-critical"] == "-"
    assert found["past-deadline"] == "2"
    # the gauges: the oldest open KEV, critical and high against their 14-day deadlines
    assert (found["gauge-1"], found["gauge-2"], found["gauge-3"]) == ("none open", "97", "97")
    assert html.count("(past it)") == 2 and 'aria-label="Critical: 97 of 14 days"' in html
    assert found["hosts-corporate"] == "3"
    trend = re.search(r'aria-label="trend-configs open at month end: ([^"]+)"', html)
    assert trend and trend.group(1) == "Jun no data, Jul no data, Aug 4, Sep 5, Oct 4, Nov 4"  # before the first scan
    assert found["rag-patches"] == "N/A" and "Not yet measured" in html
    # top risks in plain words, most severe first, from the checks' own documentation
    risks = re.findall(r'data-risk="(WA\d+)"', html)
    assert risks[:2] == ["WA514", "WA503"]
    assert "Why it matters:</em> Anyone who can reach it can read or wipe the data" in html
    # escaped, self-contained
    assert "Test &lt;b&gt;Borough&lt;/b&gt; Council" in html and "<b>Borough" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "#123456" in html


def test_board_last_month_is_a_closed_period(tmp_path: Path) -> None:
    history(tmp_path / "warpagent.db")
    config = _config(tmp_path / "w.yaml")
    result = run_cli("--config", str(config), "report", "board", "--month", "2026-10", cwd=tmp_path, now=NOW)
    found = metrics(result.stdout)
    assert found["fixed-month"] == "1"  # B, fixed on 16 October
    assert found["open-configs"] == "4"


@pytest.mark.parametrize("month", ["2026-13", "26-11", "2031-01"])
def test_bad_month_is_exit_2(tmp_path: Path, month: str) -> None:
    history(tmp_path / "warpagent.db")
    result = run_cli("--config", str(_config(tmp_path / "w.yaml")), "report", "board", "--month", month,
                     cwd=tmp_path, now=NOW)
    assert result.returncode == 2 and f"--month: '{month}' is not a month up to now" in result.stderr


def test_technical_report_and_csv(tmp_path: Path) -> None:
    history(tmp_path / "warpagent.db")
    config = _config(tmp_path / "w.yaml")
    first = run_cli("--config", str(config), "report", "technical", "--out", "tech.html", cwd=tmp_path, now=NOW)
    assert first.returncode == 0, first.stderr
    html = (tmp_path / "tech.html").read_text()
    found = metrics(html)
    assert found["open"] == found["open-configs"] == "4"
    assert (found["new"], found["resolved"], found["reopened"]) == ("4", "1", "0")  # first report: since records began
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    rows = (tmp_path / "tech.csv").read_text().splitlines()
    assert len(rows) == 1 + 4
    # grouped by framework too: A (WA514), C (WA508), D (WA503), E (WA505) are all secure configuration
    by_framework = dict(re.findall(r'data-framework="([^"]+)">.*?data-metric="framework-open">(\d+)<', html,
                                   flags=re.DOTALL))
    assert by_framework["Cyber Essentials/Secure configuration"] == "4"
    assert by_framework["Cyber Essentials/User access control"] == "1" and by_framework["CAF/B3.b"] == "3"
    assert by_framework["CAF/B5.c"] == "0"
    # B comes back after the report, which logged the time it was run (NOW)
    with Store(tmp_path / "warpagent.db") as store:
        _run(store, NOW + dt.timedelta(hours=1), [A, B, C, D, E])
    second = run_cli("--config", str(config), "report", "technical", "--out", "tech2.html", cwd=tmp_path,
                     now=NOW + dt.timedelta(hours=2))
    assert second.returncode == 0
    found = metrics((tmp_path / "tech2.html").read_text())
    assert (found["new"], found["resolved"], found["reopened"]) == ("0", "0", "1")


def test_peer_comparison_respects_k() -> None:
    postures = [{"category": "configs", "measured": True, "open_findings": b, "created_by_ref": f"identity--{i}"}
                for i, b in enumerate(["0", "2-5", "6-20"])]
    two = board.peer_comparison("configs", 4, postures[:2], k=3)
    assert two.withheld and two.standing == "fewer than 3 peers have shared this: not shown"
    three = board.peer_comparison("configs", 1, postures, k=3)
    assert not three.withheld and three.members == 3 and three.with_open_share == 67
    assert three.standing == "fewer open weaknesses than most peers"
    assert board.peer_comparison("configs", 40, postures, k=3).standing == "more open weaknesses than most peers"


def test_three_members_with_the_same_findings_are_in_line() -> None:
    """Issue 30: three members with 4 password findings each (bucket 2-5) were told "more open
    weaknesses than most peers", the council's count having been set against the bucket's floor."""
    postures = [{"category": "passwords", "measured": True, "open_findings": "2-5"} for _ in range(3)]
    assert board.peer_comparison("passwords", 4, postures, k=3).standing == "in line with peers"


@pytest.mark.parametrize(("own", "median", "expected"), [
    (0, "0", "in line"), (1, "0", "more"), (0, "1", "fewer"), (1, "1", "in line"), (2, "1", "more"),
    (2, "2-5", "in line"), (5, "2-5", "in line"), (6, "2-5", "more"), (1, "2-5", "fewer"),
    (6, "6-20", "in line"), (20, "6-20", "in line"), (21, "6-20", "more"), (5, "6-20", "fewer"),
    (21, "21+", "in line"), (5000, "21+", "in line"), (20, "21+", "fewer")])
def test_the_standing_at_every_bucket_edge(own: int, median: str, expected: str) -> None:
    assert board.standing(own, median).startswith(expected)


def test_the_median_bucket_is_the_lower_middle_one() -> None:
    assert buckets.median(["0", "2-5", "6-20"]) == "2-5"
    assert buckets.median(["6-20", "0", "21+", "1"]) == "1"
    assert buckets.median(["21+"]) == "21+"


# --- Chromium -------------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--enable-logging=stderr", "--v=0"]


def chromium(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is installed by scripts/install.sh --test")
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}",
                           "--window-size=794,1123", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


FIT_PROBE = """<script>
const width = document.documentElement.clientWidth;
const over = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > width + 1);
document.body.setAttribute('data-fit', JSON.stringify({width, scroll: document.documentElement.scrollWidth,
  over: over.map(e => e.tagName), charts: document.querySelectorAll('svg[data-chart] rect').length}));
</script></body>"""


@pytest.fixture
def board_html(tmp_path: Path) -> Path:
    history(tmp_path / "warpagent.db")
    result = run_cli("--config", str(_config(tmp_path / "w.yaml")), "report", "board", "--out", "board.html",
                     cwd=tmp_path, now=NOW)
    assert result.returncode == 0, result.stderr
    return tmp_path / "board.html"


def test_board_in_chromium_screenshot_pdf_a4_no_console_errors(tmp_path: Path, board_html: Path) -> None:
    shot = chromium(tmp_path, board_html, f"--screenshot={tmp_path / 'board.png'}")
    assert (tmp_path / "board.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert console_messages(shot.stderr) == []
    pdf = chromium(tmp_path, board_html, f"--print-to-pdf={tmp_path / 'board.pdf'}", "--no-pdf-header-footer")
    assert console_messages(pdf.stderr) == []
    data = (tmp_path / "board.pdf").read_bytes()
    boxes = [tuple(float(n) for n in m) for m in re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)]
    assert boxes and all(abs(w - 595.3) < 2 and abs(h - 841.9) < 2 for w, h in boxes), boxes  # every page is A4
    assert 1 <= data.count(b"/Type /Page\n") + data.count(b"/Type /Page>") + data.count(b"/Type /Page/") <= 4
    probe = tmp_path / "probe.html"
    probe.write_text(board_html.read_text().replace("</body>", FIT_PROBE))
    dom = chromium(tmp_path, probe, "--dump-dom", "--virtual-time-budget=2000").stdout
    fit = json.loads(re.search(r"data-fit=\"([^\"]+)\"", dom).group(1).replace("&quot;", '"'))  # type: ignore[union-attr]
    assert fit["scroll"] <= fit["width"] and fit["over"] == [], fit  # nothing clipped at A4 width
    assert fit["charts"] == 6  # the measured category's chart, one bar per month
    for category in board.CATEGORY_NAMES:
        assert f'data-category="{category}"' in dom


def test_console_error_detection_can_fail(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('broken chart')</script></body></html>")
    assert any("broken chart" in line for line in console_messages(chromium(tmp_path, page, "--dump-dom").stderr))


# --- e-mail ---------------------------------------------------------------------------------

class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp_port() -> int:
    return free_port()


def start_smtp(port: int) -> tuple[Any, Inbox]:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, inbox


@pytest.fixture
def smtp(smtp_port: int) -> Iterator[Inbox]:
    controller, inbox = start_smtp(smtp_port)
    try:
        yield inbox
    finally:
        controller.stop()


def _mail_config(tmp_path: Path, port: int) -> Path:
    return _config(tmp_path / "w.yaml", f"""  email:
    smtp_host: 127.0.0.1
    smtp_port: {port}
    security: none
    from: security@council.test
    to: [board@council.test, chair@council.test]
    timeout: 5s
""")


def test_board_report_by_email(tmp_path: Path, smtp_port: int, smtp: Inbox) -> None:
    history(tmp_path / "warpagent.db")
    result = run_cli("--config", str(_mail_config(tmp_path, smtp_port)), "report", "board", "--email",
                     cwd=tmp_path, now=NOW)
    assert result.returncode == 0, result.stderr
    (raw,) = smtp.messages
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "Test <b>Borough</b> Council: cyber hygiene report November 2026"
    assert message["To"] == "board@council.test, chair@council.test"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "Insecure configurations: RED, 4 open" in text
    assert metrics(html)["open-configs"] == "4"
    assert not list((tmp_path / "mail-outbox").glob("*.eml"))


TEXT_SECTIONS = ("IN BRIEF", "DECISIONS ASKED OF THE BOARD", "STATUS BY CATEGORY", "TREND: OPEN WEAKNESSES",
                 "TOP RISKS", "REMEDIATION PERFORMANCE", "ACCEPTED RISKS", "COVERAGE",
                 "HOW WE COMPARE WITH OUR WARP PEERS")


def test_the_text_part_is_plain_words_with_every_section_and_the_subject_one_line(
        tmp_path: Path, smtp_port: int, smtp: Inbox) -> None:
    """Issue 30: the plain-text part was HTML-escaped ("Audit &amp; Governance", "root&#39;s"),
    left out the peer comparison, and a long Subject was folded."""
    from warpagent.store.peer_intel import PeerIntel

    history(tmp_path / "warpagent.db")
    with PeerIntel(tmp_path / "warpagent.db") as intel:  # three peers' postures, as a pull leaves them
        intel.add_page("warp", [{"type": "x-warpagent-posture", "id": f"x-warpagent-posture--{i}",
                                 "created_by_ref": f"identity--{i}", "category": "configs", "measured": True,
                                 "open_findings": "2-5", "modified": "2026-11-24T00:00:00.000Z"} for i in range(3)],
                       "2026-11-24T01:00:00.000000Z")
    organisation = "Fenwick Vale Borough Council's Audit & Governance Committee (Cyber Resilience Sub-Group)"
    config = _mail_config(tmp_path, smtp_port)
    config.write_text(config.read_text().replace('"Test <b>Borough</b> Council"', f'"{organisation}"'))
    result = run_cli("--config", str(config), "report", "board", "--email", cwd=tmp_path, now=NOW)
    assert result.returncode == 0, result.stderr
    (raw,) = smtp.messages
    header = raw.split(b"\r\n\r\n")[0]
    subject_line = next(line for line in header.split(b"\r\n") if line.startswith(b"Subject:"))
    assert subject_line == f"Subject: {organisation}: cyber hygiene report November 2026".encode()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert organisation in text and "&amp;" in html and "&amp;" not in text and "&#39;" not in text
    assert [s for s in TEXT_SECTIONS if s not in text] == []
    assert "Insecure configurations: 3 peers, 100% with open weaknesses; in line with peers" in text
    assert "Insecure configurations: RED, 4 open (1 critical, 1 high, 1 medium, 1 low)" in text


def test_smtp_outage_keeps_the_report_and_sends_it_next_time(tmp_path: Path, smtp_port: int) -> None:
    history(tmp_path / "warpagent.db")
    config = _mail_config(tmp_path, smtp_port)
    down = run_cli("--config", str(config), "report", "board", "--email", cwd=tmp_path, now=NOW)
    assert down.returncode == 3
    assert "kept in" in down.stderr and "Traceback" not in down.stderr
    assert [p.name for p in (tmp_path / "mail-outbox").glob("*.eml")] == ["board-2026-11.eml"]
    again = run_cli("--config", str(config), "report", "board", "--email", cwd=tmp_path, now=NOW)  # still down
    assert again.returncode == 3 and len(list((tmp_path / "mail-outbox").glob("*.eml"))) == 1
    controller, inbox = start_smtp(smtp_port)
    try:
        from reports import mailer
        from warpagent import config as config_module

        settings = config_module.load(str(config))
        assert settings.reports.email is not None
        sent, problems = mailer.send_pending(settings.reports.email, None)  # the next attempt
        assert (sent, problems) == (1, [])
        assert len(inbox.messages) == 1
        assert not list((tmp_path / "mail-outbox").glob("*.eml"))
    finally:
        controller.stop()


def test_email_needs_settings(tmp_path: Path) -> None:
    history(tmp_path / "warpagent.db")
    result = run_cli("--config", str(_config(tmp_path / "w.yaml")), "report", "board", "--email", cwd=tmp_path, now=NOW)
    assert result.returncode == 2 and "no email settings; add reports.email" in result.stderr


def test_logo_is_embedded_and_a_bad_one_is_a_clear_error(tmp_path: Path) -> None:
    history(tmp_path / "warpagent.db")
    (tmp_path / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    config = _config(tmp_path / "w.yaml", "  logo: logo.svg\n")
    result = run_cli("--config", str(config), "report", "board", cwd=tmp_path, now=NOW)
    assert result.returncode == 0 and 'src="data:image/svg+xml;base64,' in result.stdout
    (tmp_path / "logo.txt").write_text("not an image")
    bad = run_cli("--config", str(_config(tmp_path / "w.yaml", "  logo: logo.txt\n")), "report", "board",
                  cwd=tmp_path, now=NOW)
    assert bad.returncode == 3 and "logo.txt: reports.logo must be a PNG, JPEG or SVG file" in bad.stderr


def test_starttls_with_login(tmp_path: Path, smtp_port: int) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"warpagent", b"mail-pw-42")
        return AuthResult(success=ok)

    context, ca = tls_context(tmp_path)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port, tls_context=context, require_starttls=True,
                            authenticator=authenticate, auth_require_tls=True)
    controller.start()
    try:
        history(tmp_path / "warpagent.db")
        config = _config(tmp_path / "w.yaml", f"""  email:
    smtp_host: 127.0.0.1
    smtp_port: {smtp_port}
    security: starttls
    username: warpagent
    password_env: MAIL_PW
    from: security@council.test
    to: [board@council.test]
""")
        untrusted = run_cli("--config", str(config), "report", "board", "--email", cwd=tmp_path, now=NOW,
                            env={"MAIL_PW": "mail-pw-42"})
        assert untrusted.returncode == 3 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr  # verified by default
        assert inbox.messages == []
        config.write_text(config.read_text() + f"    ca_bundle: {ca}\n")  # the relay's private CA, trusted
        sent = run_cli("--config", str(config), "report", "board", "--email", cwd=tmp_path, now=NOW,
                       env={"MAIL_PW": "mail-pw-42"})
        assert sent.returncode == 0, sent.stderr
        assert len(inbox.messages) == 1  # the kept copy and the new one are the same month's: sent once
        assert "mail-pw-42" not in untrusted.stderr + sent.stderr
    finally:
        controller.stop()


def test_failed_job_sends_a_notice(tmp_path: Path, smtp_port: int, smtp: Inbox) -> None:
    from warpagent.daemon import jobs

    config = _config(tmp_path / "w.yaml", f"""  email:
    smtp_host: 127.0.0.1
    smtp_port: {smtp_port}
    security: none
    from: security@council.test
    to: [soc@council.test]
scan: {{nmap_path: /nonexistent/nmap}}
schedule: {{notify_failures: true}}
""")
    jobs.scan_job(str(config), "corporate")
    (raw,) = smtp.messages
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "warpagent: job scan:corporate failed"
    assert "nmap was not found at '/nonexistent/nmap'" in message.get_content()  # type: ignore[attr-defined]
    with Store(tmp_path / "warpagent.db") as store:
        assert [(j, s) for j, _a, _b, s, _d in store.job_results()] == [("scan:corporate", "failed")]


def test_nothing_is_green_before_it_was_measured(tmp_path: Path) -> None:
    """A month before the first scan, and the months of the trend before it, are not measured: never
    Green, never 0."""
    history(tmp_path / "warpagent.db")  # the first scan: 20 August 2026, measuring configs only
    config = _config(tmp_path / "w.yaml")
    before = run_cli("--config", str(config), "report", "board", "--month", "2020-01", cwd=tmp_path, now=NOW)
    assert before.returncode == 0, before.stderr
    rags = {c: v for c, v in metrics(before.stdout).items() if c.startswith("rag-")}
    assert set(rags.values()) == {"N/A"} and len(rags) == 7
    assert "Not measured: no scan had measured this by 01 February 2020" in before.stdout
    october = run_cli("--config", str(config), "report", "board", "--month", "2026-10", cwd=tmp_path, now=NOW)
    found = metrics(october.stdout)
    assert found["rag-configs"] == "Red" and found["rag-patches"] == "N/A"
    with Store(tmp_path / "warpagent.db") as store:
        report = board.build(store.findings(), store.runs(), organisation="X", title="T", month="2026-10", now=NOW,
                             rules=RagRules(), tz=clock.zone("Europe/London"))
    configs = next(c for c in report.categories if c.category == "configs")
    assert report.months == ("May", "Jun", "Jul", "Aug", "Sep", "Oct")
    assert configs.trend[:3] == (None, None, None) and configs.trend[3:] == (4, 5, 4)  # August's end: A-D measured
    assert 'aria-label="trend-configs open at month end: May no data' in october.stdout


def test_an_accepted_risk_leaves_the_rag_and_enters_the_register(tmp_path: Path) -> None:
    from warpagent.store.decisions import FindingDecisions

    history(tmp_path / "warpagent.db")
    with Store(tmp_path / "warpagent.db") as store:
        decisions = FindingDecisions(store)
        decisions.accept(A.id, reason="isolated on the backup VLAN; replaced in the new year",
                         until=dt.date(2026, 12, 10), by="Head of ICT", now=NOW)
        decisions.false_positive(D.id, reason="a test page, not a service", until=None, by="SOC", now=NOW)
    config = _config(tmp_path / "w.yaml")
    html = november_board(tmp_path, config)
    found = metrics(html)
    assert found["open-configs"] == "2"  # A and D are decided: C and E stay
    assert found["rag-configs"] == "Amber"  # neither decided critical nor high keeps it red
    register = re.findall(r'<tr data-decision="([^"]+)"( class="expiring")?><td>([^<]+)</td>', html)
    assert [(d, bool(x)) for d, x, _what in register] == [("accepted risk", True), ("false positive", False)]
    assert found["expiring"] == "1"
    assert "Head of ICT" in html and "isolated on the backup VLAN" in html and "no date" in html


# --- the board's words ----------------------------------------------------------------------

TECHNICAL = re.compile(r"(/[a-z._-]+/|\s--?[a-z]|=|`|\.conf\b|\b(sudo|apt|systemctl|usermod|passwd|gpasswd)\b"
                       r"|\bwarpagent (scan|feeds|report|findings|accept|share|pull|run|init|check-config)\b"
                       r"|[a-z]+_[a-z]+_|\bsshd_config\b|NOPASSWD|trusted=)")


def test_no_check_gives_the_board_a_command_path_or_setting() -> None:
    from reports import board_words

    for check in ALL_CHECKS:
        for text in (board_words.what(check.id), board_words.why(check.id), board_words.action(check.category)):
            assert not TECHNICAL.search(text), (check.id, text)


def _visible_text(html: str) -> str:
    html = re.sub(r"(?s)<(style|script|svg)\b.*?</\1>", " ", html)
    html = re.sub(r"</?(strong|em|span|b|a)\b[^>]*>", "", html)  # inline: no space
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_board_opens_with_the_position_and_the_decisions_asked_for(tmp_path: Path) -> None:
    history(tmp_path / "warpagent.db")
    html = november_board(tmp_path, _config(tmp_path / "w.yaml"))
    text = _visible_text(html)
    assert html.index('id="summary"') < html.index('id="status"')
    assert ("Most of our cyber hygiene is not yet measured: only 1 of the 7 areas is, so the picture is "
            "incomplete. What was measured needs action now: of the seven areas, 1 red, 6 not yet measured. This "
            "month 0 weaknesses were found and 0 fixed; 4 open, as at the end of last month.") in text
    assert "Cyber Essentials: on today's findings we would not meet Secure configuration, User access control." in text
    asked = re.findall(r"<li>([^<]+)</li>", html[html.index('id="decisions-asked"'):])
    assert asked[0] == ("2 critical or high weaknesses are past their 14-day deadline: fund their fix now, or accept "
                        "each risk with an owner and a date.")
    assert not TECHNICAL.search(text), TECHNICAL.search(text)


@pytest.mark.parametrize(("rags", "opening"), [
    (["green"] * 2 + ["grey"] * 5, "Most of our cyber hygiene is not yet measured: only 2 of the 7 areas are, so the "
                                   "picture is incomplete. What was measured shows no significant weakness"),
    (["green"] * 4 + ["grey"] * 3, "Our cyber hygiene is good where measured: of the seven areas, 4 green, 3 not yet"),
    (["amber"] + ["grey"] * 6, "Most of our cyber hygiene is not yet measured: only 1 of the 7 areas is"),
    (["grey"] * 7, "Our cyber hygiene is not yet measured: of the seven areas, 7 not yet measured."),
    (["red", "amber", "green", "green", "green", "green", "grey"], "Our cyber hygiene needs action now:")])
def test_the_opening_sentence_weighs_coverage(rags: list[str], opening: str) -> None:
    """Issue 30: "good where measured" with five of seven areas unmeasured told a board the wrong thing."""
    from reports import summary

    assert summary._position(rags).startswith(opening)


def test_every_checks_finding_on_the_board_stays_in_plain_words(tmp_path: Path) -> None:
    from warpagent.store.decisions import FindingDecisions

    findings = [_finding(c.id, Severity.HIGH, f"h{i}.council.test", 1000 + i) for i, c in enumerate(ALL_CHECKS)]
    findings = [dataclasses.replace(f, category=c.category, product="Exim 4.89" if c.category == "unsupported"
                                    else f.product) for f, c in zip(findings, ALL_CHECKS, strict=True)]
    with Store(tmp_path / "warpagent.db") as store:
        run = store.begin_run("corporate", DAY0)
        assets = frozenset(f.asset for f in findings)
        store.record_run(run, RunReport(findings=tuple(findings), finished=DAY0, complete=True,
                                        observed_assets=assets, in_scope_assets=assets, hosts_scanned=len(assets)))
        FindingDecisions(store).accept(findings[0].id, reason="replacement funded for March",
                                       until=dt.date(2026, 12, 20), by="CIO", now=NOW)
    text = _visible_text(november_board(tmp_path, _config(tmp_path / "w.yaml")))
    assert "Fund the upgrade or replacement of software its maker no longer supports: Exim 4.89." in text
    assert "Renew or end 1 accepted risk that lapses within 30 days." in text
    assert not TECHNICAL.search(text), TECHNICAL.search(text)


WORD_PROBE = """<script>
const broken = [];
for (const cell of document.querySelectorAll('td, th, li, p')) {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode())) {
    for (const m of node.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
      if (lines.size > 1) broken.push(m[0]);
    }
  }
}
// chart labels drawn over each other ("no datano datano data")
const overlapping = [];
for (const svg of document.querySelectorAll('svg')) {
  const boxes = [...svg.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()]);
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, ra] = boxes[i], [b, rb] = boxes[j];
    const x = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
    const y = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
    if (x > 0.5 && y > 0.5 && ra.width > 0 && rb.width > 0) overlapping.push(a + ' / ' + b);
  }
}
document.body.setAttribute('data-words', JSON.stringify({broken, overlapping,
  width: document.documentElement.clientWidth, scroll: document.documentElement.scrollWidth}));
</script></body>"""


def _layout(tmp_path: Path, page: Path, width: int) -> dict[str, Any]:
    probe = tmp_path / f"words-{page.stem}-{width}.html"
    probe.write_text(page.read_text().replace("</body>", WORD_PROBE))
    dom = chromium(tmp_path, probe, "--dump-dom", "--virtual-time-budget=2000", f"--window-size={width},2000").stdout
    found: dict[str, Any] = json.loads(re.search(r"data-words=\"([^\"]+)\"", dom).group(1)  # type: ignore[union-attr]
                                       .replace("&quot;", '"').replace("&amp;", "&"))
    return found


@pytest.fixture
def every_report(tmp_path: Path, board_html: Path) -> list[Path]:
    """The board, technical, CAF and regional pages of one store, as a reader opens them."""
    config = tmp_path / "w.yaml"
    for kind, name in (("technical", "technical.html"), ("caf", "caf.html")):
        made = run_cli("--config", str(config), "report", kind, "--out", name, cwd=tmp_path, now=NOW)
        assert made.returncode == 0, made.stderr
    from reports.regional import render_page
    from tests.test_regional import member, picture

    october = dt.date(2026, 10, 20)
    history_ = [member(f"m{i}", october, {"patches": "6-20"}) for i in range(6)]
    history_ += [member(f"m{i}", dt.date(2026, 11, 25), {"patches": "1"} if i < 1 else {}) for i in range(6)]
    (tmp_path / "regional.html").write_text(render_page(picture(history_)))
    return [board_html, tmp_path / "technical.html", tmp_path / "caf.html", tmp_path / "regional.html"]


@pytest.mark.parametrize("width", [800, 1280])
def test_no_report_breaks_a_word_or_draws_labels_over_each_other(tmp_path: Path, every_report: list[Path],
                                                                 width: int) -> None:
    """Issue 30: "no datano datano data" on the trend charts, "Mea/sure/d" and "Ope/n" in table headers."""
    for page in every_report:
        found = _layout(tmp_path, page, width)
        assert (found["broken"], found["overlapping"]) == ([], []), (page.name, found)
        assert found["scroll"] <= found["width"], (page.name, found)


def test_the_word_probe_sees_a_word_broken_across_lines(tmp_path: Path) -> None:
    page = tmp_path / "narrow.html"
    page.write_text('<html><body><table style="width:60px"><tr><td style="overflow-wrap:anywhere">'
                    'supercalifragilistic</td></tr></table></body></html>'.replace("</body>", WORD_PROBE))
    dom = chromium(tmp_path, page, "--dump-dom", "--virtual-time-budget=2000", "--window-size=800,600").stdout
    found = json.loads(re.search(r"data-words=\"([^\"]+)\"", dom).group(1).replace("&quot;", '"'))  # type: ignore[union-attr]
    assert found["broken"] == ["supercalifragilistic"]


def test_the_probe_sees_chart_labels_drawn_over_each_other(tmp_path: Path) -> None:
    page = tmp_path / "crowded.html"
    page.write_text('<html><body><svg width="60" height="20"><text x="2" y="12">no data</text>'
                    '<text x="20" y="12">no data</text></svg></body></html>')
    found = _layout(tmp_path, page, 800)
    assert found["overlapping"] == ["no data / no data"]


@pytest.mark.parametrize(("then", "words"), [
    (dt.date(2026, 11, 30), "up to date today"), (dt.date(2026, 11, 29), "1 day old"),
    (dt.date(2026, 11, 1), "29 days old"), (dt.date(2026, 10, 30), "1 month old"),
    (dt.date(2025, 8, 25), "15 months old"), (dt.date(2025, 9, 30), "14 months old")])
def test_the_board_says_how_old_the_intelligence_is(then: dt.date, words: str) -> None:
    """Issue 30: a KEV snapshot 467 days old was shown only as a date."""
    from reports import board_coverage

    assert board_coverage.age_words(then, dt.date(2026, 11, 30)) == words


def test_what_a_scan_could_not_reach_is_said_in_board_words() -> None:
    """Issue 30: the column carried operator text and commands ("run 'warpagent feeds update'")."""
    from reports import board_coverage
    from warpagent.model.findings import RunId, RunStatus, ScanRun

    errors = ("10.0.0.9: host timeout after 90 s", "patches: no NVD or OSV data; run 'warpagent feeds update'")
    run = ScanRun(id=RunId(1), estate="corporate", started=NOW, finished=NOW, status=RunStatus.PARTIAL, errors=errors)
    said = board_coverage.not_scanned(run)
    assert said == "part of the estate (hosts or evidence) could not be read; the technical report lists 2 problems"
    assert not TECHNICAL.search(said)
    assert board_coverage.not_scanned(dataclasses.replace(run, status=RunStatus.COMPLETE)) == "nothing"
    assert "did not finish" in board_coverage.not_scanned(dataclasses.replace(run, status=RunStatus.FAILED))
