"""The hub's tables, and the writes that keep each object's versions flagged first and latest.

One row per object version, indexed by (collection, date_added, seq) for keyset paging; account
bindings (one member account, one identity); status resources; and the log of what was refused.
Works on SQLite and PostgreSQL alike (SQLAlchemy Core).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

NAMESPACE = uuid.UUID("0d6f3c52-6a77-4c2e-9d0e-3f5a1b2c4d6e")

metadata = sa.MetaData()
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only
objects_table = sa.Table(
    "hub_objects", metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("collection", sa.String(64), nullable=False),
    sa.Column("id", sa.String(200), nullable=False),
    sa.Column("version", sa.String(32), nullable=False),  # normal_timestamp of modified/created
    sa.Column("version_text", sa.String(64), nullable=False),  # as the object has it
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("spec_version", sa.String(8), nullable=False),
    sa.Column("date_added", sa.String(32), nullable=False),
    sa.Column("is_latest", sa.Boolean(), nullable=False),
    sa.Column("is_first", sa.Boolean(), nullable=False),
    sa.Column("added_by", sa.String(64), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.UniqueConstraint("collection", "id", "version", name="hub_objects_version"),
    sa.Index("hub_objects_added", "collection", "date_added", "seq"),
    sa.Index("hub_objects_id", "collection", "id"),
)
status_table = sa.Table(
    "hub_status", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
)
bindings_table = sa.Table(
    "hub_bindings", metadata,
    sa.Column("identity", sa.String(200), primary_key=True),
    sa.Column("account", sa.String(64), nullable=False, unique=True),
    sa.Column("bound", sa.String(32), nullable=False),
)
rejections_table = sa.Table(
    "hub_rejections", metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("collection", sa.String(64), nullable=False),
    sa.Column("object_id", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
)


def collection_id(api_root: str, kind: str) -> str:
    """Stable collection ids: the same on every hub server and after every restart."""
    return str(uuid.uuid5(NAMESPACE, f"{api_root}/{kind}"))


def stamp(moment: dt.datetime) -> str:
    """date_added as the hub writes it: fixed width, so stamps sort as strings."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def after(previous: str) -> str:
    """The first stamp later than `previous`."""
    moment = dt.datetime.strptime(previous, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return stamp(moment + dt.timedelta(microseconds=1))


@dataclass(frozen=True)
class StoredRejection:
    at: str
    account: str
    collection: str
    object_id: str
    kind: str
    reason: str


def held_versions(connection: sa.Connection, collection: str, ids: Sequence[str]) -> dict[str, set[str]]:
    """The versions already stored of each id."""
    table = objects_table.c
    held: dict[str, set[str]] = {}
    for start in range(0, len(ids), 500):
        for row in connection.execute(sa.select(table.id, table.version).where(
                table.collection == collection, table.id.in_(ids[start:start + 500]))):
            held.setdefault(row.id, set()).add(row.version)
    return held

def insert_versions(connection: sa.Connection, collection: str, rows: list[dict[str, Any]],
            held: Mapping[str, set[str]]) -> None:
    """Insert new versions, keeping is_latest/is_first true on exactly one version of each id."""
    table = objects_table.c
    by_id: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_id.setdefault(row["id"], []).append(row)
    demoted_latest, demoted_first = [], []
    for object_id, new_rows in by_id.items():
        versions = held[object_id]  # every version, the new ones included
        for row in new_rows:
            row["is_latest"], row["is_first"] = row["version"] == max(versions), row["version"] == min(versions)
        if len(versions) > len(new_rows):  # rows stored before lose a flag a new version takes
            if any(r["is_latest"] for r in new_rows):
                demoted_latest.append(object_id)
            if any(r["is_first"] for r in new_rows):
                demoted_first.append(object_id)
    for flag, ids in (("is_latest", demoted_latest), ("is_first", demoted_first)):
        for start in range(0, len(ids), 500):
            connection.execute(objects_table.update().where(
                table.collection == collection, table.id.in_(ids[start:start + 500])).values({flag: False}))
    connection.execute(objects_table.insert(), rows)

def reflag(connection: sa.Connection, collection: str, object_id: str) -> None:
    """Set is_latest/is_first again on what remains of an object (after a delete)."""
    table = objects_table.c
    low, high = connection.execute(sa.select(sa.func.min(table.version), sa.func.max(table.version)).where(
        table.collection == collection, table.id == object_id)).one()
    mine = sa.and_(table.collection == collection, table.id == object_id)
    connection.execute(objects_table.update().where(mine).values(is_latest=table.version == high,
                                                                 is_first=table.version == low))
