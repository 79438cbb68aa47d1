"""The one place nmap is run: an argument list (never a shell), a deadline that keeps partial
results, and a child that cannot outlive warpagent.

python-nmap's own scan() discards everything when its timeout fires, so the process is run
here with XML on stdout, read as it arrives; python-nmap then parses what arrived.
"""

from __future__ import annotations

import ctypes
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nmap

from warpagent.errors import CollectError

_PR_SET_PDEATHSIG = 1


class Interrupted(Exception):
    """Raised by the SIGTERM handler the CLI installs, so a scan can stop its nmap and record."""


@dataclass(frozen=True)
class NmapPlan:
    """Everything that decides nmap's command line for one chunk of an estate."""

    targets_file: Path
    port_argument: str
    scripts: tuple[str, ...]
    script_args: tuple[str, ...]
    host_timeout_s: int
    timing: str
    assume_up: bool
    privileged: bool
    udp: bool
    max_rate: int | None = None  # packets per second for this nmap process (--max-rate)
    # Budget for one service's version detection once the open ports are known; a service that
    # overruns it keeps the name its port number gives (warpagent.collect.stages). 0: one nmap pass.
    service_timeout_s: int = 0
    # Budget for the stock probes on a service that answered the quick ones but was not identified.
    fallback_timeout_s: int = 90
    services: bool = True  # version detection (-sV)
    run_scripts: bool = True  # the checks' NSE scripts
    versiondb: Path | None = None  # a service-probe file of warpagent's own (None: nmap's)


@dataclass(frozen=True)
class NmapOutput:
    xml: str
    stderr: str
    returncode: int | None
    timed_out: bool = False
    interrupted: bool = False
    # (address, protocol, port) of services whose version detection overran its budget: named by port number
    overran: tuple[tuple[str, str, int], ...] = ()


def find_nmap(configured: str) -> str:
    """The nmap binary, checked with python-nmap's own detection (it runs `nmap -V`)."""
    try:
        scanner = nmap.PortScanner(nmap_search_path=(configured,))
    except nmap.PortScannerError:
        raise CollectError(f"nmap was not found at '{configured}'; install it (apt-get install nmap) "
                           "or set scan.nmap_path") from None
    return str(scanner._nmap_path)


def build_args(nmap_path: str, plan: NmapPlan) -> list[str]:
    args = [nmap_path, "-n", "-oX", "-", "--no-stylesheet", f"-{plan.timing}",
            "--host-timeout", f"{plan.host_timeout_s}s", "--stats-every", "2s"]
    if plan.services:
        args.append("-sV")
        if plan.versiondb is not None:
            args += ["--versiondb", str(plan.versiondb)]
    args.append("-sS" if plan.privileged else "-sT")
    if plan.udp:
        args.append("-sU")
    if plan.assume_up:
        args.append("-Pn")
    if plan.max_rate:
        args += ["--max-rate", str(plan.max_rate)]
    args += ["-p", plan.port_argument]
    if plan.run_scripts and plan.scripts:
        args += ["--script", ",".join(plan.scripts)]
    if plan.run_scripts and plan.scripts and plan.script_args:
        args += ["--script-args", ",".join(plan.script_args)]
    args += ["-iL", str(plan.targets_file)]
    return args


def die_with_parent() -> None:
    # If warpagent is SIGKILLed, the kernel sends nmap SIGTERM: no orphaned scans.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(args: list[str], deadline: float, on_host_done: Callable[[int], None] = lambda n: None,
        on_start: Callable[[int], None] = lambda pid: None,
        cancelled: Callable[[], bool] = lambda: False) -> NmapOutput:
    """Run nmap until it exits, `deadline` (time.monotonic) passes or `cancelled()` says stop
    (the daemon's SIGTERM, from another thread); keep what it wrote."""
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE,
                                preexec_fn=die_with_parent if os.name == "posix" else None)
    except OSError as exc:
        raise CollectError(f"nmap could not be started ({exc}); check scan.nmap_path") from None
    on_start(proc.pid)
    assert proc.stdout is not None and proc.stderr is not None  # noqa: S101 - set by PIPE above
    out, err = bytearray(), bytearray()
    timed_out = interrupted = False
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, out)
    selector.register(proc.stderr, selectors.EVENT_READ, err)
    try:
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if cancelled():
                interrupted = True
                break
            for key, _mask in selector.select(timeout=min(remaining, 0.25)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer: bytearray = key.data
                if buffer is out:
                    start = max(0, len(out) - len(b"</host>"))  # a tag may straddle two reads
                    out.extend(chunk)
                    done = out.count(b"</host>", start)
                    if done:
                        on_host_done(done)
                else:
                    buffer.extend(chunk)
    except (Interrupted, KeyboardInterrupt):
        interrupted = True
    finally:
        _stop(proc)
        for key in list(selector.get_map().values()):
            # whatever nmap flushed while it was being stopped still counts
            data: bytearray = key.data
            data.extend(key.fileobj.read() or b"")  # type: ignore[union-attr]
        selector.close()
        proc.stdout.close()
        proc.stderr.close()
    return NmapOutput(xml=out.decode("utf-8", errors="replace"), stderr=err.decode("utf-8", errors="replace"),
                      returncode=proc.returncode, timed_out=timed_out, interrupted=interrupted)
