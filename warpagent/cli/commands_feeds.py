"""The intel feeds by hand: update them (online or from copied files) and see how fresh they are."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from feeds import update
from feeds.intel_store import IntelStore
from feeds.model import FeedError, SourceStatus
from feeds.update import UpdateResult
from reports import alerts
from warpagent import clock, config
from warpagent.cli.common import EXIT_INCOMPLETE, EXIT_OK
from warpagent.errors import WarpagentError
from warpagent.store.findings import Store
from warpagent.text import counted


def cmd_feeds(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    if args.feeds_action == "update":
        try:
            result = update.update(settings.feeds, from_dirs=[Path(d) for d in args.from_dirs], now=clock.now)
        except FeedError as exc:
            raise WarpagentError(str(exc)) from None
        _print_update(result, args.json)
        problems = _after_update(settings, args.json)
        return EXIT_OK if result.ok and not problems else EXIT_INCOMPLETE
    return _feeds_status(settings, args.json)


def _after_update(settings: config.Settings, as_json: bool) -> tuple[str, ...]:
    """The stored findings re-ranked against what just arrived, and the alerts that follow."""
    if not settings.store.exists():
        return ()
    with Store(settings.store) as store:
        changed, told = alerts.reprioritise_and_alert(settings, store, clock.now())
    if not as_json:
        print(f"findings: {changed} re-prioritised against the new intel; {len(told.alerts)} alerts")
    for problem in told.problems:
        print(f"warpagent: {problem}", file=sys.stderr)
    return told.problems


def _print_update(result: UpdateResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
    for source in result.updated:
        moved = result.imported.get(source, [])
        if not as_json:
            print(f"{source}: updated" + (f" from {counted(len(moved), 'file')}" if moved else ""))
            for line in moved:
                print(f"  {line}")
    for source in result.unchanged:
        if not as_json:
            print(f"{source}: unchanged")
    for source in result.not_offered:
        if not as_json:
            kept = result.previous.get(source)
            print(f"{source}: not in the import folder; " + (f"{kept} kept" if kept else "no data"))
    for source, reason in result.failed.items():
        kept = result.previous.get(source)
        print(f"warpagent: feed {source} not updated: {reason}; " + (f"{kept} kept" if kept else "no data yet"),
              file=sys.stderr)
    if result.unreachable:
        print("warpagent: no feed server could be reached: this machine looks offline. Copy the feeds' files "
              "from a machine that has internet and run 'warpagent feeds update --from DIR' (README: Offline)",
              file=sys.stderr)


def _feeds_status(settings: config.Settings, as_json: bool) -> int:
    now = clock.now()
    path = settings.feeds.intel_path
    statuses: list[SourceStatus] = []
    problem = ""
    try:
        update.ensure_intel(settings.feeds, now)
        if path.exists():
            with IntelStore(path) as intel:
                statuses = intel.sources()
    except (FeedError, OSError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    if not statuses and not problem:
        problem = f"no intel at {path}; run 'warpagent feeds update' (or 'feeds update --from DIR' offline)"
    stale = [s for s in statuses if settings.feeds.is_stale(s, now)]
    missing = [s for s in settings.feeds.sources if s not in {x.source for x in statuses}]
    if as_json:
        print(json.dumps({"intel": str(path), "problem": problem or None, "sources": [
            {"source": s.source, "updated": s.updated.isoformat() if s.updated else None, "records": s.records,
             "age_days": s.age_days(now), "stale": s in stale, "detail": s.detail,
             "bundled_snapshot": s.bundled.isoformat() if s.bundled else None}
            for s in statuses], "missing": missing}, indent=2))
    else:
        for s in statuses:
            age = s.age_days(now)
            origin = f"bundled snapshot of {s.bundled:%Y-%m-%d}" if s.bundled else (
                f"updated {s.updated:%Y-%m-%d %H:%M} UTC" if s.updated else "never updated")
            print(f"{s.source:17} {s.records:>9} {s.detail:22} {origin} ({counted(age or 0, 'day')} ago)"
                  f"{'  STALE' if s in stale else ''}")
        for source in missing:
            print(f"{source:17} no data yet")
    if problem:
        print(f"warpagent: {problem}", file=sys.stderr)
    for s in stale:
        what = "the bundled snapshot" if s.bundled else "older than " + f"{settings.feeds.stale_after_days} days"
        print(f"warpagent: feed {s.source} is stale ({what}); run 'warpagent feeds update'", file=sys.stderr)
    return EXIT_INCOMPLETE if stale or missing or problem else EXIT_OK
