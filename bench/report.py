"""Report rendering at county scale: a year of history for an estate of 5,000 hosts.

Fills a store with ~8 findings per host whose lifecycles span twelve months (about a third
fixed along the way), then times each stage of `report board` and `report technical` beside a
plain sqlite3 read of the same rows (the floor for anything that reads the store).

    .venv/bin/python bench/report.py [--hosts 5000] [--per-host 8]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checks import ALL_CHECKS  # noqa: E402
from reports import board, render, technical  # noqa: E402
from warpagent.cli.output import findings_csv  # noqa: E402
from warpagent.config import RagRules  # noqa: E402
from warpagent.model.findings import Finding, Severity  # noqa: E402
from warpagent.store.findings import Store  # noqa: E402

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


def fill(db: Path, hosts: int, per_host: int) -> int:
    rng = random.Random(11)
    with Store(db) as store:
        run = store.begin_run("county", NOW - dt.timedelta(days=365))
    rows = []
    for host in range(hosts):
        asset = f"198.18.{host // 250}.{host % 250}"
        for n in range(per_host):
            check = rng.choice(ALL_CHECKS)
            finding = Finding(estate="county", asset=asset, check_id=check.id, category=check.category,
                              severity=Severity(rng.randint(1, 4)), title=f"{check.name} on {n}/tcp",
                              evidence="evidence " * 8, remediation="remediation " * 8, subject=f"{n}/tcp",
                              port=n, protocol="tcp")
            first = NOW - dt.timedelta(days=rng.randint(0, 365), hours=rng.randint(0, 23))
            resolved = first + dt.timedelta(days=rng.randint(1, 120)) if rng.random() < 0.35 else None
            if resolved and resolved > NOW:
                resolved = None
            rows.append((finding.id, finding.estate, finding.asset, finding.subject, finding.port, "tcp",
                         finding.category, finding.check_id, finding.title, finding.severity.label, "[]",
                         finding.evidence, finding.remediation, first.isoformat(), NOW.isoformat(),
                         "resolved" if resolved else "open", resolved.isoformat() if resolved else None, run))
    db_conn = sqlite3.connect(db)
    db_conn.executemany(
        "INSERT OR IGNORE INTO findings (id, estate, asset, subject, port, protocol, category, check_id, title, "
        "severity, cves, evidence, remediation, first_seen, last_seen, status, resolved_at, last_run) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db_conn.execute("UPDATE runs SET status='complete', finished=?, hosts_up=?, hosts_scanned=? WHERE id=?",
                    (NOW.isoformat(), hosts, hosts, run))
    db_conn.commit()
    return int(db_conn.execute("SELECT COUNT(*) FROM findings").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=5000)
    parser.add_argument("--per-host", type=int, default=8)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wa-bench-report-") as work:
        db = Path(work) / "w.db"
        count = fill(db, options.hosts, options.per_host)
        timings: list[tuple[str, float]] = []

        start = time.perf_counter()
        raw = sqlite3.connect(db).execute("SELECT * FROM findings").fetchall()
        timings.append(("plain sqlite3 read of the findings (reference)", time.perf_counter() - start))
        assert len(raw) == count

        with Store(db) as store:
            start = time.perf_counter()
            found = store.findings()
            runs = store.runs(limit=10000)
            timings.append(("load findings through the store", time.perf_counter() - start))
            start = time.perf_counter()
            data = board.build(found, runs, organisation="Bench County Council", title="Cyber hygiene report",
                               month="2026-11", now=NOW, rules=RagRules(),
                               measured={c.category for c in ALL_CHECKS})
            timings.append(("board: compute (RAG, 6-month trend, risks, medians)", time.perf_counter() - start))
            start = time.perf_counter()
            html = render.render("board.html.j2", report=data, colour="#1d4f91", logo="")
            timings.append(("board: render HTML", time.perf_counter() - start))
            start = time.perf_counter()
            tech = technical.build(found, organisation="Bench County Council", now=NOW, since=None)
            tech_html = render.render("technical.html.j2", report=tech, colour="#1d4f91")
            csv = findings_csv([t for t in found if t.status.value == "open"])
            timings.append(("technical: compute, render HTML and CSV", time.perf_counter() - start))

        reference = timings[0][1]
        print(f"{options.hosts} hosts, {count} findings over 12 months "
              f"({sum(1 for t in found if t.status.value == 'open')} open)")
        for name, seconds in timings:
            print(f"{name:56} {seconds:8.3f} s  ({seconds / reference:6.1f}x the plain read)")
        board_total = sum(s for n, s in timings[1:4])
        print(f"{'board report end to end (load + compute + render)':56} {board_total:8.3f} s")
        print(f"board HTML {len(html) / 1024:.0f} KiB; technical HTML {len(tech_html) / 1e6:.1f} MB; "
              f"CSV {len(csv) / 1e6:.1f} MB")
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
