"""An estate's addresses in chunks, each scanned by its own nmap process, several at a time.

A county estate of tens of thousands of addresses would take all night in one nmap: chunks of
`chunk_size` addresses run concurrently, at most `parallel` at once, each with its share of the
estate's packet rate (`max_rate`), and their results merge into one run. The local executor runs
them here (a pool of nmap processes, each watched by a thread); warpagent.scan.celery_executor runs
them on workers on other machines. Either way every chunk is an explicit address list from the
scope guard, and nmap's arguments come from the estate's own plan.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from warpagent.collect import stages as staged_scan
from warpagent.collect import versiondb
from warpagent.collect.nmap_runner import Interrupted, NmapOutput, NmapPlan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkJob:
    index: int
    estate: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class ChunkOutcome:
    job: ChunkJob
    output: NmapOutput | None  # None: never started (the scan was stopped first)
    worker: str = "local"
    problem: str = ""  # why the chunk could not run at all (a worker refused it, a broker was down)


def split(estate: str, addresses: Sequence[str], size: int) -> list[ChunkJob]:
    return [ChunkJob(index=n, estate=estate, addresses=tuple(addresses[start:start + size]))
            for n, start in enumerate(range(0, len(addresses), size))]


def per_process_rate(max_rate: int | None, parallel: int, chunks: int) -> int | None:
    """Each concurrent nmap's share of the estate's packet rate (at least 1 packet a second)."""
    if not max_rate:
        return None
    return max(1, max_rate // max(1, min(parallel, chunks)))


def run_chunk(job: ChunkJob, plan: NmapPlan, nmap_path: str, deadline: float,
              on_host_done: Callable[[int], None] = lambda n: None,
              on_start: Callable[[int], None] = lambda pid: None,
              cancelled: Callable[[], bool] = lambda: False) -> NmapOutput:
    """One chunk: one nmap, or stages when services have a budget of their own (staged_scan)."""
    with tempfile.TemporaryDirectory(prefix="warpagent-chunk-") as work:
        nmap = staged_scan.runner(nmap_path, Path(work), deadline, on_start, cancelled)
        log.info("estate %s: nmap on chunk %d (%d addresses)", job.estate, job.index + 1, len(job.addresses))
        if 0 < plan.service_timeout_s < plan.host_timeout_s:
            quick = versiondb.write_quick(nmap_path, Path(work))
            return staged_scan.run(job.addresses, dataclasses.replace(plan, versiondb=quick), nmap, on_host_done)
        return nmap("chunk", job.addresses, plan, on_host_done)


class ChunkExecutor(Protocol):
    """Runs an estate's chunks and returns every outcome, in chunk order."""

    def run(self, jobs: Sequence[ChunkJob], plan: NmapPlan, *, deadline: float,
            on_host_done: Callable[[int], None], on_start: Callable[[int], None],
            cancelled: Callable[[], bool]) -> list[ChunkOutcome]: ...


class LocalExecutor:
    """Up to `parallel` nmap processes on this machine, one per chunk."""

    def __init__(self, nmap_path: str, parallel: int) -> None:
        self.nmap_path = nmap_path
        self.parallel = max(1, parallel)

    def run(self, jobs: Sequence[ChunkJob], plan: NmapPlan, *, deadline: float,
            on_host_done: Callable[[int], None], on_start: Callable[[int], None],
            cancelled: Callable[[], bool]) -> list[ChunkOutcome]:
        stop = threading.Event()
        counted = threading.Lock()

        def should_stop() -> bool:
            return stop.is_set() or cancelled()

        def host_done(count: int) -> None:
            with counted:  # progress is one object shared by every chunk's thread
                on_host_done(count)

        def one(job: ChunkJob) -> ChunkOutcome:
            if should_stop():
                return ChunkOutcome(job=job, output=None)
            return ChunkOutcome(job=job, output=run_chunk(job, plan, self.nmap_path, deadline, host_done, on_start,
                                                          should_stop))

        outcomes: dict[int, ChunkOutcome] = {}
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="nmap-chunk") as pool:
            pending: set[Future[ChunkOutcome]] = {pool.submit(one, job) for job in jobs}
            try:
                while pending:
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in done:
                        outcome = future.result()
                        outcomes[outcome.job.index] = outcome
                        if outcome.output and (outcome.output.interrupted or outcome.output.timed_out):
                            stop.set()  # the budget is spent or we were told to stop: start nothing new
            except (Interrupted, KeyboardInterrupt):
                # SIGTERM/Ctrl-C reach the main thread: tell every nmap to stop, keep what each finished
                stop.set()
                for future in pending:
                    outcome = future.result()
                    interrupted = outcome.output and dataclasses.replace(outcome.output, interrupted=True)
                    outcomes[outcome.job.index] = dataclasses.replace(outcome, output=interrupted or None)
        return [outcomes[job.index] for job in jobs]
