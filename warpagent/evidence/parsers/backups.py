"""Parsers for backup tool reports: `restic snapshots --json`, `borg list --json`, and the
documented backups.csv for every other tool. Pure functions from text to backup records.

Times without a zone (borg writes local time) are taken as UTC: at worst an hour out in
British Summer Time, which the 26-hour default policy absorbs.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from typing import Any

from warpagent.evidence.formats import EvidenceError
from warpagent.model.evidence import BackupKind, BackupRecord, Where

CSV_COLUMNS = ("tool", "job", "kind", "finished", "result", "offline", "detail")
_FRACTION = re.compile(r"(\.\d{6})\d+")  # restic writes nanoseconds; Python parses microseconds
# The timestamp borg's {now} and {utcnow} placeholders leave at the end of an archive name,
# with the microseconds and zone that formats such as {now:%Y-%m-%dT%H:%M:%S.%f%z} add.
_ARCHIVE_STAMP = re.compile(r"[-_.]?\d{4}-?\d{2}-?\d{2}(?:[T_-]?\d{2}[:.]?\d{2}(?:[:.]?\d{2}(?:[.,]\d{1,9})?)?)?"
                            r"(?:Z|[+-]\d{2}:?\d{2})?$")


def timestamp(text: str, where: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(_FRACTION.sub(r"\1", text.strip()).replace("Z", "+00:00"))
    except ValueError:
        raise EvidenceError(f"{where}: {text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvidenceError(f"not JSON ({exc.msg} at line {exc.lineno})") from None


def restic_snapshots(text: str, file: str) -> list[BackupRecord]:
    """Each snapshot is a successful backup of its paths (restic writes no failed snapshots)."""
    document = _json(text)
    if not isinstance(document, list):
        raise EvidenceError("expected the JSON list 'restic snapshots --json' prints")
    records = []
    for index, snapshot in enumerate(document):
        here = f"[{index}]"
        if not isinstance(snapshot, dict) or "time" not in snapshot or not isinstance(snapshot.get("paths"), list):
            raise EvidenceError(f"{here}: a snapshot needs time and paths")
        records.append(BackupRecord(tool="restic", job=",".join(sorted(map(str, snapshot["paths"]))),
                                    kind=BackupKind.BACKUP, at=timestamp(str(snapshot["time"]), here), ok=True,
                                    where=Where(f"{file}:{here}"), detail=f"snapshot {snapshot.get('short_id', '')}"))
    return records


def borg_list(text: str, file: str) -> list[BackupRecord]:
    """Each archive in `borg list --json` is a completed backup; the job is the archive name
    without its trailing timestamp ({hostname}-{now} style names group into one job)."""
    document = _json(text)
    if not isinstance(document, dict) or not isinstance(document.get("archives"), list):
        raise EvidenceError("expected the JSON object with 'archives' that 'borg list --json' prints")
    records = []
    for index, archive in enumerate(document["archives"]):
        here = f"archives[{index}]"
        if not isinstance(archive, dict):
            raise EvidenceError(f"{here}: expected an archive object")
        name = str(archive.get("archive") or archive.get("name") or "")
        when = archive.get("time") or archive.get("start")
        if not name or not when:
            raise EvidenceError(f"{here}: an archive needs a name and a time")
        job = _ARCHIVE_STAMP.sub("", name) or name
        records.append(BackupRecord(tool="borg", job=job, kind=BackupKind.BACKUP, at=timestamp(str(when), here),
                                    ok=True, where=Where(f"{file}:{here}"), detail=f"archive {name}"))
    return records


def backups_csv(text: str, file: str) -> list[BackupRecord]:
    """One row per backup or restore test, from any tool (columns in CSV_COLUMNS; see config/README.md)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS[:5] if c not in (reader.fieldnames or ())]
    if missing:
        raise EvidenceError(f"line 1: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                            f"(expected {','.join(CSV_COLUMNS)})")
    records = []
    for row in reader:
        line = reader.line_num
        kind_text = (row.get("kind") or "").strip().lower()
        try:
            kind = BackupKind(kind_text)
        except ValueError:
            raise EvidenceError(f"line {line}: kind {kind_text!r} must be backup or restore-test") from None
        result = (row.get("result") or "").strip().lower()
        if result not in ("ok", "failed"):
            raise EvidenceError(f"line {line}: result {result!r} must be ok or failed")
        offline_text = (row.get("offline") or "").strip().lower()
        if offline_text not in ("", "yes", "no"):
            raise EvidenceError(f"line {line}: offline {offline_text!r} must be yes, no or empty")
        job = (row.get("job") or "").strip()
        if not job:
            raise EvidenceError(f"line {line}: job is empty")
        records.append(BackupRecord(tool=(row.get("tool") or "").strip() or "backup tool", job=job, kind=kind,
                                    at=timestamp(row.get("finished") or "", f"line {line}"), ok=result == "ok",
                                    where=Where(file, line),
                                    offline=None if not offline_text else offline_text == "yes",
                                    detail=(row.get("detail") or "").strip()))
    return records
