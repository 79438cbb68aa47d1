"""Share and pull: build the anonymised bundle, queue it, deliver it to every peer; fetch peers' news.

One peer that is down, slow or broken never stops the others: each is tried in turn, with
retries and exponential backoff, and whatever is not delivered stays in the outbox.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from stix2validator import ValidationOptions, validate_parsed_json

from checks import ALL_CHECKS
from warpagent import anonymise, stix_bundle
from warpagent.config import Settings
from warpagent.errors import ConfigError
from warpagent.models import FindingStatus
from warpagent.outbox import Outbox
from warpagent.peer_intel import PeerIntel
from warpagent.stix_bundle import ShareError
from warpagent.store import Store
from warpagent.taxii import TRANSIENT, Page, PeerClient

log = logging.getLogger(__name__)

MAX_OBJECT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class BuiltBundle:
    bundle: dict[str, Any]
    text: str
    posture: anonymise.SharedPosture


def identifying_strings(settings: Settings, store: Store) -> set[str]:
    """Everything that would name the council, an estate, a host or a person if it were shared."""
    strings = {settings.organisation.name}
    for estate in settings.estates:
        strings |= {estate.name, *estate.targets, *estate.exclude}
    for tracked in store.findings():
        strings.add(tracked.finding.asset)
    for peer in settings.sharing.peers:
        strings |= {peer.username} - {""}
    return {s for s in strings if len(s) >= 3}


def build_bundle(settings: Settings, store: Store, intel: PeerIntel, today: dt.date) -> BuiltBundle:
    key = settings.secret(settings.sharing.pseudonym_key_env, "sharing.pseudonym_key_env")
    member = anonymise.pseudonym(key.encode(), settings.organisation.name)
    region_versions = intel.region_versions(stix_bundle.member_identity_id(member))
    posture = anonymise.anonymise(
        store.findings(status=FindingStatus.OPEN.value), member=member, sector=settings.organisation.sector,
        region=settings.organisation.region, as_of=today, k=settings.sharing.k,
        measured={c.category for c in ALL_CHECKS} - store.unmeasured_categories(), region_versions=region_versions)
    bundle = stix_bundle.build(posture, settings.sharing.tlp)
    text = stix_bundle.to_json(bundle)
    errors = stix_bundle.validate(text)
    if errors:
        raise ShareError(f"the bundle failed STIX 2.1 validation ({errors[0]}); nothing was shared")
    lowered = text.casefold()
    for value in identifying_strings(settings, store):
        if value.casefold() in lowered:
            # The anonymiser let something identifying through: refuse, and never echo the value.
            raise ShareError("refusing to share: the bundle contains an identifying string from the config or "
                             "the findings (organisation, estate, target or asset); nothing was shared. Please "
                             "report this as a warpagent bug")
    return BuiltBundle(bundle=bundle, text=text, posture=posture)


@dataclass
class PeerReport:
    peer: str
    ok: bool = True
    delivered: int = 0
    pending: int = 0
    accepted_objects: int = 0
    rejected_objects: int = 0
    errors: list[str] = field(default_factory=list)


def _client(settings: Settings, peer_index: int) -> PeerClient:
    return PeerClient(settings, settings.sharing.peers[peer_index])


def deliver(settings: Settings, outbox: Outbox, *, attempts: int = 3, backoff_s: float = 1.0,
            sleep: Callable[[float], None] = time.sleep, batch_size: int = 500) -> list[PeerReport]:
    """Send every queued bundle to its peer, oldest first; stop a peer's queue at its first failure."""
    reports = []
    for index, peer in enumerate(settings.sharing.peers):
        report = PeerReport(peer=peer.name)
        reports.append(report)
        queue = outbox.pending(peer.name)
        if not queue:
            continue
        try:
            client = _client(settings, index)
        except ConfigError as exc:
            report.ok, report.pending = False, len(queue)
            report.errors += exc.problems
            continue
        try:
            for path in queue:
                bundle = json.loads(path.read_text(encoding="utf-8"))
                problem = ""
                for attempt in range(attempts):
                    try:
                        result = client.push(bundle, batch_size=batch_size)
                    except TRANSIENT as exc:
                        problem = f"{exc.__class__.__name__}: {_short(exc)}"
                    except ShareError as exc:
                        problem = str(exc)
                    else:
                        if result.delivered:
                            outbox.delivered(path)
                            report.delivered += 1
                            log.info("peer %s: delivered %s (%d new, %d already there)", peer.name, path.name,
                                     result.accepted, result.already_there)
                            break
                        problem = f"the server lacks {len(result.missing)} of the bundle's objects"
                    if attempt + 1 < attempts:
                        sleep(backoff_s * 2 ** attempt)
                else:
                    report.ok = False
                    report.errors.append(f"peer {peer.name}: {path.name} not delivered after {attempts} "
                                         f"attempts ({problem}); kept in the outbox for the next run")
                    break
        finally:
            client.close()
        report.pending = len(outbox.pending(peer.name))
    return reports


def queue_and_deliver(settings: Settings, built: BuiltBundle, now: dt.datetime) -> list[PeerReport]:
    """Queue the bundle for every peer (on disk first), then deliver everything queued."""
    outbox = Outbox(settings.sharing.outbox)
    for peer in settings.sharing.peers:
        outbox.put(peer.name, built.bundle["id"], built.text, now)
    return deliver(settings, outbox)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:200]


def _object_problem(obj: object) -> str | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not isinstance(obj.get("type"), str):
        return "not a STIX object (no id or type)"
    if len(json.dumps(obj)) > MAX_OBJECT_BYTES:
        return f"larger than {MAX_OBJECT_BYTES} bytes"
    results = validate_parsed_json(obj, ValidationOptions(version="2.1"))
    errors = [e for r in (results if isinstance(results, list) else [results]) for e in r.errors]
    return f"invalid STIX 2.1 ({_short(errors[0])})" if errors else None


def pull(settings: Settings, intel: PeerIntel, per_page: int = 500) -> list[PeerReport]:
    """Fetch what each peer added since last time; keep the valid objects, log and skip the rest."""
    reports = []
    for index, peer in enumerate(settings.sharing.peers):
        report = PeerReport(peer=peer.name)
        reports.append(report)
        try:
            client = _client(settings, index)
        except ConfigError as exc:
            report.ok = False
            report.errors += exc.problems
            continue
        try:
            tracker = _Position(intel.position(peer.name))
            for page in client.pages(tracker.committed, per_page):
                position = tracker.after(page)
                if page.size > settings.sharing.max_pull_bytes:
                    report.rejected_objects += len(page.objects)
                    message = (f"peer {peer.name}: rejected a page of {page.size} bytes (over sharing.max_pull_bytes "
                               f"{settings.sharing.max_pull_bytes}); skipped")
                    log.warning(message)
                    report.errors.append(message)
                    intel.add_page(peer.name, [], position)
                    continue
                accepted = _accepted(peer.name, page.objects, report)
                report.accepted_objects += intel.add_page(peer.name, accepted, position)
        except (*TRANSIENT, ShareError) as exc:
            report.ok = False
            report.errors.append(f"peer {peer.name}: pull stopped ({exc.__class__.__name__}: {_short(exc)}); "
                                 "what arrived before is kept and the next pull resumes from there")
        finally:
            client.close()
    return reports


class _Position:
    """Where a peer's next pull may safely start (TAXII `added_after` is exclusive).

    Objects added in one request share one date_added, and a page can end in the middle of such
    a group. After a page, every object strictly older than the page's last date_added has been
    seen, so the position may advance to the newest timestamp seen below it; only the final page
    of a pull lets it reach the last date_added itself.
    """

    def __init__(self, committed: str | None) -> None:
        self.committed = committed
        self._seen: set[str] = set()

    def after(self, page: Page) -> str | None:
        self._seen |= {t for t in (page.date_added_first, page.date_added_last) if t}
        if page.final and page.date_added_last:
            candidate: str | None = page.date_added_last
        elif page.date_added_last:
            candidate = max((t for t in self._seen if t < page.date_added_last), default=None)
        else:
            candidate = None
        if candidate and (self.committed is None or candidate > self.committed):
            self.committed = candidate
        return self.committed


def _accepted(peer: str, objects: Iterable[object], report: PeerReport) -> list[dict[str, Any]]:
    accepted: list[dict[str, Any]] = []
    for obj in objects:
        problem = _object_problem(obj)
        if problem:
            report.rejected_objects += 1
            ident = obj.get("id", "?") if isinstance(obj, dict) else "?"
            log.warning("peer %s: rejected object %s: %s", peer, str(ident)[:100], problem)
            continue
        if isinstance(obj, dict):
            accepted.append(obj)
    return accepted
