"""sudoers: warpagent's reading against sudo's own (`cvtsudoers -e -f json`, aliases expanded, from
Debian's sudo), file by file. Every (user, run-as users, command, negated, NOPASSWD) that sudo
reads, warpagent reads, and nothing else; a file sudo refuses, warpagent refuses.

Corpus (tests/assets/corpus/sudoers): `debian-12` is /etc/sudoers as Debian 12's sudo package
installs it; `shapes` holds the forms councils' hosts have: negated aliases, a trailing
comment, `:` between host clauses without spaces, TIMEOUT/NOTBEFORE/NOTAFTER options, digest
lists, escaped commas, quoted group names, run-as users and groups."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers.sudoers import sudoers

CORPUS = Path(__file__).parent / "assets" / "corpus" / "sudoers"
Grant = tuple[str, tuple[str, ...], str, bool, bool]
SUSE_STOCK = "ALL ALL=(ALL) ALL # WARNING! Only use this together with 'Defaults targetpw'!\n"
REFUSED = {"unclosed-runas": "bob ALL = (root /bin/ls\n", "no-equals": "bob ALL /bin/ls\n",
           "bad-date": "eve ALL = NOTBEFORE=tomorrow /usr/bin/apt\n"}


def _name(entry: dict[str, Any]) -> str:
    kind, value = next((k, v) for k, v in entry.items() if k != "negated")
    if entry.get("negated"):
        return "!" + _name({kind: value})
    return {"usergroup": f"%{value}", "netgroup": f"+{value}", "userid": f"#{value}",
            "usergid": f"%#{value}", "nonunixgroup": f"%:{value}"}.get(kind, str(value))


def _sudo(path: Path) -> set[Grant] | None:
    result = subprocess.run(["cvtsudoers", "-e", "-f", "json", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)
    if result.returncode != 0:
        return None
    # cvtsudoers 1.9.13 writes a CWD or CHROOT option without its braces ("runcwd": "*" in a list)
    text = re.sub(r'(?m)^(\s*)("run(?:cwd|chroot)": "[^"]*")$', r"\1{ \2 }", result.stdout)
    grants: set[Grant] = set()
    for spec in (json.loads(text) if text.strip() else {}).get("User_Specs", []):
        for cmnd_spec in spec["Cmnd_Specs"]:
            # no run-as list is root; "()" (a user of "") and "( : group)" (groups only) the invoking user
            default = [] if "runasgroups" in cmnd_spec else [{"username": "root"}]
            runas = tuple(sorted(n for n in (_name(r) for r in cmnd_spec.get("runasusers", default)) if n))
            nopasswd = {"authenticate": False} in cmnd_spec.get("Options", [])
            for user in spec["User_List"]:
                for command in cmnd_spec["Commands"]:
                    grants.add((_name(user), runas, command["command"], bool(command.get("negated")), nopasswd))
    return grants


def _ours(path: Path) -> set[Grant] | None:
    try:
        rules = sudoers(lambda p: path.read_text() if p == "/etc/sudoers" else None, lambda d: [])
    except EvidenceError:
        return None
    return {(user, tuple(sorted(rule.runas)), command.removeprefix("!"), command.startswith("!"),
             command in rule.nopasswd)
            for rule in rules for user in rule.users for command in rule.commands}


def _case(name: str, tmp_path: Path) -> Path:
    if (CORPUS / name).exists():
        return CORPUS / name
    path = tmp_path / name
    path.write_text(SUSE_STOCK if name == "suse-stock" else REFUSED[name])
    return path


@pytest.mark.skipif(shutil.which("cvtsudoers") is None, reason="sudo's cvtsudoers is the oracle")
@pytest.mark.parametrize("name", ["debian-12", "shapes", "alias-cycle", "runas", "suse-stock", *REFUSED])
def test_warpagent_reads_what_sudo_reads(name: str, tmp_path: Path) -> None:
    path = _case(name, tmp_path)
    theirs, ours = _sudo(path), _ours(path)
    assert theirs is not None or name in REFUSED, f"cvtsudoers refused {name}"
    assert ours == theirs


def test_an_alias_cycle_names_each_user_once() -> None:
    """Issue 29: an alias cycle listed a user five times."""
    rules = sudoers(lambda p: (CORPUS / "alias-cycle").read_text() if p == "/etc/sudoers" else None, lambda d: [])
    assert [sorted(rule.users) for rule in rules] == [["alice", "bob"]]


def test_only_rules_that_run_as_root_are_sudo_as_root_findings() -> None:
    """Issue 29: "()", "( : wheel)", "(%patrick)" and an alias of other users run as them, not as
    root; WA302 said "as root" for them."""
    from checks import CheckContext
    from warpagent.model.evidence import HostEvidence
    from warpagent.model.findings import Host, Inventory
    from warpagent.scan import engine

    rules = tuple(sudoers(lambda p: (CORPUS / "runas").read_text() if p == "/etc/sudoers" else None, lambda d: []))
    host = Host(address="198.18.0.9", asset="h", state="evidence", evidence=HostEvidence(sudo_rules=rules))
    found = engine.evaluate(Inventory(estate="e", hosts=(host,), scanned=()),
                            CheckContext(now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))).findings
    assert sorted(f.title for f in found if f.check_id == "WA302") == [
        "sudo lets frank run any command (ALL) as root with no password",
        "sudo lets grace run any command (ALL) as root with no password"]


REGRESS = CORPUS / "regress"
# Written for a newer sudo than Debian 12's 1.9.13p3 (SOURCES.md): that sudo refuses them, the
# sudo that wrote them reads them, and so does warpagent.
NEWER_SUDO = {"test24.in": "quoted CWD and CHROOT values", "test31.in": "APPARMOR_PROFILE (built without AppArmor)"}


@pytest.mark.skipif(shutil.which("cvtsudoers") is None, reason="sudo's cvtsudoers is the oracle")
@pytest.mark.parametrize("name", sorted(p.name for p in REGRESS.iterdir()))
def test_warpagent_reads_sudos_own_regress_inputs_as_sudo_does(name: str) -> None:
    """Issue 29: sudo's regress inputs (digests in aliases, TIMEOUT units, NOTBEFORE with a ','
    decimal mark, quoted names with ':' and '\"', alias cycles, run-as lists, the files sudo
    must refuse), each read by warpagent and by cvtsudoers."""
    theirs, ours = _sudo(REGRESS / name), _ours(REGRESS / name)
    if name in NEWER_SUDO:
        assert theirs is None and ours, f"{name}: Debian's sudo now reads it; drop it from NEWER_SUDO"
        return
    assert ours == theirs, f"{name}: warpagent and sudo disagree"
