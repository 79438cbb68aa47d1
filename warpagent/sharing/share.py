"""Share and pull: build the anonymised bundle, queue it, deliver it to every peer; fetch peers' news.

One peer that is down, slow or broken never stops the others: each is tried in turn, with
retries and exponential backoff, and whatever is not delivered stays in the outbox.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks import ALL_CHECKS
from warpagent import clock
from warpagent.collect import versiondb
from warpagent.config import PeerConfig, Settings, SharingSettings
from warpagent.errors import ConfigError
from warpagent.evidence import web
from warpagent.model.findings import FindingStatus, TrackedFinding
from warpagent.sharing import anonymise, guard, identifying, software, stix_bundle
from warpagent.sharing.outbox import Outbox
from warpagent.sharing.stix_bundle import ShareError
from warpagent.sharing.taxii import TRANSIENT, Page, PeerClient, Secret
from warpagent.store.findings import Store
from warpagent.store.peer_intel import PeerIntel

log = logging.getLogger(__name__)

MAX_OBJECT_BYTES = 1024 * 1024
ObjectCheck = Callable[[object], str | None]  # why a pulled object is refused, or None


@dataclass(frozen=True)
class BuiltBundle:
    bundle: dict[str, Any]
    text: str
    posture: anonymise.SharedPosture
    sealed: dict[str, Any] | None = None  # the versions bundle, for peers with a sealed versions collection
    sealed_text: str = ""
    version: tuple[dt.date, str, dt.datetime] | None = None  # (day, posture digest, stamp): the store keeps it


def public_text() -> str:
    """warpagent's own documentation, the same in every member's bundle: never identifying."""
    return "\n".join(c.doc for c in ALL_CHECKS)


def identifying_strings(settings: Settings, findings: Sequence[TrackedFinding]) -> set[str]:
    """Everything that would name the council, an estate, a host or a person if it were shared:
    the config's names and targets, every asset, and the host names and addresses the evidence
    holds (banners, certificates, the directory, evidence folders)."""
    strings = {settings.organisation.name} | identifying.organisation_forms(settings.organisation.name)
    for estate in settings.estates:
        strings |= {estate.name, *estate.targets, *estate.exclude}
    texts = []
    for tracked in findings:
        finding = tracked.finding
        strings.add(finding.asset)
        texts += [finding.asset, finding.title, finding.evidence, finding.subject, finding.product, finding.version]
    strings |= identifying.evidence_strings(texts, public_text())
    for peer in settings.sharing.peers:
        strings |= {peer.username} - {""}
    return {s for s in strings if len(s) >= identifying.MIN_LENGTH}


def scanned_products(nmap_path: str) -> frozenset[str]:
    """The product names a network service's finding may share: those the installed nmap's probe
    database names literally, and the CMS the web check knows. No probe file: none (fail closed)."""
    probes = versiondb.stock_probes(nmap_path)
    cms = frozenset(name for _pattern, name, _cpe in web.CMS)
    if probes is None:
        return cms
    stat = probes.stat()
    return _nmap_products(probes, stat.st_mtime_ns, stat.st_size) | cms


@functools.lru_cache(maxsize=4)
def _nmap_products(probes: Path, _mtime_ns: int, _size: int) -> frozenset[str]:
    return software.nmap_products(probes.read_text(encoding="latin-1"))


def build_bundle(settings: Settings, store: Store, intel: PeerIntel, today: dt.date,
                 shared: bool = False) -> BuiltBundle:
    """Today's bundle. When `shared` (a share, not a look), its version follows the store's last share:
    the same posture again is the same version (peers hold it already); a changed one the same day
    is a later version, so peers replace the day's earlier share rather than keep it."""
    member = anonymise.pseudonym(settings.pseudonym_key(), settings.organisation.name)
    region_versions = intel.region_versions(stix_bundle.member_identity_id(member))
    end_of_day = dt.datetime.combine(today, dt.time.max, dt.UTC)
    every = store.findings()  # read once: the open ones are shared, the decided counted, all screened for
    posture = anonymise.anonymise(
        [t for t in every if t.status is FindingStatus.OPEN], member=member, sector=settings.organisation.sector,
        region=settings.organisation.region, as_of=today, k=settings.sharing.k,
        measured=store.measured_categories(), region_versions=region_versions,
        past_due=lambda tracked: settings.reports.rag.past_due(tracked, end_of_day),
        decided=[t for t in every if t.status.decided], service_products=scanned_products(settings.scan.nmap_path))
    digest = hashlib.sha256(f"{settings.sharing.tlp}|{posture!r}".encode()).hexdigest()
    at = version_stamp(today, digest, store.last_share()) if shared else None
    bundle = stix_bundle.build(posture, settings.sharing.tlp, at)
    sealed = stix_bundle.build_sealed(posture, settings.sharing.tlp, at) if any(
        p.versions_collection and p.pushes for p in settings.sharing.peers) else None
    identifying_now = identifying_strings(settings, every)
    text = _screened(bundle, identifying_now)
    sealed_text = _screened(sealed, identifying_now) if sealed is not None else ""
    return BuiltBundle(bundle=bundle, text=text, posture=posture, sealed=sealed, sealed_text=sealed_text,
                       version=(today, digest, at) if at is not None else None)


def version_stamp(today: dt.date, digest: str, last: tuple[dt.date, str, dt.datetime] | None) -> dt.datetime:
    """The version (`modified`) a share of today's posture goes out with: midnight for the day's
    first, the last share's own stamp for the same posture again, and one millisecond after the last
    for a changed one. Never the clock: when a council scans and shares is not for its peers to learn."""
    midnight = stix_bundle._midnight(today)
    if last is None or last[0] != today or last[2] < midnight:
        return midnight
    if last[1] == digest:
        return last[2]
    return min(last[2] + dt.timedelta(milliseconds=1), dt.datetime.combine(today, dt.time(23, 59, 59, 999000), dt.UTC))


def _screened(bundle: dict[str, Any], identifying_now: set[str]) -> str:
    """The bundle's JSON once it is valid STIX 2.1 and holds nothing identifying; else ShareError."""
    text = stix_bundle.to_json(bundle)
    errors = stix_bundle.validate(text)
    if errors:
        raise ShareError(f"the bundle failed STIX 2.1 validation ({errors[0]}); nothing was shared")
    if identifying.leaks(text, identifying_now, public_text()):
        # The anonymiser let something identifying through: refuse, and never echo the value.
        raise ShareError("refusing to share: the bundle contains an identifying string from the config or "
                         "the findings (organisation, estate, target, asset, or a host name or address the "
                         "evidence holds); nothing was shared. Please report this as a warpagent bug")
    return text


@dataclass
class PeerReport:
    peer: str
    delivered: int = 0
    pending: int = 0
    accepted_objects: int = 0
    rejected_objects: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whatever went wrong with a peer is an error; the CLI and the daemon judge by this alone."""
        return not self.errors


def deliver(sharing: SharingSettings, secret: Secret, outbox: Outbox, *, attempts: int = 3, backoff_s: float = 1.0,
            sleep: Callable[[float], None] = time.sleep, batch_size: int = 500) -> list[PeerReport]:
    """Send every queued bundle to its peer, oldest first; stop a peer's queue at its first failure."""
    targets = [(peer, False) for peer in sharing.peers if peer.pushes]
    targets += [(sealed_peer(peer), True) for peer, _sealed in targets if peer.versions_collection]
    return [deliver_to(peer, secret, outbox, attempts=attempts, backoff_s=backoff_s, sleep=sleep,
                       batch_size=batch_size, sealed=sealed) for peer, sealed in targets]


def _not_sealed(client: PeerClient) -> str | None:
    """Why the peer's versions collection is no place for rare versions: this account can read it,
    so every member can. None when it is sealed, or unreachable (the push then says why)."""
    try:
        collection = client.collection()
    except (*TRANSIENT, ShareError):
        return None
    if not collection.can_read:
        return None
    return (f"peer {client.peer.name}: collection '{client.peer.collection}' can be read by this account, so it "
            "is not sealed: the versions bundle was not sent, and was dropped; point versions_collection at "
            "a warpagent hub's 'versions' collection, which members write and only the coordinator reads")


def sealed_peer(peer: PeerConfig) -> PeerConfig:
    """The peer's sealed versions collection, as a push-only peer with an outbox of its own."""
    return dataclasses.replace(peer, name=f"{peer.name}/versions", collection=peer.versions_collection,
                               direction="push", versions_collection="")


def deliver_to(peer: PeerConfig, secret: Secret, outbox: Outbox, *, attempts: int = 3, backoff_s: float = 1.0,
               sleep: Callable[[float], None] = time.sleep, batch_size: int = 500, sealed: bool = False) -> PeerReport:
    """Send one peer's queue, oldest first; a bundle leaves the outbox only once the peer holds all of it.
    `sealed`: the queue holds every version, rare ones included, so the collection must be one this
    account cannot read (a warpagent hub's `versions`), or nothing is sent."""
    report = PeerReport(peer=peer.name)
    queue = outbox.pending(peer.name)
    if not queue:
        return report
    try:
        client = PeerClient(peer, secret)
    except ConfigError as exc:
        report.pending = len(queue)
        report.errors += exc.problems
        return report
    problem = _not_sealed(client) if sealed else None
    if problem:  # rare versions wait for no one: nothing queued for it is kept to be sent later
        client.close()
        outbox.discard(peer.name)
        report.errors.append(problem)
        return report
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
                report.errors.append(f"peer {peer.name}: {path.name} not delivered after {attempts} "
                                     f"attempts ({problem}); kept in the outbox for the next run")
                break
    finally:
        client.close()
    report.pending = len(outbox.pending(peer.name))
    return report


def queue_and_deliver(sharing: SharingSettings, secret: Secret, built: BuiltBundle,
                      now: dt.datetime) -> list[PeerReport]:
    """Queue the bundle for every peer (on disk first), then deliver everything queued."""
    outbox = Outbox(sharing.outbox)
    for peer in sharing.peers:
        if peer.pushes:
            outbox.put(peer.name, built.bundle["id"], built.text, now)
        if peer.pushes and peer.versions_collection and built.sealed is not None:
            outbox.put(sealed_peer(peer).name, built.sealed["id"], built.sealed_text, now)
    return deliver(sharing, secret, outbox)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:200]


def _object_problem(obj: object) -> str | None:
    """Why a peer's object is not kept: the hub's own content screen (valid STIX 2.1 the validator
    can read, sane nesting and size, no future dates, posture and regional figures that are
    counts), so a hostile peer cannot leave anything the board report would trip on."""
    problem = guard.content_problem(obj, max_bytes=MAX_OBJECT_BYTES, now=clock.now())
    return problem[1] if problem else None


def pull(sharing: SharingSettings, secret: Secret, intel: PeerIntel, per_page: int = 500) -> list[PeerReport]:
    """Fetch what each peer added since last time; keep the valid objects, log and skip the rest.
    One peer that fails in any way is reported and never stops the others."""
    reports = []
    for peer in sharing.peers:
        if not peer.pulls:
            continue
        try:
            reports.append(pull_from(peer, secret, intel, max_pull_bytes=sharing.max_pull_bytes, per_page=per_page))
        except Exception as exc:  # the next peer is pulled whatever this one did
            log.error("peer %s: pull failed (%s)", peer.name, exc.__class__.__name__, exc_info=True)
            reports.append(PeerReport(peer=peer.name, errors=[
                f"peer {peer.name}: pull failed ({exc.__class__.__name__}); what arrived before is kept"]))
    return reports


def pull_from(peer: PeerConfig, secret: Secret, intel: PeerIntel, *, max_pull_bytes: int, per_page: int = 500,
              problem_of: ObjectCheck | None = None, all_versions: bool = False) -> PeerReport:
    """One peer's new objects, page by page; each page is kept, and the position moved, in one transaction."""
    report = PeerReport(peer=peer.name)
    try:
        client = PeerClient(peer, secret)
    except ConfigError as exc:
        report.errors += exc.problems
        return report
    try:
        tracker = _Position(intel.position(peer.name))
        for page in client.pages(tracker.committed, per_page, all_versions=all_versions):
            position = tracker.after(page)
            if page.size > max_pull_bytes:
                report.rejected_objects += len(page.objects)
                message = (f"peer {peer.name}: rejected a page of {page.size} bytes (over sharing.max_pull_bytes "
                           f"{max_pull_bytes}); skipped")
                log.warning(message)
                report.errors.append(message)
                intel.add_page(peer.name, [], position)
                continue
            accepted = _accepted(peer.name, page.objects, report, problem_of or _object_problem)
            report.accepted_objects += intel.add_page(peer.name, accepted, position)
    except (*TRANSIENT, ShareError) as exc:
        report.errors.append(f"peer {peer.name}: pull stopped ({exc.__class__.__name__}: {_short(exc)}); "
                             "what arrived before is kept and the next pull resumes from there")
    finally:
        client.close()
    return report


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


def _accepted(peer: str, objects: Iterable[object], report: PeerReport,
              problem_of: ObjectCheck) -> list[dict[str, Any]]:
    accepted: list[dict[str, Any]] = []
    for obj in objects:
        problem = problem_of(obj)
        if problem:
            report.rejected_objects += 1
            ident = obj.get("id", "?") if isinstance(obj, dict) else "?"
            log.warning("peer %s: rejected object %s: %s", peer, str(ident)[:100], problem)
            continue
        if isinstance(obj, dict):
            accepted.append(obj)
    return accepted
