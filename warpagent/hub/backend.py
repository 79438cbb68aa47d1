"""A medallion backend that keeps a WARP hub's objects in SQL: SQLite for one machine, PostgreSQL
for several hub servers behind a load balancer.

medallion serves TAXII 2.1 (its Flask views, filters and status resources are the protocol);
this class is the storage it loads by name from its config. Why not medallion's own backends:
the memory backend keeps everything in RAM and never writes it back (a restart loses the
region's data) and scans every object on every request; MongoDB cannot be installed or tested
on the machines this project runs on. Here:

- every object version is a row, indexed by (collection, date_added, seq), so a page costs the
  same with 200,000 objects as with 200;
- `next` tokens carry the position itself, not a server-side session, so any hub server behind
  a load balancer can serve any page;
- writes to a collection are serialised and `date_added` only ever increases, so a reader that
  has seen time T never misses an object added later with an earlier stamp;
- per-account access: members write and read the members' collection, read the regional one
  and write the sealed versions one they cannot read; the coordinator reads members' and the
  versions and writes the regional; readers read the regional one;
- every member object passes hub_guard (content and identity) first; what it rejects is
  reported in the status resource and kept in a rejections table for the coordinator.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from medallion.backends.base import Backend
from medallion.common import create_resource, generate_status, generate_status_details
from medallion.exceptions import ProcessingError

from warpagent.config import HubSettings
from warpagent.hub.tables import (
    StoredRejection,
    after,
    bindings_table,
    held_versions,
    insert_versions,
    metadata,
    objects_table,
    reflag,
    rejections_table,
    stamp,
    status_table,
)
from warpagent.hub.tables import collection_id as collection_id
from warpagent.sharing import guard, timestamps
from warpagent.store import database
from warpagent.store.database import StoreLocation

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/stix+json;version=2.1"
ACCESS = {  # role -> collection kind -> (can_read, can_write)
    # versions is sealed: members write their product versions, only the coordinator reads them
    "member": {"members": (True, True), "regional": (True, False), "versions": (False, True)},
    "coordinator": {"members": (True, False), "regional": (True, True), "versions": (True, False)},
    "reader": {"regional": (True, False)},
}
TITLES = {"members": "members", "regional": "regional", "versions": "versions"}
DESCRIPTIONS = {"members": "Members' anonymised posture: members write here.",
                "regional": "The regional picture the WARP coordinator publishes.",
                "versions": "Members' product versions, sealed: members write, only the coordinator reads."}
SCREENED = frozenset({"members", "versions"})  # what members write: every object must speak for its writer

class HubBackend(Backend):  # medallion is untyped: Backend is Any to mypy
    """medallion's Backend interface over SQL. medallion instantiates it with its config's
    `backend` mapping as keyword arguments; warpagent passes its hub settings there."""

    def __init__(self, settings: HubSettings, **_medallion: Any) -> None:
        self.settings = settings
        self.engine = database.engine(StoreLocation.parse(settings.store, Path("/")))  # a SQLite path is absolute
        metadata.create_all(self.engine)
        self.root = settings.api_root
        self.kinds = {collection_id(self.root, kind): kind for kind in TITLES}
        self.roles = {u.name: u.role for u in settings.users}
        self.pinned = {u.name: u.identity for u in settings.users if u.identity}

    # --- who is asking ---------------------------------------------------------------------

    @staticmethod
    def account() -> str:
        from medallion import auth

        return str(auth.current_user() or "")

    def _access(self, collection: str) -> tuple[bool, bool] | None:
        kind = self.kinds.get(collection)
        role = self.roles.get(self.account(), "")
        return ACCESS.get(role, {}).get(kind) if kind else None

    # --- discovery, API root, collections ----------------------------------------------------

    def server_discovery(self) -> dict[str, Any]:
        root = f"{self.settings.base_url}{self.root}/"
        return {"title": self.settings.title, "description": "A WARP hub: members share anonymised posture here.",
                "default": root, "api_roots": [root]}

    def get_api_root_information(self, api_root: str) -> dict[str, Any] | None:
        if api_root != self.root:
            return None
        return {"title": self.settings.title, "description": "Members' posture and the regional picture.",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": self.settings.max_request_bytes}

    def _collection(self, cid: str) -> dict[str, Any] | None:
        access = self._access(cid)
        if access is None:
            return None  # medallion answers 404: an account never learns of collections it cannot use
        kind = self.kinds[cid]
        return {"id": cid, "title": TITLES[kind], "description": DESCRIPTIONS[kind], "can_read": access[0],
                "can_write": access[1], "media_types": [MEDIA_TYPE]}

    def get_collections(self, api_root: str) -> dict[str, Any] | None:
        if api_root != self.root:
            return None
        listed = [c for c in (self._collection(cid) for cid in self.kinds) if c]
        return create_resource("collections", listed)

    def get_collection(self, api_root: str, collection_id: str) -> dict[str, Any] | None:
        return self._collection(collection_id) if api_root == self.root else None

    # --- reading -------------------------------------------------------------------------------

    def _where(self, collection: str, args: Mapping[str, str], allowed: Sequence[str]) -> list[Any]:
        table = objects_table.c
        where: list[Any] = [table.collection == collection]
        if "type" in allowed and args.get("match[type]"):
            where.append(table.type.in_(args["match[type]"].split(",")))
        if "id" in allowed and args.get("match[id]"):
            where.append(table.id.in_(args["match[id]"].split(",")))
        if "spec_version" in allowed and args.get("match[spec_version]"):
            where.append(table.spec_version.in_(args["match[spec_version]"].split(",")))
        if args.get("added_after"):
            after = timestamps.normal_timestamp(args["added_after"])
            if after is None:
                raise ProcessingError("added_after is not a timestamp", 400)
            where.append(table.date_added > after)
        if "version" in allowed:
            wanted = (args.get("match[version]") or "last").split(",")
            if "all" not in wanted:
                either: list[Any] = []
                if "last" in wanted:
                    either.append(table.is_latest.is_(True))
                if "first" in wanted:
                    either.append(table.is_first.is_(True))
                stamps = [timestamps.normal_timestamp(v) for v in wanted if v not in ("first", "last")]
                if None in stamps:
                    raise ProcessingError("match[version] holds something that is not a timestamp", 400)
                if stamps:
                    either.append(table.version.in_(stamps))
                where.append(sa.or_(*either))
        return where

    @staticmethod
    def _fingerprint(args: Mapping[str, str]) -> str:
        kept = sorted((k, ",".join(sorted(v.split(",")))) for k, v in args.items() if k not in ("next", "limit"))
        return hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:16]

    def _cursor(self, args: Mapping[str, str]) -> tuple[str, int] | None:
        token = args.get("next")
        if not token:
            return None
        try:
            date_added, seq, fingerprint = json.loads(base64.urlsafe_b64decode(token.encode() + b"=="))
        except (ValueError, TypeError, binascii.Error):
            raise ProcessingError("The server did not understand the request: 'next' not valid", 400) from None
        if fingerprint != self._fingerprint(args):
            raise ProcessingError("The server did not understand the request: params changed over subsequent "
                                  "transaction", 400)
        return str(date_added), int(seq)

    def _page(self, collection: str, args: Mapping[str, str], allowed: Sequence[str], limit: int,
              object_id: str | None = None) -> tuple[list[Any], bool, str | None]:
        table = objects_table.c
        where = self._where(collection, args, allowed)
        if object_id is not None:
            where.append(table.id == object_id)
        cursor = self._cursor(args)
        if cursor:
            where.append(sa.or_(table.date_added > cursor[0],
                                sa.and_(table.date_added == cursor[0], table.seq > cursor[1])))
        query = (sa.select(table.seq, table.id, table.version_text, table.date_added, table.body)
                 .where(*where).order_by(table.date_added, table.seq).limit(limit + 1))
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
        more = len(rows) > limit
        rows = rows[:limit]
        token = None
        if more:
            last = rows[-1]
            token = base64.urlsafe_b64encode(json.dumps([last.date_added, last.seq, self._fingerprint(args)])
                                             .encode()).decode().rstrip("=")
        return rows, more, token

    @staticmethod
    def _headers(rows: Sequence[Any]) -> dict[str, str]:
        if not rows:
            return {}
        return {"X-TAXII-Date-Added-First": rows[0].date_added, "X-TAXII-Date-Added-Last": rows[-1].date_added}

    def get_objects(self, api_root: str, collection_id: str, filter_args: dict[str, str],
                    allowed_filters: Sequence[str], limit: int) -> tuple[dict[str, Any], dict[str, str]]:
        rows, more, token = self._page(collection_id, filter_args, allowed_filters, limit)
        return create_resource("objects", [json.loads(r.body) for r in rows], more, token), self._headers(rows)

    def get_object_manifest(self, api_root: str, collection_id: str, filter_args: dict[str, str],
                            allowed_filters: Sequence[str], limit: int) -> tuple[dict[str, Any], dict[str, str]]:
        rows, more, token = self._page(collection_id, filter_args, allowed_filters, limit)
        records = [{"id": r.id, "date_added": r.date_added, "version": r.version_text, "media_type": MEDIA_TYPE}
                   for r in rows]
        return create_resource("objects", records, more, token), self._headers(rows)

    def _require(self, collection: str, object_id: str) -> None:
        table = objects_table.c
        with self.engine.connect() as connection:
            found = connection.execute(sa.select(table.seq).where(table.collection == collection,
                                                                  table.id == object_id).limit(1)).first()
        if found is None:
            raise ProcessingError(f"Object '{object_id}' not found", 404)

    def get_object(self, api_root: str, collection_id: str, object_id: str, filter_args: dict[str, str],
                   allowed_filters: Sequence[str], limit: int) -> tuple[dict[str, Any], dict[str, str]]:
        self._require(collection_id, object_id)
        rows, more, token = self._page(collection_id, filter_args, allowed_filters, limit, object_id)
        return create_resource("objects", [json.loads(r.body) for r in rows], more, token), self._headers(rows)

    def get_object_versions(self, api_root: str, collection_id: str, object_id: str, filter_args: dict[str, str],
                            allowed_filters: Sequence[str], limit: int) -> tuple[dict[str, Any], dict[str, str]]:
        self._require(collection_id, object_id)
        args = {**filter_args, "match[version]": "all"}
        rows, more, token = self._page(collection_id, args, (*allowed_filters, "version"), limit, object_id)
        versions = sorted((r.version_text for r in rows), reverse=True)
        return create_resource("versions", versions, more, token), self._headers(rows)

    def get_status(self, api_root: str, status_id: str) -> dict[str, Any] | None:
        table = status_table.c
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(table.body).where(table.id == status_id,
                                                                 table.account == self.account())).first()
        return json.loads(row.body) if row else None

    # --- writing -------------------------------------------------------------------------------

    @contextmanager
    def _writing(self, collection: str) -> Iterator[sa.Connection]:
        """Writes to one collection, one at a time across every hub server on the store."""
        with database.writing(self.engine, lock=f"hub/{collection}") as connection:
            yield connection

    def add_objects(self, api_root: str, collection_id: str, objs: Any,
                    request_time: dt.datetime) -> dict[str, Any]:
        access = self._access(collection_id)
        if not access or not access[1]:
            raise ProcessingError(f"Forbidden to write collection '{collection_id}'", 403)
        envelope = objs.get("objects") if isinstance(objs, dict) else None
        if not isinstance(envelope, list):
            raise ProcessingError("The request body is not a TAXII envelope with an 'objects' list", 422)
        if len(envelope) > self.settings.max_objects_per_request:
            # every object is validated (about 2 ms each): a cap keeps one request from holding the hub for minutes
            raise ProcessingError(f"{len(envelope)} objects in one request; send at most "
                                  f"{self.settings.max_objects_per_request} per request", 413)
        return self.store(collection_id, envelope, self.account(), request_time)

    def store(self, collection: str, envelope: Sequence[Any], account: str, request_time: dt.datetime,
              screen: bool = True) -> dict[str, Any]:
        """Screen and add one envelope's objects; the status resource says what became of each."""
        rejected: list[guard.Rejection] = []
        objects: list[dict[str, Any]] = [o for o in envelope if isinstance(o, dict)]
        if screen:
            objects, rejected = guard.screen_content(envelope, max_bytes=self.settings.max_object_bytes,
                                                         now=request_time)
        successes: list[dict[str, str]] = []
        failures = [generate_status_details(r.object_id, r.version, message=f"rejected: {r.reason}")
                    for r in rejected]
        table = objects_table.c
        with self._writing(collection) as connection:
            bind = None
            if screen and self.kinds.get(collection) in SCREENED and self.roles.get(account) == "member":
                owner_of = {**{r.identity: r.account for r in connection.execute(sa.select(bindings_table))},
                            **{i: a for a, i in self.pinned.items()}}
                own = self.pinned.get(account) or next((i for i, a in owner_of.items() if a == account), None)
                screened = guard.screen_identity(objects, account=account, own=own, owner_of=owner_of)
                objects, bind = screened.accepted, screened.bind
                rejected += screened.rejected
                failures += [generate_status_details(r.object_id, r.version, message=f"rejected: {r.reason}")
                             for r in screened.rejected]
            last = connection.execute(sa.select(sa.func.max(table.date_added))
                                      .where(table.collection == collection)).scalar()
            date_added = stamp(request_time)
            if last and date_added <= last:
                date_added = after(last)  # never behind what a reader may already have seen
            held = held_versions(connection, collection, sorted({o["id"] for o in objects}))
            rows = []
            for obj in objects:
                text = guard.version_of(obj)
                version = timestamps.normal_timestamp(text) if text else date_added
                text = text or date_added
                if obj["id"] in held and (version in held[obj["id"]] or not guard.version_of(obj)):
                    failures.append(generate_status_details(obj["id"], text, message="already held"))
                    continue
                rows.append({"collection": collection, "id": obj["id"], "version": version, "version_text": text,
                             "type": obj["type"], "spec_version": str(obj.get("spec_version", "2.1")),
                             "date_added": date_added, "is_latest": False, "is_first": False, "added_by": account,
                             "body": json.dumps(obj, sort_keys=True, separators=(",", ":"))})
                held.setdefault(obj["id"], set()).add(str(version))
                successes.append(generate_status_details(obj["id"], text))
            if rows:
                insert_versions(connection, collection, rows, held)
            if bind:
                connection.execute(bindings_table.insert().values(identity=bind, account=account,
                                                                  bound=date_added))
                log.info("hub: account %s now speaks for %s", account, bind)
            if rejected:
                connection.execute(rejections_table.insert(), [
                    {"at": date_added, "account": account, "collection": collection, "object_id": r.object_id,
                     "kind": r.kind, "reason": r.reason} for r in rejected])
                for r in rejected[:20]:
                    log.warning("hub: rejected %s from %s: %s", r.object_id, account, r.reason)
            status = generate_status(date_added, "complete", len(successes), len(failures), 0,
                                     successes=successes, failures=failures)
            connection.execute(status_table.insert().values(id=status["id"], account=account,
                                                            body=json.dumps(status)))
        return status

    def delete_object(self, api_root: str, collection_id: str, object_id: str, filter_args: dict[str, str],
                      allowed_filters: Sequence[str]) -> None:
        if self.roles.get(self.account()) != "coordinator":
            raise ProcessingError("Only the WARP coordinator may delete objects", 403)
        self._require(collection_id, object_id)
        table = objects_table.c
        args = {**filter_args}
        args.setdefault("match[version]", "all")
        where = [*self._where(collection_id, args, (*allowed_filters, "version")), table.id == object_id]
        with self._writing(collection_id) as connection:
            connection.execute(objects_table.delete().where(*where))
            reflag(connection, collection_id, object_id)

    # --- for the coordinator -----------------------------------------------------------------

    def rejections(self, since: str = "") -> list[StoredRejection]:
        table = rejections_table.c
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(rejections_table).where(table.at > since).order_by(table.seq))
            return [StoredRejection(at=r.at, account=r.account, collection=r.collection, object_id=r.object_id,
                                    kind=r.kind, reason=r.reason) for r in rows]

    def count(self, collection: str) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(objects_table)
                                          .where(objects_table.c.collection == collection)).scalar() or 0)
