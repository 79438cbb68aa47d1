"""What the daemon runs. Module-level functions, named in the persisted job store by reference.

Each job reloads the config (edits take effect at the next run), is logged with its timing,
and leaves its result in the store for `warpagent jobs`. A failure is recorded and (optionally)
e-mailed; it never stops the scheduler or the other jobs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from warpagent import clock, config
from warpagent.daemon import STOP
from warpagent.errors import ConfigError, WarpagentError
from warpagent.models import RunStatus
from warpagent.store import Store

log = logging.getLogger("warpagent.jobs")


def _recorded(job: str, config_path: str | None, body: Callable[[config.Settings, Store], tuple[str, str]]) -> None:
    started = clock.now()
    began = time.monotonic()
    log.info("job %s: started", job)
    try:
        settings = config.load(config_path)
    except ConfigError as exc:
        log.error("job %s: failed: the config is invalid: %s", job, "; ".join(exc.problems))
        return  # nowhere to record it: the store path comes from the config
    with Store(settings.store) as store:
        try:
            status, detail = body(settings, store)
        except WarpagentError as exc:
            status, detail = "failed", str(exc)
        except Exception as exc:
            log.exception("job %s: internal error", job)
            status, detail = "failed", f"internal error: {exc.__class__.__name__}: {exc}"
        finished = clock.now()
        store.record_job(job, started, finished, status, detail)
    took = time.monotonic() - began
    (log.info if status == "ok" else log.error)("job %s: %s in %.1f s: %s", job, status, took, detail)
    if status == "failed" and settings.schedule.notify_failures:
        from reports import produce

        body_text = f"The scheduled job {job} failed at {finished:%Y-%m-%d %H:%M} UTC:\n\n{detail}\n"
        for problem in produce.notify(settings, f"warpagent: job {job} failed", body_text):
            log.error("job %s: failure notice not sent: %s", job, problem)


def feeds_job(config_path: str | None) -> None:
    def body(settings: config.Settings, store: Store) -> tuple[str, str]:
        from feeds.model import FeedError
        from feeds.update import update

        try:
            result = update(settings.feeds, now=clock.now)
        except FeedError as exc:
            return "failed", str(exc)
        detail = f"{len(result.updated)} updated, {len(result.unchanged)} unchanged"
        if result.failed:
            return "failed", detail + "; previous data kept for " + "; ".join(
                f"{source}: {reason}" for source, reason in result.failed.items())
        return "ok", detail

    _recorded("feeds", config_path, body)


def scan_job(config_path: str | None, estate_name: str) -> None:
    def body(settings: config.Settings, store: Store) -> tuple[str, str]:
        from warpagent.scan import scan_estate

        outcome = scan_estate(settings, settings.estate(estate_name), store, cancelled=STOP.is_set)
        run = outcome.delta.run
        detail = (f"run {run.id} {run.status.value}: {len(outcome.delta.new)} new, {len(outcome.delta.resolved)} "
                  f"resolved, {run.hosts_up} hosts up")
        if run.status is not RunStatus.COMPLETE:
            return ("partial" if run.status is RunStatus.PARTIAL else "failed"), detail + "; " + "; ".join(run.errors)
        if settings.schedule.share_after_scan and settings.sharing.peers and not STOP.is_set():
            _recorded("share", config_path, share_body)
        return "ok", detail

    _recorded(f"scan:{estate_name}", config_path, body)


def share_body(settings: config.Settings, store: Store) -> tuple[str, str]:
    from warpagent import share
    from warpagent.peer_intel import PeerIntel

    now = clock.now()
    with PeerIntel(settings.store) as intel:
        built = share.build_bundle(settings, store, intel, now.date())
    reports = share.queue_and_deliver(settings, built, now)
    detail = "; ".join(f"{r.peer}: {r.delivered} delivered, {r.pending} waiting" for r in reports)
    errors = [e for r in reports for e in r.errors]
    return ("ok", detail) if not errors else ("failed", detail + "; " + "; ".join(errors))


def pull_job(config_path: str | None) -> None:
    def body(settings: config.Settings, store: Store) -> tuple[str, str]:
        from warpagent import share
        from warpagent.peer_intel import PeerIntel

        with PeerIntel(settings.store) as intel:
            reports = share.pull(settings, intel)
        detail = "; ".join(f"{r.peer}: {r.accepted_objects} kept, {r.rejected_objects} rejected" for r in reports)
        errors = [e for r in reports for e in r.errors]
        return ("ok", detail) if all(r.ok for r in reports) else ("failed", detail + "; " + "; ".join(errors))

    _recorded("pull", config_path, body)


def board_job(config_path: str | None) -> None:
    def body(settings: config.Settings, store: Store) -> tuple[str, str]:
        from reports import produce

        now = clock.now()
        # run on the 1st: the month just ended on the council's calendar
        month = clock.shift_month(clock.month_of(now, clock.zone(settings.schedule.timezone)), -1)
        output = produce.board_report(settings, store, month, now)
        folder = settings.store.state_dir / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"board-{month}.html"
        path.with_suffix(".tmp").write_text(output.html, encoding="utf-8")
        path.with_suffix(".tmp").replace(path)
        store.log_report("board", now)
        if settings.reports.email is None:
            return "ok", f"wrote {path}"
        sent, problems = produce.email_board(settings, output, month)
        detail = f"wrote {path}; {sent} e-mail(s) sent"
        return ("ok", detail) if not problems else ("failed", detail + "; " + "; ".join(problems))

    _recorded("board-report", config_path, body)
