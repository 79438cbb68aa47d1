"""New intel applied to stored findings without a rescan: what changed, written with its events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from warpagent.model.findings import EventKind, FindingId, Severity
from warpagent.store.findings import Store
from warpagent.store.tables import day, finding_events, findings_table, stamp


@dataclass(frozen=True)
class Reprioritised:
    finding_id: FindingId
    severity: Severity
    kev_due: dt.date | None
    ransomware: bool
    epss: float | None
    events: tuple[tuple[EventKind, str], ...]


def apply(store: Store, changes: Sequence[Reprioritised], now: dt.datetime) -> None:
    if not changes:
        return
    with store.transaction() as db:
        for change in changes:
            db.execute(findings_table.update().where(findings_table.c.id == change.finding_id).values(
                severity=change.severity.label, kev_due=day(change.kev_due), ransomware=int(change.ransomware),
                epss=change.epss))
        db.execute(finding_events.insert(), [
            {"finding_id": c.finding_id, "at": stamp(now), "kind": kind.value, "detail": detail}
            for c in changes for kind, detail in c.events])
