"""Scan chunks on workers: a real Redis broker and two `warpagent worker` processes started by the
test, real nmap on an address range of the test's own; results come back to the agent's store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.address_range import AddressRange, build
from tests.conftest import ROOT, needs_root, run_cli
from tests.taxii_server import free_port, terminate
from warpagent import config
from warpagent.collect import chunks
from warpagent.errors import CollectError
from warpagent.scan import pipeline
from warpagent.scan.celery_executor import CeleryExecutor, make_app
from warpagent.scan.plan import plan_for, resolve_scope

BROKER_PASSWORD = "broker-pw-0123456789"  # noqa: S105 - a throwaway Redis the test starts


@dataclass
class Cluster:
    rng: AddressRange
    config: Path
    workdir: Path
    workers: list[subprocess.Popen[bytes]]

    @property
    def env(self) -> dict[str, str]:
        return {"WARPAGENT_BROKER_PASSWORD": BROKER_PASSWORD}


def _config(path: Path, rng: AddressRange, broker_port: int) -> Path:
    scanner = rng.network.replace(".0/24", ".254")
    path.write_text(f"""organisation: {{name: Test County Council}}
store: ./warpagent.db
scan:
  executor: celery
  celery: {{broker: 'redis://127.0.0.1:{broker_port}/0', password_env: WARPAGENT_BROKER_PASSWORD,
            queue: test-scans}}
estates:
  - name: county
    targets: [{rng.network}]
    exclude: [{scanner}]
    ports: "80"
    chunk_size: 32
    parallel: 4
    max_rate: 800
    timeout: 5m
""")
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    needs_root()
    workdir = tmp_path_factory.mktemp("celery")
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--requirepass", BROKER_PASSWORD, "--dir", str(workdir)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    rng = build("198.19.88.0/24", live=48, served=16)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        path = _config(workdir / "w.yaml", rng, port)
        env = {**os.environ, "WARPAGENT_BROKER_PASSWORD": BROKER_PASSWORD}
        env.pop("WARPAGENT_CONFIG", None)
        for name in ("worker1", "worker2"):
            log = (workdir / f"{name}.log").open("wb")
            workers.append(subprocess.Popen([sys.executable, "-m", "warpagent", "--config", str(path), "worker",
                                             "--concurrency", "2", "--name", name], cwd=ROOT, env=env,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        os.environ["WARPAGENT_BROKER_PASSWORD"] = BROKER_PASSWORD
        app = make_app(config.load(str(path)))
        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=1.0) or []) < 2:
            assert time.monotonic() < deadline, "the workers did not come up: " + (workdir / "worker1.log").read_text()
        yield Cluster(rng=rng, config=path, workdir=workdir, workers=workers)
    finally:
        os.environ.pop("WARPAGENT_BROKER_PASSWORD", None)
        for worker in workers:
            terminate(worker, grace_s=30)
        terminate(redis)  # type: ignore[arg-type]
        rng.teardown()


class Counted(pipeline.NoProgress):
    def estate_started(self, estate: str, total: int) -> None:
        self.total, self.done = total, 0

    def hosts_done(self, count: int) -> None:
        self.done += count


def _open_services(collection: pipeline.Collection) -> set[tuple[str, int]]:
    return {(h.address, s.port) for h in collection.inventory.hosts for s in h.services if s.state == "open"}


def test_chunks_run_on_both_workers_and_merge_like_a_local_scan(cluster: Cluster) -> None:
    settings = config.load(str(cluster.config))
    estate = settings.estates[0]
    scope = resolve_scope(estate)
    plan, _ports, _notes = plan_for(estate, settings.scan.timing, Path("targets.txt"))
    jobs = chunks.split(estate.name, scope.addresses, estate.chunk_size)
    outcomes = CeleryExecutor(settings, estate.parallel).run(
        jobs, plan, deadline=time.monotonic() + 300, on_host_done=lambda n: None, on_start=lambda pid: None,
        cancelled=lambda: False)
    assert [o.job.index for o in outcomes] == list(range(len(jobs))) and all(o.output for o in outcomes)
    assert {o.worker.split("@")[0] for o in outcomes} == {"worker1", "worker2"}  # each took a share
    logs = "".join((cluster.workdir / f"worker{n}.log").read_text() for n in (1, 2))
    assert BROKER_PASSWORD not in logs and "redis://:**@127.0.0.1" in logs

    progress = Counted()
    remote = pipeline.collect(estate, settings.scan.timing, scope, "", progress, executor=CeleryExecutor(settings, 4))
    assert progress.done == progress.total == len(scope.addresses)  # each host counted once
    local = pipeline.collect(estate, settings.scan.timing, scope, "nmap", pipeline.NoProgress(),
                         executor=chunks.LocalExecutor("nmap", 4))
    assert _open_services(remote) == _open_services(local) == {(a, 80) for a in cluster.rng.served}
    assert remote.problems == () and sorted(remote.inventory.scanned) == sorted(scope.addresses)


def test_the_cli_scan_stores_what_the_workers_found(cluster: Cluster) -> None:
    result = run_cli("--config", str(cluster.config), "scan", "--json", cwd=cluster.workdir, env=cluster.env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["summary"][0]
    assert summary["status"] == "complete" and summary["hosts_up"] == len(cluster.rng.live)


def test_a_worker_refuses_a_chunk_outside_the_estate(cluster: Cluster) -> None:
    settings = config.load(str(cluster.config))
    estate = settings.estates[0]
    plan, _ports, _notes = plan_for(estate, settings.scan.timing, Path("targets.txt"))
    stranger = chunks.ChunkJob(index=0, estate="county", addresses=("198.19.88.1", "198.19.99.7"))
    unknown = chunks.ChunkJob(index=1, estate="payroll", addresses=("198.19.88.1",))
    refused = CeleryExecutor(settings, 2).run([stranger, unknown], plan, deadline=time.monotonic() + 60,
                                              on_host_done=lambda n: None, on_start=lambda pid: None,
                                              cancelled=lambda: False)
    assert refused[0].output is None and "1 addresses are outside estate 'county'" in refused[0].problem
    assert "198.19.99.7" in refused[0].problem
    assert refused[1].output is None and "estate 'payroll' cannot be checked" in refused[1].problem


def test_a_broker_that_is_down_is_a_clear_error(cluster: Cluster, tmp_path: Path) -> None:
    down = _config(tmp_path / "w.yaml", cluster.rng, free_port())
    settings = config.load(str(down))
    with pytest.raises(CollectError, match=r"scan.celery.broker redis://127.0.0.1:\d+/0: cannot reach the broker"):
        CeleryExecutor(settings, 2).run([], plan_for(settings.estates[0], settings.scan.timing, Path("t"))[0],
                                        deadline=time.monotonic() + 5, on_host_done=lambda n: None,
                                        on_start=lambda pid: None, cancelled=lambda: False)
    result = run_cli("--config", str(down), "scan", cwd=tmp_path, env=cluster.env)
    assert result.returncode == 3 and "cannot reach the broker" in result.stderr
    assert BROKER_PASSWORD not in result.stderr + result.stdout
