"""A host's evidence folder is as hostile as the host: nothing read may leave it. Canary files
sit beside the folder; every read warpagent makes is recorded, and none may touch a canary."""

from __future__ import annotations

from pathlib import Path

import pytest

from warpagent.evidence import folders

CANARY_RULE = "canaryuser ALL=(ALL) NOPASSWD: ALL\n"


def _estate(tmp_path: Path) -> tuple[Path, Path]:
    """(the host's folder, a canary folder beside the evidence folder)."""
    canary = tmp_path / "canary"
    (canary / "dir").mkdir(parents=True)
    for name in ("sudoers", "shadow", "sshd_config", "dir/rules"):
        (canary / name).write_text(CANARY_RULE if "sudo" in name or "rules" in name else
                                   "PermitRootLogin yes\n" if "sshd" in name else "root:$1$canary:19000::::::\n")
    host = tmp_path / "evidence" / "web1"
    (host / "etc" / "ssh" / "sshd_config.d").mkdir(parents=True)
    (host / "etc" / "sudoers.d").mkdir()
    (host / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (host / "etc" / "group").write_text("root:x:0:\nsudo:x:27:\n")
    return host, canary


def _outside(seen: list[Path], host: Path) -> list[Path]:
    return [p for p in seen if not p.is_relative_to(host.resolve())]


def _rules(read: folders.HostRead) -> list[str]:
    return [u for rule in read.evidence.sudo_rules for u in rule.users]


@pytest.mark.parametrize("include", ["@include ../../../canary/sudoers", "#include /../../../canary/sudoers",
                                     "@includedir ../../../canary/dir",
                                     "@include sudoers.d/../../../../canary/sudoers"])
def test_sudoers_includes_cannot_climb_out(tmp_path: Path, reads: list[Path], include: str) -> None:
    host, _canary = _estate(tmp_path)
    (host / "etc" / "sudoers").write_text(f"root ALL=(ALL) ALL\n{include}\n")
    found = folders.read_host(host)
    assert "canaryuser" not in _rules(found) and _outside(reads, host) == []
    assert "sudo" not in found.evidence.read  # half the rules is no verdict
    assert any("etc/sudoers: skipped:" in p and "not a path inside the host's folder" in p for p in found.problems)


@pytest.mark.parametrize("link", ["etc/shadow", "etc/sudoers", "etc/sudoers.d/extra", "etc/ssh/sshd_config",
                                  "etc/ssh/sshd_config.d/evil.conf"])
def test_links_are_never_followed(tmp_path: Path, reads: list[Path], link: str) -> None:
    host, canary = _estate(tmp_path)
    if link != "etc/sudoers":
        (host / "etc" / "sudoers").write_text("root ALL=(ALL) ALL\n@includedir /etc/sudoers.d\n")
    if link != "etc/ssh/sshd_config":
        (host / "etc" / "ssh" / "sshd_config").write_text("Include /etc/ssh/sshd_config.d/*.conf\n"
                                                          "PasswordAuthentication no\n")
    target = {"etc/shadow": "shadow", "etc/ssh/sshd_config": "sshd_config",
              "etc/ssh/sshd_config.d/evil.conf": "sshd_config"}.get(link, "sudoers")
    (host / link).symlink_to(canary / target)
    found = folders.read_host(host)
    assert _outside(reads, host) == [] and "canaryuser" not in _rules(found)
    assert any("a symbolic link; links in evidence are never followed" in p for p in found.problems), found.problems
    assert found.evidence.sshd is None or all(s[0] != "permitrootlogin" for s in found.evidence.sshd.settings)


def test_a_linked_folder_on_the_way_is_refused(tmp_path: Path, reads: list[Path]) -> None:
    host, canary = _estate(tmp_path)
    (host / "etc" / "sudoers").write_text("root ALL=(ALL) ALL\n@includedir /etc/sudoers.d\n")
    (host / "etc" / "sudoers.d").rmdir()
    (host / "etc" / "sudoers.d").symlink_to(canary / "dir", target_is_directory=True)
    found = folders.read_host(host)
    assert "canaryuser" not in _rules(found) and _outside(reads, host) == []
    assert any("etc/sudoers.d: a symbolic link" in p for p in found.problems)


def test_a_linked_host_folder_is_named_and_not_read(tmp_path: Path, reads: list[Path]) -> None:
    from warpagent.collect.scope import resolve
    from warpagent.model.findings import Inventory

    host, _canary = _estate(tmp_path)
    (host / "etc" / "sudoers").write_text(CANARY_RULE)
    linked = tmp_path / "evidence2"
    linked.mkdir()
    (linked / "198.18.40.1").symlink_to(host, target_is_directory=True)
    attached = folders.attach(Inventory(estate="e", hosts=(), scanned=()), (str(linked),),
                               resolve("e", ["198.18.40.1"], [], 10))
    assert reads == [] and attached.inventory.hosts == ()
    assert any("198.18.40.1: refused: the host folder is a symbolic link" in p for p in attached.problems)


def test_sshd_include_loops_are_named(tmp_path: Path, reads: list[Path]) -> None:
    host, _canary = _estate(tmp_path)
    (host / "etc" / "ssh" / "sshd_config").write_text("Include /etc/ssh/sshd_config\nPermitRootLogin no\n")
    itself = folders.read_host(host)
    assert itself.evidence.sshd is None and any("Include loop" in p for p in itself.problems)
    (host / "etc" / "ssh" / "sshd_config").write_text("Include sshd_config.d/a.conf\n")
    (host / "etc" / "ssh" / "sshd_config.d" / "a.conf").write_text("Include /etc/ssh/sshd_config.d/b.conf\n")
    (host / "etc" / "ssh" / "sshd_config.d" / "b.conf").write_text("Include /etc/ssh/sshd_config.d/a.conf\n")
    mutual = folders.read_host(host)
    assert mutual.evidence.sshd is None and any("Include loop" in p for p in mutual.problems)


def test_include_fan_out_has_a_budget(tmp_path: Path, reads: list[Path]) -> None:
    host, _canary = _estate(tmp_path)
    for index in range(60):
        (host / "etc" / "ssh" / "sshd_config.d" / f"{index:02}.conf").write_text(f"X{index} y\n")
    config = "Include /etc/ssh/sshd_config.d/*\n" * 60  # a few hundred bytes: 3,600 reads unbounded
    (host / "etc" / "ssh" / "sshd_config").write_text(config)
    found = folders.read_host(host)
    assert len(reads) <= folders.MAX_READS + 20
    assert found.evidence.sshd is None
    assert any("its limit; check its includes" in p for p in found.problems)


def test_hostile_include_names_are_quoted_on_one_line(tmp_path: Path, reads: list[Path]) -> None:
    host, _canary = _estate(tmp_path)
    (host / "etc" / "sudoers").write_text("@include /etc/" + "a" * 5000 + "\n@include /etc/x\\nfake problem\n")
    found = folders.read_host(host)
    assert all("\n" not in p and len(p) < 600 for p in found.problems)
    assert _outside(reads, host) == []
