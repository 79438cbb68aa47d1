"""What peers published, pulled over TAXII and kept locally for the regional picture and the
board report's peer comparison. Lives in the same SQLite file as the findings, in its own tables."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from warpagent.errors import StoreError

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS peer_objects (
        id TEXT NOT NULL, modified TEXT NOT NULL, type TEXT NOT NULL, created_by_ref TEXT,
        peer TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (id, modified))""",
    "CREATE TABLE IF NOT EXISTS peer_positions (peer TEXT PRIMARY KEY, added_after TEXT NOT NULL)",
)


class PeerIntel:
    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StoreError(f"{path}: cannot open the store for peer data ({exc})") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PeerIntel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def position(self, peer: str) -> str | None:
        row = self._db.execute("SELECT added_after FROM peer_positions WHERE peer = ?", (peer,)).fetchone()
        return str(row[0]) if row else None

    def add_page(self, peer: str, objects: Iterable[dict[str, Any]], position: str | None) -> int:
        """Store one page's accepted objects and move the peer's position, in one transaction.

        Returns how many of the objects were new here (a re-fetched object is kept once).
        """
        count = 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for obj in objects:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO peer_objects (id, modified, type, created_by_ref, peer, body) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (obj["id"], obj.get("modified", obj.get("created", "")), obj["type"], obj.get("created_by_ref"),
                     peer, json.dumps(obj, sort_keys=True)))
                count += cursor.rowcount
            if position:
                self._db.execute("INSERT INTO peer_positions VALUES (?, ?) ON CONFLICT(peer) DO UPDATE "
                                 "SET added_after = excluded.added_after", (peer, position))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return count

    def latest(self, object_type: str) -> list[dict[str, Any]]:
        """The newest version of every object of a type."""
        rows = self._db.execute(
            "SELECT body FROM peer_objects o WHERE type = ? AND modified = "
            "(SELECT MAX(modified) FROM peer_objects WHERE id = o.id)", (object_type,)).fetchall()
        return [json.loads(row[0]) for row in rows]

    def versions(self, peer: str, object_type: str) -> Iterator[dict[str, Any]]:
        """Every version pulled from one peer of objects of a type (the history trends need), one
        at a time: a region's history need not fit in memory at once."""
        cursor = self._db.execute("SELECT body FROM peer_objects WHERE peer = ? AND type = ?", (peer, object_type))
        for row in cursor:
            yield json.loads(row[0])

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM peer_objects").fetchone()[0])

    def region_versions(self, own_identity: str) -> dict[tuple[str, str], int] | None:
        """(product, version) -> how many other members report it, from their latest postures.

        None when no peer has shared a posture yet: rarity cannot be judged without peer data.
        """
        members: dict[tuple[str, str], set[str]] = defaultdict(set)
        postures = [p for p in self.latest("x-warpagent-posture") if p.get("created_by_ref") != own_identity]
        if not postures:
            return None
        for posture in postures:
            for item in posture.get("software", []):
                if isinstance(item, dict) and item.get("product") and item.get("version"):
                    members[(str(item["product"]), str(item["version"]))].add(posture["created_by_ref"])
        return {key: len(who) for key, who in members.items()}
