"""Active Directory at council scale: read and judge a directory of 20,000 users, 5,000
computers, 1,000 groups and 300 GPOs (their Tier-0 permissions and SYSVOL files included).

Provisions the tests' Samba AD DC (tests/samba_dc.py: a namespace of its own in 198.19.0.0/16,
torn down by PID at the end), bulk-loads the objects in one transaction, then, alternating,
times in child processes:
- the reference: OpenLDAP's ldapsearch over LDAPS asking the same searches for the same
  attributes (accounts, groups, each privileged group's transitive members, the policies),
  paged at 1000, output to /dev/null;
- warpagent: `evidence.directory.read`, the SYSVOL read over SMB (`evidence.sysvol.read`) and
  every directory check, as a scan runs them.
Peak memory is each child's own maximum resident set (wait4).

    sudo .venv/bin/python bench/directory.py [--users 20000 --computers 5000 --groups 1000 --rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import samba_dc  # noqa: E402
from warpagent.evidence.parsers import directory as parse  # noqa: E402

WARPAGENT = """
import datetime as dt, json, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from checks import ALL_CHECKS, CheckContext
from feeds.intel_store import IntelStore
from warpagent.config import DirectorySettings
import dataclasses
from warpagent.evidence import directory, sysvol
from warpagent.model.evidence import EvidenceKind, HostEvidence
from warpagent.model.findings import RECORD_STATE, Host, Inventory
from warpagent.scan import engine
started = time.perf_counter()
settings = DirectorySettings(url={url!r}, bind_dn={bind!r}, password_env="X", ca_bundle=Path({ca!r}))
snapshot = directory.read(settings, {address!r}, {password!r})
read = time.perf_counter() - started
files = sysvol.read(settings, {address!r}, {password!r})
snapshot = dataclasses.replace(snapshot, gpp_passwords=files.passwords, gpo_grants=files.grants)
sysvol_s = time.perf_counter() - started - read
host = Host(address="", asset="Active Directory", state=RECORD_STATE, evidence=HostEvidence(
    directory=snapshot, read=frozenset({{EvidenceKind.DIRECTORY, EvidenceKind.SYSVOL}})))
checks = [c for c in ALL_CHECKS if set(c.evidence) & {{EvidenceKind.DIRECTORY, EvidenceKind.SYSVOL}}
          and not c.needs_intel]
evaluation = engine.evaluate(Inventory(estate="bench", hosts=(host,), scanned=(), unscanned=()),
                             CheckContext(now=dt.datetime.now(dt.UTC)), checks)
print(json.dumps({{"read": read, "sysvol": sysvol_s, "gpos": files.gpos, "tier0": len(snapshot.tier0),
                  "total": time.perf_counter() - started, "accounts": len(snapshot.accounts),
                  "groups": len(snapshot.groups), "findings": len(evaluation.findings),
                  "errors": len(evaluation.errors)}}))
"""


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Seconds, peak resident MiB and stdout of a child process (its own rusage, from wait4)."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, env=env)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            errors.seek(0)
            raise SystemExit(f"{argv[0]} failed: {errors.read().decode()[-400:]}")
    return elapsed, usage.ru_maxrss / 1024, out.decode()


def ldapsearch_reference(dc: samba_dc.SambaDC, privileged: list[str]) -> list[str]:
    """A shell line running the same searches with ldapsearch (the plain LDAP client's floor)."""
    common = ["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-H", dc.url, "-x", "-D",
              f"warpagent-read@{samba_dc.REALM}", "-w", dc.reader_password, "-E", "pr=1000/noprompt"]
    searches = [
        [*common, "-b", samba_dc.BASE_DN, "(objectClass=user)", *parse.ACCOUNT_ATTRIBUTES],
        [*common, "-b", samba_dc.BASE_DN, "(objectClass=group)", *parse.GROUP_ATTRIBUTES],
        [*common, "-b", samba_dc.BASE_DN, "-s", "base", "(objectClass=*)", *parse.DOMAIN_ATTRIBUTES],
        *([*common, "-b", samba_dc.BASE_DN, f"(memberOf:1.2.840.113556.1.4.1941:={g})", "1.1"] for g in privileged),
    ]
    return [" ".join(f"'{a}'" for a in s) + " > /dev/null" for s in searches]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--computers", type=int, default=5000)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--gpos", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    dc = samba_dc.build(bulk=(args.users, args.computers, args.groups, args.gpos))
    print(f"provisioned and bulk-loaded in {time.perf_counter() - started:.1f} s", flush=True)
    try:
        env = {**os.environ, "LDAPTLS_CACERT": str(dc.ca)}
        privileged = [f"CN={n},CN=Users,{samba_dc.BASE_DN}" for n in
                      ("Domain Admins", "Enterprise Admins", "Schema Admins", "Group Policy Creator Owners")]
        privileged += [f"CN={n},CN=Builtin,{samba_dc.BASE_DN}" for n in
                       ("Administrators", "Account Operators", "Backup Operators", "Server Operators",
                        "Print Operators")]
        privileged += [f"CN=Protected Users,CN=Users,{samba_dc.BASE_DN}"]
        script = " && ".join(ldapsearch_reference(dc, privileged))
        code = WARPAGENT.format(root=str(ROOT), url=dc.url, bind=f"warpagent-read@{samba_dc.REALM}", ca=str(dc.ca),
                                address=dc.address, password=dc.reader_password)
        references, ours, peaks, reference_peaks = [], [], [], []
        for round_ in range(args.rounds):
            seconds, peak, _ = timed(["bash", "-c", script], env)
            references.append(seconds)
            reference_peaks.append(peak)
            seconds, peak, out = timed([sys.executable, "-c", code])
            result = json.loads(out)
            ours.append(result["total"])
            peaks.append(peak)
            print(f"round {round_ + 1}: ldapsearch {references[-1]:.2f} s; warpagent read {result['read']:.2f} s, "
                  f"SYSVOL {result['sysvol']:.2f} s ({result['gpos']} GPOs), {result['tier0']} Tier-0 descriptors, "
                  f"read and checks {result['total']:.2f} s, peak {peak:.0f} MiB; {result['accounts']} accounts, "
                  f"{result['groups']} privileged groups, {result['findings']} findings, {result['errors']} errors",
                  flush=True)
        best, reference = min(ours), min(references)
        print(f"best of {args.rounds}: warpagent {best:.2f} s (target < 60 s), peak {max(peaks):.0f} MiB "
              f"(target < 500 MiB); ldapsearch {reference:.2f} s, peak {max(reference_peaks):.0f} MiB; "
              f"ratio {best / reference:.2f}")
    finally:
        dc.teardown()


if __name__ == "__main__":
    main()
