"""Talking TAXII 2.1 to one peer with taxii2-client: discovery, API root, collection, push, pull.

Every request has a timeout (taxii2-client sets none), TLS is verified by default (a CA bundle
can be named), and credentials come from the environment. Secrets never reach a log line.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
from taxii2client.common import _HTTPConnection
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import ApiRoot, Collection, Server

from warpagent.config import PeerConfig
from warpagent.sharing.stix_bundle import ShareError

log = logging.getLogger(__name__)

Secret = Callable[[str, str], str]  # (environment variable, config key) -> the value (Settings.secret)


class MalformedAnswer(ValueError):
    """A peer answered with JSON that is not the TAXII 2.1 shape (an entry without an id)."""


# What a peer that is down, overloaded or misbehaving raises: worth a retry later, never a crash.
# Programming errors (KeyError, TypeError in our own code) are not in it: they must surface.
TRANSIENT = (requests.RequestException, TAXIIServiceException, json.JSONDecodeError, MalformedAnswer)


def _ids(entries: object, what: str) -> list[str]:
    """The `id` of each entry a peer listed, refusing an answer that is not a list of objects with ids."""
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("id"), str)
                                                for e in entries):
        raise MalformedAnswer(f"the peer's {what} is not a list of entries with ids")
    return [e["id"] for e in entries]


class _HeaderAuth(requests.auth.AuthBase):
    def __init__(self, header: str, value: str) -> None:
        self.header, self.value = header, value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers[self.header] = self.value
        return request


@dataclass
class PushResult:
    delivered: bool
    accepted: int = 0
    already_there: int = 0
    missing: list[str] = field(default_factory=list)  # object ids the peer does not have


@dataclass
class Page:
    objects: list[Any]
    date_added_first: str | None
    date_added_last: str | None
    size: int
    final: bool


class PeerClient:
    def __init__(self, peer: PeerConfig, secret: Secret) -> None:
        """`secret(env_var, config_key)` reads a credential from the environment (Settings.secret)."""
        self.peer = peer
        auth: requests.auth.AuthBase | None = None
        user = password = None
        if peer.api_key_env:
            auth = _HeaderAuth(peer.api_key_header, secret(peer.api_key_env, f"sharing.peers[{peer.name}].api_key_env"))
        elif peer.username:
            user = peer.username
            password = secret(peer.password_env, f"sharing.peers[{peer.name}].password_env") \
                if peer.password_env else ""
        verify: bool | str = peer.ca_bundle or peer.verify_tls
        self._conn = _HTTPConnection(user=user, password=password, verify=verify, version="2.1", auth=auth)
        # taxii2-client sets no timeout: give every request one. And pass `verify` on every request:
        # requests lets $REQUESTS_CA_BUNDLE override a session's verify, which would silently drop
        # the peer's configured CA bundle.
        self._conn.session.request = functools.partial(self._conn.session.request, timeout=peer.timeout_s,
                                                       verify=verify)
        self.last_headers: dict[str, str] = {}
        self.last_size = 0
        self._conn.session.hooks["response"].append(self._remember)
        self._collection: Collection | None = None

    def _remember(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        self.last_headers = dict(response.headers)
        self.last_size = len(response.content)

    def close(self) -> None:
        self._conn.close()

    def collection(self) -> Collection:
        if self._collection is not None:
            return self._collection
        if self.peer.api_root:
            root_url = self.peer.api_root
        else:
            server = Server(self.peer.url, conn=self._conn)
            listed = server.default or next(iter(server.api_roots), None)
            if listed is None:
                raise ShareError(f"peer {self.peer.name}: {self.peer.url} lists no API root; set api_root")
            root_url = listed.url
        # taxii2-client's Server builds its ApiRoots from its own credentials, not from a shared
        # connection: rebuild the root on ours so auth, timeout and header capture all apply.
        root = ApiRoot(root_url, conn=self._conn)
        for collection in root.collections:
            if self.peer.collection in (collection.id, collection.title):
                self._collection = collection
                return collection
        raise ShareError(f"peer {self.peer.name}: no collection '{self.peer.collection}' at {root.url}; "
                         "check sharing.peers collection (id or title)")

    def push(self, bundle: dict[str, Any], wait_s: int = 30, batch_size: int = 500) -> PushResult:
        """Add the bundle's objects in envelopes of `batch_size`, following each status resource
        until it is final; then confirm on the server every object not reported as a success."""
        collection = self.collection()
        objects: list[dict[str, Any]] = bundle["objects"]
        accepted: set[str] = set()
        already: dict[str, set[str]] = {}
        for start in range(0, len(objects), batch_size):
            envelope = {"objects": objects[start:start + batch_size]}
            status = collection.add_objects(json.dumps(envelope), wait_for_completion=True, poll_interval=1,
                                            timeout=wait_s)
            if status.status == "complete":
                accepted |= set(_ids(status.successes, "status successes"))
                for failure in status.failures or []:
                    if isinstance(failure, dict) and failure.get("message") == "already held":
                        already.setdefault(str(failure.get("id")), set()).add(str(failure.get("version", "")))
        # Not in the successes: refused as an id+version the server already holds (medallion
        # reports that as a failure), still pending, or never received. Only presence decides:
        # read from the manifest, or, in a sealed collection its writers cannot read (a warpagent
        # hub's versions), from the hub's own "already held" in the status.
        rest = [o for o in objects if o["id"] not in accepted]
        held = self._held_versions(collection, [o["id"] for o in rest]) if collection.can_read else already
        missing = [o["id"] for o in rest
                   if not held.get(o["id"]) or (o.get("modified") and o["modified"] not in held[o["id"]])]
        return PushResult(delivered=not missing, accepted=len(accepted), already_there=len(rest) - len(missing),
                          missing=missing)

    def _held_versions(self, collection: Collection, ids: list[str], per_query: int = 50) -> dict[str, set[str]]:
        """The versions the server holds of each id, asked through the manifest 50 ids at a time."""
        held: dict[str, set[str]] = {}
        for start in range(0, len(ids), per_query):
            chunk = ids[start:start + per_query]
            kwargs: dict[str, Any] = {"id": chunk, "version": "all"}
            while True:
                try:
                    manifest = collection.get_manifest(**kwargs)
                except requests.HTTPError as exc:
                    if exc.response is not None and exc.response.status_code == 404:
                        break  # none of these ids is there
                    raise
                records = manifest.get("objects") or []
                for record_id, record in zip(_ids(records, "manifest"), records, strict=True):
                    held.setdefault(record_id, set()).add(str(record.get("version", "")))
                if not manifest.get("more") or not manifest.get("next"):
                    break
                kwargs = {"id": chunk, "version": "all", "next": manifest["next"]}
        return held

    def pages(self, added_after: str | None, per_page: int = 500, all_versions: bool = False) -> Iterator[Page]:
        """Objects added after `added_after`, page by page, with the server's X-TAXII-Date-Added-Last.

        By default the server sends each object's latest version; `all_versions` asks for every
        version (the history a regional trend is built from)."""
        collection = self.collection()
        fixed: dict[str, Any] = {"version": "all"} if all_versions else {}
        kwargs: dict[str, Any] = {"limit": per_page, **fixed}
        if added_after:
            kwargs["added_after"] = added_after
        while True:
            envelope = collection.get_objects(**kwargs)
            final = not envelope.get("more") or not envelope.get("next")
            yield Page(objects=list(envelope.get("objects", [])),
                       date_added_first=self.last_headers.get("X-TAXII-Date-Added-First"),
                       date_added_last=self.last_headers.get("X-TAXII-Date-Added-Last"), size=self.last_size,
                       final=final)
            if final:
                return
            kwargs = {"limit": per_page, "next": envelope["next"], **fixed}
            if added_after:
                kwargs["added_after"] = added_after
