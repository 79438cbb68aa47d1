"""The scheduler by hand: run the daemon, and see its jobs' next runs and last results."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from warpagent import clock, config
from warpagent.cli.common import EXIT_OK, EXIT_USAGE
from warpagent.config.schedule_rules import cron_trigger
from warpagent.daemon import scheduler
from warpagent.store.findings import Store


def cmd_run(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    if args.verbose == 0:
        logging.getLogger().setLevel(logging.INFO)  # a daemon's log is its record: start, finish, failure
    try:
        return scheduler.run(settings, args.config or os.environ.get(config.ENV_VAR))
    except scheduler.DaemonLocked as exc:
        print(f"warpagent: {exc}", file=sys.stderr)
        return EXIT_USAGE


def cmd_jobs(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    specs = scheduler.desired_jobs(settings, args.config)
    stored = scheduler.next_runs(settings.store)
    results: dict[str, tuple[str, str, str]] = {}
    if settings.store.exists():
        with Store(settings.store) as store:
            for job, _started, finished, status, detail in store.job_results():
                results[job] = (status, finished.isoformat(timespec="seconds"), detail)
    running = scheduler.holder(settings.store)
    rows: list[dict[str, Any]] = []
    for spec in specs:
        trigger = cron_trigger(spec.cron, settings.schedule.timezone)
        upcoming = stored.get(spec.id) or trigger.get_next_fire_time(None, clock.now())
        rows.append({"job": spec.id, "does": spec.what, "schedule": spec.cron,
                     "next_run": upcoming.isoformat(timespec="seconds") if upcoming else None,
                     "last_result": dict(zip(("status", "finished", "detail"), results[spec.id], strict=True))
                     if spec.id in results else None})
    if "share" in results:
        rows.append({"job": "share", "does": "share after a complete scan", "schedule": "after scan",
                     "next_run": None,
                     "last_result": dict(zip(("status", "finished", "detail"), results["share"], strict=True))})
    if args.json:
        pid = int(running) if running and running.isascii() and running.isdigit() else None  # a number, or null
        print(json.dumps({"daemon": {"running": running is not None, "pid": pid}, "jobs": rows}, indent=2))
        return EXIT_OK
    print(f"daemon: {'running (pid ' + running + ')' if running else 'not running'}; store {settings.store}")
    for row in rows:
        last = row["last_result"]
        print(f"{row['job']:<24} {row['schedule']:<16} next {row['next_run'] or '-':<26} "
              f"last {last['status'] + ' at ' + last['finished'] if last else 'never run'}")
    return EXIT_OK
