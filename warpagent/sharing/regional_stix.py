"""The regional picture as STIX 2.1, published by the coordinator to the hub's regional collection.

Members pull it (a peer with `direction: pull`) and their board reports compare the council with
the region from it. Only the k-protected aggregates travel: the member-by-member table stays on
the coordinator's page. One `x-warpagent-regional` object (an extension SDO, defined below and
carried in the bundle) per hub, a new version each day it is published, grouped by a `report`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from typing import Any

import stix2
from stix2 import v21
from stix2.properties import DictionaryProperty, IntegerProperty, ListProperty, StringProperty

from warpagent.sharing import posture_words
from warpagent.sharing.regional import CategoryPicture, RegionalPicture
from warpagent.sharing.stix_bundle import EPOCH, NAMESPACE, TOOL_IDENTITY, _midnight, extension_definition, tlp_marking

REGIONAL_EXTENSION = "extension-definition--8e2b6f3a-1c4d-4e5f-9a0b-7c6d5e4f3a2b"
REGIONAL_MODIFIED = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
REGIONAL_SCHEMA = (
    "x-warpagent-regional: a WARP's regional cyber hygiene picture on one day, aggregated from its "
    "members' x-warpagent-posture objects. Every member count is an object {count, of}, or {withheld: "
    "true} where either side of the split rests on fewer than k members. Properties: as_of (YYYY-MM-DD); k_threshold; "
    "stale_after_days; members_total; members_current; stale; past_due; categories (list of {category, "
    "measured, with_open, previous, change, median_open, past_due}); cves (list of {cve, members, kev, "
    "ransomware}); cves_withheld; products (list of {product, members, versions: [{version, members}]}); "
    "products_withheld. See docs/hub.md in the warpagent repository.")


class _Regional:
    """The regional picture (the x-warpagent-regional SDO)."""


Regional: Any = v21.CustomObject("x-warpagent-regional", [
    ("as_of", StringProperty(required=True)),
    ("k_threshold", IntegerProperty(required=True)),
    ("stale_after_days", IntegerProperty(required=True)),
    ("members_total", IntegerProperty(required=True)),
    ("members_current", IntegerProperty(required=True)),
    ("stale", DictionaryProperty(required=True)),
    ("past_due", DictionaryProperty(required=True)),
    ("categories", ListProperty(DictionaryProperty(), required=True)),
    ("cves", ListProperty(DictionaryProperty())),
    ("cves_withheld", IntegerProperty()),
    ("products", ListProperty(DictionaryProperty())),
    ("products_withheld", IntegerProperty()),
], extension_name=REGIONAL_EXTENSION)(_Regional)


def _category(category: CategoryPicture) -> dict[str, Any]:
    out: dict[str, Any] = {"category": category.category, "measured": category.measured.as_dict(),
                           "with_open": category.with_open.as_dict(), "previous": category.previous.as_dict(),
                           "past_due": category.past_due.as_dict()}
    if category.change is not None:
        out["change"] = category.change
    if category.median_open is not None:
        out["median_open"] = category.median_open
    return out


def _readable(picture: RegionalPicture, api_root: str, report_id: str, hub_id: str,
              stamp: dict[str, Any]) -> list[Any]:
    """The picture again in standard objects (notes, vulnerabilities, sightings) that MISP and
    OpenCTI import: everything a person reads, nothing the k rule withheld."""
    def object_id(kind: str, key: str) -> str:
        return f"{kind}--{uuid.uuid5(NAMESPACE, f'hub|{api_root}|{kind}|{key}')}"

    by = {"created_by_ref": hub_id, **stamp}
    overall = "\n".join([
        f"{picture.title}, regional picture on {picture.as_of}: {picture.members_current} current members of "
        f"{picture.members_total} (k = {picture.k}; a member is stale after {picture.stale_after_days} days).",
        posture_words.figure(picture.stale, "Stale members, of all members") + ".",
        posture_words.figure(picture.past_due, "Members with any finding past its deadline") + ".",
        f"{picture.cves_withheld} CVEs withheld (seen by too few members to name)."])
    notes = [v21.Note(id=object_id("note", "overall"), abstract=f"{picture.title}: regional picture",
                      content=overall, object_refs=[report_id], **by),
             v21.Note(id=object_id("note", "products"), abstract=f"{picture.title}: software across the region",
                      content=posture_words.regional_products(picture.products, picture.products_withheld),
                      object_refs=[report_id], **by)]
    for category in picture.categories:
        abstract, content = posture_words.regional_category(category, picture.as_of, picture.k)
        notes.append(v21.Note(id=object_id("note", category.category), abstract=abstract, content=content,
                              object_refs=[report_id], **by))
    spread: list[Any] = []
    for cve in picture.cves:
        vulnerability = v21.Vulnerability(
            id=object_id("vulnerability", cve.cve), name=cve.cve, description=posture_words.regional_cve(cve),
            external_references=[{"source_name": "cve", "external_id": cve.cve}], **by)
        spread += [vulnerability, v21.Sighting(id=object_id("sighting", cve.cve), sighting_of_ref=vulnerability.id,
                                               where_sighted_refs=[hub_id], count=cve.members, **by)]
    return [*notes, *spread]


def hub_identity_id(api_root: str) -> str:
    return f"identity--{uuid.uuid5(NAMESPACE, f'hub|{api_root}')}"


def regional_extension_definition() -> dict[str, Any]:
    extension = v21.ExtensionDefinition(
        id=REGIONAL_EXTENSION, created_by_ref=TOOL_IDENTITY, name="x-warpagent-regional",
        description="A WARP's regional cyber hygiene picture, k-anonymised.", schema=REGIONAL_SCHEMA,
        version="1.0.0", extension_types=["new-sdo"], created=EPOCH, modified=REGIONAL_MODIFIED)
    return dict(json.loads(stix2.serialization.serialize(extension)))


def build(picture: RegionalPicture, api_root: str, tlp: str = "amber") -> dict[str, Any]:
    marking = tlp_marking(tlp)
    stamp = {"created": EPOCH, "modified": _midnight(picture.as_of), "object_marking_refs": [marking.id]}
    hub = v21.Identity(id=hub_identity_id(api_root), name=picture.title, identity_class="organization",
                       description="A WARP hub's coordinator.", **stamp)
    regional = Regional(
        id=f"x-warpagent-regional--{uuid.uuid5(NAMESPACE, f'hub|{api_root}|regional')}",
        created_by_ref=hub.id, as_of=picture.as_of.isoformat(), k_threshold=picture.k,
        stale_after_days=picture.stale_after_days, members_total=picture.members_total,
        members_current=picture.members_current, stale=picture.stale.as_dict(), past_due=picture.past_due.as_dict(),
        categories=[_category(c) for c in picture.categories],
        cves=[dataclasses.asdict(c) for c in picture.cves] or None, cves_withheld=picture.cves_withheld,
        products=[{"product": p.product, "members": p.members,
                   "versions": [{"version": v, "members": n} for v, n in p.versions]} for p in picture.products]
        or None, products_withheld=picture.products_withheld, allow_custom=True, **stamp)
    report_id = f"report--{uuid.uuid5(NAMESPACE, f'hub|{api_root}|report')}"
    readable = _readable(picture, api_root, report_id, hub.id, stamp)
    report = v21.Report(id=report_id, created_by_ref=hub.id,
                        name=f"{picture.title}: regional cyber hygiene picture {picture.as_of}",
                        description=(f"k-anonymised regional posture across the unlucky seven categories: "
                                     f"{picture.members_current} current members of {picture.members_total}, "
                                     f"k = {picture.k}. One note per category gives its figures."),
                        published=_midnight(picture.as_of), report_types=["threat-report"],
                        object_refs=[hub.id, regional.id, *(o.id for o in readable)], allow_custom=True, **stamp)
    tool, _posture_extension = extension_definition()
    objects = [json.loads(stix2.serialization.serialize(o)) for o in (marking, hub, regional, *readable, report)]
    objects[1:1] = [tool, regional_extension_definition()]
    bundle_id = f"bundle--{uuid.uuid5(NAMESPACE, f'hub|{api_root}|{picture.as_of.isoformat()}')}"
    return {"type": "bundle", "id": bundle_id, "objects": objects}


def latest(objects: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest regional picture among pulled objects."""
    pictures = [o for o in objects if o.get("type") == "x-warpagent-regional"]
    return max(pictures, key=lambda o: str(o.get("modified", "")), default=None)
