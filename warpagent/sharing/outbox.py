"""Bundles waiting for a peer, on disk: written atomically, removed only once the peer has all of it.

One folder per peer; files sort oldest first by name. Restarting the agent loses nothing:
whatever is here is sent on the next run, and a re-send is harmless because object ids and
versions are deterministic.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from warpagent.files import write_atomically


class Outbox:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, peer: str) -> Path:
        return self.root / peer

    def put(self, peer: str, bundle_id: str, bundle_json: str, now: dt.datetime) -> Path:
        """Queue a bundle for a peer; the same bundle queued twice is kept once."""
        folder = self._folder(peer)
        folder.mkdir(parents=True, exist_ok=True)
        for existing in folder.glob(f"*-{bundle_id}.json"):
            if existing.read_text(encoding="utf-8") == bundle_json:
                return existing
        # a crash leaves either no file or the whole bundle
        return write_atomically(folder / f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{bundle_id}.json", bundle_json)

    def pending(self, peer: str) -> list[Path]:
        folder = self._folder(peer)
        return sorted(folder.glob("*.json")) if folder.exists() else []

    def delivered(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def discard(self, peer: str) -> int:
        """Drop everything queued for a peer that must not have it; how many bundles were dropped."""
        queued = self.pending(peer)
        for path in queued:
            path.unlink(missing_ok=True)
        return len(queued)
