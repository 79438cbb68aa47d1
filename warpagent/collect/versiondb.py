"""warpagent's own service-probe file: nmap's probes with short waits.

nmap's version detection waits up to 6 s for a banner after connecting (the NULL probe) and 5 s
after most probes, so an nginx, which never speaks first, costs 12 s per port (6 s in the clear
and 6 s again inside TLS) although it answers the HTTP probe at once. Services that answer do so
within milliseconds on a council's network; the waits exist for the rare one that pauses on
purpose (Sendmail's greet_pause). So the quick pass runs the installed nmap's own probes and
match lines, untouched, with every wait cut to QUICK_WAIT_MS; a port that answered but was not
identified gets the stock probes afterwards (warpagent.collect.stages).

The file is derived on the machine from the installed nmap's nmap-service-probes, never shipped:
the probes and matches stay nmap's, at whatever version the council has installed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

QUICK_WAIT_MS = 500
_WAIT = re.compile(r"^(totalwaitms|tcpwrappedms) (\d+)\s*$")
_PROBE = re.compile(r"^Probe (TCP|UDP) ")


def stock_probes(nmap_path: str) -> Path | None:
    """The nmap-service-probes the given nmap reads: $NMAPDIR, else beside its install prefix."""
    candidates = [Path(os.environ["NMAPDIR"])] if os.environ.get("NMAPDIR") else []
    prefix = Path(os.path.realpath(nmap_path)).parent.parent
    candidates += [prefix / "share" / "nmap", Path("/usr/share/nmap"), Path("/usr/local/share/nmap")]
    for folder in candidates:
        path = folder / "nmap-service-probes"
        if path.is_file():
            return path
    return None


def quick(stock: str, wait_ms: int = QUICK_WAIT_MS) -> str:
    """The probe file with every probe's wait at most `wait_ms` (a probe without a wait of its
    own gets one: nmap's default is 5 s). Everything else is nmap's, line for line."""
    lines: list[str] = []
    pending_default = False  # the probe just opened has not said how long to wait yet
    for line in stock.splitlines():
        if _PROBE.match(line):
            if pending_default:
                lines.append(f"totalwaitms {wait_ms}")
            pending_default = True
        wait = _WAIT.match(line)
        if wait:
            lines.append(f"{wait.group(1)} {min(int(wait.group(2)), wait_ms)}")
            if wait.group(1) == "totalwaitms":
                pending_default = False
            continue
        if pending_default and line.startswith(("match ", "softmatch ")):
            lines.append(f"totalwaitms {wait_ms}")
            pending_default = False
        lines.append(line)
    if pending_default:
        lines.append(f"totalwaitms {wait_ms}")
    return "\n".join(lines) + "\n"


def write_quick(nmap_path: str, folder: Path) -> Path | None:
    """The quick probe file written into `folder`, or None when the stock one cannot be found
    (the scan then uses nmap's own waits: slower, never wrong)."""
    stock = stock_probes(nmap_path)
    if stock is None:
        return None
    path = folder / "warpagent-service-probes"
    path.write_text(quick(stock.read_text(encoding="latin-1")), encoding="latin-1")
    return path
