"""Which finding events the security team must hear about the same night, and which it has.

An alert is queued once per event (the event is marked in the same step the message is put in
the mail queue), so a re-run never sends it twice, and a server that is down only delays it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from warpagent.model.findings import EventKind, FindingId, FindingStatus, Severity, TrackedFinding
from warpagent.store.findings import Store
from warpagent.store.tables import finding_events, findings_table, parse_stamp, stamp

ALERTING = (EventKind.OPENED, EventKind.BECAME_KEV, EventKind.SEVERITY_CHANGED, EventKind.KEV_PAST_DUE,
            EventKind.EXPIRED)


@dataclass(frozen=True)
class AlertEvent:
    seq: int
    kind: EventKind
    at: dt.datetime
    detail: str
    tracked: TrackedFinding


def _rose(detail: str) -> bool:
    """A severity change event's detail is "high to critical": did it go up?"""
    before, _to, after = detail.partition(" to ")
    try:
        return Severity.parse(after) > Severity.parse(before)
    except KeyError:
        return False


def _worth_telling(kind: EventKind, detail: str, tracked: TrackedFinding) -> bool:
    if kind is EventKind.OPENED:  # its detail is the severity it opened with
        return detail == Severity.CRITICAL.label
    if kind is EventKind.SEVERITY_CHANGED:
        return _rose(detail)
    return True


class AlertLog:
    def __init__(self, store: Store) -> None:
        self.store = store

    def mark_kev_past_due(self, now: dt.datetime) -> int:
        """An event for each open finding whose CISA KEV due date has passed, once per finding."""
        table, events = findings_table.c, finding_events.c
        told = sa.select(events.finding_id).where(events.kind == EventKind.KEV_PAST_DUE.value)
        rows = self.store.rows(sa.select(table.id, table.kev_due).where(
            table.status == FindingStatus.OPEN.value, table.kev_due.is_not(None),
            table.kev_due < now.date().isoformat(), table.id.not_in(told)))
        if rows:
            with self.store.transaction() as db:
                db.execute(finding_events.insert(), [
                    {"finding_id": r["id"], "at": stamp(now), "kind": EventKind.KEV_PAST_DUE.value,
                     "detail": f"CISA KEV due date {r['kev_due']} passed"} for r in rows])
        return len(rows)

    def unsent(self, *, settle: bool = True) -> list[AlertEvent]:
        """Events not yet told that are worth telling, oldest first. `settle` marks the rest (a new
        low finding, a severity that fell) as handled, so they are not looked at again."""
        events = finding_events.c
        rows = self.store.rows(sa.select(finding_events).where(
            events.alerted == 0, events.kind.in_([k.value for k in ALERTING])).order_by(events.seq))
        tracked = {t.id: t for t in self.store.findings(ids={r["finding_id"] for r in rows})}
        out, quiet = [], []
        for r in rows:
            finding = tracked.get(FindingId(r["finding_id"]))
            kind = EventKind(r["kind"])
            if finding is not None and _worth_telling(kind, r["detail"], finding):
                out.append(AlertEvent(seq=r["seq"], kind=kind, at=parse_stamp(r["at"]), detail=r["detail"],
                                      tracked=finding))
            else:
                quiet.append(r["seq"])
        if settle:
            self.mark_sent(quiet)
        return out

    def mark_sent(self, seqs: list[int]) -> None:
        if seqs:
            with self.store.transaction() as db:
                db.execute(finding_events.update().where(finding_events.c.seq.in_(seqs)).values(alerted=1))
