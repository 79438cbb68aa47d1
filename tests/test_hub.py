"""The WARP hub end to end: five member agents share to a real hub (`warpagent hub serve`), the
coordinator aggregates, and every figure is checked against counts taken independently from the
agents' own stores; hostile input, restarts and per-account access against the same real hub."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from checks import CheckContext
from tests.conftest import ASSETS, RECORDED_AT, run_cli
from tests.hub_process import PASSWORDS, TAXII, HubProcess, env_name, hub_config, hub_env
from tests.intel_data import KEV_FILE
from tests.taxii_server import free_port
from warpagent.collect import nmap_xml
from warpagent.hub.backend import collection_id
from warpagent.model.findings import CATEGORIES, Finding, FindingStatus, Inventory, Severity
from warpagent.scan import engine
from warpagent.sharing import anonymise, share, software, stix_bundle
from warpagent.store.findings import Store
from warpagent.store.lifecycle import RunReport

NOW = dt.datetime.now(dt.UTC)
NAMES = {"198.18.18.10": "weak-web.council.test", "198.18.18.11": "infra01.council.test"}
HOSTS = {"web": "weak-web.council.test", "infra": "infra01.council.test", "control": "198.18.18.20"}
KEV_CVE, OTHER_CVE = "CVE-2021-41773", "CVE-2023-48795"  # Apache path traversal is in CISA KEV; Terrapin is not


@dataclass
class Agent:
    """One member council: its own config, store and pseudonym key, sharing as one hub account."""

    name: str  # the council's real name: must never reach the hub
    account: str
    estate: str
    hosts: tuple[str, ...]
    extra: tuple[tuple[str, str, Severity, tuple[str, ...], int], ...] = ()  # (category, check, severity, cves, age)
    unmeasured: frozenset[str] = frozenset()
    dir: Path = field(default=Path())

    @property
    def key(self) -> str:
        return hashlib.sha256(f"pseudonym key of {self.estate}".encode()).hexdigest()  # 64 hex characters

    @property
    def env(self) -> dict[str, str]:
        return {"WARPAGENT_PSEUDONYM_KEY": self.key, **hub_env()}

    @property
    def identity(self) -> str:
        return stix_bundle.member_identity_id(anonymise.pseudonym(self.key.encode(), self.name))

    @property
    def identifying(self) -> list[str]:
        # the hosts by the names the estate knows them by (their short labels above are the test's own)
        return [self.name, self.estate, *(HOSTS[h] for h in self.hosts), self.key, PASSWORDS[self.account], "198.18.18"]


AGENTS = (
    Agent("Test Borough Council", "member-01", "borough-corporate", ("web", "infra"),
          extra=(("patches", "WA101", Severity.CRITICAL, (KEV_CVE,), 40),
                 ("privileges", "WA301", Severity.CRITICAL, (), 2))),
    Agent("Riverside District Council", "member-02", "riverside-estate", ("web",),
          extra=(("patches", "WA101", Severity.HIGH, (KEV_CVE,), 3), ("passwords", "WA401", Severity.HIGH, (), 3))),
    Agent("Hillcrest Schools Trust", "member-03", "hillcrest-schools", ("infra",),
          extra=(("patches", "WA101", Severity.HIGH, (KEV_CVE, OTHER_CVE), 5),
                 ("backups", "WA701", Severity.HIGH, (), 1))),
    Agent("Northgate Shared Services", "member-04", "northgate-shared", ("control",),
          extra=(("patches", "WA102", Severity.MEDIUM, (OTHER_CVE,), 2),), unmeasured=frozenset({"backups"})),
    Agent("Lakeside County Council", "member-05", "lakeside-county", ("control",),
          unmeasured=frozenset({"patches", "backups"})),
)


def _finding(agent: Agent, category: str, check: str, severity: Severity, cves: tuple[str, ...]) -> Finding:
    host = HOSTS[agent.hosts[0]]
    return Finding(estate=agent.estate, asset=host, check_id=check, category=category, severity=severity,
                   title=f"{check} on {host} at {agent.name}", evidence=f"seen on {host} by {agent.name}",
                   remediation="fix it", subject=f"{check}-{'-'.join(cves) or 'x'}", cves=cves,
                   product="Apache httpd" if cves else "", version="2.4.49" if cves else "",
                   kev_due=dt.date(2021, 11, 17) if KEV_CVE in cves else None)


def populate(agent: Agent) -> None:
    """The agent's store as its nightly scans would leave it: recorded nmap findings for its hosts,
    host-evidence findings of the given ages, and categories it could not measure."""
    parsed = nmap_xml.parse((ASSETS / "nmap-estate.xml").read_text(), NAMES)
    hosts = tuple(h for h in parsed.hosts if h.asset in {HOSTS[x] for x in agent.hosts})
    inventory = Inventory(estate=agent.estate, hosts=hosts, scanned=parsed.finished)
    # judged as of the moment the XML was recorded: its certificates expire as the calendar moves on
    scanned = list(engine.evaluate(inventory, CheckContext(now=RECORDED_AT)).findings)
    extra = [(age, _finding(agent, *spec[:4])) for *spec, age in agent.extra]
    assets = [h.asset for h in hosts]
    with Store(agent.dir / "warpagent.db") as store:
        for age in sorted({a for a, _f in extra} | {0}, reverse=True):
            when = NOW - dt.timedelta(days=age)
            found = [f for a, f in extra if a >= age] + (scanned if age == 0 else [])
            run = store.begin_run(agent.estate, when)
            store.record_run(run, RunReport(findings=tuple(found), finished=when, complete=True,
                                            observed_assets=frozenset(assets), in_scope_assets=frozenset(assets),
                                            hosts_scanned=len(assets),
                                            unmeasured_categories=frozenset(agent.unmeasured)))


def agent_config(agent: Agent, hub_url: str) -> Path:
    path = agent.dir / "w.yaml"
    peer = (f"url: '{hub_url}taxii2/', username: {agent.account}, password_env: {env_name(agent.account)}, "
            "timeout: 20s")
    path.write_text(f"""organisation: {{name: {agent.name}, region: north-west, sector: local-government}}
store: ./warpagent.db
estates: [{{name: {agent.estate}, targets: [198.18.18.0/24]}}]
sharing:
  peers:
    - {{name: warp, collection: members, versions_collection: versions, {peer}}}
    - {{name: warp-regional, collection: regional, direction: pull, {peer}}}
""")
    return path


# --- what the figures must be, computed from the agents' own stores -------------------------------

@dataclass(frozen=True)
class Expected:
    measured: frozenset[str]
    open_categories: frozenset[str]
    cves: frozenset[str]
    past_due: bool
    versions: frozenset[tuple[str, str]]  # (product, version) as the anonymiser shapes them


def expected(agent: Agent) -> Expected:
    with Store(agent.dir / "warpagent.db") as store:
        found = store.findings(status=FindingStatus.OPEN.value)
        measured = frozenset(CATEGORIES) - store.unmeasured_categories()
    ages = [((NOW - t.first_seen).days, t.finding) for t in found]
    late = any((f.kev_due and age > 14) or (f.severity is Severity.CRITICAL and age > 15)
               or (f.severity is Severity.HIGH and age > 30) for age, f in ages)
    known = share.scanned_products("nmap")
    shaped = [software.shareable(t.finding.product, t.finding.version,
                                 known=known if t.finding.port is not None else None) for t in found]
    return Expected(measured=measured, open_categories=frozenset(t.finding.category for t in found),
                    cves=frozenset(c for t in found for c in t.finding.cves), past_due=late,
                    versions=frozenset((s.product, s.version) for s in shaped if s.product and s.version))


def shown(count: int, of: int, k: int) -> bool:
    """The k rule, written out again for the test: each side of the split empty or k strong."""
    return of >= k and count in (0, *range(k, of + 1)) and (of - count) in (0, *range(k, of + 1))


def figures(picture: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "stale", picture["stale"]
    yield "past_due", picture["past_due"]
    for c in picture["categories"]:
        for key in ("measured", "with_open", "previous", "past_due"):
            yield f"{c['category']}.{key}", c[key]
        for index, point in enumerate(c["trend"]):
            yield f"{c['category']}.trend[{index}]", point


# --- the region: a hub and five agents that shared to it ------------------------------------------

@dataclass
class Region:
    root: Path
    hub: HubProcess
    agents: tuple[Agent, ...]


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    root = tmp_path_factory.mktemp("region")
    port = free_port()
    hub = HubProcess(config=hub_config(root / "hub.yaml", port), port=port).start()
    try:
        intel = root / "kev-import" / "kev"
        intel.mkdir(parents=True)
        (intel / KEV_FILE.name).write_bytes(KEV_FILE.read_bytes())
        imported = run_cli("--config", str(root / "hub.yaml"), "feeds", "update", "--from", str(intel.parent),
                           cwd=root, env=hub_env())
        assert imported.returncode in (0, 3), imported.stderr  # only KEV is imported: the rest stays absent
        agents = []
        for agent in AGENTS:
            agent.dir = root / agent.account
            agent.dir.mkdir()
            populate(agent)
            shared = run_cli("--config", str(agent_config(agent, hub.url)), "share", "--json", cwd=agent.dir,
                             env=agent.env)
            assert shared.returncode == 0, shared.stderr
            agents.append(agent)
        yield Region(root=root, hub=hub, agents=tuple(agents))
    finally:
        hub.stop()


def aggregate(region: Region, k: int, *extra: str) -> dict[str, Any]:
    config = hub_config(region.root / f"hub-k{k}.yaml", region.hub.port, k=k,
                        coordinator_store=f"./coordinator-k{k}.db")
    result = run_cli("--config", str(config), "hub", "aggregate", "--json", *extra, cwd=region.root, env=hub_env())
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


@pytest.mark.parametrize("k", [2, 3])
def test_aggregate_matches_counts_taken_from_the_agents_own_findings(region: Region, k: int) -> None:
    picture = aggregate(region, k, "--dry-run")
    truth = [expected(a) for a in region.agents]
    assert picture["members_current"] == 5 and picture["members_total"] == 5
    for category in picture["categories"]:
        name = category["category"]
        measuring = [t for t in truth if name in t.measured]
        with_open = sum(1 for t in measuring if name in t.open_categories)
        assert category["with_open"] == ({"count": with_open, "of": len(measuring)}
                                         if shown(with_open, len(measuring), k) else {"count": None, "of": None}), name
        assert category["measured"] == ({"count": len(measuring), "of": 5} if shown(len(measuring), 5, k)
                                        else {"count": None, "of": None}), name
        assert category["previous"] == {"count": None, "of": 0}  # nobody had shared a month ago
    late = sum(1 for t in truth if t.past_due)
    assert picture["past_due"] == ({"count": late, "of": 5} if shown(late, 5, k) else {"count": None, "of": None})
    cve_members = {cve: sum(1 for t in truth if cve in t.cves) for cve in (KEV_CVE, OTHER_CVE)}
    listed = [(c["cve"], c["members"], c["kev"]) for c in picture["cves"]]
    assert listed == [(cve, n, cve == KEV_CVE) for cve, n in cve_members.items() if shown(n, 5, k)]
    # one row per member, under its pseudonym, each row the member's own latest buckets
    assert sorted(m["label"][:12] for m in picture["members"]) == ["WARP member "] * 5
    for figure_name, value in figures(picture):
        if value["count"] is not None:
            assert shown(value["count"], value["of"], k), f"{figure_name} reveals a figure resting on fewer than {k}"
    for item in picture["cves"] + picture["products"]:
        assert shown(item["members"], 5, k)
    # versions reach the picture through the hub's sealed collection (no member shares one in its
    # posture on a first night: no peer data yet), each only where k members run it
    version_members = {(p, v): sum(1 for t in truth if (p, v) in t.versions) for t in truth for p, v in t.versions}
    listed_versions = {(p["product"], v, n) for p in picture["products"] for v, n in p["versions"]}
    assert listed_versions == {(p, v, n) for (p, v), n in version_members.items()
                               if shown(n, 5, k) and any(x["product"] == p for x in picture["products"])}
    if k == 2:
        assert listed_versions, "no version reached the regional picture"


def test_k3_withholds_what_k2_reveals(region: Region) -> None:
    two, three = aggregate(region, 2, "--dry-run"), aggregate(region, 3, "--dry-run")
    configs = lambda p: next(c for c in p["categories"] if c["category"] == "configs")  # noqa: E731
    assert configs(two)["with_open"] == {"count": 3, "of": 5}  # borough, riverside, hillcrest
    assert configs(three)["with_open"] == {"count": None, "of": None}  # the other two would be a group of two
    assert [c["cve"] for c in two["cves"]] == [KEV_CVE, OTHER_CVE]  # KEV first
    assert three["cves"] == [] and three["cves_withheld"] == 2


def test_published_picture_reaches_members_boards_and_names_no_one(region: Region) -> None:
    page, bundle_path = region.root / "regional.html", region.root / "regional.json"
    aggregate(region, 2, "--dry-run")  # writes hub-k2.yaml
    published = run_cli("--config", str(region.root / "hub-k2.yaml"), "hub", "aggregate", "--out", str(page),
                        "--bundle", str(bundle_path), cwd=region.root, env=hub_env())
    assert published.returncode == 0, published.stderr
    assert "published to the regional collection" in published.stderr
    bundle = json.loads(bundle_path.read_text())
    assert stix_bundle.validate(json.dumps(bundle)) == []
    member = region.agents[1]
    pulled = run_cli("--config", str(member.dir / "w.yaml"), "pull", "--json", cwd=member.dir, env=member.env)
    assert pulled.returncode == 0, pulled.stderr
    board = run_cli("--config", str(member.dir / "w.yaml"), "report", "board", "--out", "board.html", cwd=member.dir,
                    env=member.env)
    assert board.returncode == 0, board.stderr
    board_html = (member.dir / "board.html").read_text()
    assert "regional picture of" in board_html and 'data-peer="configs"' in board_html
    assert "60%" in board_html  # three of five members have open configuration weaknesses

    hub_bytes = b"".join(p.read_bytes() for p in region.root.glob("hub.db*"))
    shared = page.read_bytes() + bundle_path.read_bytes() + hub_bytes + b"".join(
        p.read_bytes() for p in region.root.glob("coordinator*.db*"))
    text = shared.decode("utf-8", errors="replace").casefold()
    for agent in region.agents:
        for needle in agent.identifying:
            assert needle.casefold() not in text, f"{needle!r} of {agent.account} reached the hub or the picture"
    regional_text = (page.read_text() + bundle_path.read_text()).casefold()
    for agent in region.agents:
        assert agent.account not in regional_text  # a hub account may be traceable to a council: never on the page


def _post(hub: HubProcess, account: str, objects: list[Any], collection: str = "members") -> requests.Response:
    return requests.post(f"{hub.url}warp/collections/{collection_id('warp', collection)}/objects/",
                         data=json.dumps({"objects": objects}), auth=(account, PASSWORDS[account]), timeout=30,
                         headers={**TAXII, "Content-Type": "application/taxii+json;version=2.1"})


def _members_objects(hub: HubProcess) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    params = {"match[version]": "all", "limit": "500"}
    while True:
        response = requests.get(f"{hub.url}warp/collections/{collection_id('warp', 'members')}/objects/",
                                params=params, auth=("coordinator", PASSWORDS["coordinator"]), headers=TAXII,
                                timeout=30)
        response.raise_for_status()
        envelope = response.json()
        out += envelope.get("objects", [])
        if not envelope.get("more"):
            return out
        params = {**params, "next": envelope["next"]}


def test_hostile_input_is_rejected_reported_and_never_corrupts_the_picture(region: Region) -> None:
    before = aggregate(region, 2, "--dry-run")
    victim, attacker = region.agents[0], region.agents[4]
    held = _members_objects(region.hub)
    posture = next(o for o in held if o["type"] == "x-warpagent-posture" and o["created_by_ref"] == victim.identity
                   and o["category"] == "backups")
    forged = {**posture, "open_findings": "21+", "as_of": NOW.date().isoformat(),
              "modified": (NOW + dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    status = _post(region.hub, attacker.account, [forged]).json()
    assert status["failure_count"] == 1 and "another member's identity" in status["failures"][0]["message"]

    not_stix = {"type": "indicator", "id": "indicator--0b3f003e-5047-49ff-a4ef-278b2a5661d3", "spec_version": "2.1",
                "created": "2026-11-25T00:00:00Z", "modified": "2026-11-25T00:00:00Z"}
    status = _post(region.hub, attacker.account, [not_stix]).json()
    assert status["failure_count"] == 1 and "invalid STIX 2.1" in status["failures"][0]["message"]

    own = next(o for o in held if o["type"] == "x-warpagent-posture" and o["created_by_ref"] == attacker.identity
               and o["category"] == "configs")
    bloated = {**own, "modified": (NOW + dt.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
               "software": [{"product": "x" * 60, "version": str(i)} for i in range(5000)]}
    assert _post(region.hub, attacker.account, [bloated]).json()["failure_count"] == 1  # one object over the limit
    many = [{**not_stix, "id": f"indicator--{i:08d}-5047-49ff-a4ef-278b2a5661d3"} for i in range(80000)]
    assert _post(region.hub, attacker.account, many).status_code == 413  # a request over hub.max_request_bytes
    too_many = _post(region.hub, attacker.account, many[:1001])
    assert too_many.status_code == 413 and "at most 1000 per request" in too_many.text

    future = {**own, "modified": "2099-01-01T00:00:00.000Z", "as_of": "2099-01-01"}
    assert "in the future" in _post(region.hub, attacker.account, [future]).json()["failures"][0]["message"]

    after = aggregate(region, 2, "--dry-run")
    assert {k: v for k, v in after.items() if k != "rejected"} == {k: v for k, v in before.items() if k != "rejected"}
    reasons = dict((reason, n) for reason, n in after["rejected"])
    assert reasons["objects claiming another member's identity"] >= 1
    assert reasons["invalid STIX 2.1"] >= 1 and reasons["larger than the hub accepts"] >= 1
    assert reasons["missing, malformed or future timestamps"] >= 1
    assert "Input the hub refused" in run_cli("--config", str(region.root / "hub-k2.yaml"), "hub", "aggregate",
                                              "--dry-run", cwd=region.root, env=hub_env()).stdout


def test_the_hub_keeps_its_data_and_bindings_across_a_restart(region: Region) -> None:
    before = _members_objects(region.hub)
    region.hub.stop()
    region.hub.start()
    after = _members_objects(region.hub)
    assert sorted((o["id"], o.get("modified")) for o in after) == sorted((o["id"], o.get("modified")) for o in before)
    # the binding of each account to its identity survived too: another account still cannot speak for it
    owner, other = region.agents[1], region.agents[2]
    identity = next(o for o in after if o["id"] == owner.identity)
    claim = {**identity, "modified": NOW.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    status = _post(region.hub, other.account, [claim]).json()
    assert status["failure_count"] == 1 and "another member's identity" in status["failures"][0]["message"]


def test_accounts_see_and_write_only_what_their_role_allows(region: Region) -> None:
    hub = region.hub
    members, regional = collection_id("warp", "members"), collection_id("warp", "regional")

    def get(account: str, path: str, password: str | None = None) -> int:
        return requests.get(f"{hub.url}warp/{path}", auth=(account, password or PASSWORDS[account]), headers=TAXII,
                            timeout=10).status_code

    assert get("member-01", f"collections/{members}/objects/") == 200
    versions = collection_id("warp", "versions")
    assert get("member-01", f"collections/{versions}/objects/") == 403  # sealed: members write, never read
    assert get("member-01", f"collections/{versions}/manifest/") == 403
    assert get("coordinator", f"collections/{versions}/objects/") == 200
    assert get("reader", f"collections/{versions}/objects/") == 404
    assert get("reader", f"collections/{members}/objects/") == 404  # readers never learn the members' collection
    assert get("reader", f"collections/{regional}/objects/") == 200
    assert get("member-01", "collections/", password="wrong-password") == 401  # noqa: S106
    listed = requests.get(f"{hub.url}warp/collections/", auth=("reader", PASSWORDS["reader"]), headers=TAXII,
                          timeout=10).json()["collections"]
    assert [c["title"] for c in listed] == ["regional"] and listed[0]["can_write"] is False
    identity = {"type": "identity", "spec_version": "2.1", "id": "identity--7d0e2f6a-1b2c-4d3e-8f4a-5b6c7d8e9f0a",
                "created": "2026-11-25T00:00:00.000Z", "modified": "2026-11-25T00:00:00.000Z", "name": "x"}
    assert _post(hub, "member-01", [identity], collection="regional").status_code == 403
    assert _post(hub, "coordinator", [identity], collection="members").status_code == 403
    some = _members_objects(hub)[0]["id"]
    delete = requests.delete(f"{hub.url}warp/collections/{members}/objects/{some}/",
                             auth=("member-01", PASSWORDS["member-01"]), headers=TAXII, timeout=10)
    assert delete.status_code == 403  # a member can never remove another's posture


def test_sharing_again_into_the_sealed_collection_it_cannot_read_is_delivered(region: Region) -> None:
    """The second share of a day finds every object already held; in the versions collection the
    member cannot read the manifest, so the hub's status resource is what confirms delivery."""
    agent = region.agents[2]
    again = run_cli("--config", str(agent.dir / "w.yaml"), "share", "--json", cwd=agent.dir, env=agent.env)
    assert again.returncode == 0, again.stderr
    peers = {p["peer"]: p for p in json.loads(again.stdout)["peers"]}
    assert peers["warp/versions"] == {"peer": "warp/versions", "ok": True, "delivered": 1, "pending": 0,
                                      "errors": []}
    assert peers["warp"]["delivered"] == 1


def test_hub_config_errors_are_one_clear_line(tmp_path: Path) -> None:
    config = hub_config(tmp_path / "hub.yaml", free_port())
    result = run_cli("--config", str(config), "hub", "serve", cwd=tmp_path, env={})
    assert result.returncode == 2
    assert result.stderr.strip() == (f"{config}: At 'hub.users[0].password_env': environment variable "
                                     "HUB_PW_COORDINATOR is not set; export it before running warpagent")
    config.write_text(config.read_text().replace("role: reader", "role: admin"))
    result = run_cli("--config", str(config), "check-config", cwd=tmp_path)
    assert result.returncode == 2 and "At 'hub.users[1].role': 'admin' is not one of: member, coordinator, reader" \
        in result.stderr
    port = free_port()
    busy = HubProcess(config=hub_config(tmp_path / "busy.yaml", port), port=port).start()
    try:
        clash = run_cli("--config", str(busy.config), "hub", "serve", cwd=tmp_path, env=hub_env(), timeout=60)
        assert clash.returncode == 3 and f"cannot listen on 127.0.0.1:{busy.port}" in clash.stderr
    finally:
        busy.stop()


def test_aggregate_with_the_hub_down_says_so(tmp_path: Path) -> None:
    config = hub_config(tmp_path / "hub.yaml", free_port())
    result = run_cli("--config", str(config), "hub", "aggregate", "--dry-run", "--out", "r.html", cwd=tmp_path,
                     env=hub_env())
    assert result.returncode == 3
    assert "peer hub-members: pull stopped (ConnectionError" in result.stderr
    assert (tmp_path / "r.html").exists()  # the picture from what was pulled before (here: nothing yet)


def test_hub_sqlite_is_a_real_file(region: Region) -> None:
    with sqlite3.connect(region.root / "hub.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"hub_objects", "hub_bindings", "hub_rejections", "hub_status"} <= tables
