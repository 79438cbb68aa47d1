"""The council's decisions on findings (accept a risk until a date, call a finding a false
positive, re-open it) and every finding's history, kept in the store beside the findings.

A decision is stored with who took it, why and until when; when that day has passed the next
run re-opens the finding (`lifecycle.decide`). Decided findings leave the open counts (RAG,
shared posture) but stay listed.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from warpagent.errors import DecisionError
from warpagent.model.findings import (
    DECIDED,
    EventKind,
    FindingEvent,
    FindingId,
    FindingStatus,
    SourceDecision,
    TrackedFinding,
)
from warpagent.store.findings import Store
from warpagent.store.lifecycle import lapsed_on
from warpagent.store.tables import UNDECIDED, finding_events, findings_table, parse_stamp, stamp

MIN_ID_PREFIX = 6
SOURCE_SUFFIX = "(decided there, recorded by warpagent)"  # how follow_source signs what it records


class FindingDecisions:
    def __init__(self, store: Store) -> None:
        self.store = store

    def find(self, wanted: str) -> TrackedFinding:
        """The finding with this id, or the one whose id starts with it (at least 6 characters)."""
        wanted = wanted.strip().lower()
        if len(wanted) < MIN_ID_PREFIX or any(c not in "0123456789abcdef" for c in wanted):
            raise DecisionError(f"'{wanted[:40]}' is not a finding id; give the id (or its first {MIN_ID_PREFIX}+ "
                                "characters) as 'warpagent findings' lists it")
        rows = self.store.rows(sa.select(findings_table.c.id).where(findings_table.c.id.like(f"{wanted}%")).limit(2))
        if not rows:
            raise DecisionError(f"no finding {wanted} in {self.store.location}; 'warpagent findings --status all' "
                                "lists them")
        if len(rows) > 1:
            raise DecisionError(f"'{wanted}' starts more than one finding id; give more of it")
        return self.store.findings(ids=[rows[0]["id"]])[0]

    def _decide(self, tracked: TrackedFinding, status: FindingStatus, kind: EventKind, *, reason: str,
                until: dt.date | None, by: str, now: dt.datetime) -> TrackedFinding:
        if not reason.strip():
            raise DecisionError("--reason: say why, in words the board and the next auditor can follow")
        if until is not None and until <= now.date():
            raise DecisionError(f"--until: {until} is not after today ({now.date()}); give a date to review it by")
        if tracked.status is FindingStatus.RESOLVED:
            raise DecisionError(f"finding {tracked.id} is resolved: there is nothing to decide (if a scan sees it "
                                "again it re-opens)")
        detail = reason.strip() + (f" (until {until})" if until else "")
        with self.store.transaction() as db:
            db.execute(findings_table.update().where(findings_table.c.id == tracked.id).values(
                status=status.value, status_reason=reason.strip(), decided_by=by,
                decided_until=until.isoformat() if until else None))
            db.execute(finding_events.insert().values(finding_id=tracked.id, at=stamp(now), kind=kind.value,
                                                      detail=detail, by=by))
        return self.store.findings(ids=[tracked.id])[0]

    def accept(self, wanted: str, *, reason: str, until: dt.date, by: str, now: dt.datetime) -> TrackedFinding:
        return self._decide(self.find(wanted), FindingStatus.ACCEPTED_RISK, EventKind.ACCEPTED, reason=reason,
                            until=until, by=by, now=now)

    def false_positive(self, wanted: str, *, reason: str, until: dt.date | None, by: str,
                       now: dt.datetime) -> TrackedFinding:
        return self._decide(self.find(wanted), FindingStatus.FALSE_POSITIVE, EventKind.FALSE_POSITIVE,
                            reason=reason, until=until, by=by, now=now)

    def reopen(self, wanted: str, *, by: str, now: dt.datetime) -> TrackedFinding:
        tracked = self.find(wanted)
        if not tracked.status.decided:
            raise DecisionError(f"finding {tracked.id} is {tracked.status.value}, not accepted or a false positive: "
                                "there is no decision to undo")
        with self.store.transaction() as db:
            db.execute(findings_table.update().where(findings_table.c.id == tracked.id).values(
                **UNDECIDED))
            db.execute(finding_events.insert().values(finding_id=tracked.id, at=stamp(now),
                                                      kind=EventKind.REOPENED.value, detail="re-opened by hand",
                                                      by=by))
        return self.store.findings(ids=[tracked.id])[0]

    def follow_source(self, tracked: TrackedFinding, decision: SourceDecision | None, now: dt.datetime) -> bool:
        """Keep a finding in step with a decision taken in the tool its evidence came from (a
        ScubaGear omission or incorrect-result annotation): recorded like `accept` or
        `false-positive` with its reason, date and source; undone when the source drops it or its
        date passes. A decision taken in warpagent itself is never overridden. True if changed."""
        by_source = tracked.status.decided and tracked.decided_by.endswith(SOURCE_SUFFIX)
        live = decision is not None and (decision.until is None or decision.until > now.date())
        if not live:
            if not by_source:
                return False
            with self.store.transaction() as db:
                db.execute(findings_table.update().where(findings_table.c.id == tracked.id).values(**UNDECIDED))
                db.execute(finding_events.insert().values(
                    finding_id=tracked.id, at=stamp(now), kind=EventKind.REOPENED.value, by=tracked.decided_by,
                    detail="the decision in the evidence's own tool was withdrawn or has lapsed"))
            return True
        if decision is None:  # for mypy: `live` implies it
            return False
        status = FindingStatus.ACCEPTED_RISK if decision.accepted else FindingStatus.FALSE_POSITIVE
        if tracked.status.decided and not by_source:
            return False
        if (tracked.status, tracked.status_reason, tracked.decided_until) == (status, decision.reason, decision.until):
            return False
        kind = EventKind.ACCEPTED if decision.accepted else EventKind.FALSE_POSITIVE
        self._decide(tracked, status, kind, reason=decision.reason, until=decision.until,
                     by=f"{decision.by} {SOURCE_SUFFIX}", now=now)
        return True

    def expire_lapsed(self, now: dt.datetime) -> int:
        """Decisions whose date has passed, lapsed now rather than at the next run: the finding is
        open again (the alert that follows goes the same night)."""
        table = findings_table.c
        rows = self.store.rows(sa.select(table.id, table.decided_until).where(
            table.status.in_(DECIDED),
            table.decided_until.is_not(None), table.decided_until < now.date().isoformat()))
        if rows:
            with self.store.transaction() as db:
                db.execute(findings_table.update().where(table.id.in_([r["id"] for r in rows])).values(
                    **UNDECIDED))
                db.execute(finding_events.insert(), [
                    {"finding_id": r["id"], "at": stamp(now), "kind": EventKind.EXPIRED.value,
                     "detail": lapsed_on(r["decided_until"])} for r in rows])
        return len(rows)

    def history(self, finding_id: FindingId) -> list[FindingEvent]:
        table = finding_events.c
        rows = self.store.rows(sa.select(finding_events).where(table.finding_id == finding_id).order_by(table.seq))
        return [FindingEvent(finding_id=FindingId(r["finding_id"]), at=parse_stamp(r["at"]), kind=EventKind(r["kind"]),
                             detail=r["detail"], by=r["by"]) for r in rows]
