"""Scan overhead: plain nmap with warpagent's exact arguments vs the whole `warpagent scan` pipeline.

Builds the test estate (needs root: network namespaces in 198.18.0.0/15), then alternates, round
by round, between (a) nmap run directly with the argument list warpagent builds, output captured,
and (b) scan_estate(): scope, nmap, parse, every check, the SQLite write. Prints both medians and
the ratio b/a. Target: ratio <= 1.10.

    sudo .venv/bin/python bench/scan_overhead.py [--rounds 5] [--ports 21,22,443,...]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import estate as test_estate  # noqa: E402
from warpagent import config  # noqa: E402
from warpagent.collect import nmap_runner  # noqa: E402
from warpagent.collect.scope import Scope  # noqa: E402
from warpagent.scan.pipeline import scan_estate  # noqa: E402
from warpagent.scan.plan import plan_for, resolve_scope  # noqa: E402
from warpagent.store.findings import Store  # noqa: E402
from warpagent.store.lifecycle import RunReport  # noqa: E402

# Every planted service but telnet: nmap spends ~46 s fingerprinting inetutils telnetd, which
# would only stretch every round by the same constant.
DEFAULT_PORTS = "21,22,443,6379,8443,11211,U:161"


Finding = tuple[str, str, int | None]


def _same_view(xml: str, settings: config.Settings, estate: config.EstateConfig,
               scope: Scope) -> tuple[set[Finding], set[Finding]]:
    """The checks' findings on the one-pass XML and on a staged collection of the same estate
    (nmap's view only: no web pages, no evidence), as (asset, check, port)."""
    import datetime as dt

    from checks import CheckContext
    from warpagent.collect import nmap_xml
    from warpagent.model.findings import Inventory
    from warpagent.scan import engine, pipeline

    def view(inventory: Inventory) -> set[Finding]:
        evaluation = engine.evaluate(inventory, CheckContext(now=dt.datetime.now(dt.UTC)))
        return {(f.asset, f.check_id, f.port) for f in evaluation.findings}

    parsed = nmap_xml.parse(xml, scope.names)
    one_pass = view(Inventory(estate=estate.name, hosts=parsed.hosts, scanned=parsed.finished))
    collection = pipeline.collect(estate, settings.scan.timing, scope, nmap_runner.find_nmap("nmap"),
                                  pipeline.NoProgress())
    return one_pass, view(collection.inventory)


def _own_cost(xml: str, names: dict[str, str], store: Store, estate: str, repeats: int = 20) -> float:
    """Median seconds for what warpagent adds to nmap: parse the XML, run the checks, record the run."""
    import datetime as dt

    from checks import CheckContext
    from warpagent.collect import nmap_xml
    from warpagent.model.findings import Inventory
    from warpagent.scan import engine

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        parsed = nmap_xml.parse(xml, names)
        inventory = Inventory(estate=estate, hosts=parsed.hosts, scanned=parsed.finished)
        now = dt.datetime.now(dt.UTC)
        evaluation = engine.evaluate(inventory, CheckContext(now=now))
        run = store.begin_run(estate, now)
        store.record_run(run, RunReport(findings=evaluation.findings, finished=now, complete=True,
                                        observed_assets=frozenset(h.asset for h in parsed.hosts),
                                        in_scope_assets=frozenset(parsed.finished), hosts_scanned=len(parsed.finished)))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ports", default=DEFAULT_PORTS)
    options = parser.parse_args()

    built = test_estate.build()
    try:
        with tempfile.TemporaryDirectory(prefix="wa-bench-") as work:
            text = (f"organisation: {{name: Bench Council}}\nstore: {work}/bench.db\nestates:\n"
                    f"  - name: bench\n    targets: [{', '.join(built.addresses)}]\n"
                    f"    ports: \"{options.ports}\"\n    timeout: 10m\n")
            settings = config.parse_text(text, "bench", Path(work))
            estate = settings.estates[0]
            scope = resolve_scope(estate)
            targets = Path(work) / "targets.txt"
            targets.write_text("\n".join(scope.addresses) + "\n")
            plan, _ports, _notes = plan_for(estate, settings.scan.timing, targets)
            args = nmap_runner.build_args(nmap_runner.find_nmap("nmap"), plan)
            print("nmap arguments:", " ".join(args))

            plain: list[float] = []
            agent: list[float] = []
            findings = 0
            with Store(settings.store) as store:
                for round_no in range(options.rounds):
                    order = ("plain", "agent") if round_no % 2 == 0 else ("agent", "plain")
                    for which in order:
                        start = time.perf_counter()
                        if which == "plain":
                            xml = subprocess.run(args, capture_output=True, check=True, timeout=600).stdout
                            plain.append(time.perf_counter() - start)
                        else:
                            outcome = scan_estate(settings, estate, store, estate_scope=scope)
                            agent.append(time.perf_counter() - start)
                            findings = len(outcome.delta.new) + len(outcome.delta.still_open)
                    print(f"round {round_no + 1}: plain nmap {plain[-1]:.2f} s, warpagent scan {agent[-1]:.2f} s")
                own = _own_cost(xml.decode(), scope.names, store, estate.name)
                one_pass, staged = _same_view(xml.decode(), settings, estate, scope)
            plain_median, agent_median = statistics.median(plain), statistics.median(agent)
            print(f"hosts {len(scope.addresses)}, findings per run {findings}, rounds {options.rounds}")
            print(f"findings from nmap's view alone: one pass {len(one_pass)}, staged {len(staged)}, "
                  f"equal: {one_pass == staged}")
            for missing in sorted(one_pass - staged):
                print(f"  only in one pass: {missing}")
            for extra in sorted(staged - one_pass):
                print(f"  only staged: {extra}")
            print(f"plain nmap median      {plain_median:.3f} s")
            print(f"warpagent scan median  {agent_median:.3f} s")
            print(f"overhead ratio         {agent_median / plain_median:.3f} (target <= 1.10)")
            print(f"warpagent's own work   {own * 1000:.2f} ms per run (parse + checks + store, nmap excluded)")
            print(f"warpagent peak RSS     {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")
            print(f"nmap peak RSS          {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.1f} MiB")
    finally:
        built.teardown()


if __name__ == "__main__":
    main()
