"""Estate-scale scanning: thousands of addresses, a few hundred with services, scanned by one nmap
and by warpagent's chunks in parallel. Needs root (it builds its own address range).

    sudo .venv/bin/python bench/parallel_scan.py [--network 198.19.16.0/20] [--live 600] [--served 300]
                                                 [--ports 22,80,443] [--parallel 1,2,4,8] [--chunk 256]

The range is one network namespace in 198.19.0.0/16 (the RFC 2544 benchmarking space) on a veth
pair: `--live` hosts answer, `--served` of them run nginx on port 80, the rest of the range is
dark (no ARP answer), as on a council network. The reference is plain nmap, run once with
exactly the arguments warpagent builds for a chunk, over every address in one process; then
`pipeline.collect` (chunks, merge, parse) at each parallelism. Every run must find the same open
services, or the benchmark stops. Torn down by PID at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.address_range import build  # noqa: E402
from warpagent import config  # noqa: E402
from warpagent.collect import nmap_runner, nmap_xml  # noqa: E402
from warpagent.scan import pipeline  # noqa: E402
from warpagent.scan.plan import plan_for, resolve_scope  # noqa: E402


def settings_for(workdir: Path, network: str, scanner: str, ports: str, chunk: int, parallel: int) -> config.Settings:
    path = workdir / f"p{parallel}.yaml"
    path.write_text(f"""organisation: {{name: Bench Council}}
store: ./bench.db
estates:
  - name: county
    targets: [{network}]
    exclude: [{scanner}]
    ports: "{ports}"
    chunk_size: {chunk}
    parallel: {parallel}
    max_addresses: 65536
""")
    return config.load(str(path))


def open_services(hosts: object) -> set[tuple[str, int]]:
    return {(h.address, s.port) for h in hosts for s in h.services if s.state == "open"}  # type: ignore[attr-defined]


def children_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="198.19.16.0/20")
    parser.add_argument("--live", type=int, default=600)
    parser.add_argument("--served", type=int, default=300)
    parser.add_argument("--ports", default="22,80,443")
    parser.add_argument("--parallel", default="1,2,4,8")
    parser.add_argument("--chunk", type=int, default=256)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: the benchmark builds a network namespace")
    rng = build(args.network, live=args.live, served=args.served)
    scanner = str(__import__("ipaddress").ip_network(args.network)[-2])
    try:
        with tempfile.TemporaryDirectory(prefix="warpagent-bench-") as temp:
            workdir = Path(temp)
            nmap = nmap_runner.find_nmap("nmap")
            base = settings_for(workdir, args.network, scanner, args.ports, args.chunk, 1)
            estate = base.estates[0]
            scope = resolve_scope(estate)
            targets = workdir / "all.txt"
            targets.write_text("\n".join(scope.addresses) + "\n")
            plan, _ports, _notes = plan_for(estate, base.scan.timing, targets)
            argv = nmap_runner.build_args(nmap, dataclasses.replace(plan, targets_file=targets))
            print(f"range {args.network}: {len(scope.addresses)} addresses in scope, {args.live} live, "
                  f"{args.served} with a web server; ports {args.ports}")
            started = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=7200)
            reference = time.perf_counter() - started
            expected = open_services(nmap_xml.parse(done.stdout, {}).hosts)
            print(f"plain nmap, one process, all addresses: {reference:.1f} s, {len(expected)} open services, "
                  f"peak RSS {children_peak_rss_mib():.0f} MiB")
            print("| parallel | chunks | warpagent collect | speed-up over one nmap | open services |")
            print("|---|---|---|---|---|")
            for parallel in (int(p) for p in args.parallel.split(",")):
                settings = settings_for(workdir, args.network, scanner, args.ports, args.chunk, parallel)
                estate = settings.estates[0]
                started = time.perf_counter()
                collection = pipeline.collect(estate, settings.scan.timing, scope, nmap, pipeline.NoProgress())
                elapsed = time.perf_counter() - started
                found = open_services(collection.inventory.hosts)
                if found != expected or collection.problems:
                    raise SystemExit(f"parallel {parallel} found {len(found)} open services, not {len(expected)}; "
                                     f"problems: {collection.problems}")
                chunks = -(-len(scope.addresses) // args.chunk)
                print(f"| {parallel} | {chunks} | {elapsed:.1f} s | {reference / elapsed:.2f}x | {len(found)} |")
            print(f"peak RSS: warpagent {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, "
                  f"largest nmap {children_peak_rss_mib():.0f} MiB")
    finally:
        rng.teardown()


if __name__ == "__main__":
    main()
