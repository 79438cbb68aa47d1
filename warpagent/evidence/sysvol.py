"""Group Policy Preferences in SYSVOL, read over SMB (signed SMB 2/3, smbprotocol) with the
directory's read-only account, at the domain controller's in-scope address only.

What is looked for: a non-empty `cpassword` attribute in any Preferences file of any GPO
(Machine or User; Groups, Services, ScheduledTasks, DataSources, Printers, Drives, Registry),
disabled GPOs included. The value is an AES key Microsoft published (MS14-025): anyone who can
read SYSVOL can decrypt it. warpagent never decrypts it, never keeps it: a finding names the GPO
and the file.
"""

from __future__ import annotations

import contextlib
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

import smbclient
from smbprotocol.exceptions import SMBException
from spnego.exceptions import SpnegoError

from warpagent.config import DirectorySettings
from warpagent.evidence.parsers import gpo as gpo_files
from warpagent.model.directory import GpoGrants, GppPassword

PREFERENCES = ("Groups/Groups.xml", "Services/Services.xml", "ScheduledTasks/ScheduledTasks.xml",
               "DataSources/DataSources.xml", "Printers/Printers.xml", "Drives/Drives.xml",
               "Registry/Registry.xml")
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_GPOS = 5_000
SMB_PORT = 445


class SysvolError(Exception):
    """SYSVOL could not be read: the message names the DC and what to do."""


@dataclass(frozen=True)
class SysvolRead:
    passwords: tuple[GppPassword, ...]
    gpos: int  # how many GPO folders were looked through
    grants: tuple[GpoGrants, ...] = ()


def _cpasswords(data: bytes, gpo: str, relative: str) -> Iterator[GppPassword]:
    try:
        # expat: no external entities; Python's expat refuses entity-expansion bombs
        root = ET.fromstring(data)  # noqa: S314
    except ET.ParseError:
        return
    # the password sits on an item's <Properties>: the item (<User name="...">) is what to name
    for item in root.iter():
        for properties in item:
            if properties.get("cpassword"):
                yield GppPassword(gpo=gpo, file=relative, element=item.tag[:40],
                                  name=(item.get("name") or properties.get("userName") or "")[:80])


def _read_file(path: str) -> bytes | None:
    """A file's bytes, or None when it is not there (the usual case) or too large to be a policy."""
    try:
        with smbclient.open_file(path, mode="rb") as handle:
            data: bytes = handle.read(MAX_FILE_BYTES + 1)
    except (SMBException, OSError):
        return None
    return data if len(data) <= MAX_FILE_BYTES else None


def _gpo_folders(root: str) -> Iterator[tuple[str, str]]:
    """(GPO folder name, its path) under every domain's Policies folder in the share."""
    count = 0
    for domain in smbclient.scandir(root):
        if not domain.is_dir():
            continue
        policies = rf"{root}\{domain.name}\Policies"
        try:
            entries = list(smbclient.scandir(policies))
        except SMBException:
            continue
        for entry in entries:
            if entry.is_dir() and entry.name.startswith("{"):
                count += 1
                if count > MAX_GPOS:
                    return
                yield entry.name, rf"{policies}\{entry.name}"


def _session(settings: DirectorySettings, address: str, password: str) -> None:
    """Log on to the DC's SMB server. NTLM: the scanner holds no Kerberos ticket, and the DC is
    reached by address. A connection that drops is tried once more; a refused logon is not (no
    second guess against the account's lockout)."""
    for attempt in (1, 2):
        try:
            smbclient.register_session(address, username=settings.bind_dn, password=password, port=SMB_PORT,
                                       require_signing=True, connection_timeout=settings.timeout_s,
                                       auth_protocol="ntlm")
            return
        except (ConnectionError, TimeoutError):
            if attempt == 2:
                raise
            time.sleep(2)


def read(settings: DirectorySettings, address: str, password: str) -> SysvolRead:
    """Every GPP password attribute in the DC's SYSVOL (SysvolError when SYSVOL cannot be read)."""
    try:
        _session(settings, address, password)
    except (SMBException, SpnegoError, OSError, ValueError) as exc:
        raise SysvolError(f"directory {settings.url}: SYSVOL over SMB (port {SMB_PORT}) at {address} could not be "
                          f"read ({exc.__class__.__name__}: {str(exc)[:120]}); open port {SMB_PORT} from this "
                          "machine to the DC, or Group Policy passwords are not judged") from None
    found: list[GppPassword] = []
    grants: list[GpoGrants] = []
    gpos = 0
    root = rf"\\{address}\SYSVOL"
    try:
        for gpo, path in _gpo_folders(root):
            gpos += 1
            groups = None
            for scope in ("Machine", "User"):
                for relative in PREFERENCES:
                    data = _read_file(rf"{path}\{scope}\Preferences\{relative.replace('/', chr(92))}")
                    if data is not None:
                        found += _cpasswords(data, gpo, f"Policies/{gpo}/{scope}/Preferences/{relative}")
                        groups = data if (scope, relative) == ("Machine", PREFERENCES[0]) else groups
            template = _read_file(rf"{path}\Machine\Microsoft\Windows NT\SecEdit\GptTmpl.inf")
            granted = gpo_files.grants(gpo, template, groups)
            if granted.logon_rights or granted.local_admins or granted.lm_compatibility is not None:
                grants.append(granted)
    except (SMBException, OSError) as exc:
        raise SysvolError(f"directory {settings.url}: SYSVOL at {address} could not be listed "
                          f"({exc.__class__.__name__}); give {settings.bind_dn} read access to SYSVOL") from None
    finally:
        with contextlib.suppress(SMBException, SpnegoError, OSError):  # the share is read: a failed logoff is no loss
            smbclient.delete_session(address, port=SMB_PORT)
    return SysvolRead(passwords=tuple(found), gpos=gpos, grants=tuple(grants))
