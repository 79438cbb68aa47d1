"""Where the daemon's jobs lived before the package layout: stores made by those releases name
them `warpagent.jobs:<job>` in APScheduler's persisted job table, and APScheduler imports that
reference to run a stored job. The daemon re-registers jobs under warpagent.daemon.jobs when it
starts; this keeps the old references loadable until then (and for a daemon not yet restarted)."""

from warpagent.daemon.jobs import board_job, feeds_job, pull_job, scan_job

__all__ = ["board_job", "feeds_job", "pull_job", "scan_job"]
