"""What a WARP hub accepts from its members: pure rules, no I/O.

A hub takes input from many councils it cannot fully trust: a broken agent, a misconfigured
tool, or a member trying to speak for another. Two screens run on every object a member adds
(and the content screen on every object an agent pulls from a peer):

- content: a STIX 2.1 object (stix2-validator), no larger than the hub's limit, not dated in
  the future (a posture dated 2099 would otherwise stay "latest" forever), markings only the
  official TLP 2.0 definitions (the first copy of an id wins, so a forged one would stick),
  software ids that match their names, and posture objects whose figures are the buckets
  warpagent shares;
- identity: every object a member adds speaks for one identity, the member's own. The hub binds
  an account to the first identity it publishes (or to the one pinned in the config); an object
  created by, sighted at, or being, any other identity is rejected.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from stix2 import v21

from warpagent.model.findings import CATEGORIES, Severity
from warpagent.sharing import buckets, software, stix_validation
from warpagent.sharing.stix_bundle import TLP2_IDS, tlp_marking
from warpagent.sharing.timestamps import parse_timestamp

FUTURE_SLACK = dt.timedelta(days=1)  # members' clocks differ; a day ahead is a mistake, not an attack
# Objects that name no creator: what warpagent shares without one. Everything else must say who made it.
CREATORLESS = frozenset({"software", "marking-definition"})
MAX_DEPTH = 32  # warpagent's deepest object nests 5 levels; 2,000 would exhaust json's recursion


# Why an object was refused, in words a coordinator can forward (no ids, no names).
KINDS = {
    "not-stix": "not a STIX object",
    "too-large": "larger than the hub accepts",
    "bad-date": "missing, malformed or future timestamps",
    "forged-marking": "a TLP marking that is not the official one",
    "forged-software": "a software object whose id does not match its name",
    "bad-posture": "posture figures that are not warpagent's buckets",
    "invalid-stix": "invalid STIX 2.1",
    "bad-regional": "regional pictures whose figures are not numbers",
    "bad-versions": "product versions not in warpagent's shapes",
    "no-creator": "objects that name no creator",
    "other-identity": "objects claiming another member's identity",
}


@dataclass(frozen=True)
class Rejection:
    object_id: str
    version: str
    kind: str  # a key of KINDS
    reason: str


@cache
def _official_markings() -> dict[str, dict[str, Any]]:
    return {TLP2_IDS[level]: json.loads(tlp_marking(level).serialize()) for level in TLP2_IDS}


def version_of(obj: Mapping[str, Any]) -> str:
    return str(obj.get("modified") or obj.get("created") or "")


def depth_over(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and mappings nest deeper than `limit`, measured without recursion."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def validator_errors(obj: Mapping[str, Any]) -> list[str]:
    """stix2-validator's errors; an object the validator itself cannot read (it trips on
    `created: 1.5` or `extensions: "x"`) is invalid, never an exception."""
    try:
        return stix_validation.object_errors(dict(obj))
    except Exception as exc:  # noqa: BLE001 - any failure inside the validator means the input is not STIX
        return [f"the validator could not read it ({exc.__class__.__name__})"]


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _regional_problem(obj: Mapping[str, Any]) -> str | None:
    """A regional picture a member's board reads: every figure it shows must be a number."""
    if not (_count(obj.get("k_threshold")) and obj["k_threshold"] >= 1):
        return "regional 'k_threshold' is not a whole number of at least 1"
    for key in ("members_total", "members_current", "stale_after_days"):
        if key in obj and not _count(obj[key]):
            return f"regional '{key}' is not a whole number"
    categories = obj.get("categories", [])
    if not isinstance(categories, list) or not all(isinstance(c, dict) and c.get("category") in CATEGORIES
                                                   for c in categories):
        return "regional 'categories' is not a list of the seven categories"
    for entry in categories:
        for key in ("measured", "with_open", "previous", "past_due"):
            figure = entry.get(key)
            if figure is not None and not (isinstance(figure, dict) and all(
                    v is None or _count(v) or isinstance(v, bool) for v in figure.values())):
                return f"regional figure '{key}' of {entry['category']} is not a count"
        if "median_open" in entry and not buckets.is_bucket(entry["median_open"]):
            return f"regional 'median_open' of {entry['category']} is not a bucket"
    return None


def _posture_problem(obj: Mapping[str, Any]) -> str | None:
    if not isinstance(obj.get("created_by_ref"), str):
        return "posture names no creator (created_by_ref)"
    if obj.get("category") not in CATEGORIES:
        return f"posture category {str(obj.get('category'))[:40]!r} is not one of the seven"
    if not isinstance(obj.get("measured"), bool):
        return "posture 'measured' is not true or false"
    figures = [obj.get("open_findings")]
    by_severity = obj.get("by_severity", {})
    if not isinstance(by_severity, dict) or not set(by_severity) <= {s.label for s in Severity}:
        return "posture 'by_severity' names an unknown severity"
    figures += list(by_severity.values())
    figures += [obj[key] for key in ("past_due", "decided") if key in obj]
    checks = obj.get("checks", [])
    if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
        return "posture 'checks' is not a list of checks"
    figures += [c.get(key) for c in checks for key in ("findings", "assets")]
    if not all(buckets.is_bucket(b) for b in figures):
        return "posture figures must be buckets (0, 1, 2-5, 6-20, 21+)"
    as_of = obj.get("as_of")
    if not isinstance(as_of, str) or not str(obj.get("modified", "")).startswith(as_of):
        return "posture 'as_of' is not the day of its 'modified' timestamp"
    listed = obj.get("software", [])
    if not isinstance(listed, list) or not all(isinstance(s, dict) and isinstance(s.get("product"), str)
                                                for s in listed):
        return "posture 'software' is not a list of products"
    return None


def _versions_problem(obj: Mapping[str, Any]) -> str | None:
    """The sealed versions: only product tokens and versions in the shapes warpagent shares, so
    nothing else can ride in them to the coordinator's page."""
    if not isinstance(obj.get("created_by_ref"), str):
        return "versions name no creator (created_by_ref)"
    as_of = obj.get("as_of")
    if not isinstance(as_of, str) or not str(obj.get("modified", "")).startswith(as_of):
        return "versions 'as_of' is not the day of its 'modified' timestamp"
    listed = obj.get("software")
    if not isinstance(listed, list) or not all(
            isinstance(s, dict) and set(s) == {"product", "version"} and isinstance(s["product"], str)
            and isinstance(s["version"], str) and software.shareable(s["product"], s["version"])
            == software.Shareable(s["product"], s["version"], dropped=False) for s in listed):
        return "versions 'software' is not a list of {product, version} in warpagent's shapes"
    return None


def _software_id(obj: Mapping[str, Any]) -> str | None:
    """The id STIX derives from a software object's name and version (its other id properties are
    not warpagent's to send, and make the object a stranger here)."""
    if any(key in obj for key in ("cpe", "swid", "vendor")):
        return None
    version = obj.get("version")
    if version is not None and not isinstance(version, str):
        return None
    return str(v21.Software(name=str(obj.get("name", "?")), version=version).id)


def content_problem(obj: object, *, max_bytes: int, now: dt.datetime,
                    validate: bool = True) -> tuple[str, str] | None:
    """(kind, reason) why one object may not enter the hub, or None. `validate=False` skips the
    full STIX 2.1 validation (about 2 ms an object) for objects the hub has already screened."""
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not isinstance(obj.get("type"), str):
        return "not-stix", "not a STIX object (no id or type)"
    if depth_over(obj):
        return "not-stix", f"nested deeper than {MAX_DEPTH} levels"
    try:
        size = len(json.dumps(obj))
    except (TypeError, ValueError):
        return "not-stix", "not JSON data"
    if size > max_bytes:
        return "too-large", f"{size} bytes, over the limit of {max_bytes} per object"
    kind = obj["type"]
    if kind == "marking-definition":
        official = _official_markings().get(obj["id"])
        return None if official == obj else ("forged-marking", "marking-definition is not an official TLP 2.0 one")
    for key in ("created", "modified"):
        if key in obj:
            stamp = parse_timestamp(obj[key])
            if stamp is None:
                return "bad-date", f"'{key}' is not a STIX timestamp"
            if stamp > now + FUTURE_SLACK:
                return "bad-date", f"'{key}' {obj[key]} is in the future"
    if kind == "software" and _software_id(obj) != obj["id"]:
        return "forged-software", "software id does not match its name"
    if kind == "x-warpagent-posture":
        problem = _posture_problem(obj)
        if problem:
            return "bad-posture", problem
    if kind == "x-warpagent-versions":
        problem = _versions_problem(obj)
        if problem:
            return "bad-versions", problem
    if kind == "x-warpagent-regional":
        problem = _regional_problem(obj)
        if problem:
            return "bad-regional", problem
    if not validate:
        return None
    errors = validator_errors(obj)
    return ("invalid-stix", f"invalid STIX 2.1 ({(errors[0].splitlines() or [''])[0][:200]})") if errors else None


def screen_content(objects: Iterable[object], *, max_bytes: int,
                   now: dt.datetime) -> tuple[list[dict[str, Any]], list[Rejection]]:
    accepted: list[dict[str, Any]] = []
    rejected: list[Rejection] = []
    for obj in objects:
        problem = content_problem(obj, max_bytes=max_bytes, now=now)
        if problem is None and isinstance(obj, dict):
            accepted.append(obj)
            continue
        kind, reason = problem or ("not-stix", "not a STIX object")
        ident = obj.get("id") if isinstance(obj, dict) else None
        rejected.append(Rejection(object_id=str(ident or "?")[:200],
                                  version=version_of(obj) if isinstance(obj, dict) else "", kind=kind, reason=reason))
    return accepted, rejected


def _speaks_for(obj: Mapping[str, Any]) -> set[str]:
    """The identities an object claims to speak for."""
    claimed = set()
    if isinstance(obj.get("created_by_ref"), str):
        claimed.add(obj["created_by_ref"])
    if obj["type"] == "identity":
        claimed.add(obj["id"])
    if obj["type"] == "sighting":
        claimed |= {r for r in obj.get("where_sighted_refs", []) if isinstance(r, str)}
    return claimed


@dataclass(frozen=True)
class IdentityScreen:
    accepted: list[dict[str, Any]]
    rejected: list[Rejection]
    bind: str | None  # a new binding of this account to an identity, to record with the objects


def screen_identity(objects: Iterable[dict[str, Any]], *, account: str, own: str | None,
                    owner_of: Mapping[str, str]) -> IdentityScreen:
    """Keep only objects that speak for the account's own identity.

    `own` is the identity the account is bound or pinned to (None: not yet bound); `owner_of`
    maps every bound identity to its account. An unbound account is bound to the first
    identity it speaks for that no other account holds.
    """
    accepted: list[dict[str, Any]] = []
    rejected: list[Rejection] = []
    bind = None
    for obj in objects:
        claimed = _speaks_for(obj)
        if not claimed and obj["type"] not in CREATORLESS:
            rejected.append(Rejection(obj["id"], version_of(obj), "no-creator", "names no creator (created_by_ref)"))
            continue
        if own is None and claimed:
            candidate = sorted(claimed)[0]
            if owner_of.get(candidate, account) == account:
                own = bind = candidate
        strangers = sorted(claimed - {own})
        if strangers:
            holder = "another member's identity" if any(owner_of.get(s, account) != account for s in strangers) \
                else "an identity other than this member's own"
            rejected.append(Rejection(obj["id"], version_of(obj), "other-identity",
                                      f"speaks for {strangers[0]}, {holder}"))
            continue
        accepted.append(obj)
    return IdentityScreen(accepted=accepted, rejected=rejected, bind=bind)
