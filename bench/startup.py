"""Start-up: how long each command takes before its first useful work, against plain Python.

    .venv/bin/python bench/startup.py [--rounds 7]

Runs `warpagent --version`, `--help` and `check-config` (of a config with no estate to resolve)
as a cron job would, each `rounds` times, and reports the median wall time beside the same
interpreter starting with nothing (`python -c pass`) and importing jsonschema as shipped (which
compiles its IRI grammar at import: what every command paid before warpagent deferred it).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def median_s(args: list[str], rounds: int, cwd: Path) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(args, cwd=cwd, capture_output=True, check=False, timeout=120)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    python = sys.executable
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        (folder / "w.yaml").write_text("organisation: {name: Bench Council}\nstore: ./w.db\n"
                                       "estates: [{name: e, targets: [127.0.0.1], ports: '9'}]\n")
        bare = median_s([python, "-c", "pass"], rounds, folder)
        eager = median_s([python, "-c", "import jsonschema"], rounds, folder)
        print(f"python -c pass: {bare:.3f} s; python importing jsonschema as shipped: {eager:.3f} s")
        for label, args in (("--version", ["--version"]), ("--help", ["--help"]),
                            ("check-config", ["--config", "w.yaml", "check-config"])):
            took = median_s([python, "-m", "warpagent", *args], rounds, folder)
            print(f"warpagent {label}: {took:.3f} s median of {rounds} (bare interpreter x{took / bare:.1f}, "
                  f"{took - bare:.3f} s of warpagent's own)")


if __name__ == "__main__":
    main()
