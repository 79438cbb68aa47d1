"""Alerts the same night: one plain-text e-mail per event the security team must act on, sent
through the board report's mail queue (kept while the server is down, never sent twice)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from feeds.intel_store import IntelStore
from feeds.model import FeedError
from reports import mailer
from warpagent.config import Settings
from warpagent.model.findings import EventKind
from warpagent.scan.reprioritise import reprioritise
from warpagent.store.alerts import AlertEvent, AlertLog
from warpagent.store.decisions import FindingDecisions
from warpagent.store.findings import Store

WHAT = {EventKind.OPENED: "new critical finding", EventKind.BECAME_KEV: "now actively exploited (CISA KEV)",
        EventKind.SEVERITY_CHANGED: "severity rose", EventKind.KEV_PAST_DUE: "CISA KEV due date passed",
        EventKind.EXPIRED: "accepted risk lapsed"}


@dataclass(frozen=True)
class AlertOutcome:
    alerts: tuple[AlertEvent, ...]  # what was (or, in a dry run, would be) sent
    sent: int = 0  # messages the SMTP server took (alerts and anything else queued)
    problems: tuple[str, ...] = ()
    dry_run: bool = False


def subject_and_body(settings: Settings, alert: AlertEvent) -> tuple[str, str]:
    f = alert.tracked.finding
    what = f"{WHAT[alert.kind]}: {f.title} on {f.asset}"
    template = settings.reports.alerts.subject if settings.reports.alerts else "{what}"
    subject = template.replace("{organisation}", settings.organisation.name).replace("{what}", what)
    when = f"{alert.at:%Y-%m-%d %H:%M} UTC"
    if alert.kind is EventKind.OPENED:  # its detail is the severity, which the opening already says
        opening = f"A new {f.severity.label} finding, first seen {when}."
    else:
        opening = f"{WHAT[alert.kind].capitalize()} ({when})" + (f": {alert.detail}" if alert.detail else ".")
    lines = [opening, "",
             f"Finding {alert.tracked.id} ({f.check_id}, {f.severity.label}) in estate {f.estate}",
             f"On: {f.asset} {f.subject}", f"What: {f.title}", f"Evidence: {f.evidence}",
             f"Fix: {f.remediation}"]
    if f.kev_due:
        lines.append(f"CISA KEV due date: {f.kev_due}" + (" (used by ransomware)" if f.ransomware else ""))
    lines += ["", f"History and decisions: warpagent findings show {alert.tracked.id}"]
    return subject, "\n".join(lines) + "\n"


def send_alerts(settings: Settings, store: Store, now: dt.datetime, *, dry_run: bool = False) -> AlertOutcome:
    """Queue one message per new event worth telling, then send the queue. Nothing without
    reports.alerts; a dry run sends and marks nothing."""
    alerts, mail = settings.reports.alerts, settings.reports.email
    if alerts is None or mail is None:
        return AlertOutcome(alerts=(), dry_run=dry_run)
    log = AlertLog(store)
    if not dry_run:
        FindingDecisions(store).expire_lapsed(now)
    log.mark_kev_past_due(now)
    pending = tuple(log.unsent(settle=not dry_run))
    if dry_run:
        return AlertOutcome(alerts=pending, dry_run=True)
    team = dataclasses.replace(mail, to=alerts.to)
    for alert in pending:
        subject, body = subject_and_body(settings, alert)
        mailer.queue(mail, f"alert-{alert.seq}", mailer.compose_text(team, subject=subject, text=body))
    log.mark_sent([a.seq for a in pending])  # on disk in the queue: from here it is sent at most once
    password = settings.secret(mail.password_env, "reports.email.password_env") if mail.password_env else None
    sent, problems = mailer.send_pending(mail, password)
    return AlertOutcome(alerts=pending, sent=sent, problems=tuple(problems))


def reprioritise_and_alert(settings: Settings, store: Store, now: dt.datetime, *,
                           dry_run: bool = False) -> tuple[int, AlertOutcome]:
    """What `feeds update` does next, by hand or in the daemon: the stored findings re-ranked
    against the new intel (not in a dry run), then the alerts that follow from it."""
    changed = 0
    if not dry_run and settings.feeds.intel_path.exists():
        try:
            with IntelStore(settings.feeds.intel_path) as intel:
                changed = len(reprioritise(store, intel, now))
        except FeedError as exc:
            return 0, AlertOutcome(alerts=(), problems=(f"findings not re-prioritised: {exc}",))
    return changed, send_alerts(settings, store, now, dry_run=dry_run)
