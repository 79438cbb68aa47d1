"""A SharedPosture as a STIX 2.1 bundle, built with the stix2 library and validated before it leaves.

Ids are deterministic (UUIDv5 of the member's pseudonym and what the object describes), so a
re-share is a new version of the same objects, never a duplicate. Every object carries `created`
= a fixed epoch (the same for every version) and `modified` = the posture's day, at midnight UTC
(a changed posture shared again that day: a millisecond after the day's last, see share.version_stamp).
Posture per category has no standard STIX object, so it is an `x-warpagent-posture` SDO defined
by the extension-definition below (documented in docs/sharing.md).

No shared object carries a top-level `version` property: medallion 3.0.0 (the usual WARP TAXII
server) reads any object's `version` as a timestamp and then fails every GET of the collection,
for every member. So product versions travel inside the posture objects, `software` SCOs carry
the product name only, and the extension-definition (whose `version` is mandatory) is published
in docs/sharing.md instead of in each bundle (`extension_definition()` builds it).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import stix2
from stix2 import v21
from stix2.properties import BooleanProperty, DictionaryProperty, ListProperty, ReferenceProperty, StringProperty

from warpagent.errors import WarpagentError
from warpagent.sharing import buckets, posture_words, stix_validation
from warpagent.sharing.anonymise import SharedPosture

NAMESPACE = uuid.UUID("6f4b3a1e-5d0c-4c47-9a53-1f0b7e6c2d91")  # warpagent's own UUIDv5 namespace
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # `created` of every shared object: constant across versions
EXTENSION_MODIFIED = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)  # 1.1.0: past_due; 1.2.0: decided
TOOL_IDENTITY = f"identity--{uuid.uuid5(NAMESPACE, 'warpagent/tool')}"
POSTURE_EXTENSION = "extension-definition--3c8d0f2e-8f4e-4f0b-9b1c-6a2f1d7e5b40"
TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
SECTORS = {"local-government": "government-local", "education": "education", "health": "healthcare",
           "emergency-services": "government-emergency-services"}

POSTURE_SCHEMA = (
    "x-warpagent-posture: one member's cyber hygiene posture in one of the seven categories on one "
    "day. Properties: category (patches|unsupported|privileges|passwords|configs|supply_chain|backups); "
    "measured (bool: false means no check of the category ran); region (WARP region); as_of (YYYY-MM-DD); "
    "open_findings (bucket: 0, 1, 2-5, 6-20, 21+); by_severity (severity -> bucket); checks (list of "
    "{check_id, severity, findings bucket, assets bucket}); oldest_open (YYYY-MM-DD or absent); "
    "past_due (bucket of open findings past the member's deadlines: CISA KEV, critical, high); "
    "decided (bucket of accepted risks and false positives, not counted in open_findings); "
    "software (list of {product, version}; version absent when withheld as rare); software_refs "
    "(software SCOs, by product name); course_of_action_refs. Never carries names, addresses or "
    "free text. See docs/sharing.md in the warpagent repository.")


VERSIONS_EXTENSION = "extension-definition--b7e4c2d9-5a31-4f6e-8d0c-2e9a7f1b3c65"
VERSIONS_MODIFIED = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
VERSIONS_SCHEMA = (
    "x-warpagent-versions: the product versions one member found open on one day, for a warpagent "
    "hub's sealed collection (members write it, only the WARP coordinator reads it). Properties: as_of "
    "(YYYY-MM-DD); software (list of {product, version}: a product token of lower-case words joined by _ "
    "and a version of digits and dots with a short suffix, rare versions included). The coordinator's "
    "regional picture shows a version only where k members report it. See docs/sharing.md in the "
    "warpagent repository.")


class ShareError(WarpagentError):
    """A bundle could not be built, validated or delivered."""


class _Posture:
    """One member's posture in one category (the x-warpagent-posture SDO)."""


Posture: Any = v21.CustomObject("x-warpagent-posture", [
    ("category", StringProperty(required=True)),
    ("measured", BooleanProperty(required=True)),
    ("region", StringProperty()),
    ("as_of", StringProperty(required=True)),
    ("open_findings", StringProperty(required=True)),
    ("by_severity", DictionaryProperty()),
    ("checks", ListProperty(DictionaryProperty())),
    ("oldest_open", StringProperty()),
    ("past_due", StringProperty()),
    ("decided", StringProperty()),
    ("software", ListProperty(DictionaryProperty())),
    ("software_refs", ListProperty(ReferenceProperty(valid_types="software"))),
    ("course_of_action_refs", ListProperty(ReferenceProperty(valid_types="course-of-action"))),
], extension_name=POSTURE_EXTENSION)(_Posture)


class _Versions:
    """One member's product versions on one day (the x-warpagent-versions SDO). Not `software`
    SCOs with a `version`: medallion reads any top-level `version` as a timestamp and then fails
    every GET of the collection."""


Versions: Any = v21.CustomObject("x-warpagent-versions", [
    ("as_of", StringProperty(required=True)),
    ("software", ListProperty(DictionaryProperty(), required=True)),
], extension_name=VERSIONS_EXTENSION)(_Versions)


def tlp_marking(level: str) -> v21.MarkingDefinition:
    """The OASIS TLP 2.0 marking-definition, exactly as published (fixed id and content)."""
    return v21.MarkingDefinition(id=TLP2_IDS[level], created="2022-10-01T00:00:00.000Z",
                                 name=f"TLP:{level.upper()}",
                                 extensions={TLP2_EXTENSION: {"extension_type": "property-extension",
                                                              "tlp_2_0": level}}, allow_custom=True)


def _id(kind: str, member: str, key: str) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, f'{member}|{kind}|{key}')}"


def _midnight(day: dt.date) -> dt.datetime:
    # datetimes, not strings: stix2 would strptime every string timestamp of every object
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def member_identity_id(member: str) -> str:
    return _id("identity", member, "member")


def extension_definition() -> list[dict[str, Any]]:
    """The posture extension-definition and its author, as published in docs/sharing.md."""
    tool = v21.Identity(id=TOOL_IDENTITY, name="warpagent", identity_class="system",
                        description="The warpagent cyber hygiene agent, author of the posture extension.",
                        created=EPOCH, modified=EPOCH)
    extension = v21.ExtensionDefinition(
        id=POSTURE_EXTENSION, created_by_ref=TOOL_IDENTITY, name="x-warpagent-posture",
        description="Cyber hygiene posture of one WARP member in one category.", schema=POSTURE_SCHEMA,
        version="1.1.0", extension_types=["new-sdo"], created=EPOCH, modified=EXTENSION_MODIFIED)
    return [json.loads(stix2.serialization.serialize(o)) for o in (tool, extension)]


def _identity(posture: SharedPosture, marks: list[str]) -> v21.Identity:
    # one version a day, whenever it is shared: it says nothing that changes within a day
    return v21.Identity(id=member_identity_id(posture.pseudonym), name=f"WARP member {posture.pseudonym[:16]}",
                        identity_class="organization",
                        sectors=[SECTORS.get(posture.sector, posture.sector)] if posture.sector else None,
                        created=EPOCH, modified=_midnight(posture.as_of), object_marking_refs=marks)


def build_sealed(posture: SharedPosture, tlp: str = "amber", at: dt.datetime | None = None) -> dict[str, Any] | None:
    """The versions bundle for a hub's sealed collection: the member's identity and one
    x-warpagent-versions object listing every (product, version) in shape, as of the posture's day.
    None when there is no version to send."""
    if not posture.sealed_versions:
        return None
    marking = tlp_marking(tlp)
    marks = [marking.id]
    identity = _identity(posture, marks)
    versions = Versions(id=_id("x-warpagent-versions", posture.pseudonym, "versions"), created_by_ref=identity.id,
                        created=EPOCH, modified=at or _midnight(posture.as_of), object_marking_refs=marks,
                        as_of=posture.as_of.isoformat(),
                        software=[{"product": p, "version": v} for p, v in posture.sealed_versions], allow_custom=True)
    bundle_id = f"bundle--{uuid.uuid5(NAMESPACE, posture.pseudonym + '|versions|' + posture.as_of.isoformat())}"
    return {"type": "bundle", "id": bundle_id,
            "objects": [json.loads(stix2.serialization.serialize(o)) for o in (marking, identity, versions)]}


def versions_extension_definition() -> dict[str, Any]:
    """The x-warpagent-versions extension-definition, as published in docs/sharing.md."""
    extension = v21.ExtensionDefinition(
        id=VERSIONS_EXTENSION, created_by_ref=TOOL_IDENTITY, name="x-warpagent-versions",
        description="Product versions of one WARP member on one day, for the coordinator alone.",
        schema=VERSIONS_SCHEMA, version="1.0.0", extension_types=["new-sdo"], created=VERSIONS_MODIFIED,
        modified=VERSIONS_MODIFIED)
    return dict(json.loads(stix2.serialization.serialize(extension)))


def build(posture: SharedPosture, tlp: str = "amber", at: dt.datetime | None = None) -> dict[str, Any]:
    """The bundle as a JSON-ready dict (validated by `validate` before it is written or sent). Its
    objects' version (`modified`) is `at`, default midnight of the posture's day: a later share the
    same day with a changed posture needs a later version, or peers keep the first."""
    marking = tlp_marking(tlp)
    marks = [marking.id]
    member = posture.pseudonym
    stamp = {"created": EPOCH, "modified": at or _midnight(posture.as_of), "object_marking_refs": marks}
    identity = _identity(posture, marks)
    by = {"created_by_ref": identity.id, **stamp}
    coas = {r.check_id: v21.CourseOfAction(id=_id("course-of-action", member, r.check_id),
                                           name=f"{r.check_id} {r.name}", description=r.fix, **by)
            for r in posture.remediations}
    software_by_category: dict[str, list[v21.Software]] = {}
    versions_by_category: dict[str, list[dict[str, str]]] = {}
    for item in posture.software:
        sco = v21.Software(name=item.product, object_marking_refs=marks)
        if sco.id not in {s.id for s in software_by_category.get(item.category, [])}:
            software_by_category.setdefault(item.category, []).append(sco)
        versions_by_category.setdefault(item.category, []).append(
            {"product": item.product, "version": item.version} if item.version else {"product": item.product})
    report_id = _id("report", member, "posture")
    check_names = {r.check_id: r.name for r in posture.remediations}
    postures, notes = [], []
    for cat in posture.categories:
        check_ids = [c.check_id for c in cat.checks]
        postures.append(Posture(
            id=_id("x-warpagent-posture", member, cat.category), category=cat.category, measured=cat.measured,
            region=posture.region or None, as_of=posture.as_of.isoformat(), open_findings=cat.open_findings,
            by_severity=dict(cat.by_severity),
            checks=[{"check_id": c.check_id, "severity": c.severity.label, "findings": c.findings,
                     "assets": c.assets} for c in cat.checks] or None,
            oldest_open=cat.oldest_open.isoformat() if cat.oldest_open else None, past_due=cat.past_due,
            decided=cat.decided,
            software=versions_by_category.get(cat.category) or None,
            software_refs=[s.id for s in software_by_category.get(cat.category, [])] or None,
            course_of_action_refs=[coas[c].id for c in check_ids if c in coas] or None,
            allow_custom=True, **by))
        abstract, content = posture_words.member_category(
            cat, posture.as_of, [s for s in posture.software if s.category == cat.category], check_names)
        notes.append(v21.Note(id=_id("note", member, cat.category), abstract=abstract, content=content,
                              object_refs=[report_id], **by))
    vulnerabilities, sightings = [], []
    for sighting in posture.cves:
        vulnerability = v21.Vulnerability(
            id=_id("vulnerability", member, sighting.cve), name=sighting.cve,
            description=(f"Open on {buckets.words(sighting.assets)} assets of this WARP member, first seen "
                         f"{sighting.first_seen}, last seen {sighting.last_seen}."),
            external_references=[{"source_name": "cve", "external_id": sighting.cve}], **by)
        vulnerabilities.append(vulnerability)
        sightings.append(v21.Sighting(
            id=_id("sighting", member, sighting.cve), sighting_of_ref=vulnerability.id,
            where_sighted_refs=[identity.id], count=buckets.floor(sighting.assets),
            first_seen=_midnight(sighting.first_seen), last_seen=_midnight(sighting.last_seen), **by))
    software = [s for group in software_by_category.values() for s in group]
    members = [identity, *postures, *notes, *vulnerabilities, *sightings, *coas.values(), *software]
    measured = [c for c in posture.categories if c.measured]
    report = v21.Report(id=report_id, name=f"Cyber hygiene posture {posture.as_of}",
                        description=(f"Anonymised posture of one WARP member across the unlucky seven categories: "
                                     f"{len(measured)} of {len(posture.categories)} measured on {posture.as_of}, "
                                     f"{len(posture.cves)} CVEs shared. One note per category gives its figures."),
                        published=_midnight(posture.as_of), report_types=["threat-report"],
                        object_refs=sorted({o.id for o in members}), allow_custom=True, **by)
    objects = [marking, *members, report]
    unique = {o.id: o for o in objects}  # software SCOs repeat across categories by design of their ids
    bundle_id = f"bundle--{uuid.uuid5(NAMESPACE, member + '|' + posture.as_of.isoformat())}"
    return {"type": "bundle", "id": bundle_id,
            "objects": [json.loads(stix2.serialization.serialize(o)) for o in unique.values()]}


def to_json(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, indent=1, sort_keys=True)


def validate(bundle_json: str) -> list[str]:
    """stix2-validator's errors for the bundle (warnings are not errors); empty means valid."""
    return stix_validation.errors(bundle_json)
