"""Host evidence at estate scale: read and judge N hosts' evidence folders.

Each host folder is the planted weak fixture (accounts, shadow, sudoers with includes, PAM,
sshd_config with Include, apt sources, two SBOMs) plus this machine's real dpkg status (a few
hundred packages). Times `evidence.read_host` and the privileges/passwords/supply-chain/backups
checks beside the reference: reading the same files' bytes with no parsing (the floor for
anything that looks at them).

    .venv/bin/python bench/evidence.py [--hosts 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checks import ALL_CHECKS, CheckContext  # noqa: E402
from warpagent.evidence import folders as evidence  # noqa: E402
from warpagent.model.findings import Host, Inventory  # noqa: E402
from warpagent.scan import engine  # noqa: E402

FIXTURE = ROOT / "tests" / "assets" / "evidence" / "weak"
DPKG_STATUS = Path("/var/lib/dpkg/status")


def build(root: Path, hosts: int) -> list[Path]:
    folders = []
    for index in range(hosts):
        folder = root / f"198.18.{index // 250}.{index % 250 + 1}"
        shutil.copytree(FIXTURE, folder)
        if DPKG_STATUS.is_file():
            (folder / "var/lib/dpkg").mkdir(parents=True)
            shutil.copy(DPKG_STATUS, folder / "var/lib/dpkg/status")
        folders.append(folder)
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wa-bench-evidence-") as tmp:
        folders = build(Path(tmp), args.hosts)
        files = sum(1 for f in folders for p in f.rglob("*") if p.is_file())

        started = time.perf_counter()
        raw = sum(len(p.read_bytes()) for f in folders for p in f.rglob("*") if p.is_file())
        reference = time.perf_counter() - started

        started = time.perf_counter()
        read = [evidence.read_host(f) for f in folders]
        parse = time.perf_counter() - started
        assert all(r.problems == () for r in read)

        checks = [c for c in ALL_CHECKS if not c.needs_intel]
        hosts = tuple(Host(address=f.name, asset=f.name, state="evidence", platform=r.platform,
                           packages=r.packages, evidence=r.evidence) for f, r in zip(folders, read, strict=True))
        started = time.perf_counter()
        result = engine.evaluate(Inventory(estate="bench", hosts=hosts, scanned=()),
                                 CheckContext(now=dt.datetime.now(dt.UTC)), checks)
        judge = time.perf_counter() - started

    packages = sum(len(r.packages) for r in read)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"hosts: {args.hosts:,}  files: {files:,}  bytes: {raw / 2**20:.1f} MiB  packages: {packages:,}")
    print(f"reference (read bytes only): {reference:.2f} s")
    print(f"read_host (parse all evidence): {parse:.2f} s  ({args.hosts / parse:,.0f} hosts/s, "
          f"{parse / reference:.1f}x the reference)")
    print(f"checks without intel: {judge:.2f} s  ({len(result.findings):,} findings)")
    print(f"peak RSS: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
