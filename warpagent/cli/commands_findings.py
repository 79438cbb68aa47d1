"""The findings between board reports: list them, show one with its history, and record the
council's decisions on them (accept a risk until a date, a false positive, re-open)."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys

from reports import alerts
from warpagent import clock, config
from warpagent.cli.common import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, no_store
from warpagent.cli.output import OutputFormat, finding_record
from warpagent.errors import ConfigError, DecisionError
from warpagent.model.findings import FindingEvent, TrackedFinding
from warpagent.store.decisions import FindingDecisions
from warpagent.store.findings import Store


def cmd_findings(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    words = list(args.words)
    if words and (words[0] != "show" or len(words) != 2):
        print("warpagent: findings takes 'show ID' or nothing; 'warpagent findings --help' says more",
              file=sys.stderr)
        return EXIT_USAGE
    if not settings.store.exists():
        return no_store(settings)
    with Store(settings.store) as store:
        if words:
            decisions = FindingDecisions(store)
            tracked = decisions.find(words[1])
            _show(tracked, decisions.history(tracked.id), args.json or args.format == "json")
            return EXIT_OK
        found = store.findings(status=None if args.status == "all" else args.status,
                               category=args.category, estate=args.estate)
    print(OutputFormat(args.format).render(found), end="")
    return EXIT_OK


def _show(tracked: TrackedFinding, events: list[FindingEvent], as_json: bool) -> None:
    history = [{"at": e.at.isoformat(), "event": e.kind.value, "detail": e.detail, "by": e.by or None}
               for e in events]
    if as_json:
        print(json.dumps({"finding": finding_record(tracked), "history": history}, indent=2))
        return
    f = tracked.finding
    decided = (f" by {tracked.decided_by}" if tracked.decided_by else "") + (
        f" until {tracked.decided_until}" if tracked.decided_until else "")
    print(f"{tracked.id}  {f.severity.label.upper()}  {f.check_id}  {f.title}")
    print(f"  {f.estate} / {f.asset} / {f.subject}: {tracked.status.value}{decided}"
          + (f" ({tracked.status_reason})" if tracked.status_reason else ""))
    print(f"  evidence: {f.evidence}")
    print(f"  fix: {f.remediation}")
    print(f"  first seen {tracked.first_seen:%Y-%m-%d %H:%M}, last seen {tracked.last_seen:%Y-%m-%d %H:%M} UTC")
    for event in events:
        who = f" by {event.by}" if event.by else ""
        print(f"  {event.at:%Y-%m-%d %H:%M}  {event.kind.value}{who}" + (f": {event.detail}" if event.detail else ""))


def _day(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise DecisionError(f"{option}: '{text[:40]}' is not a date; write it as YYYY-MM-DD") from None


def _decided(args: argparse.Namespace, verb: str) -> int:
    settings = config.load(args.config)
    if not settings.store.exists():
        return no_store(settings)
    by = args.by or getpass.getuser()
    with Store(settings.store) as store:
        decisions = FindingDecisions(store)
        now = clock.now()
        if verb == "accept":
            until = _day(args.until, "--until") or now.date()  # argparse requires --until
            tracked = decisions.accept(args.id, reason=args.reason, until=until, by=by, now=now)
        elif verb == "false-positive":
            tracked = decisions.false_positive(args.id, reason=args.reason, until=_day(args.until, "--until"),
                                               by=by, now=now)
        else:
            tracked = decisions.reopen(args.id, by=by, now=now)
    print(f"{tracked.id}: {tracked.status.value}" + (f" until {tracked.decided_until}" if tracked.decided_until
                                                      else "") + f" ({tracked.finding.title})")
    return EXIT_OK


def cmd_accept(args: argparse.Namespace) -> int:
    return _decided(args, "accept")


def cmd_false_positive(args: argparse.Namespace) -> int:
    return _decided(args, "false-positive")


def cmd_reopen(args: argparse.Namespace) -> int:
    return _decided(args, "reopen")


def cmd_alerts(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    if settings.reports.alerts is None:
        raise ConfigError([f"{settings.source}: At 'reports': no alerts configured; add reports.alerts.to (and "
                           "reports.email for the SMTP server)"])
    if not settings.store.exists():
        return no_store(settings)
    with Store(settings.store) as store:
        told = alerts.send_alerts(settings, store, clock.now(), dry_run=args.dry_run)
        rows = [{"event": a.kind.value, "at": a.at.isoformat(), "finding": a.tracked.id,
                 "subject": alerts.subject_and_body(settings, a)[0]} for a in told.alerts]
    if args.json:
        print(json.dumps({"dry_run": told.dry_run, "alerts": rows, "sent": told.sent,
                          "problems": list(told.problems)}, indent=2))
    else:
        for row in rows:
            print(("would send: " if told.dry_run else "queued: ") + row["subject"])
        if not told.dry_run:
            print(f"{len(rows)} alerts queued; {told.sent} messages sent")
    for problem in told.problems:
        print(f"warpagent: {problem}", file=sys.stderr)
    return EXIT_INCOMPLETE if told.problems else EXIT_OK

