"""Share throughput: 100,000 findings anonymised, built into STIX 2.1, validated and pushed to a
local medallion in batches. Prints objects per second for each stage beside the cost of creating
the same objects with plain stix2 calls, and the top of a profile of the build stage.

    .venv/bin/python bench/share.py [--findings 100000] [--cves 4000] [--products 400]

Needs no root: medallion runs on 127.0.0.1 (started and stopped here, by PID).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import os
import pstats
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stix2 import v21  # noqa: E402

from tests.taxii_server import Medallion, free_port  # noqa: E402
from warpagent.config import PeerConfig, Settings, SharingSettings, parse_text  # noqa: E402
from warpagent.model.findings import CATEGORIES, Finding, FindingStatus, Severity, TrackedFinding  # noqa: E402
from warpagent.sharing import anonymise, share, stix_bundle, stix_validation  # noqa: E402
from warpagent.sharing.outbox import Outbox  # noqa: E402
from warpagent.sharing.taxii import PeerClient  # noqa: E402

NOW = dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.UTC)


def synthetic_findings(count: int, cves: int, products: int, seed: int = 7) -> list[TrackedFinding]:
    rng = random.Random(seed)
    cve_ids = [f"CVE-{2015 + i % 11}-{10000 + i}" for i in range(cves)]
    product_names = [(f"product{i % (products // 4 or 1)}", f"{i % 7}.{i % 13}.{i}") for i in range(products)]
    out = []
    for i in range(count):
        category = CATEGORIES[i % len(CATEGORIES)]
        product, version = rng.choice(product_names)
        finding = Finding(estate="county", asset=f"198.18.{(i // 250) % 256}.{i % 250}", category=category,
                          check_id=f"WA{CATEGORIES.index(category) + 1}{i % 20:02d}",
                          severity=Severity(rng.randint(0, 4)), title="t", evidence="e", remediation="r",
                          subject=f"{i % 1000}/tcp", port=i % 1000, protocol="tcp",
                          cves=tuple(rng.sample(cve_ids, 2)) if category == "patches" else (),
                          product=product, version=version)
        out.append(TrackedFinding(finding=finding, first_seen=NOW - dt.timedelta(days=i % 90), last_seen=NOW,
                                  status=FindingStatus.OPEN))
    return out


def plain_stix2(objects: list[dict]) -> float:  # type: ignore[type-arg]
    """The same number of objects of the same types, made with plain stix2 constructors."""
    marks = [stix_bundle.TLP2_IDS["amber"]]
    who = f"identity--{uuid.uuid4()}"
    start = time.perf_counter()
    for obj in objects:
        kind = obj["type"]
        if kind == "vulnerability":
            v21.Vulnerability(name=obj["name"], external_references=obj["external_references"], created_by_ref=who,
                              object_marking_refs=marks)
        elif kind == "sighting":
            v21.Sighting(sighting_of_ref=obj["sighting_of_ref"], where_sighted_refs=[who], count=obj["count"],
                         created_by_ref=who, object_marking_refs=marks)
        elif kind == "software":
            v21.Software(name=obj["name"], object_marking_refs=marks)
        elif kind == "course-of-action":
            v21.CourseOfAction(name=obj["name"], description=obj["description"], created_by_ref=who,
                               object_marking_refs=marks)
        else:
            v21.Note(content=kind, object_refs=[who], created_by_ref=who, object_marking_refs=marks)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--cves", type=int, default=4000)
    parser.add_argument("--products", type=int, default=400)
    parser.add_argument("--batch", type=int, default=500)
    options = parser.parse_args()

    findings = synthetic_findings(options.findings, options.cves, options.products)
    figures: list[tuple[str, int, float]] = []

    start = time.perf_counter()
    posture = anonymise.anonymise(findings, member="f" * 32, sector="local-government", region="north-west",
                                  as_of=NOW.date(), k=3, measured=set(CATEGORIES),
                                  service_products=share.scanned_products("nmap"))
    figures.append(("anonymise (findings)", len(findings), time.perf_counter() - start))

    start = time.perf_counter()
    bundle = stix_bundle.build(posture)
    objects = len(bundle["objects"])
    figures.append(("build STIX (objects)", objects, time.perf_counter() - start))
    profile = cProfile.Profile()  # a second, profiled build: the profiler's overhead stays out of the timing
    profile.enable()
    stix_bundle.build(posture)
    profile.disable()

    start = time.perf_counter()
    text = stix_bundle.to_json(bundle)
    errors = stix_bundle.validate(text)
    figures.append(("serialise and validate (objects)", objects, time.perf_counter() - start))
    assert not errors, errors[:3]
    start = time.perf_counter()
    reference_errors = stix_validation.upstream_errors(text)
    upstream_s = time.perf_counter() - start
    assert reference_errors == errors

    with tempfile.TemporaryDirectory(prefix="wa-bench-outbox-") as queue_dir:
        start = time.perf_counter()
        Outbox(Path(queue_dir)).put("hub", bundle["id"], text, NOW)
        figures.append(("queue in the outbox (objects)", objects, time.perf_counter() - start))

    plain = plain_stix2(bundle["objects"])
    with tempfile.TemporaryDirectory(prefix="wa-bench-share-") as work:
        hub = Medallion(port=free_port(), workdir=Path(work), users={"bench": "bench-password"}).start()
        try:
            base = parse_text("organisation: {name: Bench}\nestates: [{name: b, targets: [127.0.0.1]}]\n", "bench",
                              Path(work))
            peer = PeerConfig(name="hub", url=hub.url, collection="members", username="bench",
                              password_env="BENCH_HUB_PASSWORD", timeout_s=600)
            settings = Settings(source="bench", organisation=base.organisation, store=Path(work) / "b.db",
                                scan=base.scan, estates=base.estates, sharing=SharingSettings(peers=(peer,)))
            os.environ["BENCH_HUB_PASSWORD"] = "bench-password"
            client = PeerClient(peer, settings.secret)
            start = time.perf_counter()
            result = client.push(bundle, wait_s=600, batch_size=options.batch)
            figures.append((f"push to medallion, batches of {options.batch} (objects)", objects,
                            time.perf_counter() - start))
            assert result.delivered, result.missing[:3]
            held = result.accepted + result.already_there
            client.close()
        finally:
            hub.stop()

    print(f"{len(findings)} findings -> {objects} STIX objects ({len(text) / 1e6:.1f} MB bundle); "
          f"server confirmed {held}")
    print(f"{'stage':48} {'items':>8} {'seconds':>9} {'per second':>12}")
    for name, items, seconds in figures:
        print(f"{name:48} {items:>8} {seconds:>9.3f} {items / seconds:>12.0f}")
    whole = sum(seconds for name, _items, seconds in figures if not name.startswith("push"))
    print(f"whole share (anonymise, build, validate, queue): {whole:.2f} s (target < 10 s)")
    print(f"stix2-validator as shipped on the same bundle: {upstream_s:.2f} s, the same {len(errors)} errors; "
          f"warpagent's validation {upstream_s / figures[2][2]:.1f}x faster")
    build_s = figures[1][2]
    print(f"{'plain stix2 constructors (same objects)':48} {objects:>8} {plain:>9.3f} {objects / plain:>12.0f}")
    print(f"build / plain stix2 = {build_s / plain:.2f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    stream = io.StringIO()
    pstats.Stats(profile, stream=stream).sort_stats("tottime").print_stats(6)
    print("build stage, top functions by own time:")
    print("\n".join(line for line in stream.getvalue().splitlines() if line.strip()[:1].isdigit())[:1500])


if __name__ == "__main__":
    main()
