"""The Dockerfile and systemd unit: rules a reviewer would check, and the image's install steps
replayed in a clean virtual environment (this machine has no Docker engine)."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [line.strip() for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
                if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_rules() -> None:
    base = next(line for line in INSTRUCTIONS if line.startswith("FROM "))
    assert re.fullmatch(r"FROM debian:\d+(\.\d+)*-slim", base), "pin the base image, never :latest"
    for run in (line for line in INSTRUCTIONS if line.startswith("RUN ") and "apt-get install" in line):
        assert "--no-install-recommends" in run and "rm -rf /var/lib/apt/lists/*" in run
        assert "apt-get update" in run  # update and install in one layer
    users = [i for i, line in enumerate(INSTRUCTIONS) if line.startswith("USER ")]
    entry = next(i for i, line in enumerate(INSTRUCTIONS) if line.startswith("ENTRYPOINT "))
    assert users and users[-1] < entry and INSTRUCTIONS[users[-1]] != "USER root"
    # exec form, and the shell replaced by warpagent (exec), so signals reach the daemon; umask first
    assert INSTRUCTIONS[entry] == 'ENTRYPOINT ["/bin/sh", "-c", "umask 0077 && exec warpagent \\"$@\\"", "warpagent"]'
    assert "chmod 0700 /var/lib/warpagent" in DOCKERFILE  # the data volume's home: owner only
    assert any(line.startswith("HEALTHCHECK ") for line in INSTRUCTIONS)
    assert not any(line.startswith("ADD ") for line in INSTRUCTIONS)
    copied = {line.split()[1] for line in INSTRUCTIONS if line.startswith("COPY ")}
    packages = configparser.ConfigParser()
    packages.read(ROOT / "setup.cfg")
    listed = packages["options.packages.find"]["include"].split(",")
    for package in (p.strip() for p in listed if "." not in p.strip()):  # warpagent.* is inside warpagent/
        assert package in copied, f"the image would miss the {package} package"
    assert {"warpagent", "checks", "feeds", "reports"} <= {p.strip() for p in listed}


@pytest.mark.parametrize("name", ["warpagent", "warpagent-hub", "warpagent-worker"])
def test_systemd_units_keep_files_to_the_owner(name: str) -> None:
    unit = configparser.ConfigParser(strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / f"deploy/{name}.service")
    assert unit["Service"]["UMask"] == "0077"


def test_systemd_unit() -> None:
    unit = configparser.ConfigParser(strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy/warpagent.service")
    assert unit["Service"]["ExecStart"].endswith("warpagent run")
    assert unit["Service"]["User"] == "warpagent"
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert "CAP_NET_RAW" in unit["Service"]["AmbientCapabilities"]


def test_hub_systemd_unit_runs_unprivileged() -> None:
    unit = configparser.ConfigParser(strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy/warpagent-hub.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("warpagent hub serve") and service["User"] == "warpagent"
    assert service["CapabilityBoundingSet"] == "" and service["NoNewPrivileges"] == "true"
    assert "AmbientCapabilities" not in service


def test_worker_systemd_unit_has_only_raw_sockets() -> None:
    unit = configparser.ConfigParser(strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy/warpagent-worker.service")
    service = unit["Service"]
    assert " worker " in service["ExecStart"] + " " and service["User"] == "warpagent"
    assert service["AmbientCapabilities"] == service["CapabilityBoundingSet"] == "CAP_NET_RAW CAP_NET_ADMIN"


@pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap is installed by scripts/install.sh")
def test_image_install_steps_in_a_clean_venv(tmp_path: Path) -> None:
    """The Dockerfile's COPY list and `pip install .`, replayed: the install must work from those files alone."""
    context = tmp_path / "context"
    context.mkdir()
    for line in INSTRUCTIONS:
        if line.startswith("COPY "):
            *sources, _dest = line.split()[1:]
            for source in sources:
                target = context / source
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(ROOT / source, target)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run([str(venv / "bin/pip"), "install", "-q", "--no-cache-dir", "."], cwd=context,
                             capture_output=True, text=True, timeout=900, check=False)
    assert install.returncode == 0, install.stderr[-2000:]
    work = tmp_path / "work"
    work.mkdir()
    helped = subprocess.run([str(venv / "bin/warpagent"), "--help"], cwd=work, capture_output=True, text=True,
                            timeout=60, check=False)
    assert helped.returncode == 0 and "run" in helped.stdout
    scanned = subprocess.run([str(venv / "bin/warpagent"), "scan", "--json"], cwd=work, capture_output=True,
                             text=True, timeout=300, check=False)
    assert scanned.returncode == 0, scanned.stderr
    said = " ".join(json.loads(scanned.stdout)["summary"][0]["problems"])
    # the intel travelled too, Debian's builds with it
    assert "the snapshot bundled with warpagent is in use for distro-info" in said and "endoflife" in said
    board = subprocess.run([str(venv / "bin/warpagent"), "report", "board", "--out", "board.html"], cwd=work,
                           capture_output=True, text=True, timeout=120, check=False)
    assert board.returncode == 0, board.stderr  # templates travelled with the package
    assert "Status by category" in (work / "board.html").read_text()
