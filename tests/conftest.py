from __future__ import annotations

import datetime as dt
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from warpagent.clock import TEST_NOW_ENV

ASSETS = Path(__file__).parent / "assets"
ROOT = Path(__file__).parent.parent

# The moment the recorded estate XML was taken (its nmap run), so certificate checks are stable.
RECORDED_AT = dt.datetime(2026, 11, 25, 6, 6, 24, tzinfo=dt.UTC)


@pytest.fixture
def asset() -> Callable[[str], str]:
    def read(name: str) -> str:
        return (ASSETS / name).read_text(encoding="utf-8")
    return read


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 300, now: dt.datetime | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process, as a council's cron job would run it; `now` fixes the time
    it believes it is (warpagent.clock's test seam), for tests whose store holds dated history."""
    full_env = {k: v for k, v in os.environ.items() if k != "WARPAGENT_CONFIG"}
    if now is not None:
        full_env[TEST_NOW_ENV] = now.isoformat()
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "warpagent", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the test estate uses network namespaces")


# .ci/run sets it: on the CI machine everything a test needs is installed (root, PostgreSQL,
# nmap, Samba...), so a test that skips there proves nothing and fails instead.
SKIPS_FAIL = os.environ.get("WARPAGENT_CI") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if SKIPS_FAIL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where it must run: {reason} (WARPAGENT_CI=1; see .ci/run)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the namespace estate carries the `estate` marker, so `-m "not estate"`
    leaves out all of them (the shifted-clock pass in .ci/run does)."""
    for item in items:
        if "estate" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.estate)


@pytest.fixture(scope="session")
def estate() -> Iterator[object]:
    needs_root()
    from tests import estate as estate_module

    built = estate_module.build()
    try:
        yield built
    finally:
        built.teardown()


@pytest.fixture(scope="session")
def samba_dc() -> Iterator[object]:
    """A real Samba AD DC with planted weaknesses (tests/samba_dc.py), for the session."""
    needs_root()
    import shutil

    from tests import samba_dc as samba_module

    if not shutil.which("samba-tool"):
        pytest.skip("samba-tool is not installed (scripts/install.sh --test installs samba-ad-dc)")
    built = samba_module.build()
    try:
        yield built
    finally:
        built.teardown()


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A real PostgreSQL server for the session (scripts/install.sh --test installs it)."""
    from tests import pg_server

    if not pg_server.PostgresServer.available():
        pytest.skip("PostgreSQL is not installed (scripts/install.sh --test installs it)")
    server = pg_server.start()
    previous = os.environ.get("PGPASSWORD")
    os.environ["PGPASSWORD"] = pg_server.PASSWORD  # how an agent is given its database password
    try:
        yield server
    finally:
        if previous is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = previous
        pg_server.remove(server)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's store lives: the same tests run on a SQLite file and on a real PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "warpagent.db")
    server = request.getfixturevalue("postgres")
    return str(server.new_database())  # type: ignore[attr-defined]


# Property-based tests: a bounded search by default (CI stays within minutes); raise
# HYPOTHESIS_MAX_EXAMPLES to search longer by hand.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "40")),
                                      deadline=None, derandomize=True, print_blob=True)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Every file read with Path.read_text from here on, as resolved paths (the evidence reader reads no other way)."""
    seen: list[Path] = []
    real = pathlib.Path.read_text

    def recording(self: Path, *args: object, **kwargs: object) -> str:
        seen.append(Path(self).resolve())
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pathlib.Path, "read_text", recording)
    yield seen
