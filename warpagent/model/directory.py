"""What warpagent reads from a council's Active Directory, as the checks see it.

Read-only facts only: account names, flags, dates, group membership and the password
settings. Nothing here is ever shared: a WARP bundle carries only the counts the checks'
findings add up to.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from dataclasses import dataclass

STALE_AFTER = dt.timedelta(days=90)  # no logon for 90 days (PingCastle's and Microsoft's usual bar)


class AccountFlag(enum.IntFlag):
    """The userAccountControl bits the checks read ([MS-ADTS] 2.2.16)."""

    ACCOUNTDISABLE = 0x2
    PASSWD_NOTREQD = 0x20
    ENCRYPTED_TEXT_PWD_ALLOWED = 0x80
    WORKSTATION_TRUST_ACCOUNT = 0x1000
    SERVER_TRUST_ACCOUNT = 0x2000
    DONT_EXPIRE_PASSWORD = 0x10000
    TRUSTED_FOR_DELEGATION = 0x80000
    NOT_DELEGATED = 0x100000
    USE_DES_KEY_ONLY = 0x200000
    DONT_REQ_PREAUTH = 0x400000
    TRUSTED_TO_AUTH_FOR_DELEGATION = 0x1000000  # protocol transition: may act as anyone to its services
    PARTIAL_SECRETS_ACCOUNT = 0x4000000  # a read-only domain controller


DC_PRIMARY_GROUPS = frozenset({516, 521})  # Domain Controllers, Read-only Domain Controllers


@dataclass(frozen=True)
class DirectoryAccount:
    """A user or computer object."""

    name: str  # sAMAccountName
    dn: str
    flags: AccountFlag
    computer: bool
    created: dt.datetime | None = None  # whenCreated
    password_set: dt.datetime | None = None  # pwdLastSet; None when never set (0)
    last_logon: dt.datetime | None = None  # lastLogonTimestamp (replicated, up to 14 days late)
    spns: tuple[str, ...] = ()
    primary_group: int = 513
    operating_system: str = ""
    os_version: str = ""  # "10.0 (19045)"
    sid: str = ""  # objectSid
    delegate_to: tuple[str, ...] = ()  # msDS-AllowedToDelegateTo: the SPNs it may delegate to
    resource_delegation: bool = False  # msDS-AllowedToActOnBehalfOfOtherIdentity is set on it
    sid_history: tuple[str, ...] = ()  # sIDHistory
    admin_count: int = 0  # adminCount: 1 once AdminSDHolder protected it (it stays after it leaves)
    encryption_types: int | None = None  # msDS-SupportedEncryptionTypes; None when not set

    @property
    def rid(self) -> int | None:
        number = self.sid.rpartition("-")[2]
        return int(number) if self.sid and number.isdigit() and len(number) <= 10 else None

    @property
    def enabled(self) -> bool:
        return not self.flags & AccountFlag.ACCOUNTDISABLE

    @property
    def domain_controller(self) -> bool:
        return bool(self.flags & (AccountFlag.SERVER_TRUST_ACCOUNT | AccountFlag.PARTIAL_SECRETS_ACCOUNT)) \
            or self.primary_group in DC_PRIMARY_GROUPS

    def stale(self, now: dt.datetime) -> bool:
        """Enabled, older than 90 days and not logged on for 90 days (or never)."""
        if not self.enabled or self.created is None or now - self.created < STALE_AFTER:
            return False
        return self.last_logon is None or now - self.last_logon >= STALE_AFTER

    def password_age(self, now: dt.datetime) -> dt.timedelta | None:
        return None if self.password_set is None else now - self.password_set


class PrivilegedRole(enum.StrEnum):
    """The groups that hold the keys to the domain, by their well-known RID."""

    DOMAIN_ADMINS = "Domain Admins"
    ENTERPRISE_ADMINS = "Enterprise Admins"
    SCHEMA_ADMINS = "Schema Admins"
    ADMINISTRATORS = "Administrators"
    ACCOUNT_OPERATORS = "Account Operators"
    BACKUP_OPERATORS = "Backup Operators"
    SERVER_OPERATORS = "Server Operators"
    PRINT_OPERATORS = "Print Operators"
    DNS_ADMINS = "DnsAdmins"
    GROUP_POLICY_CREATOR_OWNERS = "Group Policy Creator Owners"
    KEY_ADMINS = "Key Admins"
    ENTERPRISE_KEY_ADMINS = "Enterprise Key Admins"


# Enterprise and Schema Admins are for rare forest-wide changes: members are added for the
# change and removed after it (Microsoft's "Securing privileged access" guidance).
NORMALLY_EMPTY = frozenset({PrivilegedRole.ENTERPRISE_ADMINS, PrivilegedRole.SCHEMA_ADMINS})


@dataclass(frozen=True)
class PrivilegedGroup:
    role: PrivilegedRole
    name: str  # the group's own name (localised directories rename them)
    members: tuple[str, ...]  # the DNs of every account in it, nested groups resolved


@dataclass(frozen=True)
class PasswordSettings:
    """The domain's password policy, or one fine-grained password settings object."""

    name: str  # "domain policy", or the PSO's name
    min_length: int
    lockout_threshold: int  # 0: never locks out
    reversible: bool  # passwords stored with reversible encryption
    complexity: bool
    max_age: dt.timedelta | None  # None: never expire
    where: str  # the attribute names, for the technician: "minPwdLength on DC=example,DC=gov,DC=uk"
    fine_grained: bool = False


@dataclass(frozen=True)
class GppPassword:
    """A Group Policy Preferences item carrying a cpassword (never the value)."""

    gpo: str  # the GPO's folder name: "{31B2F340-016D-11D2-945F-00C04FB984F9}"
    file: str  # "Policies/{GUID}/Machine/Preferences/Groups/Groups.xml"
    element: str  # "User", "NTService", ...
    name: str  # the item's name or userName attribute


@dataclass(frozen=True)
class GpoGrants:
    """What a GPO's files grant: logon rights, local Administrators members, the LM level."""

    gpo: str  # the GPO's folder name, "{GUID}"
    logon_rights: tuple[tuple[str, str], ...] = ()  # (SeInteractiveLogonRight, SID)
    local_admins: tuple[str, ...] = ()  # SIDs made members of the computers' local Administrators
    lm_compatibility: int | None = None  # LmCompatibilityLevel it sets (below 3: LM/NTLMv1 accepted)


@dataclass(frozen=True)
class Ace:
    """One access-control entry of a DACL."""

    allow: bool
    trustee: str  # SID
    mask: int  # access mask
    object_type: str = ""  # the extended right, property or class GUID it is limited to ("" for all)
    inherit_only: bool = False  # applies to children only, not to this object
    inherited: bool = False


@dataclass(frozen=True)
class Descriptor:
    owner: str  # SID
    aces: tuple[Ace, ...]


@dataclass(frozen=True)
class Tier0Object:
    """An object whose control is control of the domain, with its security descriptor."""

    dn: str
    kind: str  # "domain", "adminsdholder", "domain-controllers-ou", "group", "domain-controller"
    descriptor: Descriptor


@dataclass(frozen=True)
class CertTemplate:
    """An AD CS certificate template (pKICertificateTemplate) and who may enrol or change it."""

    name: str  # cn
    name_flag: int  # msPKI-Certificate-Name-Flag (0x1: the enrollee supplies the subject)
    enrollment_flag: int  # msPKI-Enrollment-Flag (0x2: manager approval; 0x80000: no security extension)
    ra_signatures: int  # msPKI-RA-Signature: authorised signatures required
    ekus: tuple[str, ...]  # pKIExtendedKeyUsage (and msPKI-Certificate-Application-Policy)
    descriptor: Descriptor | None = None
    published: bool = False  # offered by an enrollment service whose CA is in NTAuthCertificates


@dataclass(frozen=True)
class Trust:
    """A trustedDomain object: a domain this one trusts, or that trusts it ([MS-ADTS] 6.1.6.7)."""

    name: str  # trustPartner
    direction: int  # trustDirection: 1 inbound, 2 outbound, 3 both
    trust_type: int  # trustType: 1 downlevel (NT4), 2 uplevel (AD), 3 MIT Kerberos
    attributes: int  # trustAttributes

    @property
    def sid_filtering_off(self) -> bool:
        """This domain trusts the other (outbound) and lets its SIDs through unfiltered: an
        external trust without QUARANTINED_DOMAIN (0x4), or a forest trust with
        TREAT_AS_EXTERNAL (0x40, SID history enabled)."""
        if not self.direction & 0x2 or self.trust_type not in (1, 2):
            return False
        if self.attributes & 0x8:  # FOREST_TRANSITIVE
            return bool(self.attributes & 0x40)
        if self.attributes & 0x20:  # WITHIN_FOREST: a parent or child domain, filtered by design
            return False
        return not self.attributes & 0x4


@dataclass(frozen=True)
class DirectorySnapshot:
    """One night's read of the directory."""

    base_dn: str
    accounts: tuple[DirectoryAccount, ...]
    groups: tuple[PrivilegedGroup, ...]
    policies: tuple[PasswordSettings, ...]  # the domain policy first, then the PSOs
    protected_users: frozenset[str]  # DNs of the members of Protected Users, nesting resolved
    machine_account_quota: int | None  # ms-DS-MachineAccountQuota; None when not read
    laps_in_schema: tuple[str, ...]  # the LAPS password attributes the schema has
    notes: tuple[str, ...] = ()  # what the read could not see, for the run summary
    domain_sid: str = ""
    functional_level: int | None = None  # the domain's msDS-Behavior-Version (7: Windows Server 2016)
    recycle_bin: bool | None = None  # the AD Recycle Bin optional feature is on; None: not read
    ds_heuristics: str = ""  # dSHeuristics of CN=Directory Service
    trusts: tuple[Trust, ...] = ()
    pre2000_members: tuple[str, ...] = ()  # the SIDs of Pre-Windows 2000 Compatible Access's members
    tier0: tuple[Tier0Object, ...] = ()  # read with the SD-flags control; () when not readable
    names: tuple[tuple[str, str], ...] = ()  # (SID, name) of the accounts and groups read
    gpp_passwords: tuple[GppPassword, ...] | None = None  # None: SYSVOL not read
    gpo_grants: tuple[GpoGrants, ...] = ()  # from SYSVOL, for the GPOs that grant anything judged
    dc_gpos: tuple[str, ...] = ()  # GPO GUIDs linked (and not disabled) at the domain root or the DC OU
    cert_templates: tuple[CertTemplate, ...] = ()
    ldap_signing_required: bool | None = None  # the DC refuses unsigned simple binds on 389; None: not probed

    def account(self, dn: str) -> DirectoryAccount | None:
        return self.by_dn.get(dn.casefold())

    @functools.cached_property
    def by_dn(self) -> dict[str, DirectoryAccount]:
        """Accounts by casefolded DN (AD compares DNs without case)."""
        return {a.dn.casefold(): a for a in self.accounts}

    @functools.cached_property
    def name_of(self) -> dict[str, str]:
        """Account and group names by SID."""
        return dict(self.names)

    @property
    def users(self) -> tuple[DirectoryAccount, ...]:
        return tuple(a for a in self.accounts if not a.computer)

    @property
    def computers(self) -> tuple[DirectoryAccount, ...]:
        return tuple(a for a in self.accounts if a.computer)

    def privileged(self) -> dict[str, tuple[PrivilegedRole, ...]]:
        """Each privileged account's DN (casefolded) and the roles it holds."""
        held: dict[str, list[PrivilegedRole]] = {}
        for group in self.groups:
            for member in group.members:
                held.setdefault(member.casefold(), []).append(group.role)
        return {dn: tuple(dict.fromkeys(roles)) for dn, roles in held.items()}
