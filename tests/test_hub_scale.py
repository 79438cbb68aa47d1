"""Beyond one hub server: two `hub serve` processes on one store behind a real load balancer
(nginx, round robin). Pages of one pull land on both servers, so paging must carry its position
in the `next` token rather than in one server's memory; and one server going down leaves the
region served."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import run_cli
from tests.hub_process import PASSWORDS, TAXII, HubProcess, hub_config, hub_env
from tests.taxii_server import free_port, terminate
from warpagent.hub.backend import collection_id

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Balancer:
    """nginx round-robin over the hub servers, logging which one answered each request."""

    def __init__(self, workdir: Path, upstreams: list[int]) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.log = workdir / "access.log"
        servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;" for p in upstreams)
        (workdir / "nginx.conf").write_text(f"""daemon off;
user root;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 256; }}
http {{
  log_format hub '$request_method $uri $upstream_addr $status';
  access_log {self.log} hub;
  client_body_temp_path {workdir}/body;
  proxy_temp_path {workdir}/proxy;
  client_max_body_size 20m;
  upstream hubs {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://hubs;
      proxy_set_header Host $http_host;
      proxy_next_upstream error timeout;
      proxy_read_timeout 120s;
    }}
  }}
}}
""")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> Balancer:
        self.proc = subprocess.Popen([NGINX, "-p", str(self.workdir), "-c", str(self.workdir / "nginx.conf")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                requests.get(self.url, timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None

    def served_by(self, path_part: str) -> set[str]:
        return {line.split()[2] for line in self.log.read_text().splitlines() if path_part in line}


@pytest.fixture(params=["sqlite", "postgresql"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[list[HubProcess], Balancer]]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed (scripts/install.sh --test installs it)")
    ports = [free_port(), free_port()]
    store = str(tmp_path / "shared-hub.db")
    if request.param == "postgresql":  # several machines' hub servers would share one PostgreSQL like this
        store = request.getfixturevalue("postgres").new_database()
    balancer = Balancer(tmp_path, ports)
    hubs = []
    try:
        for index, port in enumerate(ports):
            folder = tmp_path / f"server{index}"
            folder.mkdir()
            config = hub_config(folder / "hub.yaml", port, store=store, url=balancer.url,
                                coordinator_store=str(tmp_path / "coordinator.db"))
            hubs.append(HubProcess(config=config, port=port).start())
        balancer.start()
        yield hubs, balancer
    finally:
        balancer.stop()
        for hub in hubs:
            hub.stop()


def _identity_and_objects(count: int) -> list[dict[str, object]]:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT00:00:00.000Z")
    identity = f"identity--{uuid.uuid4()}"
    objects: list[dict[str, object]] = [{"type": "identity", "spec_version": "2.1", "id": identity,
                                         "created": stamp, "modified": stamp, "name": "WARP member 0123456789abcdef",
                                         "identity_class": "organization"}]
    for n in range(count - 1):
        cve = f"CVE-2024-{10000 + n}"
        objects.append({"type": "vulnerability", "spec_version": "2.1", "id": f"vulnerability--{uuid.uuid4()}",
                        "created": stamp, "modified": stamp, "created_by_ref": identity, "name": cve,
                        "external_references": [{"source_name": "cve", "external_id": cve}]})
    return objects


def test_two_hub_servers_behind_a_balancer_serve_one_region(pair: tuple[list[HubProcess], Balancer],
                                                            tmp_path: Path) -> None:
    hubs, balancer = pair
    members = collection_id("warp", "members")
    objects = _identity_and_objects(1200)
    for start in range(0, len(objects), 500):
        response = requests.post(f"{balancer.url}warp/collections/{members}/objects/",
                                 data=json.dumps({"objects": objects[start:start + 500]}),
                                 auth=("member-01", PASSWORDS["member-01"]), timeout=60,
                                 headers={**TAXII, "Content-Type": "application/taxii+json;version=2.1"})
        assert response.status_code == 202 and response.json()["success_count"] == len(objects[start:start + 500])
    assert len(balancer.served_by("/objects/")) == 2  # the pushes went to both servers

    received: list[str] = []
    params = {"limit": "100"}
    while True:  # one pull, twelve pages, alternating between the two servers
        envelope = requests.get(f"{balancer.url}warp/collections/{members}/objects/", params=params, timeout=30,
                                auth=("coordinator", PASSWORDS["coordinator"]), headers=TAXII).json()
        received += [o["id"] for o in envelope["objects"]]
        if not envelope.get("more"):
            break
        params = {"limit": "100", "next": envelope["next"]}
    assert sorted(received) == sorted(o["id"] for o in objects) and len(received) == len(set(received))
    pages = [line for line in balancer.log.read_text().splitlines() if line.startswith("GET") and "/objects/" in line]
    assert {line.split()[2] for line in pages} == {f"127.0.0.1:{h.port}" for h in hubs}

    hubs[0].stop()  # one server down: the balancer sends everything to the other, and nothing is lost
    aggregate = run_cli("--config", str(hubs[1].config), "hub", "aggregate", "--dry-run", "--json",
                        cwd=hubs[1].config.parent, env=hub_env())
    assert aggregate.returncode == 0, aggregate.stderr
    assert "1200 new objects pulled" in aggregate.stderr
