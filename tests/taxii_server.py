"""A real TAXII 2.1 server (medallion) for the tests, and a recording fault proxy in front of it.

The proxy is a real HTTP server: it forwards to medallion, records every request body that
leaves the agent, and on demand answers 500, stalls past the client's timeout, or forwards only
half of a bundle (faults medallion cannot be made to produce by itself).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

COLLECTION_ID = "2e0b3c4d-8f1a-4b6c-9d7e-1a2b3c4d5e6f"
REGIONAL_ID = "7a1c9e2f-3b4d-4e5f-8a9b-0c1d2e3f4a5b"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def terminate(proc: subprocess.Popen[bytes] | None, grace_s: float = 15) -> None:
    """Stop a server the test started, by its PID: SIGTERM, then SIGKILL after the grace period."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _collection(cid: str, title: str) -> dict[str, Any]:
    return {"id": cid, "title": title, "description": f"{title} collection", "can_read": True, "can_write": True,
            "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []}


@dataclass
class Medallion:
    port: int
    workdir: Path
    users: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/taxii2/"

    def start(self) -> Medallion:
        data = {
            "/discovery": {"title": "Test WARP", "description": "test hub", "contact": "hub@warp.test",
                           "default": f"http://127.0.0.1:{self.port}/members/",
                           "api_roots": [f"http://127.0.0.1:{self.port}/members/"]},
            "members": {"information": {"title": "Members", "description": "members' API root",
                                        "versions": ["application/taxii+json;version=2.1"],
                                        "max_content_length": 104857600},
                        "status": [], "collections": [_collection(COLLECTION_ID, "members"),
                                                      _collection(REGIONAL_ID, "regional")]},
        }
        (self.workdir / "data.json").write_text(json.dumps(data))
        (self.workdir / "config.json").write_text(json.dumps({
            "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                        "filename": str(self.workdir / "data.json")},
            "users": self.users, "taxii": {"max_page_size": 100}}))
        log = (self.workdir / "medallion.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "medallion.scripts.run", "--host", "127.0.0.1",
                                      "--port", str(self.port), str(self.workdir / "config.json")],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        user, password = next(iter(self.users.items()))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url, auth=(user, password), timeout=1,
                                headers={"Accept": "application/taxii+json;version=2.1"}).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("medallion did not start")

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None

    def objects(self, collection: str = COLLECTION_ID) -> list[dict[str, Any]]:
        """Every object version the collection holds, read straight from the server."""
        user, password = next(iter(self.users.items()))
        out: list[dict[str, Any]] = []
        params: dict[str, str] = {"limit": "100"}
        while True:
            response = requests.get(f"http://127.0.0.1:{self.port}/members/collections/{collection}/objects/",
                                    params={**params, "match[version]": "all"}, auth=(user, password), timeout=10,
                                    headers={"Accept": "application/taxii+json;version=2.1"})
            response.raise_for_status()
            envelope = response.json()
            out += envelope.get("objects", [])
            if not envelope.get("more"):
                return out
            params = {"limit": "100", "next": envelope["next"]}

    def add_raw(self, objects: list[Any], collection: str = COLLECTION_ID) -> None:
        """Put objects straight into a collection, as a careless or hostile member might."""
        user, password = next(iter(self.users.items()))
        response = requests.post(f"http://127.0.0.1:{self.port}/members/collections/{collection}/objects/",
                                 data=json.dumps({"objects": objects}), auth=(user, password), timeout=10,
                                 headers={"Accept": "application/taxii+json;version=2.1",
                                          "Content-Type": "application/taxii+json;version=2.1"})
        response.raise_for_status()


@dataclass
class FaultProxy:
    upstream_port: int
    port: int = field(default_factory=free_port)
    fail_next: int = 0  # answer 500 to this many requests
    stall_next: int = 0  # sleep stall_s before answering this many requests
    stall_s: float = 3.0
    halve_next_post: int = 0  # forward only the first half of this many bundles
    object_pages_before_outage: int | None = None  # serve this many GETs of /objects/, then answer 500
    bodies: list[bytes] = field(default_factory=list)  # every request body the agent sent
    headers: list[dict[str, str]] = field(default_factory=list)  # every request's headers
    tls: Any = None  # an ssl.SSLContext: serve HTTPS
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/taxii2/"

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length", 0) or 0)
                body = self.rfile.read(length) if length else b""
                proxy.bodies.append(body)
                proxy.headers.append(dict(self.headers.items()))
                if proxy.stall_next > 0:
                    proxy.stall_next -= 1
                    time.sleep(proxy.stall_s)
                if self.command == "GET" and "/objects/" in self.path and proxy.object_pages_before_outage is not None:
                    if proxy.object_pages_before_outage == 0:
                        proxy.fail_next = max(proxy.fail_next, 1)
                    else:
                        proxy.object_pages_before_outage -= 1
                if proxy.fail_next > 0:
                    proxy.fail_next -= 1
                    self.send_response(500)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"internal error")
                    return
                if self.command == "POST" and proxy.halve_next_post > 0 and body:
                    proxy.halve_next_post -= 1
                    envelope = json.loads(body)
                    envelope["objects"] = envelope["objects"][: len(envelope["objects"]) // 2]
                    body = json.dumps(envelope).encode()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                upstream = requests.request(self.command, f"http://127.0.0.1:{proxy.upstream_port}{self.path}",
                                            headers=headers, data=body or None, timeout=30)
                payload = upstream.content.replace(f":{proxy.upstream_port}/".encode(), f":{proxy.port}/".encode())
                if proxy.tls:
                    payload = payload.replace(f"http://127.0.0.1:{proxy.port}/".encode(),
                                              f"https://127.0.0.1:{proxy.port}/".encode())
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if self.tls:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
