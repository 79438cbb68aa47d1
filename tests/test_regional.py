"""The regional picture's rules, on postures built by hand: k-anonymity, newest-wins, staleness,
month-on-month change and what the published STIX says; and the hub's input screens."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from warpagent.model.findings import CATEGORIES
from warpagent.sharing import guard, regional, regional_stix, stix_bundle
from warpagent.sharing.regional import CategoryShare, Figure, MemberPosture

TODAY = dt.date(2026, 11, 25)


def member(name: str, as_of: dt.date, open_in: dict[str, str] | None = None, *, unmeasured: tuple[str, ...] = (),
           cves: tuple[str, ...] = (), past_due: str | None = "0") -> MemberPosture:
    opened = open_in or {}
    return MemberPosture(member=f"identity--{name}", as_of=as_of,
                         categories={c: CategoryShare(measured=c not in unmeasured, open_findings=opened.get(c, "0"),
                                                      past_due=past_due) for c in CATEGORIES},
                         cves=frozenset(cves), software=frozenset({("nginx", "1.22.1")}))


def picture(history: list[MemberPosture], k: int = 3, **kwargs: Any) -> regional.RegionalPicture:
    return regional.build(history, title="Test WARP", as_of=TODAY, k=k, stale_after_days=45, labels={}, **kwargs)


def category(p: regional.RegionalPicture, name: str) -> regional.CategoryPicture:
    return next(c for c in p.categories if c.category == name)


@pytest.mark.parametrize(("count", "of", "k", "shown"), [
    (0, 5, 3, True), (5, 5, 3, True), (3, 5, 3, False), (2, 5, 3, False), (3, 6, 3, True), (2, 2, 3, False),
    (0, 2, 3, False), (1, 5, 2, False), (2, 5, 2, True), (4, 5, 2, False), (3, 5, 2, True)])
def test_a_figure_is_shown_only_when_both_sides_hold_k_members(count: int, of: int, k: int, shown: bool) -> None:
    assert regional.reveal(count, of, k) is shown
    assert regional.figure(count, of, k).withheld is not shown


def test_a_newer_posture_replaces_the_older_one() -> None:
    history = [member(f"m{i}", TODAY - dt.timedelta(days=3), {"backups": "2-5"}) for i in range(6)]
    history += [member(f"m{i}", TODAY) for i in range(3)]  # half of them fixed their backups since
    backups = category(picture(history), "backups")
    assert backups.with_open == Figure(3, 6)


def test_stale_members_are_listed_but_never_counted_as_clean() -> None:
    history = [member(f"m{i}", TODAY, {"configs": "1"}) for i in range(3)]
    history += [member(f"old{i}", TODAY - dt.timedelta(days=60)) for i in range(3)]  # clean, but long silent
    p = picture(history)
    assert p.members_current == 3 and p.members_total == 6
    assert p.stale == Figure(3, 6)
    assert category(p, "configs").with_open == Figure(3, 3)  # not "3 of 6": silence is not health
    assert [r.stale for r in p.members] == [False] * 3 + [True] * 3


def test_month_on_month_change_and_trend() -> None:
    october = dt.date(2026, 10, 20)
    history = [member(f"m{i}", october, {"patches": "6-20"}) for i in range(6)]
    history += [member(f"m{i}", TODAY, {"patches": "1"} if i < 3 else {}) for i in range(6)]
    patches = category(picture(history), "patches")
    assert (patches.previous, patches.with_open, patches.change) == (Figure(6, 6), Figure(3, 6), -3)
    assert [f.count for f in patches.trend] == [None, None, None, None, 6, 3]
    assert [f.of for f in patches.trend][:4] == [0, 0, 0, 0]  # before anyone shared: nothing to hide
    assert regional.trend_points(TODAY) == (dt.date(2026, 6, 30), dt.date(2026, 7, 31), dt.date(2026, 8, 31),
                                           dt.date(2026, 9, 30), dt.date(2026, 10, 31), TODAY)


def test_months_no_member_measured_say_no_data_not_withheld() -> None:
    """Issue 30: the regional trend showed "<3" for months no member measured (docs/hub.md: "no data")."""
    from reports.regional import render_page

    october = dt.date(2026, 10, 20)
    history = [member(f"m{i}", october, {"patches": "6-20"}) for i in range(6)]
    history += [member(f"m{i}", TODAY, {"patches": "1"} if i < 1 else {}) for i in range(6)]
    patches = category(picture(history), "patches")
    assert patches.trend_shown(3) == ["no data", "no data", "no data", "no data", "6", "<3"]
    page = render_page(picture(history))
    chart = page[page.index('data-chart="trend-patches"'):]
    chart = chart[:chart.index("</svg>")]
    assert chart.count(">no data</text>") == 4 and chart.count(">&lt;3</text>") == 1
    assert 'textLength="' in chart  # "no data" is held to its bar's width: labels never run together


def test_unmeasured_is_not_clean_and_median_needs_k_members() -> None:
    history = [member(f"m{i}", TODAY, {"backups": "21+"}, unmeasured=("backups",) if i < 4 else ()) for i in range(6)]
    backups = category(picture(history), "backups")
    assert backups.measured == Figure(None, None)  # two measure it, four do not: neither side may be named
    assert backups.median_open is None
    patches = category(picture(history), "patches")
    assert patches.median_open == "0" and patches.with_open == Figure(0, 6)


def test_cves_need_k_members_and_kev_comes_first() -> None:
    history = [member(f"m{i}", TODAY, cves=("CVE-2023-48795",) + (("CVE-2021-41773",) if i < 3 else ())
                      + (("CVE-2011-2523",) if i == 0 else ())) for i in range(6)]
    p = picture(history, kev=lambda cves: {c: (c == "CVE-2021-41773", False) for c in cves})
    assert [(c.cve, c.members, c.kev) for c in p.cves] == [("CVE-2021-41773", 3, True), ("CVE-2023-48795", 6, False)]
    assert p.cves_withheld == 1  # one member's CVE is never named
    assert not picture(history).kev_known


def test_past_due_counts_only_members_that_share_it() -> None:
    history = [member(f"m{i}", TODAY, past_due="2-5" if i < 3 else "0") for i in range(6)]
    history.append(member("older-agent", TODAY, past_due=None))
    p = picture(history)
    assert p.past_due == Figure(3, 6)
    assert next(r for r in p.members if r.member == "identity--older-agent").past_due is None


def test_member_postures_from_stix_objects() -> None:
    identity = "identity--5c1e3a2b-0000-4000-8000-000000000001"
    vulnerability = {"type": "vulnerability", "id": "vulnerability--1", "name": "CVE-2024-6387",
                     "external_references": [{"source_name": "cve", "external_id": "CVE-2024-6387"}]}
    posture = {"type": "x-warpagent-posture", "created_by_ref": identity, "category": "configs", "measured": True,
               "as_of": "2026-11-25", "open_findings": "2-5", "past_due": "1",
               "software": [{"product": "OpenSSH", "version": "9.2p1"}, {"product": "nginx"}]}
    hostile = {**posture, "category": "everything", "as_of": "not a date"}
    sighting = {"type": "sighting", "created_by_ref": identity, "sighting_of_ref": "vulnerability--1",
                "modified": "2026-11-25T00:00:00.000Z"}
    (built,) = regional.member_postures([posture, hostile], [sighting], [vulnerability])
    assert built.as_of == TODAY and built.cves == {"CVE-2024-6387"}
    assert built.categories["configs"] == CategoryShare(True, "2-5", "1")
    assert built.software == {("OpenSSH", "9.2p1"), ("nginx", "")}


def test_published_picture_validates_and_round_trips_to_the_board() -> None:
    history = [member(f"m{i}", TODAY, {"configs": "2-5"} if i < 3 else {}) for i in range(6)]
    bundle = regional_stix.build(picture(history), "warp")
    assert stix_bundle.validate(json.dumps(bundle)) == []
    assert not [o["id"] for o in bundle["objects"] if "version" in o and o["type"] != "extension-definition"]
    published = regional_stix.latest(bundle["objects"])
    assert published is not None
    configs = next(c for c in published["categories"] if c["category"] == "configs")
    assert Figure.from_dict(configs["with_open"]) == Figure(3, 6)
    assert Figure.from_dict(configs["previous"]).empty
    assert Figure.from_dict({"count": 9, "of": 3}).withheld  # nonsense from a hub is never shown


# --- the hub's screens ------------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
MINE, THEIRS = "identity--11111111-1111-4111-8111-111111111111", "identity--22222222-2222-4222-8222-222222222222"


def _posture(creator: str = MINE, **changes: Any) -> dict[str, Any]:
    obj = {"type": "x-warpagent-posture", "spec_version": "2.1",
           "id": "x-warpagent-posture--33333333-3333-4333-8333-333333333333", "created": "2000-01-01T00:00:00.000Z",
           "modified": "2026-11-25T00:00:00.000Z", "created_by_ref": creator, "category": "configs",
           "measured": True, "as_of": "2026-11-25", "open_findings": "2-5", "by_severity": {"high": "1"},
           "extensions": {"extension-definition--3c8d0f2e-8f4e-4f0b-9b1c-6a2f1d7e5b40": {"extension_type": "new-sdo"}}}
    obj.update(changes)
    return obj


@pytest.mark.parametrize(("changes", "kind"), [
    ({}, None),
    ({"open_findings": "17"}, "bad-posture"),
    ({"category": "secrets"}, "bad-posture"),
    ({"as_of": "2026-11-24"}, "bad-posture"),
    ({"modified": "2027-01-01T00:00:00.000Z", "as_of": "2027-01-01"}, "bad-date"),
    ({"modified": "yesterday"}, "bad-date"),
    ({"labels": "not-a-list"}, "invalid-stix"),
    ({"id": "x-warpagent-posture--not-a-uuid"}, "invalid-stix"),
    ({"software": [{"product": "x" * 100_000}]}, "too-large"),
])
def test_content_screen(changes: dict[str, Any], kind: str | None) -> None:
    found = guard.content_problem(_posture(**changes), max_bytes=65536, now=NOW)
    assert (found[0] if found else None) == kind


def test_only_official_markings_and_honest_software_ids_pass() -> None:
    official = json.loads(stix_bundle.tlp_marking("amber").serialize())
    assert guard.content_problem(official, max_bytes=65536, now=NOW) is None
    forged = {**official, "name": "TLP:CLEAR"}
    assert guard.content_problem(forged, max_bytes=65536, now=NOW)[0] == "forged-marking"  # type: ignore[index]
    from stix2 import v21

    nginx = json.loads(v21.Software(name="nginx").serialize())
    assert guard.content_problem(nginx, max_bytes=65536, now=NOW) is None
    lying = {**nginx, "name": "OpenSSH"}
    assert guard.content_problem(lying, max_bytes=65536, now=NOW)[0] == "forged-software"  # type: ignore[index]


def test_identity_screen_binds_on_first_use_and_refuses_strangers() -> None:
    software = {"type": "software", "id": "software--1", "name": "nginx"}
    first = guard.screen_identity([_posture(), software], account="member-01", own=None, owner_of={})
    assert first.bind == MINE and len(first.accepted) == 2 and not first.rejected
    stolen = guard.screen_identity([_posture(THEIRS)], account="member-01", own=MINE,
                                       owner_of={MINE: "member-01", THEIRS: "member-02"})
    assert not stolen.accepted and stolen.rejected[0].kind == "other-identity"
    assert "another member's identity" in stolen.rejected[0].reason
    squat = guard.screen_identity([_posture(THEIRS)], account="member-03", own=None,
                                      owner_of={THEIRS: "member-02"})
    assert squat.bind is None and squat.rejected[0].kind == "other-identity"
    second = guard.screen_identity([_posture(THEIRS)], account="member-01", own=MINE, owner_of={MINE: "member-01"})
    assert second.rejected[0].reason.endswith("an identity other than this member's own")
    anonymous = {k: v for k, v in _posture().items() if k != "created_by_ref"}
    nameless = guard.screen_identity([anonymous], account="member-01", own=MINE, owner_of={})
    assert nameless.rejected[0].kind == "no-creator"
    sighting = {"type": "sighting", "id": "sighting--1", "created_by_ref": MINE, "where_sighted_refs": [THEIRS]}
    assert guard.screen_identity([sighting], account="member-01", own=MINE, owner_of={}).rejected


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


IDENTITY = {"type": "identity", "spec_version": "2.1", "id": "identity--44444444-4444-4444-8444-444444444444",
            "created": "2026-11-25T00:00:00.000Z", "modified": "2026-11-25T00:00:00.000Z", "name": "x"}
EXTENSION = {"type": "extension-definition", "spec_version": "2.1",
             "id": "extension-definition--55555555-5555-4555-8555-555555555555", "created_by_ref": MINE,
             "created": "2026-11-25T00:00:00.000Z", "modified": "2026-11-25T00:00:00.000Z", "name": "x",
             "schema": "s", "version": "1.0.0", "extension_types": ["new-sdo"]}


@pytest.mark.parametrize(("obj", "kind"), [
    ({**IDENTITY, "created": 1.5}, "bad-date"),
    ({**IDENTITY, "sectors": -1}, "invalid-stix"),
    ({**IDENTITY, "extensions": "x"}, "invalid-stix"),
    ({**EXTENSION, "extension_types": None}, "invalid-stix"),
    ({**IDENTITY, "labels": _nested(2000)}, "not-stix"),
    ({**IDENTITY, "x_blob": {"a": float("nan")}}, None),  # odd but harmless: the validator decides
    (_posture(open_findings=3), "bad-posture"),
    (_posture(by_severity={"high": 1}), "bad-posture"),
    (_posture(by_severity=["high"]), "bad-posture"),
    ({k: v for k, v in _posture().items() if k != "created_by_ref"}, "bad-posture"),
    (_posture(checks="all"), "bad-posture"),
])
def test_hostile_objects_are_named_never_raised(obj: dict[str, Any], kind: str | None) -> None:
    found = guard.content_problem(obj, max_bytes=65536, now=NOW)
    assert (found[0] if found else None) in ({kind} if kind else {None, "invalid-stix"})
    assert found is None or "\n" not in found[1]


REGIONAL = {"type": "x-warpagent-regional", "spec_version": "2.1",
            "id": "x-warpagent-regional--66666666-6666-4666-8666-666666666666", "created_by_ref": THEIRS,
            "created": "2000-01-01T00:00:00.000Z", "modified": "2026-11-25T00:00:00.000Z", "as_of": "2026-11-25",
            "k_threshold": 3, "members_total": 5, "members_current": 5,
            "categories": [{"category": "configs", "measured": {"count": 5, "of": 5},
                            "with_open": {"withheld": True}, "median_open": "2-5"}]}


@pytest.mark.parametrize(("changes", "kind"), [
    ({}, None),
    ({"k_threshold": "three"}, "bad-regional"),
    ({"k_threshold": 0}, "bad-regional"),
    ({"members_current": "5"}, "bad-regional"),
    ({"categories": "configs"}, "bad-regional"),
    ({"categories": [{"category": "configs", "measured": {"count": "5", "of": 5}}]}, "bad-regional"),
    ({"categories": [{"category": "configs", "median_open": 3}]}, "bad-regional"),
])
def test_regional_pictures_a_board_reads_hold_numbers(changes: dict[str, Any], kind: str | None) -> None:
    found = guard.content_problem({**REGIONAL, **changes}, max_bytes=65536, now=NOW, validate=False)
    assert (found[0] if found else None) == kind


def test_sealed_versions_are_the_latest_of_each_members_day() -> None:
    member = "identity--5b0e4c8e-1c43-5b8e-9d0e-3f8c3a4b7a11"

    def versions(modified: str, *pairs: object) -> dict[str, Any]:
        return {"type": "x-warpagent-versions", "created_by_ref": member, "as_of": modified[:10],
                "modified": modified, "software": list(pairs)}

    objects = [
        versions("2026-12-05T03:00:00.000Z", {"product": "nginx", "version": "1.22.1"}),
        versions("2026-12-05T00:00:00Z", {"product": "nginx", "version": "1.18.0"},
                 {"product": "openssh", "version": "9.2p1"}),  # the day's first share: replaced
        versions("2026-12-04T00:00:00.000Z", {"product": "redis", "version": "7.0.15"}, {"product": "x"}, "junk"),
        {"type": "x-warpagent-versions", "created_by_ref": 7, "as_of": "2026-12-05", "software": []},
        {"type": "x-warpagent-versions", "created_by_ref": member, "as_of": "not a day", "software": []},
    ]
    assert regional.sealed_versions(objects) == {(member, dt.date(2026, 12, 5)): {("nginx", "1.22.1")},
                                                 (member, dt.date(2026, 12, 4)): {("redis", "7.0.15")}}


def test_a_later_share_the_same_day_replaces_the_earlier_one_sightings_too() -> None:
    member = "identity--5b0e4c8e-1c43-5b8e-9d0e-3f8c3a4b7a11"
    vulnerability = {"type": "vulnerability", "id": "vulnerability--1",
                     "external_references": [{"source_name": "cve", "external_id": "CVE-2024-6387"}]}

    def posture(modified: str, open_findings: str) -> dict[str, Any]:
        return {"type": "x-warpagent-posture", "created_by_ref": member, "category": "patches", "measured": True,
                "as_of": "2026-12-05", "modified": modified, "open_findings": open_findings}

    def sighting(modified: str) -> dict[str, Any]:
        return {"type": "sighting", "created_by_ref": member, "sighting_of_ref": "vulnerability--1",
                "modified": modified}

    morning, later = "2026-12-05T00:00:00.000Z", "2026-12-05T03:12:45.120Z"
    (day,) = regional.member_postures([posture(later, "0"), posture(morning, "2-5")], [sighting(morning)],
                                      [vulnerability])
    assert day.categories["patches"].open_findings == "0" and day.cves == frozenset()  # fixed by 03:12
    (first,) = regional.member_postures([posture(morning, "2-5")], [sighting("2026-12-05T00:00:00Z")],
                                        [vulnerability])
    assert first.cves == frozenset({"CVE-2024-6387"})  # the same moment, written without milliseconds


@pytest.mark.parametrize(("software", "ok"), [
    ([{"product": "openssh", "version": "9.2p1"}], True),
    ([{"product": "srv-fin01.fenwickvale.local", "version": "1"}], False),
    ([{"product": "openssh", "version": "9.2p1 srv-fin01"}], False),
    ([{"product": "openssh", "version": "9.2p1", "host": "srv-fin01"}], False),
    ([{"product": "openssh"}], False),
    ("openssh 9.2p1", False),
])
def test_the_hub_takes_sealed_versions_only_in_warpagents_shapes(software: object, ok: bool) -> None:
    obj = {"type": "x-warpagent-versions", "spec_version": "2.1",
           "id": "x-warpagent-versions--652e1204-c89e-55e2-8384-fa463700e1d4",
           "created_by_ref": "identity--373ec6c7-d8b6-5d53-9c38-95cf39d1b9aa", "created": "2000-01-01T00:00:00.000Z",
           "modified": "2026-11-25T00:00:00.001Z", "as_of": "2026-11-25", "software": software,
           "extensions": {stix_bundle.VERSIONS_EXTENSION: {"extension_type": "new-sdo"}}}
    problem = guard.content_problem(obj, max_bytes=65536, now=NOW)
    assert (problem is None) == ok, problem
    if not ok:
        assert problem is not None and problem[0] in ("bad-versions", "invalid-stix")
