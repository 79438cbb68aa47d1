"""Match throughput: installed distribution packages matched against distribution advisories.

An estate of 10,000 hosts with 100 packages each (1,000,000 package instances, the shape dpkg
status files give) against a compiled intel store holding 300,000 advisory ranges (6,000
source packages x 50 fixes each, Debian version strings in the real shapes: epochs, +debNuN,
~ pre-releases). Prints the time to match 100k, 250k, 500k and 1M instances, peak memory, and a
reference: the same matching done naively (every instance compared with every fix of its
package, no compiled order, no reuse), timed on a sample and scaled.

    .venv/bin/python bench/match.py [--hosts 10000] [--packages-per-host 100] [--fixes 300000]

Needs no root and no network.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feeds import versions  # noqa: E402
from feeds.intel_store import IntelStore, LoadedIntel, compile_store  # noqa: E402
from feeds.model import DistroFix  # noqa: E402

ECOSYSTEM = "Debian:12"


def package_versions(rng: random.Random, index: int) -> list[str]:
    """Ten successive Debian revisions of one source package, oldest first."""
    epoch = "1:" if index % 7 == 0 else ""
    upstream = f"{1 + index % 9}.{index % 23}.{index % 5}"
    if index % 11 == 0:
        upstream += "~rc1" if rng.random() < 0.5 else "p1"
    return [f"{epoch}{upstream}-{1 + index % 3}+deb12u{n}" for n in range(1, 11)]


def build_store(path: Path, packages: int, fixes_per_package: int, seed: int) -> float:
    rng = random.Random(seed)
    fixes = []
    cve = 0
    for index in range(packages):
        ladder = package_versions(rng, index)
        for _ in range(fixes_per_package):
            cve += 1
            fixed = rng.choice(ladder[1:])
            fixes.append(DistroFix(ECOSYSTEM, f"src{index}", f"DEBIAN-CVE-2024-{cve:06d}",
                                   (f"CVE-2024-{cve:06d}",), "0", fixed, round(rng.uniform(2, 10), 1)))
    started = time.perf_counter()
    compile_store(LoadedIntel(distro_fixes=fixes), path, dt.datetime.now(dt.UTC))
    return time.perf_counter() - started


def estate(hosts: int, per_host: int, packages: int, seed: int) -> list[tuple[str, str, str]]:
    """(ecosystem, source package, version) per package instance; popular packages on most hosts."""
    rng = random.Random(seed)
    ladders = [package_versions(random.Random(i), i) for i in range(packages)]
    weights = [1.0 / (1 + i) ** 0.8 for i in range(packages)]  # a few packages everywhere, a long tail
    instances = []
    for _ in range(hosts):
        chosen = set(rng.choices(range(packages), weights=weights, k=per_host * 2))
        for index in list(chosen)[:per_host]:
            ladder = ladders[index]
            instances.append((ECOSYSTEM, f"src{index}", ladder[min(9, int(rng.expovariate(0.5)))]))
    return instances


def match(store_path: Path, instances: list[tuple[str, str, str]]) -> tuple[float, int]:
    with IntelStore(store_path) as intel:
        started = time.perf_counter()
        vulnerable = 0
        for ecosystem, package, version in instances:
            if intel.distro_matches(ecosystem, package, version):
                vulnerable += 1
        return time.perf_counter() - started, vulnerable


def naive(store_path: Path, sample: list[tuple[str, str, str]]) -> float:
    """Every instance against every fix of its package with the library comparison, nothing reused."""
    import sqlite3

    db = sqlite3.connect(str(store_path))
    started = time.perf_counter()
    for ecosystem, package, version in sample:
        for (fixed,) in db.execute("SELECT fixed FROM distro_fix WHERE ecosystem = ? AND package = ?",
                                   (ecosystem, package)):
            versions.dpkg_compare(version, fixed)
    db.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--packages-per-host", type=int, default=100)
    parser.add_argument("--fixes", type=int, default=300_000)
    parser.add_argument("--source-packages", type=int, default=6_000)
    parser.add_argument("--child", nargs=2, metavar=("STORE", "INSTANCES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        store_path, count = Path(args.child[0]), int(args.child[1])
        instances = estate(args.hosts, args.packages_per_host, args.source_packages, seed=11)[:count]
        generated = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        seconds, vulnerable = match(store_path, instances)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"{len(instances)} {seconds:.3f} {vulnerable} {generated / 1024:.0f} {peak / 1024:.0f}")
        return
    with tempfile.TemporaryDirectory(prefix="warpagent-bench-") as work:
        store_path = Path(work) / "intel.db"
        per_package = max(1, args.fixes // args.source_packages)
        compile_seconds = build_store(store_path, args.source_packages, per_package, seed=3)
        print(f"compiled store: {args.source_packages * per_package:,} advisory ranges for "
              f"{args.source_packages:,} source packages in {compile_seconds:.1f} s "
              f"({store_path.stat().st_size / 2**20:.0f} MiB)")
        total = args.hosts * args.packages_per_host
        print(f"{'instances':>10} {'match s':>8} {'per s':>12} {'vulnerable':>11} {'peak RSS MiB':>13}")
        results = {}
        for count in sorted({total // 10, total // 4, total // 2, total}):
            # each size in its own process, so peak memory is that run's alone
            out = subprocess.run([sys.executable, __file__, "--hosts", str(args.hosts), "--packages-per-host",
                                  str(args.packages_per_host), "--source-packages", str(args.source_packages),
                                  "--child", str(store_path), str(count)], capture_output=True, text=True,
                                 check=True).stdout.split()
            done, seconds, vulnerable, _generated, peak = int(out[0]), float(out[1]), int(out[2]), out[3], out[4]
            results[done] = seconds
            print(f"{done:>10,} {seconds:>8.2f} {done / seconds:>12,.0f} {vulnerable:>11,} {peak:>13}")
        sample = estate(200, args.packages_per_host, args.source_packages, seed=11)[:10_000]
        naive_seconds = naive(store_path, sample) * (total / len(sample))
        biggest = max(results)
        print(f"reference: naive matching (every fix compared) scaled from {len(sample):,} instances: "
              f"{naive_seconds:.0f} s for {total:,}; compiled store is {naive_seconds / results[biggest]:.0f}x faster")
        growth = results[biggest] / results[min(results)]
        print(f"growth: {min(results):,} -> {biggest:,} instances ({biggest / min(results):.0f}x) took "
              f"{growth:.1f}x the time")


if __name__ == "__main__":
    main()
