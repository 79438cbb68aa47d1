"""A scanned host that lies over SFTP must never make warpagent read or write a local file
outside the host's own folder.

A real sshd cannot list a name with a slash or serve `..` as a file, so this host is an SFTP
server in this process (paramiko's server side, over a real TCP socket on loopback) that lists
whatever names it likes, claims sizes, and serves includes aimed at canary files beside the
evidence folder. Everything on the client side is warpagent's own collection and evidence code.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from tests.test_evidence_confinement import CANARY_RULE
from warpagent.config import SshSource
from warpagent.evidence import folders
from warpagent.evidence import ssh as ssh_collect

PASSWORD = "hostile-host-pw"  # noqa: S105 - the test host's own
USERS = "root:x:0:0:root:/root:/bin/bash\nwww:x:33:33::/var/www:/usr/sbin/nologin\n"


def _tree(canary: Path) -> dict[str, bytes | None]:
    """The host as it presents itself: path -> content (None: a folder)."""
    return {
        "/etc": None, "/etc/sudoers.d": None, "/etc/ssh": None, "/etc/ssh/sshd_config.d": None,
        "/etc/passwd": USERS.encode(),
        "/etc/sudoers": f"root ALL=(ALL) ALL\n@include {canary}/sudoers\n@includedir ../../canary\n".encode(),
        "/etc/sudoers.d/ok": b"www ALL=(root) /usr/bin/systemctl restart nginx\n",
        "/etc/sudoers.d/../../../../canary/sudoers": CANARY_RULE.encode(),
        "/etc/ssh/sshd_config": b"Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n",
        "/etc/ssh/sshd_config.d/a.conf": b"Include ../../../../../canary/sshd_config\n",
    }


LISTINGS = {"/etc/sudoers.d": ["ok", "../../../../canary/sudoers", "..", "a/b", "x\x00y", "n" * 300],
            "/etc/ssh/sshd_config.d": ["a.conf"]}


class _Host(paramiko.ServerInterface):
    def check_auth_password(self, username: str, password: str) -> int:
        return paramiko.AUTH_SUCCESSFUL if password == PASSWORD else paramiko.AUTH_FAILED

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _Handle(paramiko.SFTPHandle):
    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data = data

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset:offset + length]

    def stat(self) -> paramiko.SFTPAttributes:
        return _attributes(self.data)


def _attributes(data: bytes | None, name: str = "") -> paramiko.SFTPAttributes:
    attributes = paramiko.SFTPAttributes()
    attributes.filename = name
    attributes.st_mode = (stat.S_IFDIR | 0o755) if data is None else (stat.S_IFREG | 0o644)
    attributes.st_size = 0 if data is None else len(data)
    return attributes


def _lying_sftp(tree: dict[str, bytes | None]) -> type[paramiko.SFTPServerInterface]:
    class Lying(paramiko.SFTPServerInterface):
        def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
            if path not in LISTINGS:
                return paramiko.SFTP_NO_SUCH_FILE
            return [_attributes(tree.get(f"{path}/{n}", b""), n) for n in LISTINGS[path]]

        def stat(self, path: str) -> paramiko.SFTPAttributes | int:
            if path not in tree:
                return paramiko.SFTP_NO_SUCH_FILE
            return _attributes(tree[path])

        lstat = stat

        def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> paramiko.SFTPHandle | int:
            data = tree.get(path)
            return _Handle(data) if data is not None else paramiko.SFTP_NO_SUCH_FILE

    return Lying


@pytest.fixture
def hostile_host(tmp_path: Path) -> Iterator[tuple[SshSource, Path]]:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "sudoers").write_text(CANARY_RULE)
    (canary / "sshd_config").write_text("PermitRootLogin yes\n")
    key = paramiko.ECDSAKey.generate()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {key.get_name()} {key.get_base64()}\n")
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        while True:
            try:
                conn, _peer = listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(key)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, _lying_sftp(_tree(canary)))
            transport.start_server(server=_Host())
            transports.append(transport)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    os.environ["HOSTILE_HOST_PW"] = PASSWORD
    try:
        yield SshSource(hosts=("127.0.0.1",), username="audit", known_hosts=known_hosts,
                        password_env="HOSTILE_HOST_PW", port=port, timeout_s=10), canary  # noqa: S106 - a variable name
    finally:
        os.environ.pop("HOSTILE_HOST_PW", None)
        listener.close()
        for transport in transports:
            transport.close()
        thread.join(timeout=5)


def test_a_lying_host_cannot_reach_outside_its_folder(hostile_host: tuple[SshSource, Path], tmp_path: Path,
                                                      reads: list[Path]) -> None:
    source, canary = hostile_host
    into = tmp_path / "collected"
    before = {p for p in tmp_path.rglob("*")}
    collected = ssh_collect.collect(source, "127.0.0.1", "127.0.0.1", "web1", into)
    assert collected.ok, collected.problem
    folder = into / "web1"
    written = {p for p in tmp_path.rglob("*")} - before
    assert written and all(p in (into, folder) or folder in p.parents for p in written)  # nothing elsewhere
    assert (canary / "sudoers").read_text() == CANARY_RULE  # not overwritten by the host's copy
    refused = [n for n in collected.notes if "is not a plain file name; not copied" in n]
    assert len(refused) == 4  # '../../../../canary/sudoers', 'a/b', the NUL name, the 300-character name
    assert sorted(p.name for p in (folder / "etc" / "sudoers.d").iterdir()) == ["ok"]

    reads.clear()  # from here on, every read is warpagent's
    read = folders.read_host(folder)
    assert not [p for p in reads if canary in p.parents]  # no include led a read out of the folder
    sudoers, sshd = folder / "etc" / "sudoers", folder / "etc" / "ssh" / "sshd_config"
    assert sorted(read.problems) == sorted([
        f"{sudoers}: skipped: etc/../../canary: not a path inside the host's folder; refused",
        f"{sshd}: skipped: Include '/etc/ssh/../../../../../canary/sshd_config' leaves the host's folder; refused"])
    assert read.evidence.sudo_rules == () and read.evidence.sshd is None  # refused files are not judged half-read
