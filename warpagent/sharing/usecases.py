"""Sharing as the council runs it, by hand (the CLI) or at night (the daemon): one way to build
and send the posture, one way to pull, and one verdict on how it went."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from warpagent.config import Settings
from warpagent.sharing import share
from warpagent.sharing.share import BuiltBundle, PeerReport
from warpagent.store.findings import Store
from warpagent.store.peer_intel import PeerIntel
from warpagent.text import counted


@dataclass(frozen=True)
class SharingOutcome:
    verb: str  # "share" or "pull"
    reports: tuple[PeerReport, ...]
    held_back: str = ""  # what of the posture the anonymiser kept back, in words (share only)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(e for r in self.reports for e in r.errors)

    def lines(self) -> list[str]:
        """One line a peer, in the words the CLI prints and the daemon records."""
        out = []
        for r in self.reports:
            state = "ok" if r.ok else "FAILED"
            if self.verb == "share":
                out.append(f"peer {r.peer}: {state} - {r.delivered} bundles delivered, {r.pending} waiting "
                           "in the outbox")
            else:
                out.append(f"peer {r.peer}: {state} - {r.accepted_objects} objects kept, {r.rejected_objects} "
                           "rejected")
        return out + ([self.held_back] if self.held_back else [])

    def as_json(self) -> dict[str, Any]:
        # each verb reports its own figures: a pull has no deliveries, a share keeps nothing
        fields = ("delivered", "pending") if self.verb == "share" else ("accepted_objects", "rejected_objects")
        peers = [{"peer": r.peer, "ok": r.ok, **{f: getattr(r, f) for f in fields}, "errors": list(r.errors)}
                 for r in self.reports]
        out: dict[str, Any] = {"ok": self.ok, "peers": peers}
        return out | ({"held_back": self.held_back} if self.verb == "share" else {})


def held_back(built: BuiltBundle) -> str:
    """What the anonymiser did not share, counted (never named): rare versions, unshaped text."""
    posture = built.posture
    sealed = (f" (the coordinator alone gets all {counted(len(posture.sealed_versions), 'version')}, through the "
              "hub's sealed collection)") if built.sealed is not None else ""
    return (f"held back: {counted(posture.withheld_versions, 'version')} too rare in the region to share{sealed}, "
            f"{counted(posture.dropped_software, 'product or version text')} not in a shareable shape")


def build(settings: Settings, today: dt.date) -> BuiltBundle:
    """Today's anonymised posture bundle, validated and screened (nothing is queued or sent), as
    `send` would send it."""
    with Store(settings.store) as store, PeerIntel(settings.store) as intel:
        return share.build_bundle(settings, store, intel, today, shared=True)


def send(settings: Settings, built: BuiltBundle, now: dt.datetime) -> SharingOutcome:
    """Queue the bundle for every peer that takes pushes (and remember its version, so the same
    posture again is the same version), then deliver whatever is queued."""
    outcome = share.queue_and_deliver(settings.sharing, settings.secret, built, now)
    if built.version is not None:
        with Store(settings.store) as store:
            store.record_share(*built.version)
    return SharingOutcome("share", tuple(outcome), held_back=held_back(built))


def pull(settings: Settings) -> SharingOutcome:
    with PeerIntel(settings.store) as intel:
        return SharingOutcome("pull", tuple(share.pull(settings.sharing, settings.secret, intel)))
