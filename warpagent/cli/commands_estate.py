"""The commands of a council's own estate: write a config, check it, scan, list findings, run a worker."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from feeds import update as feeds_update
from feeds.model import FeedError
from warpagent import clock, config
from warpagent.cli import output
from warpagent.cli.common import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE
from warpagent.cli.progress import TerminalProgress
from warpagent.collect import scope
from warpagent.collect.nmap_runner import Interrupted
from warpagent.config import EstateConfig, defaults, present, strict_yaml
from warpagent.errors import CollectError, ConfigError, DecisionError, ScopeError, StoreError
from warpagent.files import write_atomically
from warpagent.model.findings import FindingId, FindingStatus, RunStatus, Severity, TrackedFinding
from warpagent.scan import verify
from warpagent.scan.celery_executor import run_worker
from warpagent.scan.pipeline import ScanOutcome, describe_run, scan_estate
from warpagent.scan.plan import resolve_scope
from warpagent.store.decisions import FindingDecisions
from warpagent.store.findings import Store
from warpagent.text import counted


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir) / "warpagent.yaml"
    if target.exists() and not args.force:
        print(f"warpagent: {target} already exists; edit it, or pass --force to overwrite it",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, config.example_text())
    except OSError as exc:
        print(f"warpagent: {target}: cannot write ({exc.strerror}); choose another folder", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {target}")
    _offline_intel(target)
    print(f"edit organisation and estates, then run: warpagent --config {target} check-config")
    return EXIT_OK


def _offline_intel(target: Path) -> None:
    """Lay the machine's own release and support-end data into the new config's feeds folder, as
    the install step does for the default one: without it a first scan would measure unsupported
    software but not unsupported operating systems."""
    folders = feeds_update.machine_offline()
    settings = config.load(str(target))
    if not folders:
        print(f"no offline release data on this machine (Debian's distro-info-data); unsupported operating systems "
              f"are not measured until 'warpagent --config {target} feeds update'")
        return
    try:
        result = feeds_update.update(settings.feeds, from_dirs=folders, now=clock.now,
                                     only=("distro-info", "security-support"))
    except FeedError as exc:
        print(f"warpagent: {settings.feeds.dir}: this machine's release data not imported ({exc})", file=sys.stderr)
        return
    print(f"imported this machine's {', '.join(result.updated) or 'nothing'} into {settings.feeds.dir}")


Scope = tuple[str, tuple[str, ...], tuple[str, ...], int]  # estate name, targets, exclusions, max addresses


def _scope_problems(source: str, estates: list[Scope]) -> tuple[list[str], int]:
    """Each estate's scope resolved: one line per problem, and the addresses in scope."""
    problems, total = [], 0
    for index, (name, targets, exclude, limit) in enumerate(estates):
        try:
            resolved = scope.resolve(name, targets, exclude, limit)
        except ScopeError as exc:
            where = f"estates[{index}].{exc.key}" if exc.key else f"estates[{index}]"
            problems.append(f"{source}: At '{where}': {exc}")
            continue
        total += len(resolved.addresses)
        problems += [f"{source}: At 'estates[{index}].targets': host name '{name}' does not "
                     "resolve; check the name or use its address" for name in resolved.unresolved]
    return problems, total


def _raw_scopes(path: str | None) -> list[Scope]:
    """The estates' scopes as written, from a config that failed validation elsewhere, so their
    problems are shown with the rest; only estates whose scope keys are well formed."""
    located = config.locate(path)
    try:
        document = strict_yaml.load(located.read_text(encoding="utf-8")) if located else None
    except Exception:  # noqa: BLE001 - a file that does not parse has had its one line already
        return []
    estates = document.get("estates") if isinstance(document, dict) else None
    limit = defaults.default("estates[].max_addresses")
    scopes: list[Scope] = []
    for estate in estates if isinstance(estates, list) else []:
        if not isinstance(estate, dict):
            continue
        targets, exclude = estate.get("targets", []), estate.get("exclude", [])
        name, most = estate.get("name"), estate.get("max_addresses", limit)
        if (isinstance(name, str) and isinstance(most, int) and isinstance(targets, list) and isinstance(exclude, list)
                and all(isinstance(t, str) for t in targets + exclude)):
            scopes.append((name, tuple(targets), tuple(exclude), most))
    return scopes


def _key_of(problem: str) -> str:
    """The key path a problem line names ("estates[0].targets[1]"), to say each key's problem once."""
    _before, _at, after = problem.partition(": At '")
    return after.partition("'")[0]


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        settings = config.load(args.config)
    except ConfigError as exc:  # the scopes' problems too, so one fix-up pass is enough
        source = str(config.locate(args.config) or config.EMBEDDED)
        found, _total = _scope_problems(source, _raw_scopes(args.config))
        named = {_key_of(p) for p in exc.problems}
        raise ConfigError(exc.problems + [p for p in found if _key_of(p) not in named]) from None
    problems, total = _scope_problems(settings.source, [(e.name, e.targets, e.exclude, e.max_addresses)
                                                        for e in settings.estates])
    problems += _store_problems(settings) + present.missing(settings)
    if problems:
        raise ConfigError(problems)
    unset = present.unset_secrets(settings, os.environ)
    for line in unset:
        print(line, file=sys.stderr)
    hub = f"; hub for {counted(len(settings.hub.users), 'account')} at {settings.hub.base_url}" if settings.hub else ""
    warned = f"; {counted(len(unset), 'warning')}" if unset else ""
    print(f"{settings.source}: OK - {counted(len(settings.estates), 'estate')}, "
          f"{counted(total, 'address', 'addresses')} in scope, store {settings.store}{hub}{warned}")
    return EXIT_OK


def _store_problems(settings: config.Settings) -> list[str]:
    """Prove the store can be opened (or, for a SQLite file not there yet, created) before a scan needs it."""
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
    settings = config.load(args.config)
    if not settings.estates:
        raise ConfigError([f"{settings.source}: At 'estates': no estates configured; add the estates to scan"])
    estates = (settings.estate(args.estate),) if args.estate else settings.estates
    fail_on = Severity.parse(args.fail_on) if args.fail_on else settings.scan.fail_on
    progress = None
    if not args.json and sys.stderr.isatty():
        progress = TerminalProgress()
    verifying = None
    if args.verify:
        estates, scopes, verifying = _verifying(settings, args.verify)
    else:
        scopes = {estate.name: resolve_scope(estate) for estate in estates}  # all scope errors before any scan
    signal.signal(signal.SIGTERM, _raise_interrupted)
    results: list[tuple[ScanOutcome, list[TrackedFinding]]] = []
    exit_code = EXIT_OK
    with Store(settings.store) as store:
        for estate in estates:
            started = clock.now()
            try:
                outcome = scan_estate(settings, estate, store, progress=progress,
                                      estate_scope=scopes[estate.name], verifying=verifying)
            except CollectError as exc:
                print(f"warpagent: {exc}", file=sys.stderr)
                store.record_job(f"scan:{estate.name}", started, clock.now(), "failed", f"by hand: {exc}")
                exit_code = EXIT_INCOMPLETE
                continue
            if verifying is None:
                store.record_job(f"scan:{estate.name}", started, clock.now(), _job_status(outcome.delta.run.status),
                                 f"by hand: {describe_run(outcome.delta)}")
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


def _verifying(settings: config.Settings,
               wanted: str) -> tuple[tuple[EstateConfig, ...], dict[str, scope.Scope], frozenset[FindingId]]:
    """The one estate, cut to the finding's host and port, that `scan --verify` scans."""
    if not settings.store.exists():
        raise DecisionError(f"{settings.store}: no findings store yet; run 'warpagent scan' first")
    with Store(settings.store) as store:
        tracked = FindingDecisions(store).find(wanted)
    if tracked.status is FindingStatus.RESOLVED:
        raise DecisionError(f"finding {tracked.id} is already resolved; a scan that sees it again re-opens it")
    estate = settings.estate(tracked.finding.estate)
    cut, cut_scope = verify.narrowed(estate, resolve_scope(estate), tracked)
    return (cut,), {cut.name: cut_scope}, frozenset({tracked.id})


def _job_status(status: RunStatus) -> str:
    """A run's status in the words `warpagent jobs` uses for every job."""
    return {RunStatus.COMPLETE: "ok", RunStatus.PARTIAL: "partial"}.get(status, "failed")


def cmd_worker(args: argparse.Namespace) -> int:
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
