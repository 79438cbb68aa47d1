"""`warpagent hub aggregate`: pull every member's posture from the hub, build the regional picture,
render it for the coordinator, and publish it to the regional collection for members' boards.

The coordinator reads the hub over TAXII, as any client would (so a hub behind a load balancer,
or on another machine, is aggregated the same way), with the first coordinator account in
`hub.users`. Pulled objects are kept in the coordinator's store (`store`), so each run fetches
only what members added since the last.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from feeds.intel_store import IntelStore
from feeds.model import FeedError
from feeds.update import FeedSettings
from warpagent.config import HubSettings, PeerConfig, Settings
from warpagent.errors import ConfigError
from warpagent.sharing import guard, regional, regional_stix, share, stix_bundle
from warpagent.sharing.outbox import Outbox
from warpagent.sharing.share import PeerReport
from warpagent.store.peer_intel import PeerIntel

log = logging.getLogger(__name__)

MEMBERS_PEER = "hub-members"
REGIONAL_PEER = "hub-regional"
VERSIONS_PEER = "hub-versions"
REJECTIONS_SHOWN_DAYS = 31


@dataclass(frozen=True)
class Aggregate:
    picture: regional.RegionalPicture
    bundle: dict[str, object]
    bundle_text: str
    pulled: PeerReport
    published: PeerReport | None


def coordinator_peers(settings: Settings, hub: HubSettings) -> tuple[PeerConfig, PeerConfig, PeerConfig]:
    """How the coordinator reaches the hub's collections (members', regional, the sealed versions),
    with the first coordinator account."""
    for index, user in enumerate(hub.users):
        if user.role == "coordinator":
            if not user.password_env:
                raise ConfigError([f"{settings.source}: At 'hub.users[{index}]': 'hub aggregate' signs in as the "
                                   "first coordinator, whose password it needs: give it password_env"])
            settings.secret(user.password_env, f"hub.users[{index}].password_env")
            members = PeerConfig(name=MEMBERS_PEER, url=f"{hub.base_url}taxii2/", collection="members",
                                 api_root=f"{hub.base_url}{hub.api_root}/", username=user.name,
                                 password_env=user.password_env, ca_bundle=hub.ca_bundle, timeout_s=120,
                                 direction="pull")
            return (members, dataclasses.replace(members, name=REGIONAL_PEER, collection="regional", direction="push"),
                    dataclasses.replace(members, name=VERSIONS_PEER, collection="versions"))
    raise ConfigError([f"{settings.source}: At 'hub.users': no user has role coordinator; add one (with "
                       "password_env) for 'hub aggregate' to sign in as"])


def _together(members: PeerReport, versions: PeerReport) -> PeerReport:
    """One report of the coordinator's pull from the hub, its two collections' figures summed."""
    return PeerReport(peer=members.peer, accepted_objects=members.accepted_objects + versions.accepted_objects,
                      rejected_objects=members.rejected_objects + versions.rejected_objects,
                      errors=members.errors + versions.errors)


def _hub_object_problem(max_bytes: int, now: dt.datetime) -> share.ObjectCheck:
    def problem(obj: object) -> str | None:
        found = guard.content_problem(obj, max_bytes=max_bytes, now=now, validate=False)
        return found[1] if found else None
    return problem


def recent_rejections(hub: HubSettings, now: dt.datetime) -> list[tuple[str, int]]:
    """What the hub refused in the last month, by kind in plain words; empty if its store is not here."""
    from warpagent.hub.backend import HubBackend  # medallion and Flask: only the hub's own machine has a store

    if "://" not in hub.store and not Path(hub.store).exists():
        return []
    since = (now - dt.timedelta(days=REJECTIONS_SHOWN_DAYS)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    counts = Counter(guard.KINDS.get(r.kind, r.kind) for r in HubBackend(hub).rejections(since))
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def kev_lookup(feeds: FeedSettings) -> regional.KevLookup | None:
    """CISA KEV flags from the hub's own intel store (`feeds update`), when it has one."""
    path = feeds.intel_path
    if not path.exists():
        return None

    def lookup(cves: Iterable[str]) -> Mapping[str, tuple[bool, bool]]:
        try:
            with IntelStore(path) as intel:
                facts = intel.cve_facts(cves)
        except FeedError as exc:
            log.warning("hub: KEV flags unavailable (%s)", exc)
            return {}
        return {cve: (fact.kev is not None, bool(fact.kev and fact.kev.ransomware)) for cve, fact in facts.items()}
    return lookup


def build_picture(settings: Settings, hub: HubSettings, intel: PeerIntel, today: dt.date,
                  rejected: list[tuple[str, int]]) -> regional.RegionalPicture:
    sealed = regional.sealed_versions(intel.versions(VERSIONS_PEER, "x-warpagent-versions"))
    history = regional.member_postures(intel.versions(MEMBERS_PEER, "x-warpagent-posture"),
                                       intel.versions(MEMBERS_PEER, "sighting"),
                                       intel.versions(MEMBERS_PEER, "vulnerability"), sealed)
    labels = {str(o["id"]): str(o.get("name", o["id"])) for o in intel.versions(MEMBERS_PEER, "identity")}
    return regional.build(history, title=hub.title, as_of=today, k=settings.sharing.k,
                          stale_after_days=max(1, hub.stale_after_s // 86400), labels=labels,
                          kev=kev_lookup(settings.feeds), rejected=rejected)


def aggregate(settings: Settings, now: dt.datetime, *, publish: bool = True, per_page: int = 1000) -> Aggregate:
    hub = settings.hub
    if hub is None:
        raise ConfigError([f"{settings.source}: At 'hub': no hub section; 'hub aggregate' runs on a WARP "
                           "coordinator's config (see config/README.md)"])
    members, regional_peer, versions = coordinator_peers(settings, hub)
    with PeerIntel(settings.store) as intel:
        problem_of = _hub_object_problem(hub.max_object_bytes, now)
        pulled = _together(*(share.pull_from(peer, settings.secret, intel, per_page=per_page, all_versions=True,
                                             max_pull_bytes=settings.sharing.max_pull_bytes, problem_of=problem_of)
                             for peer in (members, versions)))
        picture = build_picture(settings, hub, intel, now.date(), recent_rejections(hub, now))
    bundle = regional_stix.build(picture, hub.api_root, settings.sharing.tlp)
    text = stix_bundle.to_json(bundle)
    errors = stix_bundle.validate(text)
    if errors:
        raise stix_bundle.ShareError(f"the regional picture failed STIX 2.1 validation ({errors[0]}); "
                                     "nothing was published")
    published = None
    if publish:
        outbox = Outbox(settings.sharing.outbox)
        outbox.put(REGIONAL_PEER, str(bundle["id"]), text, now)
        published = share.deliver_to(regional_peer, settings.secret, outbox)
    return Aggregate(picture=picture, bundle=bundle, bundle_text=text, pulled=pulled, published=published)
