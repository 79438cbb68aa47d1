"""The findings store: SQLite (a file) or PostgreSQL (by URL), one transaction per run outcome.

A run is recorded as `running` when it starts (so a crash leaves a trace) and everything it
found is written in one transaction at the end. A run killed at any point leaves the
findings exactly as they were; on the next open, runs whose process is gone are marked failed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from warpagent.errors import StoreError
from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import (
    CATEGORIES,
    DECIDED,
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
from warpagent.store import database, lifecycle
from warpagent.store.database import StoreLocation
from warpagent.store.lifecycle import RunReport
from warpagent.store.tables import (
    UNDECIDED,
    day,
    finding_events,
    findings_table,
    job_results,
    meta,
    parse_stamp,
    parse_stamp_or_none,
    prepare,
    report_log,
    runs,
    stamp,
)

HOST = socket.gethostname()  # runs remember where they ran: only this machine can tell its PIDs are gone

_c = findings_table.c
_STORED = sa.select(_c.id, _c.asset, _c.check_id, _c.status, _c.port, _c.protocol, _c.evidence_kind, _c.severity,
                    _c.kev_due, _c.decided_until)


def _stored(row: Any) -> lifecycle.StoredFinding:
    return lifecycle.StoredFinding(id=FindingId(row.id), asset=row.asset, check_id=row.check_id,
                                   status=FindingStatus(row.status), port=row.port, protocol=row.protocol,
                                   evidence_kind=EvidenceKind(row.evidence_kind) if row.evidence_kind else None,
                                   severity=Severity.parse(row.severity), kev=row.kev_due is not None,
                                   decided_until=dt.date.fromisoformat(row.decided_until) if row.decided_until
                                   else None)


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
    def __init__(self, location: StoreLocation | str | Path) -> None:
        self.location = StoreLocation.of(location)
        self.path = self.location.path
        try:
            if self.location.path is not None:
                self.location.path.parent.mkdir(parents=True, exist_ok=True)
            self._engine = database.engine(self.location)
            database.prepare_once(self.location, "store", prepare)
            self._recover_interrupted_runs()
        except sa.exc.OperationalError as exc:
            raise StoreError(self._unreachable(exc)) from None
        except sa.exc.DatabaseError as exc:
            raise StoreError(f"{self.location}: cannot open the findings store ({_reason(exc)}); check the path in "
                             "'store' and that the file is a warpagent SQLite database") from None
        except OSError as exc:
            raise StoreError(f"{self.location}: cannot create the findings store ({exc.strerror}); check the "
                             "'store' path and its folder's permissions") from None

    def _unreachable(self, exc: sa.exc.OperationalError) -> str:
        if self.location.is_sqlite and "locked" in _reason(exc):
            return (f"{self.location}: the findings store stayed locked by another process for 30 s; try again, "
                    "and see 'warpagent jobs' for a scan still running")
        if self.location.is_sqlite:
            return (f"{self.location}: cannot open the findings store ({_reason(exc)}); check the path in "
                    "'store' and that the file is a warpagent SQLite database")
        return (f"{self.location}: cannot reach the store database ({_reason(exc)}); check 'store' and that "
                "PostgreSQL is up, and give the password in PGPASSWORD or ~/.pgpass")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        """Nothing stays open between operations: every call opens and returns its connection."""

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        try:
            with database.writing(self._engine) as connection:
                yield connection
        except sa.exc.OperationalError as exc:  # locked past the busy timeout, or the server went away
            raise StoreError(self._unreachable(exc)) from None

    def rows(self, query: sa.Executable) -> list[sa.RowMapping]:
        try:
            with database.reading(self._engine) as connection:
                return list(connection.execute(query).mappings())
        except sa.exc.OperationalError as exc:
            raise StoreError(self._unreachable(exc)) from None

    def _recover_interrupted_runs(self) -> None:
        rows = self.rows(sa.select(runs.c.id, runs.c.pid, runs.c.host).where(
            runs.c.status == RunStatus.RUNNING.value))
        stale = [row["id"] for row in rows if row["host"] in ("", HOST) and not _pid_alive(row["pid"])]
        if not stale:
            return
        with self.transaction() as db:
            db.execute(runs.update().where(runs.c.id.in_(stale)).values(
                status=RunStatus.FAILED.value,
                errors=json.dumps(["interrupted: the process ended before the run was recorded"])))

    # --- runs ------------------------------------------------------------------------------

    def begin_run(self, estate: str, started: dt.datetime, *, verifying: bool = False) -> RunId:
        with self.transaction() as db:
            run_id = db.execute(runs.insert().values(estate=estate, started=stamp(started),
                                                     status=RunStatus.RUNNING.value, pid=os.getpid(), host=HOST,
                                                     verifying=int(verifying))
                                .returning(runs.c.id)).scalar_one()
        return RunId(int(run_id))

    def fail_run(self, run_id: RunId, finished: dt.datetime, errors: Sequence[str]) -> ScanRun:
        with self.transaction() as db:
            db.execute(runs.update().where(runs.c.id == run_id).values(
                status=RunStatus.FAILED.value, finished=stamp(finished), errors=json.dumps(list(errors))))
        return self.run(run_id)

    def run(self, run_id: RunId) -> ScanRun:
        rows = self.rows(sa.select(runs).where(runs.c.id == run_id))
        if not rows:
            raise StoreError(f"{self.location}: no scan run {run_id}")
        return self._run_from(rows[0])

    def runs(self, estate: str | None = None, limit: int = 50) -> list[ScanRun]:
        query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
        if estate:
            query = query.where(runs.c.estate == estate)
        return [self._run_from(row) for row in self.rows(query)]

    def latest_finished_runs(self) -> dict[str, ScanRun]:
        """Each estate's latest complete or partial night's scan (a targeted re-scan measures too
        little to judge coverage by): what its coverage is judged by."""
        latest = (sa.select(sa.func.max(runs.c.id)).where(runs.c.status.in_(("complete", "partial")),
                                                          runs.c.verifying == 0)
                  .group_by(runs.c.estate))
        rows = self.rows(sa.select(runs).where(runs.c.id.in_(latest)))
        return {run.estate: run for run in map(self._run_from, rows)}

    def unmeasured_categories(self) -> set[str]:
        """Categories the latest finished run of every estate could not measure (no intel; all
        seven before any run has finished):
        reports and shared posture show them as not measured rather than clean."""
        latest = self.latest_finished_runs()
        if not latest:
            return set(CATEGORIES)  # nothing has been scanned: nothing is measured, so nothing is clean
        return set.intersection(*(set(run.unmeasured) for run in latest.values()))

    def measured_categories(self) -> set[str]:
        """The categories some estate's latest finished run measured: what may be shown as clean."""
        return set(CATEGORIES) - self.unmeasured_categories()

    @staticmethod
    def _run_from(row: sa.RowMapping) -> ScanRun:
        return ScanRun(id=RunId(row["id"]), estate=row["estate"], started=parse_stamp(row["started"]),
                       finished=parse_stamp_or_none(row["finished"]), status=RunStatus(row["status"]),
                       hosts_scanned=row["hosts_scanned"], hosts_up=row["hosts_up"],
                       errors=tuple(json.loads(row["errors"])), unmeasured=tuple(json.loads(row["unmeasured"])),
                       verifying=bool(row["verifying"]),
                       intel=None if row["intel"] is None else tuple(json.loads(row["intel"])),
                       unmeasured_checks=None if row["unmeasured_checks"] is None
                       else tuple(json.loads(row["unmeasured_checks"])))

    def record_run(self, run_id: RunId, report: RunReport) -> RunDelta:
        """Write one run's outcome in a single transaction; what it changes is `lifecycle.decide`'s."""
        now = stamp(report.finished)
        estate = self.run(run_id).estate
        table = findings_table.c
        tonight = {f.id: f for f in report.findings}  # one statement per kind of change, not one per finding
        with self.transaction() as db:
            ids = sorted(tonight)
            stored = [_stored(r) for start in range(0, len(ids), 500) for r in db.execute(
                _STORED.where(table.id.in_(ids[start:start + 500])))]
            # a complete run may resolve any unresolved finding; any run lets a lapsed decision expire
            others = (table.status != FindingStatus.RESOLVED.value) if report.complete else table.status.in_(DECIDED)
            stored += [_stored(r) for r in db.execute(_STORED.where(table.estate == estate, others))]
            stored = list({s.id: s for s in stored}.values())
            verdict = lifecycle.decide(report, stored)
            status_of = {s.id: s.status for s in stored}
            inserts, updates = [], []
            for finding in tonight.values():
                values = {"title": finding.title, "severity": finding.severity.label,
                          "cves": json.dumps(list(finding.cves)), "evidence": finding.evidence,
                          "remediation": finding.remediation, "port": finding.port, "protocol": finding.protocol,
                          "product": finding.product, "version": finding.version, "cpe": finding.cpe,
                          "last_seen": now, "last_run": run_id, "kev_due": day(finding.kev_due),
                          "ransomware": int(finding.ransomware), "epss": finding.epss, "cvss": finding.cvss,
                          "evidence_kind": finding.evidence_kind}
                was = status_of.get(finding.id)
                if was is None:
                    inserts.append({**values, "id": finding.id, "estate": finding.estate, "asset": finding.asset,
                                    "subject": finding.subject, "category": finding.category,
                                    "check_id": finding.check_id, "first_seen": now,
                                    "status": FindingStatus.OPEN.value})
                    continue
                reopening = was is FindingStatus.RESOLVED
                updates.append({**values, "b_id": finding.id, "status": verdict.status_after(finding.id, was).value,
                                "reopened_at": now if reopening else None})
            if inserts:
                db.execute(findings_table.insert(), inserts)
            if updates:
                columns: dict[str, Any] = {k: sa.bindparam(k) for k in updates[0] if k not in ("b_id", "reopened_at")}
                db.execute(findings_table.update().where(table.id == sa.bindparam("b_id"))
                           .values(resolved_at=None, **columns,
                                   reopened_at=sa.func.coalesce(sa.bindparam("reopened_at"), table.reopened_at)),
                           updates)
            if verdict.expired:  # open again (seen tonight or not); resolved below if the run says so
                db.execute(findings_table.update().where(table.id.in_(verdict.expired)).values(
                    **UNDECIDED))
            for finding_id, reason in verdict.resolved.items():
                db.execute(findings_table.update().where(table.id == finding_id).values(
                    status=FindingStatus.RESOLVED.value, resolved_at=now, status_reason=reason))
            if verdict.events:
                db.execute(finding_events.insert(), [{"finding_id": i, "at": now, "kind": kind.value, "detail": detail}
                                                     for i, kind, detail in verdict.events])
            db.execute(runs.update().where(runs.c.id == run_id).values(
                status=(RunStatus.COMPLETE if report.complete else RunStatus.PARTIAL).value, finished=now,
                hosts_scanned=report.hosts_scanned, hosts_up=report.hosts_up,
                errors=json.dumps(list(report.all_errors)),
                unmeasured=json.dumps(sorted(report.unmeasured_categories)),
                intel=None if report.intel is None else json.dumps(list(report.intel)),
                unmeasured_checks=json.dumps(sorted(report.unmeasured_checks))))
        return RunDelta(run=self.run(run_id), new=verdict.new, still_open=verdict.still_open,
                        still_decided=verdict.still_decided,
                        reopened=verdict.reopened, resolved=tuple(verdict.resolved),
                        check_errors=report.check_errors)

    # --- sharing ---------------------------------------------------------------------------

    def last_share(self) -> tuple[dt.date, str, dt.datetime] | None:
        """(day, digest of the posture, the version stamp it went out with) of the last share queued."""
        row = self.rows(sa.select(meta.c.value).where(meta.c.key == "last_share"))
        if not row:
            return None
        try:
            day_text, digest, at = json.loads(row[0]["value"])
            return dt.date.fromisoformat(str(day_text)), str(digest), dt.datetime.fromisoformat(str(at))
        except (TypeError, ValueError):  # a value this release did not write: as if never shared
            return None

    def record_share(self, day_shared: dt.date, digest: str, at: dt.datetime) -> None:
        value = json.dumps([day_shared.isoformat(), digest, at.astimezone(dt.UTC).isoformat(timespec="milliseconds")])
        with self.transaction() as db:
            db.execute(meta.delete().where(meta.c.key == "last_share"))
            db.execute(meta.insert().values(key="last_share", value=value))

    # --- scheduled jobs --------------------------------------------------------------------

    def record_job(self, job: str, started: dt.datetime, finished: dt.datetime, status: str, detail: str) -> None:
        with self.transaction() as db:
            db.execute(job_results.insert().values(job=job, started=stamp(started), finished=stamp(finished),
                                                   status=status, detail=detail[:500]))

    def job_results(self, job: str | None = None) -> list[tuple[str, dt.datetime, dt.datetime, str, str]]:
        """Every recorded result, oldest first (of one job, or all)."""
        table = job_results.c
        order = sa.literal_column("rowid") if self.location.is_sqlite else table.seq
        query = sa.select(table.job, table.started, table.finished, table.status, table.detail).order_by(order)
        if job:
            query = query.where(job_results.c.job == job)
        return [(r["job"], parse_stamp(r["started"]), parse_stamp(r["finished"]), r["status"], r["detail"])
                for r in self.rows(query)]

    # --- reports ---------------------------------------------------------------------------

    def last_report(self, kind: str) -> dt.datetime | None:
        rows = self.rows(sa.select(sa.func.max(report_log.c.generated).label("last"))
                          .where(report_log.c.kind == kind))
        return parse_stamp_or_none(rows[0]["last"]) if rows else None

    def log_report(self, kind: str, generated: dt.datetime) -> None:
        with self.transaction() as db:
            db.execute(report_log.insert().values(kind=kind, generated=stamp(generated)))

    # --- findings --------------------------------------------------------------------------

    def findings(self, *, status: str | None = None, category: str | None = None,
                 estate: str | None = None, ids: Iterable[str] | None = None) -> list[TrackedFinding]:
        table = findings_table.c
        query = sa.select(findings_table)
        for column, value in ((table.status, status), (table.category, category), (table.estate, estate)):
            if value is not None:
                query = query.where(column == value)
        if ids is not None:
            id_list = list(ids)
            if not id_list:
                return []
            query = query.where(table.id.in_(id_list))
        tracked = [self._finding_from(row) for row in self.rows(query)]
        tracked.sort(key=lambda t: (-t.finding.severity, t.finding.estate, t.finding.asset,
                                    t.finding.port or 0, t.finding.check_id))
        return tracked

    @staticmethod
    def _finding_from(row: sa.RowMapping) -> TrackedFinding:
        finding = Finding(estate=row["estate"], asset=row["asset"], check_id=row["check_id"],
                          category=row["category"], severity=Severity.parse(row["severity"]),
                          title=row["title"], evidence=row["evidence"], remediation=row["remediation"],
                          subject=row["subject"], port=row["port"], protocol=row["protocol"],
                          cves=tuple(json.loads(row["cves"])), product=row["product"], version=row["version"],
                          cpe=row["cpe"], kev_due=dt.date.fromisoformat(row["kev_due"]) if row["kev_due"] else None,
                          ransomware=bool(row["ransomware"]), epss=row["epss"], cvss=row["cvss"],
                          evidence_kind=EvidenceKind(row["evidence_kind"]) if row["evidence_kind"] else None)
        return TrackedFinding(finding=finding, first_seen=parse_stamp(row["first_seen"]),
                              reopened_at=parse_stamp_or_none(row["reopened_at"]),
                              last_seen=parse_stamp(row["last_seen"]),
                              status=FindingStatus(row["status"]), resolved_at=parse_stamp_or_none(row["resolved_at"]),
                              status_reason=row["status_reason"], decided_by=row["decided_by"],
                              decided_until=dt.date.fromisoformat(row["decided_until"]) if row["decided_until"]
                              else None)


def _reason(exc: sa.exc.DBAPIError) -> str:
    """The database's own words, first line only (no SQL, no parameters)."""
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else exc.__class__.__name__
