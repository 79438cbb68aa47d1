"""What peers published, pulled over TAXII and kept locally for the regional picture and the
board report's peer comparison. Lives in the same store as the findings (SQLite or PostgreSQL),
in its own tables."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from warpagent.errors import StoreError
from warpagent.store import database
from warpagent.store.database import StoreLocation

metadata = sa.MetaData()
peer_objects = sa.Table(
    "peer_objects", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("modified", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("created_by_ref", sa.Text),
    sa.Column("peer", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
peer_positions = sa.Table("peer_positions", metadata, sa.Column("peer", sa.Text, primary_key=True),
                          sa.Column("added_after", sa.Text, nullable=False))


class PeerIntel:
    def __init__(self, location: StoreLocation | str | Path) -> None:
        self.location = StoreLocation.of(location)
        try:
            if self.location.path is not None:
                self.location.path.parent.mkdir(parents=True, exist_ok=True)
            self._engine = database.engine(self.location)
            database.prepare_once(self.location, "peer-intel", metadata.create_all)
        except (sa.exc.DBAPIError, OSError) as exc:
            raise StoreError(f"{self.location}: cannot open the store for peer data ({exc.__class__.__name__}: "
                             f"{str(getattr(exc, 'orig', exc)).splitlines()[0]})") from None

    def __enter__(self) -> PeerIntel:
        return self

    def __exit__(self, *exc: object) -> None:
        """Nothing stays open between operations: every call opens and returns its connection."""

    def position(self, peer: str) -> str | None:
        with database.reading(self._engine) as connection:
            found = connection.execute(sa.select(peer_positions.c.added_after)
                                       .where(peer_positions.c.peer == peer)).scalar()
        return str(found) if found else None

    def add_page(self, peer: str, objects: Iterable[dict[str, Any]], position: str | None) -> int:
        """Store one page's accepted objects and move the peer's position, in one transaction.

        Returns how many of the objects were new here (a re-fetched object is kept once).
        """
        rows = {(o["id"], str(o.get("modified", o.get("created", "")))): o for o in objects}
        table = peer_objects.c
        with database.writing(self._engine) as connection:
            ids = sorted({key[0] for key in rows})
            held: set[tuple[str, str]] = set()
            for start in range(0, len(ids), 500):
                held |= {(r.id, r.modified) for r in connection.execute(
                    sa.select(table.id, table.modified).where(table.id.in_(ids[start:start + 500])))}
            new = [{"id": key[0], "modified": key[1], "type": obj["type"], "created_by_ref": obj.get("created_by_ref"),
                    "peer": peer, "body": json.dumps(obj, sort_keys=True)}
                   for key, obj in rows.items() if key not in held]
            if new:
                connection.execute(peer_objects.insert(), new)
            if position:
                moved = connection.execute(peer_positions.update().where(peer_positions.c.peer == peer)
                                           .values(added_after=position))
                if moved.rowcount == 0:
                    connection.execute(peer_positions.insert().values(peer=peer, added_after=position))
        return len(new)

    def latest(self, object_type: str) -> list[dict[str, Any]]:
        """The newest version of every object of a type."""
        newer = peer_objects.alias("newer")
        newest = sa.select(sa.func.max(newer.c.modified)).where(newer.c.id == peer_objects.c.id).scalar_subquery()
        query = sa.select(peer_objects.c.body).where(peer_objects.c.type == object_type,
                                                     peer_objects.c.modified == newest)
        with database.reading(self._engine) as connection:
            return [json.loads(body) for body in connection.execute(query).scalars()]

    def versions(self, peer: str, object_type: str) -> Iterator[dict[str, Any]]:
        """Every version pulled from one peer of objects of a type (the history trends need), one
        at a time: a region's history need not fit in memory at once."""
        query = sa.select(peer_objects.c.body).where(peer_objects.c.peer == peer, peer_objects.c.type == object_type)
        with database.reading(self._engine) as connection:
            for body in connection.execution_options(yield_per=2000).execute(query).scalars():
                yield json.loads(body)

    def count(self) -> int:
        with database.reading(self._engine) as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(peer_objects)).scalar() or 0)

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
