"""dpkg status: warpagent's reading against dpkg's own (`dpkg-query --admindir`), on the status
file dpkg wrote on this machine and on hostile shapes of it. Installed packages, versions and
source packages must be what dpkg-query reports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from warpagent.evidence.formats import dpkg_status

MACHINE_STATUS = Path("/var/lib/dpkg/status")  # written by dpkg for every package installed here
QUERY = "${db:Status-Status} ${Package} ${Version} ${source:Package} ${source:Version}\\n"

HALF = """Package: gone
Status: deinstall ok config-files
Version: 1.0-1

Package: halfway
Status: install reinstreq half-installed
Version: 2.0-1

Package: libfoo1
Status: install ok installed
Source: foo (1.2-3)
Version: 1.2-3+b1
Architecture: amd64
Description: a library
 with a continued description
 .
 and a paragraph break

Package: bar
Status: hold ok installed
Version: 1:4.5-6
"""


def _dpkg(admindir: Path) -> set[tuple[str, str, str, str]]:
    (admindir / "info").mkdir(exist_ok=True)
    (admindir / "updates").mkdir(exist_ok=True)
    result = subprocess.run(["dpkg-query", f"--admindir={admindir}", "-W", "-f", QUERY], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    rows = set()
    for line in result.stdout.splitlines():
        status, package, version, source, source_version = line.split(" ")
        if status == "installed":
            rows.add((package, version, source, source_version))
    return rows


def _ours(text: str) -> set[tuple[str, str, str, str]]:
    return {(p.name, p.version, p.advisory_name, p.source_version or p.version) for p in dpkg_status(text, "Debian:12")}


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="dpkg is the oracle")
@pytest.mark.parametrize("name", ["this-machine", "hostile-shapes"])
def test_installed_packages_are_the_ones_dpkg_reports(name: str, tmp_path: Path) -> None:
    text = MACHINE_STATUS.read_text() if name == "this-machine" else HALF
    (tmp_path / "status").write_text(text)
    theirs = _dpkg(tmp_path)
    assert theirs and _ours(text) == theirs
