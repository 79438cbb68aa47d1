"""Producing the board report from a store, and e-mailing it: shared by the CLI and the daemon."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from feeds.intel_store import IntelStore
from feeds.model import FeedError, SourceStatus
from feeds.update import FeedSettings
from reports import board, board_coverage, mailer, render
from warpagent import clock
from warpagent.config import EstateConfig, Settings
from warpagent.errors import ConfigError
from warpagent.scan import coverage
from warpagent.sharing import anonymise, regional_stix, stix_bundle
from warpagent.store.findings import Store
from warpagent.store.peer_intel import PeerIntel


@dataclass(frozen=True)
class BoardOutput:
    data: board.BoardReport
    html: str
    text: str


def own_identity(settings: Settings) -> str | None:
    """Our own member identity in pulled data (when the pseudonym key is available), to leave it out."""
    try:
        key = settings.pseudonym_key()
    except ConfigError:
        return None  # no key, or one share would refuse: the report then leaves nothing out
    return stix_bundle.member_identity_id(anonymise.pseudonym(key, settings.organisation.name))


def _intel_sources(feeds: FeedSettings) -> list[SourceStatus]:
    """The intel the scans had, as the compiled store records it (none when there is no store)."""
    try:
        with IntelStore(feeds.intel_path) as intel:
            return intel.sources()
    except FeedError:
        return []


def estate_coverage(estates: Sequence[EstateConfig], feeds: FeedSettings, store: Store,
                    sources: list[SourceStatus] | None = None) -> tuple[coverage.EstateCoverage, ...]:
    """What each configured estate's latest finished scan measured, and with the intel that scan
    had (the intel there is now, `sources`, only for runs too old to have recorded theirs)."""
    latest = store.latest_finished_runs()
    present = {s.source for s in (_intel_sources(feeds) if sources is None else sources)}
    return coverage.estates([(e.name, latest[e.name].unmeasured if e.name in latest else None,
                              latest[e.name].intel if e.name in latest else None) for e in estates], present)


def board_report(settings: Settings, store: Store, month: str, now: dt.datetime) -> BoardOutput:
    with PeerIntel(settings.store) as intel:
        postures = intel.latest("x-warpagent-posture")
        regional = regional_stix.latest(intel.latest("x-warpagent-regional"))
    own = own_identity(settings)
    postures = [p for p in postures if p.get("created_by_ref") != own]
    sources = _intel_sources(settings.feeds)
    data = board.build(store.findings(), store.runs(limit=10000), organisation=settings.organisation.name,
                       title=settings.reports.title, month=month, now=now, rules=settings.reports.rag,
                       peer_postures=postures, k=settings.sharing.k, regional=regional,
                       measured=store.measured_categories(),
                       tz=clock.zone(settings.schedule.timezone),
                       intel=board_coverage.intel_coverage(sources, settings.feeds.sources, now.date()),
                       measured_with=estate_coverage(settings.estates, settings.feeds, store, sources))
    context = {"report": data, "colour": settings.reports.primary_colour,
               "logo": render.logo_data_uri(settings.reports.logo)}
    return BoardOutput(data=data, html=render.render("board.html.j2", **context),
                       text=render.render("board.txt.j2", **context))


def email_board(settings: Settings, output: BoardOutput, month: str) -> tuple[int, list[str]]:
    """Queue this month's board report (replacing an unsent copy) and send everything queued."""
    mail = settings.reports.email
    if mail is None:
        raise ConfigError([f"{settings.source}: At 'reports': no email settings; add reports.email "
                           "(smtp_host, from, to) to send the board report"])
    message = mailer.compose(mail, organisation=settings.organisation.name, month=output.data.month,
                             html=output.html, text=output.text)
    mailer.queue(mail, f"board-{month}", message)
    password = settings.secret(mail.password_env, "reports.email.password_env") if mail.password_env else None
    return mailer.send_pending(mail, password)


def notify(settings: Settings, subject: str, body: str) -> list[str]:
    """A plain-text notice to the report recipients (job failures); problems are returned, not raised."""
    mail = settings.reports.email
    if mail is None:
        return ["schedule.notify_failures is on but reports.email is not configured"]
    message = mailer.compose_text(mail, subject=subject, text=body)
    mailer.queue(mail, f"notice-{clock.now().strftime('%Y%m%dT%H%M%S%f')}", message)
    password = settings.secret(mail.password_env, "reports.email.password_env") if mail.password_env else None
    return mailer.send_pending(mail, password)[1]
