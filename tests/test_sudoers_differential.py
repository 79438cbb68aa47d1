"""sudoers: warpagent's reading against sudo's own (`cvtsudoers -e -f json`, aliases expanded, from
Debian's sudo), file by file. Every (user, run-as users, command, negated, NOPASSWD) that sudo
reads, warpagent reads, and nothing else; a file sudo refuses, warpagent refuses.

Corpus (tests/assets/corpus/sudoers): `debian-12` is /etc/sudoers as Debian 12's sudo package
installs it; `shapes` holds the forms councils' hosts have: negated aliases, a trailing
comment, `:` between host clauses without spaces, TIMEOUT/NOTBEFORE/NOTAFTER options, digest
lists, escaped commas, quoted group names, run-as users and groups."""

from __future__ import annotations

import json
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
    kind, value = next(iter(entry.items()))
    return f"%{value}" if kind == "usergroup" else str(value)


def _sudo(path: Path) -> set[Grant] | None:
    result = subprocess.run(["cvtsudoers", "-e", "-f", "json", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)
    if result.returncode != 0:
        return None
    grants: set[Grant] = set()
    for spec in json.loads(result.stdout).get("User_Specs", []):
        for cmnd_spec in spec["Cmnd_Specs"]:
            runas = tuple(sorted(_name(r) for r in cmnd_spec.get("runasusers", [{"username": "root"}])))
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
@pytest.mark.parametrize("name", ["debian-12", "shapes", "suse-stock", *REFUSED])
def test_warpagent_reads_what_sudo_reads(name: str, tmp_path: Path) -> None:
    path = _case(name, tmp_path)
    theirs, ours = _sudo(path), _ours(path)
    assert theirs is not None or name in REFUSED, f"cvtsudoers refused {name}"
    assert ours == theirs
