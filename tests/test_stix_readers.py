"""What a WARP's other tools make of warpagent's bundles. MISP imports through its own converter
(misp-stix, run here); OpenCTI keeps standard STIX objects and drops custom SDOs, `x_`
properties and extensions, so its view is the bundle with those removed. Either way a person
must be able to read every figure of a member's posture and of the regional picture."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import stix2
from misp_stix_converter import ExternalSTIX2toMISPParser

from tests.test_regional import member, picture
from warpagent.model.findings import CATEGORY_NAMES, Severity
from warpagent.sharing import buckets, regional_stix, stix_bundle, stix_validation
from warpagent.sharing.anonymise import (
    CategoryPosture,
    CheckPosture,
    CveSighting,
    Remediation,
    SharedPosture,
    SoftwareSeen,
)
from warpagent.sharing.posture_words import bucket

DAY = dt.date(2026, 11, 25)
STANDARD = set(stix2.v21.OBJ_MAP) | set(stix2.v21.OBJ_MAP_OBSERVABLE)


def _posture(as_of: dt.date = DAY) -> SharedPosture:
    patches = CategoryPosture(
        category="patches", measured=True, open_findings="6-20",
        by_severity=(("critical", "1"), ("high", "2-5"), ("medium", "2-5"), ("low", "0"), ("info", "0")),
        checks=(CheckPosture("WA101", Severity.CRITICAL, "6-20", "2-5"),), oldest_open=dt.date(2026, 10, 2),
        past_due="2-5")
    configs = CategoryPosture(
        category="configs", measured=True, open_findings="2-5", by_severity=(("high", "1"), ("medium", "1")),
        checks=(CheckPosture("WA502", Severity.HIGH, "1", "1"), CheckPosture("WA512", Severity.MEDIUM, "1", "1")),
        oldest_open=dt.date(2026, 11, 20), past_due="0")
    backups = CategoryPosture(category="backups", measured=False, open_findings="0", by_severity=(("critical", "0"),),
                              checks=(), oldest_open=None)
    return SharedPosture(
        pseudonym="a1" * 16, sector="local-government", region="north-west", as_of=as_of,
        categories=(patches, configs, backups),
        cves=(CveSighting("CVE-2024-6387", "2-5", dt.date(2026, 10, 2), as_of),
              CveSighting("CVE-2023-48795", "6-20", dt.date(2026, 10, 9), as_of)),
        software=(SoftwareSeen("OpenSSH", "9.2p1", "patches"), SoftwareSeen("nginx", "", "configs")),
        remediations=(Remediation("WA101", "known-vulnerable-version", "Upgrade."),
                      Remediation("WA502", "tls-weak-cipher", "Remove weak ciphers.")),
        withheld_versions=1)


def _opencti_view(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """Standard objects only, without custom properties or extensions."""
    return [{k: v for k, v in o.items() if not k.startswith("x_") and k != "extensions"}
            for o in bundle["objects"] if o["type"] in STANDARD]


def _misp_event(bundle: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    parser = ExternalSTIX2toMISPParser()
    parser.load_stix_bundle(stix2.parsing.parse(json.dumps(bundle), allow_custom=True))
    parser.parse_stix_bundle()
    problems = {p for messages in parser.errors.values() for p in messages}
    return json.loads(parser.misp_event.to_json()), problems


def _category_note(objects: list[dict[str, Any]], category: str) -> str:
    [note] = [o for o in objects if o["type"] == "note" and o["abstract"].startswith(CATEGORY_NAMES[category])]
    return str(note["content"])


def test_every_figure_of_a_member_posture_is_in_its_standard_objects() -> None:
    posture = _posture()
    bundle = stix_bundle.build(posture)
    assert stix_validation.errors(json.dumps(bundle)) == []
    view = _opencti_view(bundle)
    assert {o["type"] for o in view} >= {"note", "vulnerability", "sighting", "report", "identity"}
    for category in posture.categories:
        text = _category_note(view, category.category)
        if not category.measured:
            assert "not measured" in text and "no count is given" in text
            continue
        assert f"Open findings: {bucket(category.open_findings)}." in text
        for severity, count in category.by_severity:
            assert f"{severity} {bucket(count)}" in text
        assert f"(CISA KEV, critical, high): {bucket(category.past_due)}." in text
        assert f"first seen on {category.oldest_open}" in text
        for check in category.checks:
            assert (f"{check.check_id}" in text and f"{bucket(check.findings)} open findings on "
                    f"{bucket(check.assets)} assets" in text and f"worst severity {check.severity.label}" in text)
    assert "OpenSSH 9.2p1" in _category_note(view, "patches") and "nginx (version withheld" in _category_note(
        view, "configs")
    vulnerabilities = {o["id"]: o for o in view if o["type"] == "vulnerability"}
    for cve in posture.cves:
        [vulnerability] = [v for v in vulnerabilities.values() if v["name"] == cve.cve]
        assert vulnerability["external_references"] == [{"source_name": "cve", "external_id": cve.cve}]
        assert bucket(cve.assets) in vulnerability["description"]
        [sighting] = [o for o in view if o["type"] == "sighting" and o["sighting_of_ref"] == vulnerability["id"]]
        assert sighting["count"] == buckets.floor(cve.assets)
    report = next(o for o in view if o["type"] == "report")
    assert {o["id"] for o in view if o["type"] == "note"} <= set(report["object_refs"])
    assert "2 of 3 measured" in report["description"]


def test_misp_shows_each_category_and_the_cves_and_a_reshare_updates_the_same_event() -> None:
    bundle = stix_bundle.build(_posture())
    event, problems = _misp_event(bundle)
    report = next(o for o in bundle["objects"] if o["type"] == "report")
    assert event["uuid"] == report["id"].split("--")[1] and event["info"] == "Cyber hygiene posture 2026-11-25"
    notes = {n["comment"]: n["note"] for n in event["Note"]}
    assert "Missing security patches (patches): between 6 and 20 (6-20) open findings" in notes
    assert "Insecure configurations (configs): between 2 and 5 (2-5) open findings" in notes
    assert "Poorly configured or untested backups (backups): not measured" in notes
    clusters = {c["value"]: c for g in event["Galaxy"] for c in g["GalaxyCluster"]}
    assert {"CVE-2024-6387", "CVE-2023-48795"} <= set(clusters)
    assert "between 6 and 20 (6-20) assets" in clusters["CVE-2023-48795"]["description"]
    assert problems and all("x-warpagent-posture" in p for p in problems)  # the only thing MISP cannot load

    tomorrow, _ = _misp_event(stix_bundle.build(_posture(DAY + dt.timedelta(days=1))))
    assert tomorrow["uuid"] == event["uuid"]  # MISP updates the event rather than adding one
    assert sorted(n["uuid"] for n in tomorrow["Note"]) == sorted(n["uuid"] for n in event["Note"])


def test_every_figure_of_the_regional_picture_is_in_its_standard_objects_and_in_misp() -> None:
    history = [member(f"m{i}", DAY, {"configs": "2-5"} if i < 3 else {}, cves=("CVE-2023-48795",),
                      unmeasured=("backups",) if i == 0 else ()) for i in range(6)]
    regional = picture(history, kev=lambda cves: {c: (True, False) for c in cves})
    bundle = regional_stix.build(regional, "warp")
    assert stix_validation.errors(json.dumps(bundle)) == []
    view = _opencti_view(bundle)
    for category in regional.categories:
        text = _category_note(view, category.category)
        for figure, what in ((category.measured, "Members who measured it"),
                             (category.with_open, "Members with open findings"),
                             (category.past_due, "Members with findings past their deadlines")):
            shown = f"{figure.count} of {figure.of}" if figure.count is not None else "withheld"
            assert f"{what}" in text and shown in text.split(what, 1)[1].split("\n", 1)[0]
        if category.median_open is not None:
            assert f"median member's open findings: {bucket(category.median_open)}" in text
    configs = _category_note(view, "configs")
    assert "Members with open findings, of those who measured it: 3 of 6." in configs
    [vulnerability] = [o for o in view if o["type"] == "vulnerability"]
    assert vulnerability["description"] == "CVE-2023-48795 seen by 6 members (in CISA KEV)."
    [sighting] = [o for o in view if o["type"] == "sighting"]
    assert sighting["count"] == 6 and sighting["sighting_of_ref"] == vulnerability["id"]
    assert any("nginx: 6 members (1.22.1: 6)." in o.get("content", "") for o in view if o["type"] == "note")

    event, problems = _misp_event(bundle)
    assert any("3 of 6" in n["note"] for n in event["Note"] if n["comment"].startswith("Insecure configurations"))
    assert "CVE-2023-48795" in {c["value"] for g in event["Galaxy"] for c in g["GalaxyCluster"]}
    assert all("x-warpagent-regional" in p for p in problems)
    again = regional_stix.build(dataclasses.replace(regional, as_of=DAY + dt.timedelta(days=1)), "warp")
    assert _misp_event(again)[0]["uuid"] == event["uuid"]
