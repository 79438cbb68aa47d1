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
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from warpagent import database
from warpagent.database import StoreLocation
from warpagent.errors import StoreError
from warpagent.evidence_model import EVIDENCE_KINDS
from warpagent.models import (
    CATEGORIES,
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
HOST = socket.gethostname()  # runs remember where they ran: only this machine can tell its PIDs are gone

metadata = sa.MetaData()
meta = sa.Table("meta", metadata, sa.Column("key", sa.Text, primary_key=True), sa.Column("value", sa.Text,
                                                                                         nullable=False))
runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("estate", sa.Text, nullable=False),
    sa.Column("started", sa.Text, nullable=False),
    sa.Column("finished", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer),
    sa.Column("hosts_scanned", sa.Integer, nullable=False, server_default="0"),
    sa.Column("hosts_up", sa.Integer, nullable=False, server_default="0"),
    sa.Column("errors", sa.Text, nullable=False, server_default="[]"),
    sa.Column("unmeasured", sa.Text, nullable=False, server_default="[]"),
    sa.Column("host", sa.Text, nullable=False, server_default=""),
    sqlite_autoincrement=True,
)
findings_table = sa.Table(
    "findings", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("estate", sa.Text, nullable=False),
    sa.Column("asset", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("port", sa.Integer),
    sa.Column("protocol", sa.Text, nullable=False),
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("check_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("cves", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("remediation", sa.Text, nullable=False),
    sa.Column("first_seen", sa.Text, nullable=False),
    sa.Column("last_seen", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("resolved_at", sa.Text),
    sa.Column("status_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("product", sa.Text, nullable=False, server_default=""),
    sa.Column("version", sa.Text, nullable=False, server_default=""),
    sa.Column("cpe", sa.Text, nullable=False, server_default=""),
    sa.Column("reopened_at", sa.Text),
    sa.Column("last_run", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("kev_due", sa.Text),
    sa.Column("ransomware", sa.Integer, nullable=False, server_default="0"),
    sa.Column("epss", sa.Float),
    sa.Column("cvss", sa.Float),
    sa.Index("findings_estate_status", "estate", "status"),
)
report_log = sa.Table("report_log", metadata, sa.Column("kind", sa.Text, nullable=False),
                      sa.Column("generated", sa.Text, nullable=False))
job_results = sa.Table("job_results", metadata,
                       # insertion order (SQLite: its rowid; stores made before this column order by rowid too)
                       sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
                       sa.Column("job", sa.Text, nullable=False),
                       sa.Column("started", sa.Text, nullable=False), sa.Column("finished", sa.Text, nullable=False),
                       sa.Column("status", sa.Text, nullable=False), sa.Column("detail", sa.Text, nullable=False))

# Columns added after the first release: stores made before them gain them on open.
_ADDED_COLUMNS = (
    ("runs", "unmeasured", "TEXT NOT NULL DEFAULT '[]'"),
    ("runs", "host", "TEXT NOT NULL DEFAULT ''"),
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


def _prepare(db: sa.Connection) -> None:
    metadata.create_all(db)
    for table, column, kind in _ADDED_COLUMNS:
        present = {c["name"] for c in sa.inspect(db).get_columns(table)}
        if column not in present:
            db.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    if db.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first() is None:
        db.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))


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
            database.prepare_once(self.location, "store", _prepare)
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
        if self.location.is_sqlite:
            return (f"{self.location}: cannot open the findings store ({_reason(exc)}); check the path in "
                    "'store' and that the file is a warpagent SQLite database")
        return (f"{self.location}: cannot reach the store database ({_reason(exc)}); check 'store' and that "
                "PostgreSQL is up, and give the password in PGPASSWORD or ~/.pgpass")

    def close(self) -> None:
        """Nothing stays open between operations; kept so a Store reads as a context manager."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        with database.writing(self._engine) as connection:
            yield connection

    def _rows(self, query: sa.Executable) -> list[sa.RowMapping]:
        with database.reading(self._engine) as connection:
            return list(connection.execute(query).mappings())

    def _recover_interrupted_runs(self) -> None:
        rows = self._rows(sa.select(runs.c.id, runs.c.pid, runs.c.host).where(
            runs.c.status == RunStatus.RUNNING.value))
        stale = [row["id"] for row in rows if row["host"] in ("", HOST) and not _pid_alive(row["pid"])]
        if not stale:
            return
        with self.transaction() as db:
            db.execute(runs.update().where(runs.c.id.in_(stale)).values(
                status=RunStatus.FAILED.value,
                errors=json.dumps(["interrupted: the process ended before the run was recorded"])))

    # --- runs ------------------------------------------------------------------------------

    def begin_run(self, estate: str, started: dt.datetime) -> RunId:
        with self.transaction() as db:
            run_id = db.execute(runs.insert().values(estate=estate, started=_ts(started),
                                                     status=RunStatus.RUNNING.value, pid=os.getpid(), host=HOST)
                                .returning(runs.c.id)).scalar_one()
        return RunId(int(run_id))

    def fail_run(self, run_id: RunId, finished: dt.datetime, errors: Sequence[str]) -> ScanRun:
        with self.transaction() as db:
            db.execute(runs.update().where(runs.c.id == run_id).values(
                status=RunStatus.FAILED.value, finished=_ts(finished), errors=json.dumps(list(errors))))
        return self.run(run_id)

    def run(self, run_id: RunId) -> ScanRun:
        rows = self._rows(sa.select(runs).where(runs.c.id == run_id))
        if not rows:
            raise StoreError(f"{self.location}: no scan run {run_id}")
        return self._run_from(rows[0])

    def runs(self, estate: str | None = None, limit: int = 50) -> list[ScanRun]:
        query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
        if estate:
            query = query.where(runs.c.estate == estate)
        return [self._run_from(row) for row in self._rows(query)]

    def latest_finished_runs(self) -> dict[str, ScanRun]:
        """Each estate's latest complete or partial run: what its coverage is judged by."""
        latest = (sa.select(sa.func.max(runs.c.id)).where(runs.c.status.in_(("complete", "partial")))
                  .group_by(runs.c.estate))
        rows = self._rows(sa.select(runs).where(runs.c.id.in_(latest)))
        return {run.estate: run for run in map(self._run_from, rows)}

    def unmeasured_categories(self) -> set[str]:
        """Categories the latest finished run of every estate could not measure (no intel; all
        seven before any run has finished):
        reports and shared posture show them as not measured rather than clean."""
        latest = self.latest_finished_runs()
        if not latest:
            return set(CATEGORIES)  # nothing has been scanned: nothing is measured, so nothing is clean
        return set.intersection(*(set(run.unmeasured) for run in latest.values()))

    @staticmethod
    def _run_from(row: sa.RowMapping) -> ScanRun:
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
        table = findings_table.c
        with self.transaction() as db:
            tonight = {f.id: f for f in findings}  # one statement per kind of change, not one per finding
            seen: set[str] = set(tonight)
            ids = sorted(tonight)
            status_of: dict[str, str] = {}
            for start in range(0, len(ids), 500):
                status_of.update({r.id: r.status for r in db.execute(
                    sa.select(table.id, table.status).where(table.id.in_(ids[start:start + 500])))})
            inserts, updates = [], []
            for finding in tonight.values():
                values = {"title": finding.title, "severity": finding.severity.label,
                          "cves": json.dumps(list(finding.cves)), "evidence": finding.evidence,
                          "remediation": finding.remediation, "port": finding.port, "protocol": finding.protocol,
                          "product": finding.product, "version": finding.version, "cpe": finding.cpe,
                          "last_seen": now, "last_run": run_id, "kev_due": _day(finding.kev_due),
                          "ransomware": int(finding.ransomware), "epss": finding.epss, "cvss": finding.cvss}
                was = status_of.get(finding.id)
                if was is None:
                    new.append(finding.id)
                    inserts.append({**values, "id": finding.id, "estate": finding.estate, "asset": finding.asset,
                                    "subject": finding.subject, "category": finding.category,
                                    "check_id": finding.check_id, "first_seen": now,
                                    "status": FindingStatus.OPEN.value})
                    continue
                if was == FindingStatus.RESOLVED.value:
                    reopened.append(finding.id)
                else:
                    still_open.append(finding.id)
                updates.append({**values, "b_id": finding.id,
                                "status": FindingStatus.OPEN.value if was == FindingStatus.RESOLVED.value else was,
                                "reopened_at": now if was == FindingStatus.RESOLVED.value else None})
            if inserts:
                db.execute(findings_table.insert(), inserts)
            if updates:
                columns: dict[str, Any] = {k: sa.bindparam(k) for k in updates[0] if k not in ("b_id", "reopened_at")}
                db.execute(findings_table.update().where(table.id == sa.bindparam("b_id"))
                           .values(resolved_at=None, **columns,
                                   reopened_at=sa.func.coalesce(sa.bindparam("reopened_at"), table.reopened_at)),
                           updates)
            if complete:
                open_rows = db.execute(sa.select(table.id, table.asset, table.check_id, table.port, table.protocol,
                                                 table.subject).where(
                    table.estate == estate, table.status != FindingStatus.RESOLVED.value)).all()
                for row in open_rows:
                    if row.id in seen or row.check_id in errored_checks:
                        continue
                    kind = row.subject.partition(":")[0]
                    if kind in EVIDENCE_KINDS and (row.asset, kind) not in read_kinds:
                        continue
                    if (scanned_ports is not None and row.port is not None
                            and (row.protocol, row.port) not in scanned_ports):
                        continue
                    if row.asset in observed:
                        reason = "not seen in a complete scan"
                    elif row.asset not in in_scope:
                        reason = "asset no longer in the estate's scope"
                    else:
                        continue  # host down or unreachable tonight: not seen is not fixed
                    resolved.append(FindingId(row.id))
                    db.execute(findings_table.update().where(table.id == row.id).values(
                        status=FindingStatus.RESOLVED.value, resolved_at=now, status_reason=reason))
            all_errors = list(errors) + [f"check {e.check_id} on {e.asset}: {e.message}" for e in check_errors]
            db.execute(runs.update().where(runs.c.id == run_id).values(
                status=(RunStatus.COMPLETE if complete else RunStatus.PARTIAL).value, finished=now,
                hosts_scanned=hosts_scanned, hosts_up=len(observed - set(record_assets)),
                errors=json.dumps(all_errors), unmeasured=json.dumps(sorted(unmeasured_categories))))
        return RunDelta(run=self.run(run_id), new=tuple(new), still_open=tuple(still_open),
                        reopened=tuple(reopened), resolved=tuple(resolved), check_errors=tuple(check_errors))

    # --- scheduled jobs --------------------------------------------------------------------

    def record_job(self, job: str, started: dt.datetime, finished: dt.datetime, status: str, detail: str) -> None:
        with self.transaction() as db:
            db.execute(job_results.insert().values(job=job, started=_ts(started), finished=_ts(finished),
                                                   status=status, detail=detail[:500]))

    def job_results(self, job: str | None = None) -> list[tuple[str, dt.datetime, dt.datetime, str, str]]:
        """Every recorded result, oldest first (of one job, or all)."""
        table = job_results.c
        order = sa.literal_column("rowid") if self.location.is_sqlite else table.seq
        query = sa.select(table.job, table.started, table.finished, table.status, table.detail).order_by(order)
        if job:
            query = query.where(job_results.c.job == job)
        return [(r["job"], _dt(r["started"]), _dt(r["finished"]), r["status"], r["detail"]) for r in self._rows(query)]

    # --- reports ---------------------------------------------------------------------------

    def last_report(self, kind: str) -> dt.datetime | None:
        rows = self._rows(sa.select(sa.func.max(report_log.c.generated).label("last"))
                          .where(report_log.c.kind == kind))
        return _dt_or_none(rows[0]["last"]) if rows else None

    def log_report(self, kind: str, generated: dt.datetime) -> None:
        with self.transaction() as db:
            db.execute(report_log.insert().values(kind=kind, generated=_ts(generated)))

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
        tracked = [self._finding_from(row) for row in self._rows(query)]
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
                          ransomware=bool(row["ransomware"]), epss=row["epss"], cvss=row["cvss"])
        return TrackedFinding(finding=finding, first_seen=_dt(row["first_seen"]),
                              reopened_at=_dt_or_none(row["reopened_at"]),
                              last_seen=_dt(row["last_seen"]),
                              status=FindingStatus(row["status"]), resolved_at=_dt_or_none(row["resolved_at"]),
                              status_reason=row["status_reason"])


def _reason(exc: sa.exc.DBAPIError) -> str:
    """The database's own words, first line only (no SQL, no parameters)."""
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else exc.__class__.__name__
