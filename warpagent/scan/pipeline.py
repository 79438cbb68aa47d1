"""One estate's scan, end to end: scope -> nmap (in chunks) -> inventory -> checks -> store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from checks import CheckContext
from checks.unsupported import lifecycle_unknown
from feeds.intel_store import IntelStore
from feeds.model import FeedError, SourceStatus
from feeds.update import FeedSettings, ensure_intel
from warpagent import clock as wall_clock
from warpagent.collect import chunks, nmap_runner, nmap_xml, scope
from warpagent.config import EstateConfig, Settings
from warpagent.errors import CollectError
from warpagent.model.evidence import EvidenceKind, unmeasured_by_evidence
from warpagent.model.findings import Finding, FindingId, Host, Inventory, RunDelta
from warpagent.scan import engine, gather
from warpagent.scan.celery_executor import CeleryExecutor
from warpagent.scan.plan import plan_for, resolve_scope
from warpagent.store.decisions import FindingDecisions
from warpagent.store.findings import Store
from warpagent.store.lifecycle import RunReport

log = logging.getLogger(__name__)


class ScanProgress(Protocol):
    def estate_started(self, estate: str, total: int) -> None: ...
    def hosts_done(self, count: int) -> None: ...
    def estate_finished(self) -> None: ...


class NoProgress:
    def estate_started(self, estate: str, total: int) -> None:
        pass

    def hosts_done(self, count: int) -> None:
        pass

    def estate_finished(self) -> None:
        pass


@dataclass(frozen=True)
class ScanOutcome:
    delta: RunDelta
    scope: scope.Scope
    interrupted: bool = False
    intel_sources: tuple[str, ...] = ()  # the intel sources the checks had (for the coverage account)
    lifecycle_unknown: tuple[str, ...] = ()  # products seen whose support no source gives


@dataclass(frozen=True)
class Collection:
    inventory: Inventory
    problems: tuple[str, ...]  # why the run is partial, if it is
    notes: tuple[str, ...]  # coverage given up by design (UDP without root): recorded, not partial
    interrupted: bool
    scanned_ports: frozenset[tuple[str, int]]
    # (address, port) of services whose version detection overran estates[].service_timeout
    overran: frozenset[tuple[str, int]] = frozenset()


def collect(estate: EstateConfig, timing: str, estate_scope: scope.Scope, nmap_path: str,
            progress: ScanProgress, on_nmap_start: Callable[[int], None] = lambda pid: None,
            cancelled: Callable[[], bool] = lambda: False, executor: chunks.ChunkExecutor | None = None) -> Collection:
    """Run nmap over the scope in chunks, several at once, until done or the estate's time budget runs out."""
    deadline = time.monotonic() + estate.timeout_s
    problems = [f"host name '{name}' did not resolve; not scanned" for name in estate_scope.unresolved]
    addresses = list(estate_scope.addresses)
    progress.estate_started(estate.name, len(addresses))
    jobs = chunks.split(estate.name, addresses, estate.chunk_size)
    plan, port_set, notes = plan_for(estate, timing, Path("targets.txt"))  # each chunk gets its own file
    plan = dataclasses.replace(plan, max_rate=chunks.per_process_rate(estate.max_rate, estate.parallel, len(jobs)))
    for note in notes:
        log.warning("estate %s: %s", estate.name, note)
    if len(jobs) > 1:
        log.info("estate %s: %d addresses in %d chunks, %d at a time%s", estate.name, len(addresses), len(jobs),
                 estate.parallel, f", {plan.max_rate} packets/s each" if plan.max_rate else "")
    executor = executor or chunks.LocalExecutor(nmap_path, estate.parallel)
    outcomes = executor.run(jobs, plan, deadline=deadline, on_host_done=progress.hosts_done, on_start=on_nmap_start,
                            cancelled=cancelled)
    hosts: list[Host] = []
    finished: list[str] = []
    overran: set[tuple[str, int]] = set()
    interrupted = timed_out = False
    for outcome in outcomes:
        output = outcome.output
        if output is None:
            if outcome.problem:
                problems.append(outcome.problem)
            continue
        parsed = nmap_xml.parse(output.xml, estate_scope.names, source=f"estate {estate.name}: nmap")
        if not parsed.complete and not (output.timed_out or output.interrupted):
            detail = output.stderr.strip().splitlines()[-1] if output.stderr.strip() else "no output"
            raise CollectError(f"estate {estate.name}: nmap exited with code {output.returncode} "
                               f"before finishing ({detail})")
        hosts += parsed.hosts
        done = list(outcome.job.addresses) if parsed.complete else list(parsed.finished)
        late = set(parsed.timed_out)
        finished += [a for a in done if a not in late]
        problems += [f"{estate_scope.asset(a)}: nmap host timeout ({estate.host_timeout_s}s); "
                     "not fully scanned" for a in parsed.timed_out]
        notes += [overran_note(estate_scope, address, f"{protocol}/{port}", estate.service_timeout_s)
                  for address, protocol, port in output.overran]
        overran |= {(address, port) for address, _protocol, port in output.overran}
        interrupted |= output.interrupted
        timed_out |= output.timed_out
        if parsed.complete:  # down hosts write no <host>: count them done now
            progress.hosts_done(max(0, len(outcome.job.addresses) - output.xml.count("</host>")))
    if interrupted:
        problems.append("scan interrupted; what nmap finished was kept")
    elif timed_out:
        problems.append(f"estate time budget ({estate.timeout_s}s) ran out; what nmap finished was kept")
    done_set = set(finished)
    unscanned = tuple(a for a in addresses if a not in done_set)
    if unscanned and not (interrupted or timed_out):
        problems.append(f"{len(unscanned)} addresses not scanned")
    progress.estate_finished()
    inventory = Inventory(estate=estate.name, hosts=tuple(hosts), scanned=tuple(finished), unscanned=unscanned)
    scanned_ports = frozenset([("tcp", p) for p in port_set.tcp] + [("udp", p) for p in port_set.udp])
    return Collection(inventory=inventory, problems=tuple(problems), notes=tuple(notes), interrupted=interrupted,
                      scanned_ports=scanned_ports, overran=frozenset(overran))


def overran_note(estate_scope: scope.Scope, address: str, service: str, budget_s: int) -> str:
    """The run's note for one service ("tcp/8443") whose version detection overran its budget."""
    return (f"{estate_scope.asset(address)} {service}: version detection overran estates[].service_timeout "
            f"({budget_s}s); the service is named from its port number and its scripts still ran, so its "
            "product and version are not known")


def executor_for(settings: Settings, estate: EstateConfig) -> chunks.ChunkExecutor | None:
    """Workers on other machines when scan.executor is celery; None: nmap processes here."""
    if settings.scan.executor != "celery":
        return None
    return CeleryExecutor(settings, estate.parallel)


def open_intel(feeds: FeedSettings, now: dt.datetime) -> tuple[IntelStore | None, list[str]]:
    """The compiled intel store (the bundled snapshot until the first `feeds update`), and what
    the run summary should say about it."""
    path = feeds.intel_path
    try:
        ensure_intel(feeds, now)
    except (FeedError, OSError) as exc:
        log.warning("intel: %s", exc)
    if not path.exists():
        return None, [f"patches and unsupported not measured: no intel feed data at {path}; run "
                      "'warpagent feeds update' (or 'feeds update --from DIR' offline)"]
    try:
        intel = IntelStore(path)
    except FeedError as exc:
        return None, [f"patches and unsupported not measured: {exc}"]
    return intel, intel_notes(feeds, intel.sources(), now)


def intel_notes(feeds: FeedSettings, statuses: list[SourceStatus], now: dt.datetime) -> list[str]:
    """What a run summary says of its intel: which snapshot is in use, what is stale, what is missing."""
    notes = []
    bundled = [s for s in statuses if s.bundled]
    if bundled:
        notes.append("intel: the snapshot bundled with warpagent is in use for "
                     + ", ".join(f"{s.source} (as of {s.bundled:%Y-%m-%d})" for s in bundled)
                     + "; run 'warpagent feeds update' for current data")
    for status in statuses:
        if not status.bundled and feeds.is_stale(status, now):
            notes.append(f"intel feed '{status.source}' is {status.age_days(now)} days old; "
                         "run 'warpagent feeds update'")
    present = {s.source for s in statuses}
    if not present & {"nvd", "osv"}:
        notes.append("patches: no NVD or OSV data, so service and package versions were not matched to CVEs; "
                     "run 'warpagent feeds update' (or 'feeds update --from DIR' offline)")
    return notes


def _unmeasured(evaluation: engine.Evaluation, gathered: gather.Gathered) -> tuple[str, ...]:
    """Categories this run could not measure: no intel for them, or no host evidence."""
    without_evidence = unmeasured_by_evidence({kind for _asset, kind in gathered.evidence_read})
    return tuple(dict.fromkeys(evaluation.unmeasured_categories + without_evidence))


def describe_run(delta: RunDelta) -> str:
    """One line for a run's record in `warpagent jobs`, whoever started it."""
    run = delta.run
    return (f"run {run.id} {run.status.value}: {len(delta.new)} new, {len(delta.resolved)} resolved, "
            f"{run.hosts_up} hosts up")


def _follow_source_decisions(store: Store, findings: Sequence[Finding], now: dt.datetime) -> None:
    """Decisions the council took in an evidence's own tool (ScubaGear's omissions and
    incorrect-result annotations), kept on tonight's findings from that evidence."""
    from_tools = {f.id: f.source_decision for f in findings if f.evidence_kind is EvidenceKind.TENANT}
    if not from_tools:
        return
    decisions = FindingDecisions(store)
    for tracked in store.findings(ids=list(from_tools)):
        decisions.follow_source(tracked, from_tools[tracked.id], now)


def scan_estate(settings: Settings, estate: EstateConfig, store: Store, *,
                progress: ScanProgress | None = None, clock: Callable[[], dt.datetime] = wall_clock.now,
                resolver: scope.Resolver = scope.system_resolver, estate_scope: scope.Scope | None = None,
                on_nmap_start: Callable[[int], None] = lambda pid: None,
                cancelled: Callable[[], bool] = lambda: False,
                verifying: frozenset[FindingId] | None = None) -> ScanOutcome:
    """Scan one estate and record the run. ScopeError (bad targets) is raised before anything is written.
    `verifying`: a targeted re-scan that may resolve only these findings (`verify.narrowed` makes the estate)."""
    progress = progress or NoProgress()
    if estate_scope is None:
        estate_scope = resolve_scope(estate, resolver)
    run_id = store.begin_run(estate.name, clock(), verifying=verifying is not None)
    try:
        executor = executor_for(settings, estate)
        # workers bring their own nmap; an estate of evidence or a directory alone needs none
        nmap_path = "" if executor or not estate_scope.addresses else nmap_runner.find_nmap(settings.scan.nmap_path)
        collection = collect(estate, settings.scan.timing, estate_scope, nmap_path, progress, on_nmap_start, cancelled,
                             executor=executor)
        gathered = gather.gather(estate, collection.inventory, estate_scope, clock(),
                                 gather.DnsSettings(settings.scan.dns_servers, settings.scan.dns_timeout_s),
                                 silent=collection.overran)
        inventory = gathered.inventory
        for note in gathered.problems + gathered.notes:
            log.warning("estate %s: %s", estate.name, note)
        intel, intel_notes = open_intel(settings.feeds, clock())
        present = tuple(s.source for s in intel.sources()) if intel is not None else ()
        try:
            context = CheckContext(now=clock(), intel=intel, policy=gathered.policy, suppliers=gathered.suppliers)
            evaluation = engine.evaluate(inventory, context)
            unknown = lifecycle_unknown(inventory.hosts, intel)
        finally:
            if intel is not None:
                intel.close()
        for note in intel_notes:  # shown in the run summary; logged for the daemon's log
            log.info("estate %s: %s", estate.name, note)
        complete = inventory.complete and not collection.problems and not gathered.problems
        delta = store.record_run(run_id, RunReport(
            findings=evaluation.findings, finished=clock(), complete=complete,
            observed_assets=frozenset(h.asset for h in inventory.hosts),
            in_scope_assets=frozenset(estate_scope.asset(a) for a in estate_scope.addresses) | gathered.record_assets,
            hosts_scanned=len(inventory.scanned),
            errors=collection.problems + gathered.problems + collection.notes + gathered.notes + tuple(intel_notes),
            check_errors=evaluation.errors, scanned_ports=collection.scanned_ports,
            unmeasured_checks=frozenset(evaluation.unmeasured),
            unmeasured_categories=frozenset(_unmeasured(evaluation, gathered)),
            evidence_read=gathered.evidence_read, record_assets=gathered.record_assets, verifying=verifying,
            intel=present))
    except BaseException as exc:
        store.fail_run(run_id, clock(), [str(exc) or exc.__class__.__name__])
        raise
    _follow_source_decisions(store, evaluation.findings, clock())
    for error in evaluation.errors:
        log.warning("estate %s: check %s failed on %s: %s", estate.name, error.check_id, error.asset,
                    error.message)
    return ScanOutcome(delta=delta, scope=estate_scope, interrupted=collection.interrupted, intel_sources=present,
                       lifecycle_unknown=unknown)
