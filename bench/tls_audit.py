"""The TLS audit against sslyze: ten HTTPS hosts, one of which completes the handshake and then
never says a word, audited by `warpagent scan` and by sslyze, back to back, in one run.

    sudo .venv/bin/python bench/tls_audit.py [--rounds 3] [--sslyze .bench-venv/bin/sslyze]

sslyze is the benchmark's reference only (never a dependency of warpagent); install it apart:
    python3 -m venv .bench-venv && .bench-venv/bin/pip install 'sslyze>=6,<7'

The estate, on loopback addresses of the benchmark's own (127.0.6.1-10, port 443):
  1-3  real nginx, modern TLS, a CA-signed 2048-bit certificate (nothing to find but the CA)
  4-6  real nginx, TLS 1.0-1.2 with every weak suite OpenSSL still has, an expired self-signed
       1024-bit certificate (the test estate's weak web server)
  7-9  real nginx, TLS 1.0-1.2 with modern suites and the CA-signed certificate
  10   the silent service (tests/tls_servers.py): handshake, then nothing
Both tools are timed as the commands a council runs (start-up included). Recall: each weakness
sslyze's reading shows (a legacy protocol accepted, a suite warpagent's WA502 rules call weak, an
expired, self-signed or short-keyed certificate) must be a warpagent finding on the same host; a
warpagent finding of those kinds that sslyze's reading does not show is a false alarm.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checks.configs_rules import WEAK_CIPHER_RULES  # noqa: E402
from tests.estate import _tls_material  # noqa: E402
from tests.tls_servers import serving  # noqa: E402

ADDRESSES = [f"127.0.6.{n}" for n in range(1, 11)]
SILENT = ADDRESSES[-1]
MODERN = "ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers 'ECDHE+AESGCM:ECDHE+CHACHA20';"
WEAK = "ssl_protocols TLSv1 TLSv1.1 TLSv1.2; ssl_ciphers 'ALL:NULL:eNULL:RC4:3DES:@SECLEVEL=0';"
LEGACY = "ssl_protocols TLSv1 TLSv1.1 TLSv1.2; ssl_ciphers 'ECDHE+AESGCM:ECDHE+AES:@SECLEVEL=0';"
KINDS = {"WA501": "legacy protocol", "WA502": "weak suite", "WA503": "expired certificate",
         "WA504": "self-signed certificate", "WA506": "short key"}


def nginx_conf(work: Path, tls: dict[str, Path]) -> Path:
    servers = []
    for index, address in enumerate(ADDRESSES[:-1]):
        profile, cert, key = ((MODERN, tls["good_crt"], tls["good_key"]) if index < 3 else
                              (WEAK, tls["weak_crt"], tls["weak_key"]) if index < 6 else
                              (LEGACY, tls["good_crt"], tls["good_key"]))
        servers.append(f"server {{ listen {address}:443 ssl; ssl_certificate {cert}; ssl_certificate_key {key};"
                       f" {profile} location / {{ return 200 'bench\\n'; }} }}")
    conf = work / "nginx.conf"
    temp = "".join(f" {kind}_temp_path {work}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                    "scgi"))
    conf.write_text(f"user root; worker_processes 1; pid {work}/nginx.pid; error_log {work}/nginx.log;\n"
                    f"events {{ worker_connections 256; }}\nhttp {{ access_log off;{temp}\n"
                    + "\n".join(servers) + "\n}\n")
    return conf


def run_warpagent(work: Path) -> tuple[float, set[tuple[str, str]], dict[str, Any]]:
    config = work / "w.yaml"
    config.write_text(f"""organisation: {{name: Bench Council}}
store: {work}/bench.db
feeds: {{dir: {work}/intel}}
estates:
  - name: tls
    targets: [{", ".join(ADDRESSES)}]
    ports: "443"
""")
    (work / "bench.db").unlink(missing_ok=True)
    started = time.monotonic()
    done = subprocess.run([str(ROOT / ".venv/bin/warpagent"), "--config", str(config), "scan", "--json"],
                          capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"warpagent scan failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    report = json.loads(done.stdout)
    found = {(f["asset"], KINDS[f["check_id"]]) for f in report["findings"] if f["check_id"] in KINDS}
    return elapsed, found, report


def run_sslyze(sslyze: str, work: Path) -> tuple[float, set[tuple[str, str]]]:
    out = work / "sslyze.json"
    started = time.monotonic()
    done = subprocess.run([sslyze, "--quiet", f"--json_out={out}", *[f"{a}:443" for a in ADDRESSES]],
                          capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if not out.exists():
        raise SystemExit(f"sslyze wrote nothing ({done.returncode}): {done.stderr.strip()[-500:]}")
    return elapsed, read_sslyze(json.loads(out.read_text()))


def read_sslyze(document: dict[str, Any]) -> set[tuple[str, str]]:
    """The weaknesses sslyze's own reading shows, in warpagent's kinds."""
    found: set[tuple[str, str]] = set()
    now = dt.datetime.now(dt.UTC)
    for server in document.get("server_scan_results", []):
        address = server["server_location"]["ip_address"]
        result = server.get("scan_result") or {}
        for version in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1", "tls_1_2", "tls_1_3"):
            attempt = result.get(f"{version}_cipher_suites") or {}
            accepted = [s["cipher_suite"]["name"] for s in (attempt.get("result") or {}).get(
                "accepted_cipher_suites", [])]
            if accepted and version in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"):
                found.add((address, KINDS["WA501"]))
            if any(pattern.search(name) for name in accepted for pattern, _why, _sev in WEAK_CIPHER_RULES):
                found.add((address, KINDS["WA502"]))
        info = ((result.get("certificate_info") or {}).get("result") or {})
        for deployment in info.get("certificate_deployments", [])[:1]:
            leaf = deployment["received_certificate_chain"][0]
            if dt.datetime.fromisoformat(leaf["not_valid_after"]).replace(tzinfo=dt.UTC) < now:
                found.add((address, KINDS["WA503"]))
            if leaf["subject"]["rfc4514_string"] == leaf["issuer"]["rfc4514_string"]:
                found.add((address, KINDS["WA504"]))
            key = leaf.get("public_key") or {}
            if "RSA" in str(key.get("algorithm", "")) and int(key.get("key_size") or 0) < 2048:
                found.add((address, KINDS["WA506"]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sslyze", default=str(ROOT / ".bench-venv/bin/sslyze"))
    options = parser.parse_args()
    if not Path(options.sslyze).exists():
        raise SystemExit(f"sslyze not found at {options.sslyze}: python3 -m venv .bench-venv && "
                         ".bench-venv/bin/pip install 'sslyze>=6,<7'")
    with tempfile.TemporaryDirectory(prefix="warpagent-bench-") as name:
        work = Path(name)
        tls = _tls_material(work, dt.datetime.now(dt.UTC))
        nginx = subprocess.Popen(["nginx", "-c", str(nginx_conf(work, tls)), "-g", "daemon off;"],
                                 stdin=subprocess.DEVNULL)
        try:
            time.sleep(1)
            with serving(work, https=[], silent=[(SILENT, 443)]):
                ours: list[float] = []
                theirs: list[float] = []
                for round_ in range(1, options.rounds + 1):
                    took, oracle = run_sslyze(options.sslyze, work)
                    theirs.append(took)
                    took, found, report = run_warpagent(work)
                    ours.append(took)
                    print(f"round {round_}: sslyze {theirs[-1]:6.2f} s, warpagent scan {ours[-1]:6.2f} s "
                          f"(ratio {ours[-1] / theirs[-1]:.2f})", flush=True)
        finally:
            nginx.terminate()
            nginx.wait(10)
    missed, extra = oracle - found, found - oracle
    print(f"median: sslyze {statistics.median(theirs):.2f} s, warpagent {statistics.median(ours):.2f} s; "
          f"ratio {statistics.median(ours) / statistics.median(theirs):.2f} (target <= 1.5)")
    print(f"recall: {len(oracle & found)} of {len(oracle)} weaknesses sslyze's reading shows; "
          f"false alarms: {len(extra)}")
    for address, kind in sorted(missed):
        print(f"  missed: {address} {kind}")
    for address, kind in sorted(extra):
        print(f"  not in sslyze's reading: {address} {kind}")
    for line in report["summary"][0].get("problems", []):
        print(f"  run: {line}")


if __name__ == "__main__":
    main()
