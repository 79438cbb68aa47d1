"""What a GPO grants, from its files in SYSVOL: the security template (GptTmpl.inf: Privilege
Rights, Group Membership, Registry Values) and Group Policy Preferences' local groups
(Groups.xml). Pure functions from bytes to facts; nothing here is a secret.

GptTmpl.inf is an INI file Windows writes in UTF-16 LE with a byte-order mark (UTF-8 is read
too). Principals are written `*S-1-5-...` (a SID) or by name; only SIDs are judged.
"""

from __future__ import annotations

import configparser
import xml.etree.ElementTree as ET

from warpagent.model.directory import GpoGrants

LOGON_RIGHTS = ("SeInteractiveLogonRight", "SeRemoteInteractiveLogonRight", "SeBatchLogonRight",
                "SeServiceLogonRight", "SeNetworkLogonRight")
ADMINISTRATORS = "S-1-5-32-544"
LM_COMPATIBILITY = "machine\\system\\currentcontrolset\\control\\lsa\\lmcompatibilitylevel"


def _text(data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def _sids(value: str) -> tuple[str, ...]:
    return tuple(p.strip().lstrip("*") for p in value.split(",") if p.strip().startswith("*S-"))


def security_template(data: bytes) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...], int | None]:
    """(logon right, SID) pairs, SIDs made members of local Administrators, LmCompatibilityLevel."""
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(_text(data))
    except configparser.Error:
        return (), (), None
    rights: list[tuple[str, str]] = []
    if parser.has_section("Privilege Rights"):
        for right, value in parser.items("Privilege Rights"):
            if right.strip() in LOGON_RIGHTS:
                rights += [(right.strip(), sid) for sid in _sids(value)]
    admins: list[str] = []
    if parser.has_section("Group Membership"):
        for key, value in parser.items("Group Membership"):
            if key.strip().lstrip("*").casefold() == f"{ADMINISTRATORS}__members".casefold():
                admins += _sids(value)
    level = None
    if parser.has_section("Registry Values"):
        for key, value in parser.items("Registry Values"):
            if key.strip().casefold() == LM_COMPATIBILITY:
                _kind, _sep, number = value.partition(",")
                level = int(number.strip()) if number.strip().isdigit() and len(number.strip()) < 3 else None
    return tuple(rights), tuple(admins), level


def local_admin_members(data: bytes) -> tuple[str, ...]:
    """SIDs Group Policy Preferences add to the local Administrators group (Groups.xml)."""
    try:
        root = ET.fromstring(data)  # noqa: S314 - expat: no external entities, no expansion bombs
    except ET.ParseError:
        return ()
    found: list[str] = []
    for group in root.iter("Group"):
        properties = group.find("Properties")
        if properties is None:
            continue
        is_admins = properties.get("groupSid") == ADMINISTRATORS or (
            (properties.get("groupName") or group.get("name") or "").casefold().startswith("administrators"))
        if is_admins:
            found += [m.get("sid", "") for m in properties.iter("Member")
                      if m.get("action", "ADD").upper() == "ADD" and (m.get("sid") or "").startswith("S-")]
    return tuple(found)


def grants(gpo: str, template: bytes | None, groups: bytes | None) -> GpoGrants:
    rights, admins, level = security_template(template) if template else ((), (), None)
    return GpoGrants(gpo=gpo, logon_rights=rights,
                     local_admins=tuple(dict.fromkeys(admins + (local_admin_members(groups) if groups else ()))),
                     lm_compatibility=level)
