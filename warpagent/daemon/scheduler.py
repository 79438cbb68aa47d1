"""`warpagent run`: the scheduler daemon (APScheduler 3, jobs persisted in the store: SQLite or PostgreSQL).

- One job per estate scan (share after a complete scan), one pull, one board report.
- Coalescing on, one instance of a job at a time, and a misfire grace: a run missed while the
  machine was down happens once when the daemon is back, if it is back within the grace.
  Stored jobs whose schedule is unchanged are kept as they are on restart, so their missed
  next_run_time is not lost (re-adding a job would recompute it).
- A lock file beside the store: a second daemon on the same store refuses to start.
- SIGTERM or SIGINT: a running scan stops its nmap and records a partial run; the daemon exits.
- Every job run is logged (start, finish or failure, with timings) and recorded in the store;
  one estate's or one peer's failure never stops the others.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from warpagent import config
from warpagent.config.schedule_rules import OFF, cron_trigger
from warpagent.errors import WarpagentError
from warpagent.store import database
from warpagent.store.database import StoreLocation

log = logging.getLogger(__name__)

STOP = threading.Event()  # set by SIGTERM/SIGINT: running scans stop their nmap


class DaemonLocked(WarpagentError):
    """Another daemon holds this store."""


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: str  # "module:function", so the persisted job needs nothing pickled but its arguments
    args: tuple[Any, ...]
    cron: str
    what: str


def lock_path(store: StoreLocation) -> Path:
    """Beside a SQLite store; for a database server, in the config's folder, named after the database."""
    if store.path is not None:
        return store.path.with_name(store.path.name + ".daemon.lock")
    return store.state_dir / f"warpagent-{hashlib.sha256(store.url.encode()).hexdigest()[:12]}.daemon.lock"


class DaemonLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise DaemonLocked(f"another warpagent daemon (pid {holder}) is already running on this store "
                               f"(lock {self.path}); stop it first, or give this one its own store") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def holder(store: StoreLocation) -> str | None:
    """The pid of the daemon holding the store's lock, or None when no daemon runs."""
    lock = DaemonLock(lock_path(store))
    try:
        lock.acquire()
    except DaemonLocked:
        return lock.path.read_text().strip() or "unknown"
    lock.release()
    return None


def desired_jobs(settings: config.Settings, config_path: str | None) -> list[JobSpec]:
    jobs = [JobSpec(id=f"scan:{e.name}", func="warpagent.daemon.jobs:scan_job", args=(config_path, e.name),
                    cron=settings.schedule.scan_for(e.name),
                    what=f"scan estate {e.name}" + (" and share" if settings.schedule.share_after_scan
                                                    and settings.sharing.peers else ""))
            for e in settings.estates]
    jobs.insert(0, JobSpec(id="feeds", func="warpagent.daemon.jobs:feeds_job", args=(config_path,),
                           cron=settings.schedule.feeds, what="update the intel feeds"))
    if settings.sharing.peers:
        jobs.append(JobSpec(id="pull", func="warpagent.daemon.jobs:pull_job", args=(config_path,),
                            cron=settings.schedule.pull, what="pull peers' new objects"))
    if settings.reports.alerts:
        jobs.append(JobSpec(id="alerts", func="warpagent.daemon.jobs:alerts_job", args=(config_path,),
                            cron=settings.schedule.alerts, what="send the security team's alerts"))
    jobs.append(JobSpec(id="board-report", func="warpagent.daemon.jobs:board_job", args=(config_path,),
                        cron=settings.schedule.board_report,
                        what="board report for the month before" + (", e-mailed" if settings.reports.email else "")))
    return [job for job in jobs if job.cron != OFF]  # any job's schedule may be "off": done by hand only


def _sync_jobs(scheduler: BackgroundScheduler, specs: list[JobSpec], timezone: str) -> None:
    wanted = {spec.id for spec in specs}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            log.info("job %s is no longer configured; removed", job.id)
            job.remove()
    for spec in specs:
        trigger = cron_trigger(spec.cron, timezone)
        existing = scheduler.get_job(spec.id)
        if existing is not None and str(existing.trigger) == str(trigger) and existing.args == spec.args:
            if existing.func_ref != spec.func:  # stored by a release before the package layout
                existing.modify(func=spec.func)
            continue  # keep its stored next_run_time: a run missed while we were down still happens
        scheduler.add_job(spec.func, trigger=trigger, args=spec.args, id=spec.id, name=spec.what,
                          replace_existing=True)


def _on_missed(event: JobExecutionEvent) -> None:
    log.warning("job %s missed its run at %s (the daemon was down longer than schedule.misfire_grace); "
                "it runs at its next time", event.job_id, event.scheduled_run_time)


def job_store(store: StoreLocation) -> SQLAlchemyJobStore:
    """The scheduler's jobs, kept in the findings store through the store's own engine. With an engine
    of its own APScheduler made a new SQLite file in rollback-journal mode, and a scan job opening the
    store as its slot fired (switching the file to WAL) met "database is locked" and never ran."""
    return SQLAlchemyJobStore(engine=database.engine(store))


def run(settings: config.Settings, config_path: str | None, *, ready: Callable[[], None] = lambda: None) -> int:
    """Run until SIGTERM or SIGINT. Returns the exit code."""
    lock = DaemonLock(lock_path(settings.store))
    lock.acquire()
    STOP.clear()
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping (a running scan records a partial run)", signum)
        STOP.set()
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler = BackgroundScheduler(
        jobstores={"default": job_store(settings.store)},
        executors={"default": ThreadPoolExecutor(2)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.schedule.misfire_grace_s},
        timezone=settings.schedule.timezone)
    try:
        scheduler.add_listener(_on_missed, EVENT_JOB_MISSED)
        scheduler.start(paused=True)
        specs = desired_jobs(settings, config_path)
        _sync_jobs(scheduler, specs, settings.schedule.timezone)
        scheduler.resume()
        for job in scheduler.get_jobs():
            log.info("job %s (%s): next run %s", job.id, job.name, job.next_run_time)
        ready()
        while not stopping.wait(1.0):
            pass
        started = time.monotonic()
        scheduler.shutdown(wait=True)
        log.info("stopped in %.1f s", time.monotonic() - started)
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        lock.release()
    return 0


def next_runs(store: StoreLocation) -> dict[str, dt.datetime | None]:
    """Next run times as the daemon stored them (None where no daemon has stored the job yet)."""
    if not store.exists():
        return {}
    try:
        with database.reading(database.engine(store)) as connection:
            rows = connection.execute(sa.text("SELECT id, next_run_time FROM apscheduler_jobs")).all()
    except sa.exc.DBAPIError:  # no daemon has made its table yet, or the database is unreachable
        return {}
    return {job_id: dt.datetime.fromtimestamp(ts, dt.UTC) if ts is not None else None for job_id, ts in rows}
