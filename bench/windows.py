"""Windows update levels at council scale: N computers' exports judged against M months of
Microsoft's security update documents (WA104).

Times each stage a night runs: loading the MSRC documents (`feeds update`'s load), compiling
the intel store, reading the registry export (one CSV of N rows, BOM and all), and judging
every computer with WA104 against the compiled store; beside the reference, reading the same
CSV with the csv module alone (the floor for anything that looks at it).

The documents are real: a folder of cvrfDocument-*.xml given with --documents (for example a
checkout of p0w3rsh3ll/MSRC-data), else the five shipped in tests/assets/msrc. When fewer than
--months are there, the rest are those months again relabelled to earlier months with their
UBRs lowered (said in the output), so the ladder is as long as a 24-month feed's.

    .venv/bin/python bench/windows.py [--hosts 20000] [--months 24] [--documents DIR]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import io
import lzma
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checks.base import CheckContext  # noqa: E402
from checks.windows_updates import windows_missing_update  # noqa: E402
from feeds import msrc  # noqa: E402
from feeds.intel_store import IntelStore, LoadedIntel, compile_store  # noqa: E402
from feeds.model import WindowsUpdate  # noqa: E402
from warpagent.evidence import windows_exports  # noqa: E402
from warpagent.model.evidence import EvidenceKind, HostEvidence  # noqa: E402
from warpagent.model.findings import RECORD_STATE, Host  # noqa: E402

SHIPPED = ROOT / "tests" / "assets" / "msrc"
HEADER = "ComputerName,ProductName,EditionID,DisplayVersion,InstallationType,CurrentBuild,UBR,CollectedAt"


def documents(folder: Path | None) -> list[bytes]:
    if folder is not None:
        return [p.read_bytes() for p in sorted(folder.rglob("cvrfDocument-*.xml"))]
    return [lzma.decompress(p.read_bytes()) for p in sorted(SHIPPED.glob("cvrfDocument-*.xml.xz"))]


def earlier(month: str, by: int) -> str:
    year, number = (int(x) for x in month.split("-"))
    total = year * 12 + number - 1 - by
    return f"{total // 12}-{total % 12 + 1:02d}"


def stretched(updates: list[WindowsUpdate], months: int) -> tuple[list[WindowsUpdate], int]:
    """The real months, then copies relabelled to the months before them, UBRs lowered."""
    real = sorted({u.month for u in updates})
    added: list[WindowsUpdate] = []
    copies = 0
    while len(real) * (copies + 1) < months:
        copies += 1
        shift = len(real) * copies
        added += [dataclasses.replace(u, month=earlier(u.month, shift), ubr=max(1, u.ubr - 400 * copies),
                                      released=u.released - dt.timedelta(days=30 * shift)) for u in updates]
    return updates + added, len(real)


def export(updates: list[WindowsUpdate], hosts: int, collected: dt.datetime) -> str:
    rng = random.Random(31)
    lines = sorted({(u.build, u.server) for u in updates})
    by_line: dict[tuple[int, bool], list[int]] = {}
    for u in updates:
        by_line.setdefault((u.build, u.server), []).append(u.ubr)
    rows = [HEADER]
    for index in range(hosts):
        build, server = rng.choice(lines)
        ubr = rng.choice(by_line[(build, server)]) - rng.choice((0, 0, 0, 1, 50))
        kind = "Server" if server else "Client"
        rows.append(f'"PC-{index:05d}","Windows","Enterprise","24H2","{kind}","{build}","{max(ubr, 1)}",'
                    f'"{collected:%Y-%m-%dT%H:%M:%SZ}"')
    return "\ufeff" + "\r\n".join(rows) + "\r\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--documents", type=Path)
    args = parser.parse_args()

    texts = documents(args.documents)
    started = time.perf_counter()
    updates = [u for text in texts for u in msrc.read(text)]
    load_s = time.perf_counter() - started
    updates, real_months = stretched(updates, args.months)
    months = len({u.month for u in updates})
    latest = max(u.released for u in updates)
    collected = dt.datetime.combine(latest + dt.timedelta(days=20), dt.time(9), dt.UTC)

    with tempfile.TemporaryDirectory(prefix="wa-bench-windows-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        loaded = LoadedIntel(windows_updates=updates)
        compile_store(loaded, folder / "intel.db", collected)
        compile_s = time.perf_counter() - started
        csv_path = folder / "builds.csv"
        csv_path.write_text(export(updates, args.hosts, collected), encoding="utf-8")

        started = time.perf_counter()
        rows = list(csv.reader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
        reference_s = time.perf_counter() - started

        started = time.perf_counter()
        read = windows_exports.read([csv_path], collected, dt.timedelta(days=30))
        read_s = time.perf_counter() - started

        started = time.perf_counter()
        findings = 0
        with IntelStore(folder / "intel.db") as intel:
            ctx = CheckContext(now=collected, intel=intel)
            for build in read.builds:
                host = Host(address="", asset=build.name, state=RECORD_STATE,
                            evidence=HostEvidence(windows=build, read=frozenset({EvidenceKind.WINDOWS})))
                findings += sum(1 for _ in windows_missing_update.run(host, ctx))
        judge_s = time.perf_counter() - started

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"documents: {len(texts)} real ({real_months} months, {len(texts) and sum(map(len, texts)) / 1e6:.1f} MB), "
          f"{months} months in the ladder{' (the rest relabelled copies)' if months > real_months else ''}")
    print(f"load documents      {load_s:7.2f} s  ({len(updates):,} Windows fixes after stretching)")
    print(f"compile intel store {compile_s:7.2f} s")
    print(f"read export         {read_s:7.2f} s  ({len(read.builds):,} computers)")
    print(f"judge WA104         {judge_s:7.2f} s  ({findings:,} findings)")
    print(f"read + judge        {read_s + judge_s:7.2f} s  (target < 10 s)")
    print(f"reference: csv.reader alone over the export {reference_s:.2f} s ({len(rows) - 1:,} rows): "
          f"read + judge is {(read_s + judge_s) / reference_s:.1f}x it")
    print(f"peak memory {peak:.0f} MiB")


if __name__ == "__main__":
    main()
