"""A real PostgreSQL server for the tests: initdb into a temporary folder, postgres on a loopback
port with password authentication, a fresh database per test; stopped by its PID."""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.taxii_server import free_port

PASSWORD = "pg-test-password-0123456789"  # noqa: S105 - a throwaway server the tests start


def _bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


@dataclass
class PostgresServer:
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    _count: itertools.count[int] = field(default_factory=itertools.count)

    @staticmethod
    def available() -> bool:
        return _bin_dir() is not None

    def _as_owner(self) -> dict[str, object]:
        # initdb and postgres refuse to run as root: run them as the postgres system user
        if os.geteuid() != 0:
            return {}
        return {"user": "postgres", "group": pwd.getpwnam("postgres").pw_gid}

    def start(self) -> PostgresServer:
        bindir = _bin_dir()
        assert bindir is not None
        data, sockets = self.workdir / "data", self.workdir / "sockets"
        sockets.mkdir()
        secret = self.workdir / "pw"
        secret.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.workdir, sockets, secret):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "warp", "--auth-host=scram-sha-256",
                        "--auth-local=trust", f"--pwfile={secret}", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, timeout=120, **self._as_owner())  # type: ignore[call-overload]
        log = (self.workdir / "postgres.log").open("wb")
        self.proc = subprocess.Popen([str(bindir / "postgres"), "-D", str(data), "-p", str(self.port),
                                      "-k", str(sockets), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                                      "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     **self._as_owner())  # type: ignore[call-overload]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   capture_output=True, timeout=10, check=False)
            if ready.returncode == 0:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"postgres did not start: {(self.workdir / 'postgres.log').read_text()[-2000:]}")

    def new_database(self) -> str:
        """A fresh, empty database; its URL (no password: the tests export PGPASSWORD)."""
        import psycopg

        name = f"warp_{os.getpid()}_{next(self._count)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user="warp", password=PASSWORD, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://warp@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # postgres' fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def start() -> PostgresServer:
    return PostgresServer(workdir=Path(tempfile.mkdtemp(prefix="wa-pg-"))).start()


def remove(server: PostgresServer) -> None:
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)
