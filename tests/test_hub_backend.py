"""The hub's SQL backend under medallion's interface, on a SQLite file and a real PostgreSQL: versions, filters,
stateless paging, and date_added that never goes backwards."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from medallion.exceptions import ProcessingError

from warpagent.config import HubSettings, HubUser
from warpagent.hub.backend import HubBackend, collection_id

T0 = dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)
MEMBERS = collection_id("warp", "members")
ALLOWED = ("id", "type", "version", "spec_version")


@pytest.fixture
def backend(store_url: str) -> HubBackend:
    """The same backend tests on a SQLite file and on a real PostgreSQL."""
    settings = HubSettings(users=(HubUser(name="member-01", role="member", password_env="X"),),  # noqa: S106
                           store=store_url)
    return HubBackend(settings)


def vuln(n: int, modified: str = "2026-11-25T00:00:00.000Z") -> dict[str, Any]:
    return {"type": "vulnerability", "spec_version": "2.1", "id": f"vulnerability--{n:08d}-0000-4000-8000-000000000000",
            "created": "2000-01-01T00:00:00.000Z", "modified": modified, "name": f"CVE-2024-{n:04d}"}


def get(backend: HubBackend, limit: int = 100, **args: str) -> tuple[dict[str, Any], dict[str, str]]:
    return backend.get_objects("warp", MEMBERS, dict(args), ALLOWED, limit)  # type: ignore[no-any-return]


def test_versions_first_last_all_and_exact(backend: HubBackend) -> None:
    days = ["2026-11-20T00:00:00.000Z", "2026-11-22T00:00:00.000Z", "2026-11-18T00:00:00Z"]
    for offset, day in enumerate(days):  # the oldest version arrives last
        backend.store(MEMBERS, [vuln(1, day)], "member-01", T0 + dt.timedelta(minutes=offset), screen=False)
    version = lambda resource: [o["modified"] for o in resource.get("objects", [])]  # noqa: E731
    assert version(get(backend)[0]) == ["2026-11-22T00:00:00.000Z"]
    assert version(get(backend, **{"match[version]": "first"})[0]) == ["2026-11-18T00:00:00Z"]
    assert sorted(version(get(backend, **{"match[version]": "all"})[0])) == sorted(days)
    assert version(get(backend, **{"match[version]": "2026-11-20T00:00:00Z"})[0]) == ["2026-11-20T00:00:00.000Z"]
    versions = backend.get_object_versions("warp", MEMBERS, vuln(1)["id"], {}, ("spec_version",), 10)[0]
    assert versions["versions"] == ["2026-11-22T00:00:00.000Z", "2026-11-20T00:00:00.000Z", "2026-11-18T00:00:00Z"]
    again = backend.store(MEMBERS, [vuln(1, days[0])], "member-01", T0 + dt.timedelta(minutes=9), screen=False)
    assert again["failure_count"] == 1 and again["failures"][0]["message"] == "already held"
    manifest = backend.get_object_manifest("warp", MEMBERS, {"match[version]": "all"}, ALLOWED, 10)[0]
    assert {m["version"] for m in manifest["objects"]} == set(days)  # as each object has it, for exact comparison


def test_paging_is_stateless_and_tamper_proof(backend: HubBackend) -> None:
    backend.store(MEMBERS, [vuln(n) for n in range(25)], "member-01", T0, screen=False)
    seen: list[str] = []
    args: dict[str, str] = {"match[type]": "vulnerability"}
    while True:
        resource, headers = get(backend, limit=10, **args)
        seen += [o["id"] for o in resource["objects"]]
        assert headers["X-TAXII-Date-Added-First"].startswith("2026-11-25T09:00:00")
        if not resource["more"]:
            break
        # a second server on the same store can serve the next page: the token carries the position
        other = HubBackend(backend.settings)
        resource, _headers = other.get_objects("warp", MEMBERS, {**args, "next": resource["next"]}, ALLOWED, 10)
        seen += [o["id"] for o in resource["objects"]]
        if not resource.get("more"):
            break
        args = {"match[type]": "vulnerability", "next": resource["next"]}
    assert sorted(seen) == sorted(vuln(n)["id"] for n in range(25))
    first = get(backend, limit=10)[0]
    with pytest.raises(ProcessingError) as changed:
        get(backend, limit=10, **{"next": first["next"], "match[type]": "identity"})
    assert changed.value.status == 400
    with pytest.raises(ProcessingError):
        get(backend, limit=10, next="not-a-token")


def test_date_added_only_moves_forward(backend: HubBackend) -> None:
    backend.store(MEMBERS, [vuln(1)], "member-01", T0, screen=False)
    backend.store(MEMBERS, [vuln(2)], "member-01", T0 - dt.timedelta(hours=1), screen=False)  # a slow clock
    resource, headers = get(backend, added_after="2026-11-25T09:00:00.000000Z")
    assert [o["id"] for o in resource["objects"]] == [vuln(2)["id"]]  # later write, later stamp: never missed
    assert headers["X-TAXII-Date-Added-Last"] > "2026-11-25T09:00:00.000000Z"


def test_filters_and_delete(backend: HubBackend) -> None:
    identity = {"type": "identity", "spec_version": "2.1", "id": "identity--11111111-1111-4111-8111-111111111111",
                "created": "2000-01-01T00:00:00.000Z", "modified": "2026-11-25T00:00:00.000Z", "name": "m"}
    software = {"type": "software", "spec_version": "2.1", "id": "software--11111111-1111-5111-8111-111111111111",
                "name": "nginx"}
    backend.store(MEMBERS, [identity, vuln(1), vuln(1, "2026-11-26T00:00:00.000Z"), software], "member-01", T0,
                  screen=False)
    assert [o["type"] for o in get(backend, **{"match[type]": "identity,software"})[0]["objects"]] == [
        "identity", "software"]
    assert len(get(backend, **{"match[id]": vuln(1)["id"], "match[version]": "all"})[0]["objects"]) == 2
    assert backend.store(MEMBERS, [software], "member-01", T0, screen=False)["failure_count"] == 1  # immutable
    with pytest.raises(ProcessingError) as missing:
        backend.get_object("warp", MEMBERS, "identity--00000000-0000-4000-8000-000000000000", {}, ALLOWED, 10)
    assert missing.value.status == 404
    backend.roles["coordinator"] = "coordinator"
    backend.account = lambda: "coordinator"  # type: ignore[method-assign]
    backend.delete_object("warp", MEMBERS, vuln(1)["id"], {"match[version]": "2026-11-26T00:00:00.000Z"}, ALLOWED)
    remaining = get(backend, **{"match[id]": vuln(1)["id"]})[0]["objects"]
    assert [o["modified"] for o in remaining] == ["2026-11-25T00:00:00.000Z"]  # the older version is latest again
    assert json.dumps(remaining[0], sort_keys=True) == json.dumps(vuln(1), sort_keys=True)


@pytest.mark.parametrize("module", ["warpagent.hub.backend", "warpagent.hub_backend"])
def test_medallion_loads_the_backend_by_its_configured_names(tmp_path: Path, module: str) -> None:
    """medallion imports its backend by module name; configurations from before the package layout
    name warpagent.hub_backend."""
    import medallion

    settings = HubSettings(users=(HubUser(name="member-01", role="member", password_env="X"),),  # noqa: S106
                           store=str(tmp_path / "hub.db"))
    loaded = medallion.connect_to_backend({"module": module, "module_class": "HubBackend", "settings": settings})
    assert isinstance(loaded, HubBackend)
