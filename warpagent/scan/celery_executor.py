"""Scan chunks on workers on other machines: Celery, with Redis as the broker and result store.

The agent sends each chunk as a task naming only the estate and the chunk's addresses; nmap's
output comes back through Redis, and the agent parses it and writes the run to its own store, as
it does for a local scan. A worker (`warpagent worker`) runs with its own copy of the council's
config and trusts nothing else in a message: it resolves the estate's scope itself and refuses
any address outside it, and it builds nmap's arguments from its own config, so whoever can
write to the queue can at most ask for a scan the council already configured. Messages are JSON
only (never pickle). At most `parallel` chunks of an estate are in flight at once, each with its
share of `max_rate`; a chunk a worker refuses or loses is recorded and makes the run partial.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from warpagent.collect import chunks, nmap_runner
from warpagent.collect.nmap_runner import Interrupted, NmapOutput, NmapPlan
from warpagent.config import CelerySettings, Settings
from warpagent.errors import CollectError, ConfigError, ScopeError
from warpagent.scan.plan import plan_for, resolve_scope

log = logging.getLogger(__name__)

TASK = "warpagent.scan_chunk"
POLL_S = 0.25
RESULT_GRACE_S = 120  # past the estate's deadline, how long to wait for a worker's last chunk


class ChunkRefused(Exception):
    """A worker would not run a chunk (outside the estate's scope, or an estate it does not know)."""


def broker_url(celery: CelerySettings, secret: Callable[[str, str], str]) -> str:
    """The broker URL with the password from the environment (never from the config)."""
    if not celery.password_env:
        return celery.broker
    password = secret(celery.password_env, "scan.celery.password_env")
    scheme, rest = celery.broker.split("://", 1)
    return f"{scheme}://:{quote(password, safe='')}@{rest}"


def make_app(settings: Settings) -> Any:
    from celery import Celery  # celery and its Redis client load only for a distributed scan

    celery = settings.scan.celery
    url = broker_url(celery, settings.secret)
    app = Celery("warpagent", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"],  # never pickle
        task_default_queue=celery.queue, task_acks_late=True, task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True,
        result_expires=24 * 3600, broker_connection_timeout=10, redis_socket_connect_timeout=10,
        redis_socket_timeout=60)
    scopes: dict[str, frozenset[str]] = {}  # each estate's scope, resolved once per worker process

    def scan_chunk(task: Any, estate: str, index: int, addresses: list[str], budget_s: float,
                   max_rate: int | None) -> dict[str, Any]:
        result = _scan_chunk(settings, scopes, estate, index, addresses, budget_s, max_rate)
        return {**result, "worker": str(task.request.hostname or socket.gethostname())}

    app.task(name=TASK, bind=True)(scan_chunk)
    return app


def _scan_chunk(settings: Settings, scopes: dict[str, frozenset[str]], estate: str, index: int,
                addresses: list[str], budget_s: float, max_rate: int | None) -> dict[str, Any]:
    """On the worker: check the chunk against the estate's own scope, then scan it."""
    try:
        config = settings.estate(estate)
        if estate not in scopes:
            scopes[estate] = frozenset(resolve_scope(config).addresses)
        allowed = scopes[estate]
    except (ConfigError, ScopeError) as exc:
        raise ChunkRefused(f"estate '{estate}' cannot be checked on this worker ({exc})") from None
    outside = [a for a in addresses if a not in allowed]
    if outside:
        log.warning("refused chunk %d of %s: %d addresses outside its scope (%s...)", index, estate, len(outside),
                    outside[0])
        raise ChunkRefused(f"{len(outside)} addresses are outside estate '{estate}' on this worker "
                           f"(first: {outside[0]})")
    # run_chunk gives each chunk its own targets file
    plan, _ports, _notes = plan_for(config, settings.scan.timing, Path("targets.txt"))
    plan = dataclasses.replace(plan, max_rate=max_rate)
    job = chunks.ChunkJob(index=index, estate=estate, addresses=tuple(addresses))
    output = chunks.run_chunk(job, plan, nmap_runner.find_nmap(settings.scan.nmap_path),
                              time.monotonic() + max(1.0, budget_s))
    return dataclasses.asdict(output)


class CeleryExecutor:
    """Chunks as Celery tasks, at most `parallel` in flight; results gathered as they finish."""

    def __init__(self, settings: Settings, parallel: int, app: Any = None) -> None:
        self.settings = settings
        self.parallel = max(1, parallel)
        self.app = app or make_app(settings)

    def _check_broker(self) -> None:
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=10)
        except Exception as exc:  # noqa: BLE001 - kombu raises many kinds; each means "no broker"
            raise CollectError(f"scan.celery.broker {self.settings.scan.celery.broker}: cannot reach the broker "
                               f"({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                               "start Redis there, or set scan.executor: local") from None

    def run(self, jobs: Sequence[chunks.ChunkJob], plan: NmapPlan, *, deadline: float,
            on_host_done: Callable[[int], None], on_start: Callable[[int], None],
            cancelled: Callable[[], bool]) -> list[chunks.ChunkOutcome]:
        self._check_broker()
        waiting = list(jobs)
        running: dict[int, tuple[chunks.ChunkJob, Any]] = {}
        outcomes: dict[int, chunks.ChunkOutcome] = {}
        stopped = False
        try:
            while waiting or running:
                if cancelled():
                    raise Interrupted("cancelled")
                while waiting and len(running) < self.parallel and time.monotonic() < deadline:
                    job = waiting.pop(0)
                    remaining = deadline - time.monotonic()
                    result = self.app.send_task(TASK, kwargs={
                        "estate": job.estate, "index": job.index, "addresses": list(job.addresses),
                        "budget_s": remaining, "max_rate": plan.max_rate}, expires=remaining)
                    running[job.index] = (job, result)
                if not running and waiting:  # the budget ran out before these could be sent
                    break
                for index, (job, result) in list(running.items()):
                    if result.ready():
                        del running[index]
                        outcomes[index] = self._outcome(job, result, on_host_done)
                    elif time.monotonic() > deadline + RESULT_GRACE_S:
                        result.revoke(terminate=True)
                        del running[index]
                        outcomes[index] = chunks.ChunkOutcome(job=job, output=None, problem=(
                            f"chunk {index + 1} of estate {job.estate}: no result from the workers within the "
                            "estate's time budget"))
                time.sleep(POLL_S)
        except (Interrupted, KeyboardInterrupt):
            stopped = True
            for index, (job, result) in running.items():
                result.revoke(terminate=True)  # the worker stops nmap; what it had is lost with the task
                outcomes[index] = chunks.ChunkOutcome(job=job, output=NmapOutput("", "", None, interrupted=True))
        ran_out = not stopped and bool(waiting)
        for job in waiting:
            outcomes[job.index] = chunks.ChunkOutcome(job=job, output=NmapOutput(
                "", "", None, interrupted=stopped, timed_out=ran_out))
        return [outcomes[job.index] for job in jobs]

    @staticmethod
    def _outcome(job: chunks.ChunkJob, result: Any, on_host_done: Callable[[int], None]) -> chunks.ChunkOutcome:
        if not result.successful():
            reason = result.result
            text = f"{reason.__class__.__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
            result.forget()
            return chunks.ChunkOutcome(job=job, output=None, problem=(
                f"chunk {job.index + 1} of estate {job.estate} ({len(job.addresses)} addresses) was not scanned: "
                f"{text.splitlines()[0] if text else 'the worker failed'}"))
        value = result.get(propagate=False)
        result.forget()
        worker = str(value.pop("worker", "?"))
        output = NmapOutput(**{**value, "overran": tuple(tuple(e) for e in value.get("overran", ()))})
        # A remote chunk reports when it is done, not host by host: the hosts nmap wrote, as a local
        # chunk streams them; collect() counts the rest (down hosts) for every complete chunk.
        on_host_done(output.xml.count("</host>"))
        return chunks.ChunkOutcome(job=job, output=output, worker=worker)


def run_worker(settings: Settings, concurrency: int, name: str) -> None:
    """`warpagent worker`: consume scan chunks from the queue until SIGTERM."""
    app = make_app(settings)
    queue = settings.scan.celery.queue
    app.worker_main(["worker", "--loglevel=INFO", f"--concurrency={concurrency}", "-Q", queue,
                     "-n", f"{name}@{socket.gethostname()}", "--without-mingle", "--without-gossip",
                     "--pool=prefork"])
