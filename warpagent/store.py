"""The findings store: SQLite, one transaction per run outcome.

A run is recorded as `running` when it starts (so a crash leaves a trace) and everything it
found is written in one transaction at the end. A run killed at any point leaves the
findings exactly as they were; on the next open, runs whose process is gone are marked failed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from warpagent.errors import StoreError
from warpagent.evidence_model import EVIDENCE_KINDS
from warpagent.models import (
    CheckError,
    Finding,
    FindingId,
    FindingStatus,
    RunDelta,
    RunId,
    RunStatus,
    ScanRun,
    Severity,
    TrackedFinding,
)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    estate TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL,
    pid INTEGER,
    hosts_scanned INTEGER NOT NULL DEFAULT 0,
    hosts_up INTEGER NOT NULL DEFAULT 0,
    errors TEXT NOT NULL DEFAULT '[]',
    unmeasured TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS findings (
    id TEXT PRIMARY KEY,
    estate TEXT NOT NULL,
    asset TEXT NOT NULL,
    subject TEXT NOT NULL,
    port INTEGER,
    protocol TEXT NOT NULL,
    category TEXT NOT NULL,
    check_id TEXT NOT NULL,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    cves TEXT NOT NULL,
    evidence TEXT NOT NULL,
    remediation TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    status TEXT NOT NULL,
    resolved_at TEXT,
    status_reason TEXT NOT NULL DEFAULT '',
    product TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '',
    cpe TEXT NOT NULL DEFAULT '',
    reopened_at TEXT,
    last_run INTEGER NOT NULL REFERENCES runs(id),
    kev_due TEXT,
    ransomware INTEGER NOT NULL DEFAULT 0,
    epss REAL,
    cvss REAL
);
CREATE INDEX IF NOT EXISTS findings_estate_status ON findings (estate, status);
CREATE TABLE IF NOT EXISTS report_log (kind TEXT NOT NULL, generated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_results (
    job TEXT NOT NULL, started TEXT NOT NULL, finished TEXT NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL);
"""

# Columns added after the first release: stores made before them gain them on open.
_ADDED_COLUMNS = (
    ("runs", "unmeasured", "TEXT NOT NULL DEFAULT '[]'"),
    ("findings", "kev_due", "TEXT"),
    ("findings", "ransomware", "INTEGER NOT NULL DEFAULT 0"),
    ("findings", "epss", "REAL"),
    ("findings", "cvss", "REAL"),
)


def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds")


def _day(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _dt_or_none(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            with self.transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                for table, column, kind in _ADDED_COLUMNS:
                    present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                    if column not in present:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                 (str(SCHEMA_VERSION),))
            self._recover_interrupted_runs()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot open the findings store ({exc}); check the path in "
                             "'store' and that the file is a warpagent SQLite database") from None
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the findings store ({exc.strerror}); check the "
                             "'store' path and its folder's permissions") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _recover_interrupted_runs(self) -> None:
        rows = self._db.execute("SELECT id, pid FROM runs WHERE status = ?", (RunStatus.RUNNING.value,))
        stale = [row["id"] for row in rows.fetchall() if not _pid_alive(row["pid"])]
        if not stale:
            return
        with self.transaction() as db:
            for run_id in stale:
                db.execute("UPDATE runs SET status = ?, errors = ? WHERE id = ?",
                           (RunStatus.FAILED.value,
                            json.dumps(["interrupted: the process ended before the run was recorded"]),
                            run_id))

    # --- runs ------------------------------------------------------------------------------

    def begin_run(self, estate: str, started: dt.datetime) -> RunId:
        with self.transaction() as db:
            cursor = db.execute("INSERT INTO runs (estate, started, status, pid) VALUES (?, ?, ?, ?)",
                                (estate, _ts(started), RunStatus.RUNNING.value, os.getpid()))
        return RunId(int(cursor.lastrowid or 0))

    def fail_run(self, run_id: RunId, finished: dt.datetime, errors: Sequence[str]) -> ScanRun:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status = ?, finished = ?, errors = ? WHERE id = ?",
                       (RunStatus.FAILED.value, _ts(finished), json.dumps(list(errors)), run_id))
        return self.run(run_id)

    def run(self, run_id: RunId) -> ScanRun:
        row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no scan run {run_id}")
        return self._run_from(row)

    def runs(self, estate: str | None = None, limit: int = 50) -> list[ScanRun]:
        if estate:
            rows = self._db.execute("SELECT * FROM runs WHERE estate = ? ORDER BY id DESC LIMIT ?", (estate, limit))
        else:
            rows = self._db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        return [self._run_from(row) for row in rows]

    def unmeasured_categories(self) -> set[str]:
        """Categories the latest finished run of every estate could not measure (no intel):
        reports and shared posture show them as not measured rather than clean."""
        rows = self._db.execute(
            "SELECT estate, unmeasured FROM runs WHERE id IN (SELECT MAX(id) FROM runs "
            "WHERE status IN ('complete', 'partial') GROUP BY estate)").fetchall()
        if not rows:
            return set()
        per_estate = [set(json.loads(row["unmeasured"])) for row in rows]
        return set.intersection(*per_estate)

    @staticmethod
    def _run_from(row: sqlite3.Row) -> ScanRun:
        return ScanRun(id=RunId(row["id"]), estate=row["estate"], started=_dt(row["started"]),
                       finished=_dt_or_none(row["finished"]), status=RunStatus(row["status"]),
                       hosts_scanned=row["hosts_scanned"], hosts_up=row["hosts_up"],
                       errors=tuple(json.loads(row["errors"])), unmeasured=tuple(json.loads(row["unmeasured"])))

    def record_run(self, run_id: RunId, findings: Iterable[Finding], *, finished: dt.datetime,
                   complete: bool, observed_assets: Iterable[str], in_scope_assets: Iterable[str],
                   hosts_scanned: int, errors: Sequence[str] = (),
                   check_errors: Sequence[CheckError] = (),
                   scanned_ports: Collection[tuple[str, int]] | None = None,
                   unmeasured_checks: Collection[str] = (),
                   unmeasured_categories: Collection[str] = (),
                   evidence_read: Collection[tuple[str, str]] = (),
                   record_assets: Collection[str] = ()) -> RunDelta:
        """Write one run's outcome in a single transaction.

        A complete run resolves open findings that were not seen again on hosts it observed,
        and findings on assets no longer in scope. Hosts that were down keep their findings
        (not seen is not fixed), and so do findings on ports this run did not scan
        (`scanned_ports`, as (protocol, port)). A partial run resolves nothing; checks that
        errored, or could not run for want of intel (`unmeasured_checks`), resolve nothing either;
        nor do findings from host evidence (subjects "<kind>:...", kinds in EVIDENCE_KINDS) on
        hosts whose evidence of that kind was not read this run (`evidence_read`, as (asset, kind)):
        a missing export is not a fix.
        """
        now = _ts(finished)
        observed = set(observed_assets)
        in_scope = set(in_scope_assets)
        errored_checks = {e.check_id for e in check_errors} | set(unmeasured_checks)
        read_kinds = set(evidence_read)
        new: list[FindingId] = []
        still_open: list[FindingId] = []
        reopened: list[FindingId] = []
        resolved: list[FindingId] = []
        estate = self.run(run_id).estate
        with self.transaction() as db:
            seen: set[str] = set()
            for finding in findings:
                seen.add(finding.id)
                row = db.execute("SELECT status FROM findings WHERE id = ?", (finding.id,)).fetchone()
                if row is None:
                    new.append(finding.id)
                    db.execute(
                        "INSERT INTO findings (id, estate, asset, subject, port, protocol, category, "
                        "check_id, title, severity, cves, evidence, remediation, first_seen, last_seen, "
                        "status, product, version, cpe, last_run, kev_due, ransomware, epss, cvss) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (finding.id, finding.estate, finding.asset, finding.subject, finding.port,
                         finding.protocol, finding.category, finding.check_id, finding.title,
                         finding.severity.label, json.dumps(list(finding.cves)), finding.evidence,
                         finding.remediation, now, now, FindingStatus.OPEN.value, finding.product,
                         finding.version, finding.cpe, run_id, _day(finding.kev_due), int(finding.ransomware),
                         finding.epss, finding.cvss))
                    continue
                status = row["status"]
                if status == FindingStatus.RESOLVED.value:
                    reopened.append(finding.id)
                    status = FindingStatus.OPEN.value
                    db.execute("UPDATE findings SET reopened_at = ? WHERE id = ?", (now, finding.id))
                else:
                    still_open.append(finding.id)
                db.execute(
                    "UPDATE findings SET title = ?, severity = ?, cves = ?, evidence = ?, remediation = ?, "
                    "port = ?, protocol = ?, product = ?, version = ?, cpe = ?, last_seen = ?, status = ?, "
                    "resolved_at = NULL, last_run = ?, kev_due = ?, ransomware = ?, epss = ?, cvss = ? WHERE id = ?",
                    (finding.title, finding.severity.label, json.dumps(list(finding.cves)), finding.evidence,
                     finding.remediation, finding.port, finding.protocol, finding.product, finding.version,
                     finding.cpe, now, status, run_id, _day(finding.kev_due), int(finding.ransomware),
                     finding.epss, finding.cvss, finding.id))
            if complete:
                open_rows = db.execute(
                    "SELECT id, asset, check_id, port, protocol, subject FROM findings "
                    "WHERE estate = ? AND status != ?",
                    (estate, FindingStatus.RESOLVED.value)).fetchall()
                for row in open_rows:
                    if row["id"] in seen or row["check_id"] in errored_checks:
                        continue
                    kind = row["subject"].partition(":")[0]
                    if kind in EVIDENCE_KINDS and (row["asset"], kind) not in read_kinds:
                        continue
                    if (scanned_ports is not None and row["port"] is not None
                            and (row["protocol"], row["port"]) not in scanned_ports):
                        continue
                    if row["asset"] in observed:
                        reason = "not seen in a complete scan"
                    elif row["asset"] not in in_scope:
                        reason = "asset no longer in the estate's scope"
                    else:
                        continue  # host down or unreachable tonight: not seen is not fixed
                    resolved.append(FindingId(row["id"]))
                    db.execute("UPDATE findings SET status = ?, resolved_at = ?, status_reason = ? "
                               "WHERE id = ?", (FindingStatus.RESOLVED.value, now, reason, row["id"]))
            all_errors = list(errors) + [f"check {e.check_id} on {e.asset}: {e.message}" for e in check_errors]
            db.execute("UPDATE runs SET status = ?, finished = ?, hosts_scanned = ?, hosts_up = ?, errors = ?, "
                       "unmeasured = ? WHERE id = ?",
                       ((RunStatus.COMPLETE if complete else RunStatus.PARTIAL).value, now, hosts_scanned,
                        len(observed - set(record_assets)), json.dumps(all_errors),
                        json.dumps(sorted(unmeasured_categories)), run_id))
        return RunDelta(run=self.run(run_id), new=tuple(new), still_open=tuple(still_open),
                        reopened=tuple(reopened), resolved=tuple(resolved), check_errors=tuple(check_errors))

    # --- scheduled jobs --------------------------------------------------------------------

    def record_job(self, job: str, started: dt.datetime, finished: dt.datetime, status: str, detail: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO job_results VALUES (?, ?, ?, ?, ?)",
                       (job, _ts(started), _ts(finished), status, detail[:500]))

    def job_results(self, job: str | None = None) -> list[tuple[str, dt.datetime, dt.datetime, str, str]]:
        """Every recorded result, oldest first (of one job, or all)."""
        query = "SELECT job, started, finished, status, detail FROM job_results"
        rows = (self._db.execute(query + " WHERE job = ? ORDER BY rowid", (job,)) if job
                else self._db.execute(query + " ORDER BY rowid"))
        return [(r[0], _dt(r[1]), _dt(r[2]), r[3], r[4]) for r in rows]

    # --- reports ---------------------------------------------------------------------------

    def last_report(self, kind: str) -> dt.datetime | None:
        row = self._db.execute("SELECT MAX(generated) FROM report_log WHERE kind = ?", (kind,)).fetchone()
        return _dt_or_none(row[0])

    def log_report(self, kind: str, generated: dt.datetime) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO report_log VALUES (?, ?)", (kind, _ts(generated)))

    # --- findings --------------------------------------------------------------------------

    def findings(self, *, status: str | None = None, category: str | None = None,
                 estate: str | None = None, ids: Iterable[str] | None = None) -> list[TrackedFinding]:
        clauses, params = [], []
        for column, value in (("status", status), ("category", category), ("estate", estate)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if ids is not None:
            id_list = list(ids)
            if not id_list:
                return []
            clauses.append(f"id IN ({','.join('?' * len(id_list))})")
            params.extend(id_list)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        # only fixed column names and "?" placeholders are joined into the query
        rows = self._db.execute(f"SELECT * FROM findings{where}", params).fetchall()  # noqa: S608
        tracked = [self._finding_from(row) for row in rows]
        tracked.sort(key=lambda t: (-t.finding.severity, t.finding.estate, t.finding.asset,
                                    t.finding.port or 0, t.finding.check_id))
        return tracked

    @staticmethod
    def _finding_from(row: sqlite3.Row) -> TrackedFinding:
        finding = Finding(estate=row["estate"], asset=row["asset"], check_id=row["check_id"],
                          category=row["category"], severity=Severity.parse(row["severity"]),
                          title=row["title"], evidence=row["evidence"], remediation=row["remediation"],
                          subject=row["subject"], port=row["port"], protocol=row["protocol"],
                          cves=tuple(json.loads(row["cves"])), product=row["product"], version=row["version"],
                          cpe=row["cpe"], kev_due=dt.date.fromisoformat(row["kev_due"]) if row["kev_due"] else None,
                          ransomware=bool(row["ransomware"]), epss=row["epss"], cvss=row["cvss"])
        return TrackedFinding(finding=finding, first_seen=_dt(row["first_seen"]),
                              reopened_at=_dt_or_none(row["reopened_at"]),
                              last_seen=_dt(row["last_seen"]),
                              status=FindingStatus(row["status"]), resolved_at=_dt_or_none(row["resolved_at"]),
                              status_reason=row["status_reason"])
