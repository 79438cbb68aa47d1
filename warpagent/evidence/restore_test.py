"""warpagent's own restore test of a restic repository: list the snapshots, `restic check
--read-data-subset`, restore a sample file from the latest snapshot with `--verify`, and
compare its SHA-256 with the live file. The outcome becomes backup records for the checks.

The repository password goes to restic in its environment (RESTIC_PASSWORD) and nowhere
else; credentials in a repository URL are masked in every message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from warpagent.collect.nmap_runner import die_with_parent
from warpagent.config import ResticRepository
from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers.backups import restic_snapshots
from warpagent.model.evidence import BackupKind, BackupRecord, Where

_USERINFO = re.compile(r"(://)[^/@\s]+@")


@dataclass(frozen=True)
class RepositoryTest:
    records: tuple[BackupRecord, ...]
    problems: tuple[str, ...] = ()  # the test could not run at all (set-up mistakes): the run is partial


class _Failed(Exception):
    """A step of the test failed: the repository did not pass."""


def mask(text: str) -> str:
    return _USERINFO.sub(r"\1***@", text)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return mask(lines[-1])[:300] if lines else "no message"


def _restic(restic: str, args: list[str], env: dict[str, str], deadline: float, step: str) -> str:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Failed(f"{step}: the repository's time budget ran out")
    try:
        done = subprocess.run([restic, "--no-cache", *args], env=env, capture_output=True, text=True,
                              timeout=remaining, check=False, preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        raise _Failed(f"{step}: timed out") from None
    if done.returncode != 0:
        raise _Failed(f"{step} failed (exit {done.returncode}): {_last_line(done.stderr)}")
    return done.stdout


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _compare_sample(restored: Path, sample: str, snapshot_time: dt.datetime) -> str:
    """What the comparison showed; raises _Failed when the restored file differs from the original."""
    live = Path(sample)
    if not live.is_file():
        return f"sample {sample} restored and verified by restic; no live copy here to compare"
    modified = dt.datetime.fromtimestamp(live.stat().st_mtime, tz=dt.UTC)
    if modified > snapshot_time:
        return f"sample {sample} restored and verified by restic; the live file changed after the snapshot"
    restored_hash, live_hash = _sha256(restored), _sha256(live)
    if restored_hash != live_hash:
        raise _Failed(f"restored sample {sample} differs from the live file (SHA-256 {restored_hash[:16]}... "
                      f"vs {live_hash[:16]}...)")
    return f"sample {sample} restored; SHA-256 matches the live file ({live_hash[:16]}...)"


def run_restore_test(repo: ResticRepository, now: dt.datetime, restic: str = "restic") -> RepositoryTest:
    """Test one repository. A failed step is a failed restore test (a finding), not an error."""
    found = shutil.which(restic)
    if found is None:
        return RepositoryTest((), (f"backups.restic '{repo.name}': restic not found on PATH; install it "
                                   "(apt install restic) or remove the repository from the config",))
    password = os.environ.get(repo.password_env)
    if not password:
        return RepositoryTest((), (f"backups.restic '{repo.name}': environment variable {repo.password_env} is not "
                                   "set; set it to the repository password",))
    # the rest of the environment passes through: object-store credentials, RESTIC_CACERT
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_PASSWORD")}
    env |= {"RESTIC_REPOSITORY": repo.repository, "RESTIC_PASSWORD": password}
    deadline = time.monotonic() + repo.timeout_s
    records: list[BackupRecord] = []

    def result(ok: bool, detail: str) -> RepositoryTest:
        records.append(BackupRecord(tool="restic", job=repo.name, kind=BackupKind.RESTORE_TEST, at=now, ok=ok,
                                    where=Where(f"warpagent restore test of {repo.name}"),
                                    offline=repo.offline, detail=detail))
        return RepositoryTest(tuple(records))

    try:
        listing = _restic(found, ["snapshots", "--json"], env, deadline, "restic snapshots")
        try:
            snapshots = restic_snapshots(listing, f"restic repository {repo.name}")
        except EvidenceError as exc:
            raise _Failed(f"restic snapshots printed something unreadable: {exc}") from None
        # one job per repository, whatever paths each snapshot holds
        records += [dataclasses.replace(s, job=repo.name, offline=repo.offline) for s in snapshots]
        if not snapshots:
            raise _Failed("the repository holds no snapshots")
        _restic(found, ["check", f"--read-data-subset={repo.read_data_subset}"], env, deadline,
                "restic check")
        detail = f"restic check --read-data-subset={repo.read_data_subset} passed"
        if repo.sample:
            with tempfile.TemporaryDirectory(prefix="warpagent-restore-") as scratch:
                _restic(found, ["restore", "latest", "--target", scratch, "--include", repo.sample, "--verify"],
                        env, deadline, "restic restore")
                restored = Path(scratch) / repo.sample.lstrip("/")
                if not restored.is_file():
                    raise _Failed(f"sample {repo.sample} is not in the latest snapshot (nothing was restored)")
                detail += "; " + _compare_sample(restored, repo.sample, max(s.at for s in snapshots))
        return result(True, detail)
    except _Failed as failure:
        return result(False, mask(str(failure)))
