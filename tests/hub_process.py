"""A real WARP hub for the tests: `warpagent hub serve` in a child process, stopped by its PID."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.taxii_server import terminate

TAXII = {"Accept": "application/taxii+json;version=2.1"}
PASSWORDS = {"coordinator": "coord-pw-0123456789", "reader": "reader-pw-0123456789",
             **{f"member-{i:02d}": f"member-{i:02d}-pw-0123456789" for i in range(1, 9)}}


def env_name(account: str) -> str:
    return "HUB_PW_" + account.upper().replace("-", "_")


def hub_env() -> dict[str, str]:
    return {env_name(account): password for account, password in PASSWORDS.items()}


def hub_config(path: Path, port: int, *, k: int = 3, store: str = "./hub.db", url: str = "",
               coordinator_store: str = "./coordinator.db", extra: str = "") -> Path:
    users = "\n".join(f"    - {{name: {a}, role: {'member' if a.startswith('member') else a}, "
                      f"password_env: {env_name(a)}}}" for a in PASSWORDS)
    path.write_text(f"""organisation: {{name: North West WARP}}
store: {coordinator_store}
sharing: {{k: {k}, outbox: ./coordinator-outbox}}
hub:
  title: North West WARP
  port: {port}
  store: '{store}'
{f"  url: '{url}'" if url else ""}
{extra}  users:
{users}
""")
    return path


@dataclass
class HubProcess:
    config: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.config.with_suffix(".log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 30) -> HubProcess:
        env = {k: v for k, v in os.environ.items() if k != "WARPAGENT_CONFIG"}
        env.update(hub_env())
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "warpagent", "--config", str(self.config), "hub",
                                          "serve"], cwd=self.config.parent, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if requests.get(f"{self.url}taxii2/", auth=("coordinator", PASSWORDS["coordinator"]), timeout=1,
                                headers=TAXII).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the hub did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None
