"""Estate-scale scanning: an estate in chunks, several nmap processes at once, one merged run.
Real nmap against a real address range of the test's own (a network namespace in 198.19.0.0/16)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.address_range import AddressRange, build
from tests.conftest import needs_root
from warpagent import config
from warpagent.collect import chunks, nmap_runner
from warpagent.collect.nmap_runner import NmapPlan
from warpagent.scan import pipeline
from warpagent.scan.plan import resolve_scope


def test_chunks_and_rate_shares() -> None:
    jobs = chunks.split("e", [f"198.19.0.{n}" for n in range(1, 11)], 4)
    assert [len(j.addresses) for j in jobs] == [4, 4, 2] and [j.index for j in jobs] == [0, 1, 2]
    assert chunks.per_process_rate(None, 4, 10) is None
    assert chunks.per_process_rate(1000, 4, 10) == 250
    assert chunks.per_process_rate(1000, 4, 2) == 500  # two chunks: two processes share the rate
    assert chunks.per_process_rate(3, 8, 8) == 1
    plan = NmapPlan(targets_file=Path("t"), port_argument="80", scripts=(), script_args=(), host_timeout_s=60,
                    timing="T4", assume_up=False, privileged=True, udp=False, max_rate=250)
    args = nmap_runner.build_args("nmap", plan)
    assert args[args.index("--max-rate") + 1] == "250"


@pytest.fixture(scope="module")
def address_range() -> Iterator[AddressRange]:
    needs_root()
    built = build("198.19.77.0/24", live=48, served=16)
    try:
        yield built
    finally:
        built.teardown()


def _settings(tmp_path: Path, rng: AddressRange, **estate: object) -> config.Settings:
    scanner = rng.network.replace(".0/24", ".254")
    extra = "".join(f"    {k}: {v}\n" for k, v in estate.items())
    path = tmp_path / "w.yaml"
    path.write_text(f"""organisation: {{name: Test Borough Council}}
store: ./warpagent.db
estates:
  - name: county
    targets: [{rng.network}]
    exclude: [{scanner}]
    ports: "80"
    host_timeout: 2m
{extra}""")
    return config.load(str(path))


class Recorder:
    """Progress, and every nmap the scan starts: its arguments, its targets file, how many ran at once."""

    def __init__(self) -> None:
        self.done = 0
        self.targets: list[list[str]] = []  # each chunk's addresses, from its first (port-finding) stage
        self.stages: list[str] = []
        self.max_rates: list[tuple[str, str]] = []
        self.pids: list[int] = []
        self.most_at_once = 0
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._count, daemon=True)
        self._watch.start()

    def estate_started(self, estate: str, total: int) -> None:
        self.total = total

    def hosts_done(self, count: int) -> None:
        self.done += count

    def estate_finished(self) -> None:
        self._stop.set()

    def nmap_started(self, pid: int) -> None:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        self.pids.append(pid)
        targets = Path(argv[argv.index("-iL") + 1])
        self.stages.append(targets.stem)
        if targets.stem in ("ports", "chunk"):
            self.targets.append(targets.read_text().split())
        if "--max-rate" in argv:  # one append: chunks start their nmaps from several threads
            self.max_rates.append((targets.stem, argv[argv.index("--max-rate") + 1]))

    def _count(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            running = 0
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                    comm = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
                except (OSError, IndexError):
                    continue
                if comm == "nmap" and int(fields[1]) == me:
                    running += 1
            self.most_at_once = max(self.most_at_once, running)
            time.sleep(0.05)


def _open_services(collection: pipeline.Collection) -> set[tuple[str, int]]:
    return {(h.address, s.port) for h in collection.inventory.hosts for s in h.services if s.state == "open"}


def test_parallel_chunks_find_what_one_nmap_finds_and_merge_into_one_run(address_range: AddressRange,
                                                                         tmp_path: Path) -> None:
    nmap = nmap_runner.find_nmap("nmap")
    single = _settings(tmp_path, address_range, chunk_size=256, parallel=1)
    estate = single.estates[0]
    reference = pipeline.collect(estate, single.scan.timing, resolve_scope(estate), nmap, pipeline.NoProgress())

    parallel = _settings(tmp_path, address_range, chunk_size=24, parallel=3, max_rate=600)
    estate = parallel.estates[0]
    scope = resolve_scope(estate)
    recorder = Recorder()
    merged = pipeline.collect(estate, parallel.scan.timing, scope, nmap, recorder, on_nmap_start=recorder.nmap_started)

    assert _open_services(merged) == _open_services(reference) == {(a, 80) for a in address_range.served}
    assert {h.address for h in merged.inventory.hosts} == set(address_range.live)
    assert merged.problems == () and not merged.inventory.unscanned
    assert sorted(merged.inventory.scanned) == sorted(scope.addresses)
    # every address in scope went to exactly one nmap, the excluded scanner address to none
    handed = [a for chunk in recorder.targets for a in chunk]
    assert sorted(handed) == sorted(scope.addresses) and len(recorder.targets) == 11
    assert address_range.network.replace(".0/24", ".254") not in handed
    # concurrent, never more than estate.parallel chunks, each with at most its scripts pass and one
    # version pass per open port number (here only 80) at once
    assert 2 <= recorder.most_at_once <= 3 * 2
    # 600 packets/s shared by three chunks; a chunk's share split again between its two passes
    assert len(recorder.max_rates) == len(recorder.stages)
    assert {rate for stage, rate in recorder.max_rates if stage == "ports"} == {"200"}
    assert {rate for stage, rate in recorder.max_rates if stage != "ports"} == {"100"}
    # each chunk: its ports, then scripts and version detection on its live hosts' port 80 (no
    # service overran service_timeout, none answered unidentified, none was renamed)
    assert recorder.stages.count("ports") == 11
    assert 1 <= recorder.stages.count("scripts") == recorder.stages.count("versions-tcp-80") <= 11
    assert set(recorder.stages) == {"ports", "scripts", "versions-tcp-80"}
    assert recorder.done == recorder.total == len(scope.addresses)


def test_stopping_a_parallel_scan_keeps_what_finished_and_leaves_no_nmap(address_range: AddressRange,
                                                                         tmp_path: Path) -> None:
    settings = _settings(tmp_path, address_range, chunk_size=8, parallel=2, max_rate=20)  # slow on purpose
    estate = settings.estates[0]
    recorder = Recorder()
    stop = threading.Event()
    threading.Timer(4.0, stop.set).start()
    started = time.monotonic()
    collection = pipeline.collect(estate, settings.scan.timing, resolve_scope(estate), nmap_runner.find_nmap("nmap"),
                                  recorder,
                                  on_nmap_start=recorder.nmap_started, cancelled=stop.is_set)
    assert time.monotonic() - started < 15
    assert collection.interrupted and "scan interrupted; what nmap finished was kept" in collection.problems
    assert collection.inventory.unscanned  # chunks that never started are not counted as scanned
    assert len(recorder.targets) < 32
    for pid in recorder.pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
