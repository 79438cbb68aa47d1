"""One odd service in a chunk: ten loopback hosts with HTTPS, one of which completes the TLS
handshake and then never answers (nmap's version detection waits out every probe on it).

    .venv/bin/python bench/stalled_service.py [--hosts 10] [--service-timeout 3s]

Four scans of the same chunk, by `pipeline.collect` with the real nmap, in one process:
  one pass (service_timeout 0s), without and with the odd host;
  staged (ports; then the scripts beside one version pass per port number with quick waits and
  a budget per service, the TLS scripts after it; stock probes and renamed services only where
  needed: warpagent.collect.stages), without and with it.
The reference is the one-pass scan of the hosts without the odd one. Each scan's findings (the
checks run on its inventory) must equal the one-pass scan's of the same hosts, or the benchmark
stops: the budget may cost the odd host time, never a finding. Loopback only; the servers are
threads of this process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checks import CheckContext  # noqa: E402
from tests.tls_servers import serving  # noqa: E402
from warpagent import config  # noqa: E402
from warpagent.collect import nmap_runner  # noqa: E402
from warpagent.scan import engine, pipeline  # noqa: E402
from warpagent.scan.plan import resolve_scope  # noqa: E402

PORT = 8443


def timed_scan(workdir: Path, targets: list[str], service_timeout: str) -> tuple[float, set[tuple[str, str]]]:
    path = workdir / "w.yaml"
    path.write_text(f"""organisation: {{name: Bench Council}}
store: ./bench.db
estates:
  - name: corporate
    targets: [{", ".join(targets)}]
    ports: "{PORT}"
    host_timeout: 15m
    service_timeout: {service_timeout}
""")
    settings = config.load(str(path))
    estate = settings.estates[0]
    started = time.monotonic()
    collection = pipeline.collect(estate, settings.scan.timing, resolve_scope(estate), nmap_runner.find_nmap("nmap"),
                              pipeline.NoProgress())
    elapsed = time.monotonic() - started
    if collection.problems:
        raise SystemExit(f"scan was partial: {collection.problems}")
    evaluation = engine.evaluate(collection.inventory, CheckContext(now=dt.datetime.now(dt.UTC)))
    return elapsed, {(f.asset, f.check_id) for f in evaluation.findings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10, help="hosts in the chunk, the odd one included")
    parser.add_argument("--service-timeout", default="3s", help="estates[].service_timeout for the staged scans")
    options = parser.parse_args()
    fine = [f"127.0.1.{n}" for n in range(1, options.hosts)]
    odd = f"127.0.1.{options.hosts}"
    with tempfile.TemporaryDirectory(prefix="warpagent-bench-") as work, \
            serving(Path(work), https=[(a, PORT) for a in fine], silent=[(odd, PORT)]):
        runs = {}
        for label, targets, budget in [("one pass, without the odd host", fine, "0s"),
                                       ("one pass, with it", [*fine, odd], "0s"),
                                       ("staged, without the odd host", fine, options.service_timeout),
                                       ("staged, with it", [*fine, odd], options.service_timeout)]:
            runs[label] = timed_scan(Path(work), targets, budget)
            print(f"{label:34} {runs[label][0]:7.1f} s  {len(runs[label][1])} findings", flush=True)
    reference, old = runs["one pass, without the odd host"], runs["one pass, with it"]
    if runs["staged, without the odd host"][1] != reference[1] or runs["staged, with it"][1] != old[1]:
        raise SystemExit("the staged scan's findings differ from one pass over the same hosts")
    print(f"findings equal one pass's: {len(old[1])} with the odd host ({len({a for a, _ in old[1]})} hosts)")
    print(f"odd host's cost, one pass: {old[0] / reference[0]:.2f}x the reference ({reference[0]:.1f} s)")
    print(f"odd host's cost, staged:   {runs['staged, with it'][0] / reference[0]:.2f}x; "
          f"staged without it {runs['staged, without the odd host'][0] / reference[0]:.2f}x")


if __name__ == "__main__":
    main()
