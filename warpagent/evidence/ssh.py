"""Collect host evidence over SSH into the evidence-folder layout, so one set of parsers
serves exported folders and SSH alike.

Reads only, over SFTP (plus `rpm -qa` on RPM hosts), as a read-only scan account. Host keys
are verified against the configured known_hosts file and a host whose key is missing or
different is refused: never accepted blindly. The connection goes to the address the scope
resolved (never a fresh DNS look-up), while the host key is looked up under the configured
name. /etc/shadow is redacted as it is read: no password hash is ever written to disk.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

import paramiko

from warpagent.config import SshSource
from warpagent.evidence.folders import RPM_EXPORT
from warpagent.evidence.formats import RPM_QUERYFORMAT
from warpagent.evidence.parsers.accounts import redact_shadow
from warpagent.text import shown

FILES = ("etc/os-release", "etc/passwd", "etc/group", "etc/shadow", "etc/sudoers", "etc/login.defs",
         "etc/security/pwquality.conf", "etc/passwdqc.conf", "etc/pam.d/common-password", "etc/pam.d/system-auth",
         "etc/pam.d/password-auth", "etc/ssh/sshd_config", "etc/apt/sources.list", "var/lib/dpkg/status")
FOLDERS = ("etc/sudoers.d", "etc/ssh/sshd_config.d", "etc/apt/sources.list.d")
MAX_FILE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Collected:
    asset: str
    ok: bool
    problem: str = ""  # why nothing was collected (the run is then partial)
    notes: tuple[str, ...] = ()  # files the account could not read (their checks are skipped)


def _client(source: SshSource) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(source.known_hosts))  # raises OSError when the file is missing
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return client


def _auth(source: SshSource) -> dict[str, object]:
    auth: dict[str, object] = {"allow_agent": False, "look_for_keys": False}
    if source.key_file is not None:
        auth["key_filename"] = str(source.key_file)
        if source.key_passphrase_env:
            auth["passphrase"] = os.environ.get(source.key_passphrase_env, "")
    if source.password_env:
        auth["password"] = os.environ.get(source.password_env, "")
    return auth


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\x00" not in name and len(name) <= 255


def _read(sftp: paramiko.SFTPClient, host_path: str) -> bytes | None:
    """The file's bytes, None when it does not exist; PermissionError when the account may not read it."""
    try:
        attributes = sftp.stat(host_path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if getattr(exc, "errno", None) == errno.EACCES:
            raise PermissionError(host_path) from None
        return None
    if attributes.st_mode is not None and not stat.S_ISREG(attributes.st_mode):
        return None
    if (attributes.st_size or 0) > MAX_FILE_BYTES:
        raise PermissionError(f"{host_path} is larger than {MAX_FILE_BYTES // 2**20} MiB")
    with sftp.open(host_path, "rb") as handle:
        return handle.read()


def _copy(sftp: paramiko.SFTPClient, relative: str, into: Path, notes: list[str]) -> bool:
    try:
        data = _read(sftp, "/" + relative)
    except PermissionError:
        notes.append(f"/{relative} not readable by the scan account; its checks are skipped")
        return False
    if data is None:
        return False
    if relative == "etc/shadow":
        data = redact_shadow(data.decode("utf-8", errors="replace")).encode()
    target = into / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return True


def _rpm(client: paramiko.SSHClient, sftp: paramiko.SFTPClient, into: Path, timeout: int) -> None:
    try:
        sftp.stat("/var/lib/rpm")
    except OSError:
        return
    _stdin, stdout, _stderr = client.exec_command(f"rpm -qa --queryformat '{RPM_QUERYFORMAT}'", timeout=timeout)
    output = stdout.read()
    if stdout.channel.recv_exit_status() == 0:
        target = into / RPM_EXPORT
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(output)


def collect(source: SshSource, name: str, address: str, asset: str, into: Path) -> Collected:
    """Collect one host's evidence into `into/<asset>/`. Any failure is one clear line."""
    where = f"ssh {source.username}@{name}:{source.port}"
    try:
        client = _client(source)
    except OSError as exc:
        return Collected(asset, False, f"{where}: cannot read known_hosts {source.known_hosts} "
                                       f"({exc.strerror or exc}); create it with the hosts' verified keys")
    try:
        try:
            sock = socket.create_connection((address, source.port), timeout=source.timeout_s)
        except OSError as exc:
            return Collected(asset, False, f"{where}: cannot connect to {address} ({exc.strerror or exc})")
        key_name = name if source.port == 22 else f"[{name}]:{source.port}"
        try:
            client.connect(hostname=name, port=source.port, username=source.username, sock=sock,
                           timeout=source.timeout_s, banner_timeout=source.timeout_s, auth_timeout=source.timeout_s,
                           **_auth(source))  # type: ignore[arg-type]
        except paramiko.BadHostKeyException:
            return Collected(asset, False, f"{where}: REFUSED: the host key does not match {source.known_hosts} "
                                           "(the host was rebuilt, or someone is intercepting); verify the new key "
                                           "before updating known_hosts")
        except paramiko.AuthenticationException:
            return Collected(asset, False, f"{where}: authentication failed for {source.username}; check the key "
                                           "or password environment variable")
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                return Collected(asset, False, f"{where}: REFUSED: no key for {key_name} in {source.known_hosts}; "
                                               "add the host's key after checking its fingerprint")
            return Collected(asset, False, f"{where}: SSH error: {exc}")
        except OSError as exc:
            return Collected(asset, False, f"{where}: connection failed ({exc.strerror or exc})")
        notes: list[str] = []
        folder = into / asset
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            sftp = client.open_sftp()
            for relative in FILES:
                _copy(sftp, relative, folder, notes)
            for relative in FOLDERS:
                try:
                    names = sorted(sftp.listdir("/" + relative))
                except OSError:
                    continue
                for entry in names:
                    if not _plain_name(entry):  # a name from the host: never a path that leaves the folder
                        notes.append(f"/{relative}: entry {shown(entry)!r} is not a plain file name; not copied")
                        continue
                    _copy(sftp, f"{relative}/{entry}", folder, notes)
            _rpm(client, sftp, folder, source.timeout_s)
        except (paramiko.SSHException, OSError) as exc:
            shutil.rmtree(folder, ignore_errors=True)  # half a host's files must not be judged
            return Collected(asset, False, f"{where}: collection broke off ({exc}); evidence from this host "
                                           "is not used tonight")
        return Collected(asset, True, notes=tuple(f"{where}: {n}" for n in notes))
    finally:
        client.close()
