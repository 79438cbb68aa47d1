"""Active Directory entries (raw LDAP attribute values) into the directory model.

Pure functions: no connection, no clock. Times use ldap3's own readers of AD's two time
formats (FILETIME integers and GeneralizedTime); SIDs its reader of the binary objectSid.
A value the directory should not hold (a flag word that is not a number) is an EvidenceError
naming the object and the attribute.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from ldap3.protocol.formatters.formatters import format_ad_timestamp, format_sid, format_time

from warpagent.evidence.formats import EvidenceError
from warpagent.model.directory import (
    AccountFlag,
    CertTemplate,
    Descriptor,
    DirectoryAccount,
    PasswordSettings,
    PrivilegedRole,
    Trust,
)
from warpagent.numbers import NotANumber, whole, whole_or_none

RawAttributes = Mapping[str, Sequence[bytes]]

ACCOUNT_ATTRIBUTES = ("sAMAccountName", "userAccountControl", "whenCreated", "pwdLastSet", "lastLogonTimestamp",
                      "servicePrincipalName", "primaryGroupID", "operatingSystem", "operatingSystemVersion",
                      "objectSid", "msDS-AllowedToDelegateTo", "msDS-AllowedToActOnBehalfOfOtherIdentity",
                      "sIDHistory", "adminCount", "msDS-SupportedEncryptionTypes")
DOMAIN_ATTRIBUTES = ("objectSid", "minPwdLength", "lockoutThreshold", "pwdProperties", "maxPwdAge",
                     "ms-DS-MachineAccountQuota", "msDS-Behavior-Version")
TRUST_ATTRIBUTES = ("trustPartner", "trustDirection", "trustType", "trustAttributes")
TEMPLATE_ATTRIBUTES = ("cn", "msPKI-Certificate-Name-Flag", "msPKI-Enrollment-Flag", "msPKI-RA-Signature",
                       "pKIExtendedKeyUsage", "msPKI-Certificate-Application-Policy", "nTSecurityDescriptor")
SERVICE_ATTRIBUTES = ("cn", "certificateTemplates", "cACertificate")
PSO_ATTRIBUTES = ("cn", "msDS-MinimumPasswordLength", "msDS-LockoutThreshold",
                  "msDS-PasswordReversibleEncryptionEnabled", "msDS-PasswordComplexityEnabled",
                  "msDS-MaximumPasswordAge", "msDS-PSOAppliesTo")
GROUP_ATTRIBUTES = ("objectSid", "sAMAccountName")
LAPS_ATTRIBUTES = ("ms-Mcs-AdmPwd", "msLAPS-Password")  # legacy LAPS and Windows LAPS

# the well-known relative ids of the domain's own privileged groups ([MS-DTYP] 2.4.2.4)
DOMAIN_RIDS = {512: PrivilegedRole.DOMAIN_ADMINS, 518: PrivilegedRole.SCHEMA_ADMINS,
               519: PrivilegedRole.ENTERPRISE_ADMINS, 520: PrivilegedRole.GROUP_POLICY_CREATOR_OWNERS,
               526: PrivilegedRole.KEY_ADMINS, 527: PrivilegedRole.ENTERPRISE_KEY_ADMINS}
BUILTIN_SIDS = {"S-1-5-32-544": PrivilegedRole.ADMINISTRATORS, "S-1-5-32-548": PrivilegedRole.ACCOUNT_OPERATORS,
                "S-1-5-32-549": PrivilegedRole.SERVER_OPERATORS, "S-1-5-32-550": PrivilegedRole.PRINT_OPERATORS,
                "S-1-5-32-551": PrivilegedRole.BACKUP_OPERATORS}
PROTECTED_USERS_RID = 525
DNS_ADMINS_NAME = "dnsadmins"  # no well-known RID: the DNS server role creates it by name
STORE_CLEARTEXT = 0x10  # pwdProperties DOMAIN_PASSWORD_STORE_CLEARTEXT
COMPLEXITY = 0x1  # pwdProperties DOMAIN_PASSWORD_COMPLEX
NEVER = -0x8000000000000000  # maxPwdAge's "passwords never expire"


def text(attributes: RawAttributes, name: str) -> str:
    values = attributes.get(name) or ()
    return values[0].decode("utf-8", "replace") if values else ""


def texts(attributes: RawAttributes, name: str) -> tuple[str, ...]:
    return tuple(v.decode("utf-8", "replace") for v in attributes.get(name) or ())


def integer(attributes: RawAttributes, name: str, dn: str, default: int = 0) -> int:
    raw = text(attributes, name)
    if not raw:
        return default
    try:
        return whole(raw, name, signed=True)
    except NotANumber as exc:
        raise EvidenceError(f"{dn}: {exc}") from None


def filetime(attributes: RawAttributes, name: str, dn: str) -> dt.datetime | None:
    """A FILETIME attribute (pwdLastSet, lastLogonTimestamp); None for 0 ("never") or "no end"."""
    value = integer(attributes, name, dn)
    if value <= 0 or value >= 0x7FFFFFFFFFFFFFFF:
        return None
    stamp = format_ad_timestamp(str(value).encode())
    if not isinstance(stamp, dt.datetime):
        raise EvidenceError(f"{dn}: {name} is '{value}', not a time")
    return stamp


def generalized_time(attributes: RawAttributes, name: str, dn: str) -> dt.datetime | None:
    raw = (attributes.get(name) or (b"",))[0]
    if not raw:
        return None
    stamp = format_time(raw)
    if not isinstance(stamp, dt.datetime):
        raise EvidenceError(f"{dn}: {name} is '{raw[:40]!r}', not a time")
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def interval(value: int) -> dt.timedelta | None:
    """maxPwdAge-style intervals: negative 100-nanosecond counts; None for "never"."""
    if value in (0, NEVER):
        return None
    try:
        return dt.timedelta(microseconds=abs(value) // 10)
    except OverflowError:  # beyond any date: as good as never
        return None


def account(dn: str, attributes: RawAttributes) -> DirectoryAccount:
    flags = AccountFlag(integer(attributes, "userAccountControl", dn) & 0xFFFFFFFF)
    return DirectoryAccount(
        name=text(attributes, "sAMAccountName") or dn, dn=dn, flags=flags,
        computer=bool(flags & (AccountFlag.WORKSTATION_TRUST_ACCOUNT | AccountFlag.SERVER_TRUST_ACCOUNT)),
        created=generalized_time(attributes, "whenCreated", dn),
        password_set=filetime(attributes, "pwdLastSet", dn),
        last_logon=filetime(attributes, "lastLogonTimestamp", dn),
        spns=texts(attributes, "servicePrincipalName"),
        primary_group=integer(attributes, "primaryGroupID", dn, default=513),
        operating_system=text(attributes, "operatingSystem"), os_version=text(attributes, "operatingSystemVersion"),
        sid=sid(attributes), delegate_to=texts(attributes, "msDS-AllowedToDelegateTo"),
        resource_delegation=bool(attributes.get("msDS-AllowedToActOnBehalfOfOtherIdentity")),
        sid_history=tuple(s for s in (_sid(v) for v in attributes.get("sIDHistory") or ()) if s),
        admin_count=integer(attributes, "adminCount", dn),
        encryption_types=integer(attributes, "msDS-SupportedEncryptionTypes", dn)
        if attributes.get("msDS-SupportedEncryptionTypes") else None)


def _sid(raw: bytes) -> str:
    if not raw:
        return ""
    try:
        return str(format_sid(raw))
    except (ValueError, IndexError, TypeError):
        return ""


def sid(attributes: RawAttributes) -> str:
    return _sid((attributes.get("objectSid") or (b"",))[0])


def template(dn: str, attributes: RawAttributes, published: bool, read_descriptor: Callable[[bytes, str], Descriptor]
             ) -> CertTemplate:
    raw = attributes.get("nTSecurityDescriptor") or ()
    return CertTemplate(
        name=text(attributes, "cn") or dn,
        name_flag=integer(attributes, "msPKI-Certificate-Name-Flag", dn) & 0xFFFFFFFF,
        enrollment_flag=integer(attributes, "msPKI-Enrollment-Flag", dn) & 0xFFFFFFFF,
        ra_signatures=integer(attributes, "msPKI-RA-Signature", dn),
        ekus=tuple(dict.fromkeys(texts(attributes, "pKIExtendedKeyUsage")
                                 + texts(attributes, "msPKI-Certificate-Application-Policy"))),
        descriptor=read_descriptor(raw[0], dn) if raw else None, published=published)


def trust(dn: str, attributes: RawAttributes) -> Trust:
    return Trust(name=text(attributes, "trustPartner") or dn, direction=integer(attributes, "trustDirection", dn),
                 trust_type=integer(attributes, "trustType", dn), attributes=integer(attributes, "trustAttributes", dn))


def role_of(group_sid: str, name: str, domain_sid: str) -> PrivilegedRole | None:
    """Which privileged group this is, by its SID (names change with the directory's language)."""
    if group_sid in BUILTIN_SIDS:
        return BUILTIN_SIDS[group_sid]
    number = rid(group_sid)
    if domain_sid and group_sid.rpartition("-")[0] == domain_sid and number in DOMAIN_RIDS:
        return DOMAIN_RIDS[number]
    if name.casefold() == DNS_ADMINS_NAME:
        return PrivilegedRole.DNS_ADMINS
    return None


def is_protected_users(group_sid: str, domain_sid: str) -> bool:
    return bool(domain_sid) and group_sid == f"{domain_sid}-{PROTECTED_USERS_RID}"


def domain_policy(dn: str, attributes: RawAttributes) -> PasswordSettings:
    properties = integer(attributes, "pwdProperties", dn)
    return PasswordSettings(
        name="domain policy", min_length=integer(attributes, "minPwdLength", dn),
        lockout_threshold=integer(attributes, "lockoutThreshold", dn),
        reversible=bool(properties & STORE_CLEARTEXT), complexity=bool(properties & COMPLEXITY),
        max_age=interval(integer(attributes, "maxPwdAge", dn)), where=f"the domain object {dn}")


def _boolean(attributes: RawAttributes, name: str) -> bool:
    return text(attributes, name).upper() == "TRUE"


def fine_grained_policy(dn: str, attributes: RawAttributes) -> PasswordSettings:
    return PasswordSettings(
        name=text(attributes, "cn") or dn, min_length=integer(attributes, "msDS-MinimumPasswordLength", dn),
        lockout_threshold=integer(attributes, "msDS-LockoutThreshold", dn),
        reversible=_boolean(attributes, "msDS-PasswordReversibleEncryptionEnabled"),
        complexity=_boolean(attributes, "msDS-PasswordComplexityEnabled"),
        max_age=interval(integer(attributes, "msDS-MaximumPasswordAge", dn)),
        where=f"the password settings object {dn}", fine_grained=True)


def machine_account_quota(dn: str, attributes: RawAttributes) -> int | None:
    return integer(attributes, "ms-DS-MachineAccountQuota", dn) if attributes.get("ms-DS-MachineAccountQuota") \
        else None


def account_members(member_dns: Iterable[str], accounts: Mapping[str, DirectoryAccount],
                    group_rid: int | None = None, rid_of: Mapping[str, int] | None = None) -> tuple[str, ...]:
    """The accounts among a group's transitive members (nested groups are members too, and
    dropped), and the accounts whose primary group is the group or a group nested in it: AD
    keeps primary-group membership in the account's primaryGroupID, not in the group's member
    list, so the in-chain search never returns them (an admin whose primary group is Domain
    Admins is an admin all the same). `group_rid` is the group's RID, `rid_of` each group's by
    DN (lower case)."""
    dns = list(member_dns)
    found = {accounts[d.casefold()].dn for d in dns if d.casefold() in accounts}
    if group_rid is not None:
        rids = {group_rid} | {rid_of[d.casefold()] for d in dns if rid_of and d.casefold() in rid_of}
        found |= {a.dn for a in accounts.values() if a.primary_group in rids}
    return tuple(sorted(found))


def rid(group_sid: str) -> int | None:
    """The relative id a SID ends in ("S-1-5-21-...-512" -> 512)."""
    return whole_or_none(group_sid.rpartition("-")[2], "RID", digits=10)


_GP_LINK = re.compile(r"\[LDAP://cn=(\{[0-9A-Fa-f-]{36}\}),[^;\]]*;(\d+)\]", re.IGNORECASE)


def gp_links(value: str) -> tuple[str, ...]:
    """The GPOs a gPLink value links ("[LDAP://cn={GUID},cn=policies,...;0]..."), those whose link
    is disabled (flag 1) left out; GUIDs in upper case as SYSVOL's folders name them."""
    return tuple(guid.upper() for guid, flags in _GP_LINK.findall(value) if not int(flags) & 1)
