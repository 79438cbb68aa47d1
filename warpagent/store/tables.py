"""The findings store's tables, and the additions stores made by earlier releases gain on open."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import FindingStatus

SCHEMA_VERSION = 1

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
    sa.Column("verifying", sa.Integer, nullable=False, server_default="0"),  # scan --verify, not a night's scan
    sa.Column("intel", sa.Text),  # JSON list of the intel sources the run's checks had; NULL: not recorded
    sa.Column("unmeasured_checks", sa.Text),  # JSON list of checks that could not run for want of intel; NULL: not kept
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
    sa.Column("evidence_kind", sa.Text),  # EvidenceKind; NULL for a network finding
    sa.Column("decided_by", sa.Text, nullable=False, server_default=""),
    sa.Column("decided_until", sa.Text),  # the day an accepted risk or false positive lapses
    sa.Index("findings_estate_status", "estate", "status"),
)
finding_events = sa.Table(
    "finding_events", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("finding_id", sa.Text, nullable=False),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # EventKind
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("by", sa.Text, nullable=False, server_default=""),
    sa.Column("alerted", sa.Integer, nullable=False, server_default="0"),  # queued to reports.alerts
    sa.Index("finding_events_finding", "finding_id"),
    sqlite_autoincrement=True,
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
    ("findings", "evidence_kind", "TEXT"),
    ("findings", "decided_by", "TEXT NOT NULL DEFAULT ''"),
    ("findings", "decided_until", "TEXT"),
    ("runs", "verifying", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "intel", "TEXT"),
    ("runs", "unmeasured_checks", "TEXT"),
)


def stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds")


def day(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def parse_stamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def parse_stamp_or_none(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def prepare(db: sa.Connection) -> None:
    metadata.create_all(db)
    for table, column, kind in _ADDED_COLUMNS:
        present = {c["name"] for c in sa.inspect(db).get_columns(table)}
        if column not in present:
            db.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            if (table, column) == ("findings", "evidence_kind"):
                _migrate_evidence_kinds(db)
    if db.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first() is None:
        db.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))




# What a finding's row becomes when its decision is undone: re-opened, lapsed or by hand.
UNDECIDED = {"status": FindingStatus.OPEN.value, "status_reason": "", "decided_by": "", "decided_until": None}


def _migrate_evidence_kinds(db: sa.Connection) -> None:
    """Stores from before the evidence kind had a column wrote it as the subject's prefix."""
    for kind in EvidenceKind:
        db.execute(findings_table.update().where(findings_table.c.subject.like(f"{kind.value}:%"))
                   .values(evidence_kind=kind.value))
