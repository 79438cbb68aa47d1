"""What each warpagent command does. The CLI (warpagent.cli) parses arguments and maps errors
to exit codes; these functions load the config, call the stages and print."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from warpagent import clock, config
from warpagent.errors import CollectError, ConfigError, ScopeError, WarpagentError
from warpagent.models import FindingStatus, RunStatus, Severity, TrackedFinding
from warpagent.nmap_runner import Interrupted
from warpagent.text import counted

if TYPE_CHECKING:
    from warpagent.share import PeerReport
    from warpagent.store import Store

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir) / "warpagent.yaml"
    if target.exists() and not args.force:
        print(f"warpagent: {target} already exists; edit it, or pass --force to overwrite it",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".yaml.tmp")
        partial.write_text(config.example_text(), encoding="utf-8")
        partial.replace(target)
    except OSError as exc:
        print(f"warpagent: {target}: cannot write ({exc.strerror}); choose another folder", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {target}; edit organisation and estates, then run: warpagent --config {target} check-config")
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    from warpagent import scope

    settings = config.load(args.config)
    problems = []
    total = 0
    for index, estate in enumerate(settings.estates):
        try:
            resolved = scope.resolve(estate.name, estate.targets, estate.exclude, estate.max_addresses)
        except ScopeError as exc:
            where = f"estates[{index}].{exc.key}" if exc.key else f"estates[{index}]"
            problems.append(f"{settings.source}: At '{where}': {exc}")
            continue
        total += len(resolved.addresses)
        problems += [f"{settings.source}: At 'estates[{index}].targets': host name '{name}' does not "
                     "resolve; check the name or use its address" for name in resolved.unresolved]
    problems += _store_problems(settings)
    if problems:
        raise ConfigError(problems)
    hub = f"; hub for {counted(len(settings.hub.users), 'account')} at {settings.hub.base_url}" if settings.hub else ""
    print(f"{settings.source}: OK - {counted(len(settings.estates), 'estate')}, "
          f"{counted(total, 'address', 'addresses')} in scope, store {settings.store}{hub}")
    return EXIT_OK


def _store_problems(settings: config.Settings) -> list[str]:
    """Prove the store can be opened (or, for a SQLite file not there yet, created) before a scan needs it."""
    from warpagent.errors import StoreError
    from warpagent.store import Store

    where = f"{settings.source}: At 'store'"
    if not settings.store.exists():
        why = settings.store.creatable()
        return [f"{where}: {settings.store} cannot be created ({why}); choose a path in a folder this user "
                "can write"] if why else []
    try:
        with Store(settings.store):
            return []
    except StoreError as exc:
        return [f"{where}: {exc}"]


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signum}")


def cmd_scan(args: argparse.Namespace) -> int:
    from warpagent import output
    from warpagent.scan import ScanOutcome, resolve_scope, scan_estate
    from warpagent.store import Store

    settings = config.load(args.config)
    if not settings.estates:
        raise ConfigError([f"{settings.source}: At 'estates': no estates configured; add the estates to scan"])
    estates = (settings.estate(args.estate),) if args.estate else settings.estates
    fail_on = Severity.parse(args.fail_on) if args.fail_on else settings.scan.fail_on
    progress = None
    if not args.json and sys.stderr.isatty():
        from warpagent.progress import TerminalProgress
        progress = TerminalProgress()
    scopes = {estate.name: resolve_scope(estate) for estate in estates}  # all scope errors before any scan
    signal.signal(signal.SIGTERM, _raise_interrupted)
    results: list[tuple[ScanOutcome, list[TrackedFinding]]] = []
    exit_code = EXIT_OK
    with Store(settings.store) as store:
        for estate in estates:
            try:
                outcome = scan_estate(settings, estate, store, progress=progress,
                                      estate_scope=scopes[estate.name])
            except CollectError as exc:
                print(f"warpagent: {exc}", file=sys.stderr)
                exit_code = EXIT_INCOMPLETE
                continue
            open_findings = store.findings(status=FindingStatus.OPEN.value, estate=estate.name)
            results.append((outcome, open_findings))
            if outcome.delta.run.status != RunStatus.COMPLETE:
                exit_code = EXIT_INCOMPLETE
            if outcome.interrupted:
                break
    print(output.scan_json(results) if args.json else output.scan_text(results), end="")
    if exit_code == EXIT_OK and fail_on is not None and any(
            t.finding.severity >= fail_on for _o, found in results for t in found):
        return EXIT_FINDINGS
    return exit_code


def cmd_findings(args: argparse.Namespace) -> int:
    from warpagent.output import OutputFormat
    from warpagent.store import Store

    settings = config.load(args.config)
    if not settings.store.exists():
        return _no_store(settings)
    with Store(settings.store) as store:
        found = store.findings(status=None if args.status == "all" else args.status,
                               category=args.category, estate=args.estate)
    print(OutputFormat(args.format).render(found), end="")
    return EXIT_OK


def _no_store(settings: config.Settings) -> int:
    print(f"warpagent: {settings.store}: no findings store yet; run 'warpagent scan' first", file=sys.stderr)
    return EXIT_USAGE


def write_out(target: str, text: str) -> None:
    if target == "-":
        sys.stdout.write(text)
        return
    path = Path(target)
    partial = path.with_name(path.name + ".tmp")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        raise WarpagentError(f"{target}: cannot write ({exc.strerror}); choose another path") from None


def _print_reports(reports: list[PeerReport], as_json: bool, verb: str) -> int:
    import dataclasses
    import json

    if as_json:
        print(json.dumps({"peers": [dataclasses.asdict(r) for r in reports]}, indent=2))
    else:
        for r in reports:
            state = "ok" if r.ok else "FAILED"
            if verb == "share":
                print(f"peer {r.peer}: {state} - {r.delivered} bundles delivered, {r.pending} waiting in the outbox")
            else:
                print(f"peer {r.peer}: {state} - {r.accepted_objects} objects kept, {r.rejected_objects} rejected")
    for r in reports:
        for error in r.errors:
            print(f"warpagent: {error}", file=sys.stderr)
    return EXIT_OK if all(r.ok for r in reports) else EXIT_INCOMPLETE


def cmd_share(args: argparse.Namespace) -> int:

    from warpagent import share
    from warpagent.peer_intel import PeerIntel
    from warpagent.store import Store

    settings = config.load(args.config)
    if not args.dry_run and not settings.sharing.peers:
        raise ConfigError([f"{settings.source}: At 'sharing.peers': no peers configured; add one, or run "
                           "'warpagent share --dry-run --out FILE' to see the bundle"])
    if not settings.store.exists():
        return _no_store(settings)
    now = clock.now()
    with Store(settings.store) as store, PeerIntel(settings.store) as intel:
        built = share.build_bundle(settings, store, intel, now.date())
    if args.out:
        write_out(args.out, built.text)
    if args.dry_run:
        if not args.out:
            sys.stdout.write(built.text)
        print(f"warpagent: dry run: bundle of {len(built.bundle['objects'])} objects built and validated; "
              "nothing queued or sent", file=sys.stderr)
        return EXIT_OK
    return _print_reports(share.queue_and_deliver(settings, built, now), args.json, "share")


def cmd_pull(args: argparse.Namespace) -> int:
    from warpagent import share
    from warpagent.peer_intel import PeerIntel

    settings = config.load(args.config)
    if not settings.sharing.peers:
        raise ConfigError([f"{settings.source}: At 'sharing.peers': no peers configured; add one to pull from"])
    with PeerIntel(settings.store) as intel:
        return _print_reports(share.pull(settings, intel), args.json, "pull")


def cmd_report(args: argparse.Namespace) -> int:

    from warpagent.store import Store

    settings = config.load(args.config)
    if not settings.store.exists():
        return _no_store(settings)
    now = clock.now()
    with Store(settings.store) as store:
        if args.report_kind == "board":
            return _board(args, settings, store, now)
        return _technical(args, settings, store, now)


def _board(args: argparse.Namespace, settings: config.Settings, store: Store, now: dt.datetime) -> int:
    import re

    from reports import produce

    this_month = clock.month_of(now, clock.zone(settings.schedule.timezone))  # the council's calendar
    month = args.month or this_month
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month) or month > this_month:
        raise ConfigError([f"--month: '{month}' is not a month up to now; write it as YYYY-MM, e.g. {this_month}"])
    if args.email and settings.reports.email is None:
        raise ConfigError([f"{settings.source}: At 'reports': no email settings; add reports.email "
                           "(smtp_host, from, to) to send the board report"])
    output = produce.board_report(settings, store, month, now)
    if args.out:
        write_out(args.out, output.html)
    elif not args.email:
        sys.stdout.write(output.html)
    store.log_report("board", now)
    if not args.email:
        return EXIT_OK
    sent, problems = produce.email_board(settings, output, month)
    for problem in problems:
        print(f"warpagent: {problem}", file=sys.stderr)
    print(f"board report for {output.data.month}: {sent} message(s) sent"
          + ("; the rest is kept for the next attempt" if problems else ""), file=sys.stderr)
    return EXIT_INCOMPLETE if problems else EXIT_OK


def _technical(args: argparse.Namespace, settings: config.Settings, store: Store, now: dt.datetime) -> int:
    from reports import produce, render, technical
    from warpagent.output import findings_csv

    found = store.findings()
    data = technical.build(found, organisation=settings.organisation.name, now=now,
                           since=store.last_report("technical"), coverage=produce.estate_coverage(settings, store))
    html = render.render("technical.html.j2", report=data, colour=settings.reports.primary_colour)
    if args.out:
        write_out(args.out, html)
        csv_path = str(Path(args.out).with_suffix(".csv"))
        write_out(csv_path, findings_csv([t for t in found if t.status is FindingStatus.OPEN]))
        print(f"wrote {args.out} and {csv_path}", file=sys.stderr)
    else:
        sys.stdout.write(html)
    store.log_report("technical", now)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from warpagent import daemon

    settings = config.load(args.config)
    if args.verbose == 0:
        logging.getLogger().setLevel(logging.INFO)  # a daemon's log is its record: start, finish, failure
    try:
        return daemon.run(settings, args.config or os.environ.get(config.ENV_VAR))
    except daemon.DaemonLocked as exc:
        print(f"warpagent: {exc}", file=sys.stderr)
        return EXIT_USAGE


def cmd_jobs(args: argparse.Namespace) -> int:
    import json

    from warpagent import daemon
    from warpagent.schedule_rules import cron_trigger
    from warpagent.store import Store

    settings = config.load(args.config)
    specs = daemon.desired_jobs(settings, args.config)
    stored = daemon.next_runs(settings)
    results: dict[str, tuple[str, str, str]] = {}
    if settings.store.exists():
        with Store(settings.store) as store:
            for job, _started, finished, status, detail in store.job_results():
                results[job] = (status, finished.isoformat(timespec="seconds"), detail)
    running = daemon.holder(settings)
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
        print(json.dumps({"daemon": {"running": running is not None, "pid": running}, "jobs": rows}, indent=2))
        return EXIT_OK
    print(f"daemon: {'running (pid ' + running + ')' if running else 'not running'}; store {settings.store}")
    for row in rows:
        last = row["last_result"]
        print(f"{row['job']:<24} {row['schedule']:<16} next {row['next_run'] or '-':<26} "
              f"last {last['status'] + ' at ' + last['finished'] if last else 'never run'}")
    return EXIT_OK


def cmd_feeds(args: argparse.Namespace) -> int:
    from pathlib import Path

    from feeds import update
    from feeds.model import FeedError

    settings = config.load(args.config)
    if args.feeds_action == "update":
        try:
            result = update.update(settings.feeds, from_dirs=[Path(d) for d in args.from_dirs], now=clock.now)
        except FeedError as exc:
            raise WarpagentError(str(exc)) from None
        _print_update(result, args.json)
        return EXIT_OK if result.ok else EXIT_INCOMPLETE
    return _feeds_status(settings, args.json)


def _print_update(result: Any, as_json: bool) -> None:
    import dataclasses
    import json

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
    import json

    from feeds import update
    from feeds.intel_store import IntelStore
    from feeds.model import FeedError, SourceStatus

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


def cmd_worker(args: argparse.Namespace) -> int:
    from warpagent.celery_executor import run_worker

    settings = config.load(args.config)
    if not settings.scan.celery.broker:
        raise ConfigError([f"{settings.source}: At 'scan.celery': no broker configured; add scan.celery.broker "
                           "(redis://host:6379/0) for workers to take chunks from"])
    if args.concurrency < 1:
        raise ConfigError([f"--concurrency: {args.concurrency} is not a number of chunks; give 1 or more"])
    if args.verbose == 0:
        logging.getLogger().setLevel(logging.INFO)  # a worker's log is its record
    run_worker(settings, args.concurrency, args.name)
    return EXIT_OK


COMMANDS = {"run": cmd_run, "feeds": cmd_feeds, "jobs": cmd_jobs, "report": cmd_report, "init": cmd_init,
             "check-config": cmd_check_config, "scan": cmd_scan,
             "findings": cmd_findings, "share": cmd_share, "pull": cmd_pull}


