"""Regional aggregation at WARP scale: 400 members with 500 objects each on a local hub, pulled by
the coordinator and aggregated into the regional picture. Target: under 60 s on the project's
machine (2 cores).

    .venv/bin/python bench/aggregate.py [--members 400] [--objects 500] [--page 1000]

The hub is the real `warpagent hub serve` (SQLite store) on 127.0.0.1, started and stopped here
by PID. Seeding writes each member's bundle straight into the hub's store through its backend,
without the per-object STIX validation a push pays (about 2 ms an object; bench/share.py measures
pushes), so the benchmark spends its time on what it measures. The reference is a plain
taxii2-client read of the same collection (every version, same page size) that keeps nothing.
`hub aggregate --dry-run` then runs as its own process, timed, with its peak memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taxii2client.v21 import Collection  # noqa: E402

from tests.hub_process import PASSWORDS, HubProcess, hub_config, hub_env  # noqa: E402
from tests.taxii_server import free_port  # noqa: E402
from warpagent import config  # noqa: E402
from warpagent.hub.backend import HubBackend, collection_id  # noqa: E402
from warpagent.model.findings import CATEGORIES, Severity  # noqa: E402
from warpagent.sharing import anonymise, stix_bundle  # noqa: E402

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def member_posture(index: int, cves_per_member: int, rng: random.Random) -> anonymise.SharedPosture:
    """One member's posture in the real shapes: seven categories, CVE sightings drawn with a long
    tail (a few CVEs everywhere, most rare), a handful of products and fixes."""
    pool = [f"CVE-{2014 + n % 12}-{20000 + n}" for n in range(6000)]
    cves = set()
    while len(cves) < cves_per_member:
        cves.add(pool[min(int(rng.paretovariate(0.7)) - 1, len(pool) - 1)] if rng.random() < 0.5
                 else rng.choice(pool))
    as_of = NOW.date() - dt.timedelta(days=60 if index % 10 == 9 else rng.randint(0, 6))  # one in ten is stale
    categories = tuple(anonymise.CategoryPosture(
        category=c, measured=rng.random() > 0.1, open_findings=rng.choice(["0", "0", "1", "2-5", "6-20", "21+"]),
        by_severity=tuple((s.label, rng.choice(["0", "1", "2-5"])) for s in sorted(Severity, reverse=True)),
        checks=(), oldest_open=as_of - dt.timedelta(days=30), past_due=rng.choice(["0", "0", "1"]))
        for c in CATEGORIES)
    return anonymise.SharedPosture(
        pseudonym=f"{index:032x}", sector="local-government", region="north-west", as_of=as_of,
        categories=categories,
        cves=tuple(anonymise.CveSighting(cve=c, assets=rng.choice(["1", "2-5"]), first_seen=as_of, last_seen=as_of)
                   for c in sorted(cves)),
        software=tuple(anonymise.SoftwareSeen(product=f"product{rng.randint(0, 40)}", version=f"1.{rng.randint(0, 9)}",
                                              category="patches") for _ in range(5)),
        remediations=tuple(anonymise.Remediation(check_id=f"WA1{n:02d}", name=f"check {n}", fix="fix it")
                           for n in range(8)),
        withheld_versions=0)


def seed(settings: config.Settings, members: int, objects: int) -> tuple[int, float]:
    assert settings.hub is not None
    backend = HubBackend(settings.hub)
    collection = collection_id(settings.hub.api_root, "members")
    rng = random.Random(7)
    per_member_fixed = 24  # marking, identity, 7 postures, 8 fixes, 5 products, the report (and spare)
    started = time.perf_counter()
    for index in range(members):
        bundle = stix_bundle.build(member_posture(index, max(1, (objects - per_member_fixed) // 2), rng))
        backend.store(collection, bundle["objects"], f"member-{index:03d}", NOW, screen=False)
    seeded = time.perf_counter() - started
    return backend.count(collection), seeded


def plain_pull(hub: HubProcess, settings: config.Settings, page: int) -> tuple[int, float]:
    assert settings.hub is not None
    url = f"{hub.url}{settings.hub.api_root}/collections/{collection_id(settings.hub.api_root, 'members')}/"
    collection = Collection(url, user="coordinator", password=PASSWORDS["coordinator"])
    started = time.perf_counter()
    count, kwargs = 0, {"limit": page, "version": "all"}
    while True:
        envelope = collection.get_objects(**kwargs)
        count += len(envelope.get("objects", []))
        if not envelope.get("more"):
            break
        kwargs = {"limit": page, "version": "all", "next": envelope["next"]}
    return count, time.perf_counter() - started


def timed_aggregate(workdir: Path, config_path: Path) -> tuple[float, float, str]:
    env = {**os.environ, **hub_env()}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "warpagent", "--config", str(config_path), "hub", "aggregate",
                             "--dry-run", "--json", "--out", str(workdir / "picture.json")], cwd=workdir, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    message = proc.stderr.read().decode().strip().splitlines()[-1]
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"hub aggregate failed: {message}")
    return elapsed, usage.ru_maxrss / 1024, message


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=400)
    parser.add_argument("--objects", type=int, default=500, help="objects per member (about)")
    parser.add_argument("--page", type=int, default=1000, help="TAXII page size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="warpagent-bench-") as temp:
        workdir = Path(temp)
        port = free_port()
        config_path = hub_config(workdir / "hub.yaml", port, extra=f"  page_size: {args.page}\n")
        settings = config.load(str(config_path))
        count, seeded = seed(settings, args.members, args.objects)
        print(f"seeded {count:,} objects from {args.members} members in {seeded:.1f} s "
              f"(STIX build {count / seeded:,.0f} objects/s)")
        hub = HubProcess(config=config_path, port=port).start()
        try:
            pulled, reference = plain_pull(hub, settings, args.page)
            print(f"reference: plain taxii2-client read of every version, pages of {args.page}: {pulled:,} objects "
                  f"in {reference:.1f} s ({pulled / reference:,.0f} objects/s)")
            first, first_rss, first_line = timed_aggregate(workdir, config_path)
            print(f"hub aggregate, first run (pull all + aggregate): {first:.1f} s, peak RSS {first_rss:.0f} MiB")
            print(f"  {first_line}")
            again, again_rss, _line = timed_aggregate(workdir, config_path)
            print(f"hub aggregate, next run (nothing new to pull): {again:.1f} s, peak RSS {again_rss:.0f} MiB")
            assert hub.proc is not None
            print(f"hub server peak RSS: {vm_hwm_mib(hub.proc.pid):.0f} MiB")
            print(f"ratio first aggregate / plain read: {first / reference:.2f}; target under 60 s: "
                  f"{'met' if first < 60 else 'MISSED'}")
        finally:
            hub.stop()


if __name__ == "__main__":
    main()
