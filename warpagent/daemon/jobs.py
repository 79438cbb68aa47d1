"""What the daemon runs. Module-level functions, named in the persisted job store by reference.

Each job reloads the config (edits take effect at the next run), is logged with its timing,
and leaves its result in the store for `warpagent jobs`. A failure is recorded and (optionally)
e-mailed; it never stops the scheduler or the other jobs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from feeds.model import FeedError
from feeds.update import update
from reports import alerts, produce
from warpagent import clock, config
from warpagent.daemon.scheduler import STOP
from warpagent.errors import ConfigError, StoreError, WarpagentError
from warpagent.files import write_atomically
from warpagent.model.findings import RunStatus
from warpagent.scan.pipeline import describe_run, scan_estate
from warpagent.sharing import usecases
from warpagent.store.findings import Store

log = logging.getLogger(__name__)


def _recorded(job: str, config_path: str | None, body: Callable[[config.Settings, Store], tuple[str, str]]) -> None:
    started = clock.now()
    began = time.monotonic()
    log.info("job %s: started", job)
    try:
        settings = config.load(config_path)
    except ConfigError as exc:
        log.error("job %s: failed: the config is invalid: %s", job, "; ".join(exc.problems))
        return  # nowhere to record it: the store path comes from the config
    try:
        store = Store(settings.store)
    except StoreError as exc:  # nowhere to record it, but the failure notice still goes
        store, status, detail = None, "failed", str(exc)
    if store is not None:
        try:
            status, detail = body(settings, store)
        except WarpagentError as exc:
            status, detail = "failed", str(exc)
        except Exception as exc:
            log.exception("job %s: internal error", job)
            status, detail = "failed", f"internal error: {exc.__class__.__name__}: {exc}"
    finished = clock.now()
    if store is not None:
        try:
            store.record_job(job, started, finished, status, detail)
        except StoreError as exc:
            log.error("job %s: its result was not recorded: %s", job, exc)
    took = time.monotonic() - began
    (log.info if status == "ok" else log.error)("job %s: %s in %.1f s: %s", job, status, took, detail)
    if status == "failed" and settings.schedule.notify_failures:
        body_text = f"The scheduled job {job} failed at {finished:%Y-%m-%d %H:%M} UTC:\n\n{detail}\n"
        for problem in produce.notify(settings, f"warpagent: job {job} failed", body_text):
            log.error("job %s: failure notice not sent: %s", job, problem)


def feeds_job(config_path: str | None) -> None:
    def body(settings: config.Settings, store: Store) -> tuple[str, str]:
        try:
            result = update(settings.feeds, now=clock.now)
        except FeedError as exc:
            return "failed", str(exc)
        detail = f"{len(result.updated)} updated, {len(result.unchanged)} unchanged"
        changed, told = alerts.reprioritise_and_alert(settings, store, clock.now())
        detail += f"; {changed} findings re-prioritised; {_told(told)}"
        if result.failed:
            return "failed", detail + "; previous data kept for " + "; ".join(
                f"{source}: {reason}" for source, reason in result.failed.items())
        return ("failed", detail + "; " + "; ".join(told.problems)) if told.problems else ("ok", detail)

    _recorded("feeds", config_path, body)


def scan_job(config_path: str | None, estate_name: str) -> None:
    def body(settings: config.Settings, store: Store) -> tuple[str, str]:
        outcome = scan_estate(settings, settings.estate(estate_name), store, cancelled=STOP.is_set)
        run = outcome.delta.run
        told = alerts.send_alerts(settings, store, clock.now())  # the same night, complete run or not
        detail = f"{describe_run(outcome.delta)}; {_told(told)}" + "".join(f"; {p}" for p in told.problems)
        if run.status is not RunStatus.COMPLETE:
            return ("partial" if run.status is RunStatus.PARTIAL else "failed"), detail + "; " + "; ".join(run.errors)
        if settings.schedule.share_after_scan and settings.sharing.peers and not STOP.is_set():
            _recorded("share", config_path, share_body)
        return "ok", detail

    _recorded(f"scan:{estate_name}", config_path, body)


def _told(outcome: alerts.AlertOutcome) -> str:
    return f"{len(outcome.alerts)} alerts"


def alerts_job(config_path: str | None) -> None:
    """Alerts on their own schedule: the mail queue retried, KEV due dates that passed today."""
    def body(settings: config.Settings, store: Store) -> tuple[str, str]:
        told = alerts.send_alerts(settings, store, clock.now())
        detail = f"{_told(told)}, {told.sent} messages sent"
        return ("failed", detail + "; " + "; ".join(told.problems)) if told.problems else ("ok", detail)

    _recorded("alerts", config_path, body)


def share_body(settings: config.Settings, store: Store) -> tuple[str, str]:
    now = clock.now()
    outcome = usecases.send(settings, usecases.build(settings, now.date()), now)
    return _judged(outcome)


def _judged(outcome: usecases.SharingOutcome) -> tuple[str, str]:
    detail = "; ".join(outcome.lines() + list(outcome.errors))
    return ("ok" if outcome.ok else "failed"), detail


def pull_job(config_path: str | None) -> None:
    _recorded("pull", config_path, lambda settings, store: _judged(usecases.pull(settings)))


def board_job(config_path: str | None) -> None:
    def body(settings: config.Settings, store: Store) -> tuple[str, str]:
        now = clock.now()
        # run on the 1st: the month just ended on the council's calendar
        month = clock.shift_month(clock.month_of(now, clock.zone(settings.schedule.timezone)), -1)
        output = produce.board_report(settings, store, month, now)
        folder = settings.store.state_dir / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"board-{month}.html"
        write_atomically(path, output.html)
        store.log_report("board", now)
        if settings.reports.email is None:
            return "ok", f"wrote {path}"
        sent, problems = produce.email_board(settings, output, month)
        detail = f"wrote {path}; {sent} e-mail(s) sent"
        return ("ok", detail) if not problems else ("failed", detail + "; " + "; ".join(problems))

    _recorded("board-report", config_path, body)
