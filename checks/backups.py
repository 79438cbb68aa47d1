"""backups (WA7xx): backups that are missing, stale, untested or have no offline copy.

From backup tool reports (restic, borg, the documented CSV) and from restore tests warpagent
runs itself on configured restic repositories. Judged per job against the estate's policy
(`backups.max_age`, default 26 hours, or the job's own in `backups.max_age_by_job`;
`backups.restore_test_within`, default 90 days).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from checks.base import CheckContext, Weakness, check
from warpagent.model.evidence import BackupKind, BackupRecord, EvidenceKind
from warpagent.model.findings import Host, Severity


def _jobs(host: Host) -> dict[tuple[str, str], list[BackupRecord]]:
    jobs: dict[tuple[str, str], list[BackupRecord]] = {}
    for record in host.evidence.backups:
        jobs.setdefault((record.tool, record.job), []).append(record)
    return {key: sorted(records, key=lambda r: r.at) for key, records in sorted(jobs.items())}


def _age(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} hours" if hours < 72 else f"{hours / 24:.0f} days"


@check("WA701", "backups", "backup-stale", evidence=(EvidenceKind.BACKUP,))
def backup_stale(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A backup job's last successful backup is older than the estate's policy (default 26
    hours, or the job's own: a weekly job given a week), or the job has never succeeded.

    Why it matters: after ransomware, the newest good backup decides how much work is lost;
    a job that quietly stopped is found on the worst day.
    Fix: find why the job stopped (its log, credentials, disk space), run it, and alert on failure.
    """
    for (tool, job), records in _jobs(host).items():
        backups = [r for r in records if r.kind is BackupKind.BACKUP]
        if not backups:
            continue
        good = [r for r in backups if r.ok]
        latest = good[-1] if good else None
        allowed = ctx.policy.backup_max_age_for(tool, job)
        if latest is not None and ctx.now - latest.at <= allowed:
            continue
        last_try = backups[-1]
        what = (f"last successful backup {_age(ctx.now - latest.at)} ago ({latest.at:%Y-%m-%d %H:%M} UTC)"
                if latest else "no successful backup on record")
        failing = "" if last_try.ok else f"; the latest run failed ({last_try.where} {last_try.detail}".strip() + ")"
        yield Weakness(subject=f"backup:{tool}:{job}:age", severity=Severity.HIGH,
                       title=f"{tool} backup '{job}' is stale: {what}",
                       evidence=f"{(latest or last_try).where}: {what}{failing}; policy: within "
                                f"{_age(allowed)}",
                       remediation=f"Check the {tool} job for '{job}' (schedule, credentials, target space), run it "
                                   "now, and make failures alert someone.")


@check("WA702", "backups", "restore-test-overdue", evidence=(EvidenceKind.BACKUP,))
def restore_test_overdue(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A backup job has no successful restore test recorded within the estate's policy
    (default 90 days). Restore tests come from backups.csv rows (kind restore-test) or from
    warpagent's own restic restore test.

    Why it matters: an untested backup is a hope, not a backup; councils have found out during
    an incident that theirs could not be restored.
    Fix: restore a sample to a scratch location, compare it, and record the test.
    """
    for (tool, job), records in _jobs(host).items():
        if not any(r.kind is BackupKind.BACKUP for r in records):
            continue
        tests = [r for r in records if r.kind is BackupKind.RESTORE_TEST and r.ok]
        if tests and ctx.now - tests[-1].at <= ctx.policy.restore_test_within:
            continue
        what = f"last successful restore test {tests[-1].at:%Y-%m-%d}" if tests else "no restore test on record"
        yield Weakness(subject=f"backup:{tool}:{job}:restore-test", severity=Severity.MEDIUM,
                       title=f"{tool} backup '{job}' has not been restore-tested within policy ({what})",
                       evidence=f"{(tests[-1] if tests else records[-1]).where}: {what}; policy: within "
                                f"{ctx.policy.restore_test_within.days} days",
                       remediation=f"Restore a sample of '{job}' to a scratch folder, compare it with the original, "
                                   "and record the test in backups/backups.csv (or let warpagent test a restic "
                                   "repository: backups.restic in the config).")


@check("WA703", "backups", "no-offline-copy", evidence=(EvidenceKind.BACKUP,))
def no_offline_copy(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """Backups are recorded for the host, but none is an offline or immutable copy.

    Why it matters: ransomware crews delete or encrypt every backup they can reach before they
    strike; only an offline or immutable copy is sure to survive.
    Fix: keep one copy offline or immutable (append-only rest-server, object lock, rotated
    disks), and record it (`offline` column in backups.csv, or `offline: true` for a repository).
    """
    records = host.evidence.backups
    if not records or any(r.offline for r in records):
        return
    jobs = sorted({f"{r.tool} '{r.job}'" for r in records})
    yield Weakness(subject="backup:offline-copy", severity=Severity.MEDIUM,
                   title="No offline or immutable backup copy is recorded",
                   evidence=f"{records[0].where} and {len(records) - 1} more record(s) for {', '.join(jobs[:5])}: "
                            "none marked offline or immutable",
                   remediation="Keep one backup copy offline or immutable and record it (offline=yes in "
                               "backups/backups.csv, or offline: true for a restic repository in the config).")


@check("WA704", "backups", "restore-test-failed", evidence=(EvidenceKind.BACKUP,))
def restore_test_failed(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """The latest restore test of a backup job failed: a `restic check` that found damage, a
    sample that would not restore or came back different, or a failed test in backups.csv.

    Why it matters: the backup cannot be trusted to bring the data back.
    Fix: find the damage (`restic check --read-data`), repair or replace the repository, take a
    fresh full backup, and test again.
    """
    for (tool, job), records in _jobs(host).items():
        tests = [r for r in records if r.kind is BackupKind.RESTORE_TEST]
        if tests and not tests[-1].ok:
            latest = tests[-1]
            yield Weakness(subject=f"backup:{tool}:{job}:restore-failed", severity=Severity.HIGH,
                           title=f"The latest restore test of {tool} backup '{job}' failed",
                           evidence=f"{latest.where} ({latest.at:%Y-%m-%d %H:%M} UTC): {latest.detail or 'failed'}",
                           remediation=f"Investigate the '{job}' backup now: run restic check --read-data (or the "
                                       "tool's own verify), repair or recreate the repository, take a fresh backup "
                                       "and test a restore again.")

