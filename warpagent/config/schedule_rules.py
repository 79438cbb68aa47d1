"""Cron expressions as APScheduler triggers: five fields, or six with seconds first."""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger

OFF = "off"  # a schedule that never fires: the job is run by hand only


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    fields = expression.split()
    if len(fields) == 5:
        return CronTrigger.from_crontab(expression, timezone=timezone)
    if len(fields) == 6:
        second, minute, hour, day, month, weekday = fields
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=weekday,
                           timezone=timezone)
    raise ValueError(f"{len(fields)} fields; cron needs 5 (or 6 with seconds first)")
