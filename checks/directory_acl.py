"""Who can take the domain through its permissions: DCSync rights (WA325) and write access to
Tier-0 objects for broad principals (WA326), judged by trustee and right, not by difference
from a reference descriptor (Samba's AdminSDHolder inherits entries Windows' does not).

Rights and GUIDs from [MS-ADTS] 5.1.3.2 (access rights) and the control-access-right objects
DS-Replication-Get-Changes(-All) and DS-Replication-Get-Changes-In-Filtered-Set; the principals
a domain expects from [MS-DTYP] 2.4.2.4 (well-known SIDs).
"""

from __future__ import annotations

from collections.abc import Iterator

from checks import directory_rules as rules
from checks.base import CheckContext, Weakness, check
from warpagent.model.directory import Ace, DirectorySnapshot, Tier0Object
from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import Host, Severity

GENERIC_ALL, GENERIC_WRITE = 0x10000000, 0x40000000
WRITE_DAC, WRITE_OWNER = 0x40000, 0x80000
WRITE_PROPERTY, SELF_WRITE, CONTROL_ACCESS = 0x20, 0x8, 0x100
FULL_CONTROL = 0xF01FF
REPLICATION = {"1131f6aa-9c07-11d1-f79f-00c04fc2dcd2": "DS-Replication-Get-Changes",
               "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2": "DS-Replication-Get-Changes-All",
               "89e95b76-444d-4c62-991a-0facbeda640c": "DS-Replication-Get-Changes-In-Filtered-Set"}
MEMBER = "bf9679c0-0de6-11d0-a285-00aa003049e2"  # the member attribute
BROAD = {"S-1-1-0": "Everyone", "S-1-5-7": "Anonymous Logon", "S-1-5-11": "Authenticated Users",
         "S-1-5-32-545": "Users"}
BROAD_RIDS = {513: "Domain Users", 515: "Domain Computers"}
# those a domain gives these rights to by design: SYSTEM, Enterprise DCs, Administrators, and the
# domain's admins and controllers (Enterprise Read-only DCs get the changes, not the secrets)
EXPECTED = frozenset({"S-1-5-18", "S-1-5-9", "S-1-5-32-544", "S-1-3-0"})
EXPECTED_RIDS = frozenset({512, 516, 518, 519, 521, 498})


def _applies(ace: Ace) -> bool:
    return ace.allow and not ace.inherit_only


def _rid(sid: str, snapshot: DirectorySnapshot) -> int | None:
    head, _sep, tail = sid.rpartition("-")
    return int(tail) if snapshot.domain_sid and head == snapshot.domain_sid and tail.isdigit() else None


def _expected(sid: str, snapshot: DirectorySnapshot) -> bool:
    return sid in EXPECTED or _rid(sid, snapshot) in EXPECTED_RIDS


def broad_name(sid: str, snapshot: DirectorySnapshot) -> str:
    """The broad principal's name, or ""."""
    rid = _rid(sid, snapshot)
    return BROAD.get(sid) or (BROAD_RIDS.get(rid, "") if rid is not None else "")


def _named(sid: str, snapshot: DirectorySnapshot) -> str:
    name = snapshot.name_of.get(sid) or BROAD.get(sid) or ""
    return f"{rules.shown(name, 64)} ({sid})" if name else sid


def _replication_rights(ace: Ace) -> list[str]:
    """What in this entry lets its trustee replicate secrets (DCSync)."""
    rights = []
    if ace.mask & GENERIC_ALL or ace.mask & FULL_CONTROL == FULL_CONTROL:
        rights.append("full control")
    if ace.mask & CONTROL_ACCESS and (not ace.object_type or ace.object_type in REPLICATION):
        rights.append(REPLICATION.get(ace.object_type, "all extended rights"))
    if ace.mask & WRITE_DAC:
        rights.append("WriteDacl")
    if ace.mask & WRITE_OWNER:
        rights.append("WriteOwner")
    return rights


def write_rights(ace: Ace, kind: str) -> list[str]:
    """What in this entry lets its trustee change the object."""
    rights = []
    if ace.mask & GENERIC_ALL or ace.mask & FULL_CONTROL == FULL_CONTROL:
        rights.append("full control")
    if ace.mask & GENERIC_WRITE:
        rights.append("GenericWrite")
    for bit, word in ((WRITE_DAC, "WriteDacl"), (WRITE_OWNER, "WriteOwner")):
        if ace.mask & bit:
            rights.append(word)
    if ace.mask & WRITE_PROPERTY and (not ace.object_type or (kind == "group" and ace.object_type == MEMBER)):
        rights.append("write all properties" if not ace.object_type else "write member")
    if ace.mask & SELF_WRITE and kind == "group" and ace.object_type in ("", MEMBER):
        rights.append("add itself as member")
    if ace.mask & CONTROL_ACCESS and not ace.object_type:
        rights.append("all extended rights")
    return rights


def _domain(snapshot: DirectorySnapshot) -> Tier0Object | None:
    return next((o for o in snapshot.tier0 if o.kind == "domain"), None)


@check("WA325", "privileges", "directory-dcsync-rights", evidence=(EvidenceKind.DIRECTORY,))
def dcsync_rights(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A principal other than the domain's admins and controllers holding, on the domain root,
    a right that lets it replicate every password hash (DCSync): DS-Replication-Get-Changes(-All),
    all extended rights, full control, WriteDacl or WriteOwner (critical for a broad principal,
    high otherwise). Entra Connect's MSOL_ account holds them by design: said, at info.

    Board: accounts other than the domain's own administrators can copy every password in the
    directory.

    Why it matters: DCSync gives an attacker every password hash, krbtgt's included: the
    whole domain, and a way back in after a password reset.
    Fix: remove the replication rights (and WriteDacl/WriteOwner) from the domain root for every
    principal but the domain controllers and the admin groups."""
    snapshot = rules.directory_of(host)
    domain = _domain(snapshot) if snapshot else None
    if snapshot is None or domain is None:
        return
    held: dict[str, list[str]] = {}
    for ace in domain.descriptor.aces:
        if _applies(ace) and not _expected(ace.trustee, snapshot):
            held.setdefault(ace.trustee, []).extend(_replication_rights(ace))
    for trustee, rights in sorted(held.items()):
        if not rights:
            continue
        name = snapshot.name_of.get(trustee, "")
        sync_account = name.upper().startswith("MSOL_")
        broad = broad_name(trustee, snapshot)
        yield Weakness(
            subject=f"ad-acl:dcsync:{trustee}",
            severity=Severity.INFO if sync_account else Severity.CRITICAL if broad else Severity.HIGH,
            title=f"{_named(trustee, snapshot)} can replicate every password hash (DCSync)"
                  + (": Entra Connect's account, expected" if sync_account else ""),
            evidence=f"{domain.dn}: nTSecurityDescriptor grants {_named(trustee, snapshot)} "
                     f"{', '.join(dict.fromkeys(rights))}",
            remediation=("Keep Entra Connect's account out of every admin group and watch its sign-ins."
                         if sync_account else
                         f"Remove these rights for {_named(trustee, snapshot)} from the domain root's permissions."))


@check("WA326", "privileges", "directory-tier0-write-for-broad-principals", evidence=(EvidenceKind.DIRECTORY,))
def tier0_write(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """Everyone, Anonymous Logon, Authenticated Users, Users, Domain Users or Domain Computers
    able to change a Tier-0 object: the domain root, AdminSDHolder, the Domain Controllers OU,
    a privileged group (writing its members, or adding itself), a domain controller's computer
    object, a GPO linked to the domain or the DC OU (its groupPolicyContainer); or such a
    principal owning one of them (critical).

    Board: every member of staff could make themselves a domain administrator.

    Why it matters: write access to these objects for everyone is a one-step path to domain
    admin; ransomware crews find it with BloodHound in minutes.
    Fix: remove the entry (or the ownership) from the object's permissions; AdminSDHolder's
    copy spreads to every admin account within the hour."""
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    for item in snapshot.tier0:
        rights: dict[str, list[str]] = {}
        for ace in item.descriptor.aces:
            broad = broad_name(ace.trustee, snapshot)
            if broad and _applies(ace):
                rights.setdefault(ace.trustee, []).extend(write_rights(ace, item.kind))
        owner_broad = broad_name(item.descriptor.owner, snapshot)
        if owner_broad:
            rights.setdefault(item.descriptor.owner, []).append("owner")
        for trustee, granted in sorted(rights.items()):
            if not granted:
                continue
            yield Weakness(
                subject=f"ad-acl:write:{item.dn.casefold()}:{trustee}", severity=Severity.CRITICAL,
                title=f"{broad_name(trustee, snapshot)} can change {item.kind.replace('-', ' ')} "
                      f"'{rules.shown(item.dn.split(',')[0].partition('=')[2], 64)}'",
                evidence=f"{rules.shown(item.dn, 160)}: nTSecurityDescriptor grants {_named(trustee, snapshot)} "
                         f"{', '.join(dict.fromkeys(granted))}",
                remediation=f"Remove {broad_name(trustee, snapshot)}'s entry (and ownership) from the permissions of "
                            f"{rules.shown(item.dn, 160)}.")
