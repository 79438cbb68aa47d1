"""privileges in Active Directory (WA310-WA319): who holds the keys to the domain, and how
exposed those accounts are. From the directory read over LDAP; findings sit on the estate's
"Active Directory" record and name the attribute and value behind them."""

from __future__ import annotations

from collections.abc import Iterator

from checks import directory_rules as rules
from checks.base import CheckContext, Weakness, check
from warpagent.model.directory import NORMALLY_EMPTY, AccountFlag
from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import Host, Severity

DIRECTORY = (EvidenceKind.DIRECTORY,)


@check("WA310", "privileges", "directory-too-many-admins", evidence=DIRECTORY)
def too_many_admins(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """More accounts hold a privileged group (Domain, Enterprise or Schema Admins, Administrators,
    the Operators groups, DnsAdmins, Group Policy Creator Owners, Key Admins; nesting resolved)
    than a domain needs: over 10% of active users, or over 50, once there are over 100 users.
    Medium.

    Board: too many staff accounts can take over the whole Windows domain.

    Why it matters: every privileged account is a way to the whole domain; attackers look for the
    one with the weakest password or the busiest owner.
    Fix: review each group's members (Active Directory Users and Computers, or
    `Get-ADGroupMember -Recursive`), remove everyone who does not do domain administration, and
    give day-to-day admin work delegated rights on OUs instead.
    """
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    active = [a for a in snapshot.users if a.enabled and not a.stale(ctx.now)]
    admins = [a for a, _ in rules.privileged_users(snapshot) if a.enabled]
    if len(active) <= rules.ADMIN_RULE_FROM_USERS:
        return
    if len(admins) > rules.ADMIN_MAX or len(admins) > rules.ADMIN_SHARE * len(active):
        yield Weakness(subject="ad-privileged-groups", severity=Severity.MEDIUM,
                       title=f"{len(admins)} enabled accounts hold a privileged directory group "
                             f"({100 * len(admins) / len(active):.1f}% of {len(active)} active users)",
                       evidence=f"privileged groups' transitive members: {rules.listed(admins)}",
                       remediation="Cut the privileged groups down to the few people who administer the domain; "
                                   "delegate other admin tasks on OUs.")


@check("WA311", "privileges", "directory-forest-admins-not-empty", evidence=DIRECTORY)
def forest_admins_not_empty(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """Enterprise Admins or Schema Admins has members. These groups are for rare forest-wide
    changes and should be empty the rest of the time. Medium.

    Why it matters: their members control every domain in the forest, so a standing member is a
    standing target.
    Fix: remove the members (`Remove-ADGroupMember "Schema Admins" NAME`) and add one only for
    the change that needs it, taking it out again afterwards.
    """
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    for group in snapshot.groups:
        if group.role in NORMALLY_EMPTY and group.members:
            members = [a for dn in group.members if (a := snapshot.account(dn)) is not None]
            yield Weakness(subject=f"ad-group:{group.role.value.casefold()}", severity=Severity.MEDIUM,
                           title=f"{group.role.value} has {len(group.members)} member(s); it should be empty",
                           evidence=f"member (transitive) of {rules.shown(group.name, 64)}: {rules.listed(members)}",
                           remediation=f"Empty {group.role.value}; add a member only for the forest change that "
                                       "needs it.")


@check("WA312", "privileges", "directory-admin-disabled-or-stale", evidence=DIRECTORY)
def admin_disabled_or_stale(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A privileged account that is disabled (low: it keeps its rights if re-enabled) or stale
    (enabled, no logon for 90 days: medium, an unwatched way in).

    Why it matters: a privileged account nobody uses is one nobody notices being used.
    Fix: remove the account from the privileged groups, then disable or delete it.
    """
    snapshot = rules.directory_of(host)
    for account, held in rules.privileged_users(snapshot) if snapshot else ():
        if not account.enabled:
            severity, state = Severity.LOW, f"disabled ({rules.uac(account)})"
        elif account.stale(ctx.now):
            severity, state = Severity.MEDIUM, f"stale (lastLogonTimestamp {rules.when(account.last_logon)})"
        else:
            continue
        yield Weakness(subject=rules.subject(account), severity=severity,
                       title=f"Privileged account '{rules.name(account)}' is {state.split(' (')[0]}",
                       evidence=f"{rules.name(account)} in {rules.roles(held)}: {state}",
                       remediation=f"Remove '{rules.name(account)}' from {rules.roles(held)}, then disable or "
                                   "delete it.")


@check("WA313", "privileges", "directory-admin-password-never-expires", evidence=DIRECTORY)
def admin_password_never_expires(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An enabled privileged account whose password never expires (DONT_EXPIRE_PASSWORD). Medium.

    Why it matters: the password of a privileged account set years ago has had years to leak
    or be cracked, and nothing makes anyone change it.
    Fix: clear "Password never expires" on the account and change its password; use a
    password manager or a privileged access tool for admin passwords.
    """
    snapshot = rules.directory_of(host)
    for account, held in rules.privileged_users(snapshot) if snapshot else ():
        if account.enabled and account.flags & AccountFlag.DONT_EXPIRE_PASSWORD:
            yield Weakness(subject=rules.subject(account), severity=Severity.MEDIUM,
                           title=f"Privileged account '{rules.name(account)}' has a password that never expires",
                           evidence=f"{rules.name(account)} in {rules.roles(held)}: "
                                    f"{rules.has_flag(account, AccountFlag.DONT_EXPIRE_PASSWORD)}",
                           remediation=f"Clear 'Password never expires' on '{rules.name(account)}' "
                                       "(Set-ADUser -PasswordNeverExpires $false) and change its password.")


@check("WA314", "privileges", "directory-admin-kerberoastable", evidence=DIRECTORY)
def admin_kerberoastable(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An enabled privileged user account with a servicePrincipalName: any domain user can ask
    for a service ticket encrypted with its password and crack it offline (Kerberoasting). High.

    Board: a domain administrator's password can be cracked by anyone with a staff login.

    Why it matters: Kerberoasting needs no special rights and leaves little trace; a privileged
    service account cracked this way is the whole domain.
    Fix: take service accounts out of privileged groups (use a group managed service account,
    gMSA), or remove the SPN; if it must stay, give it a random password of 25+ characters.
    """
    snapshot = rules.directory_of(host)
    for account, held in rules.privileged_users(snapshot) if snapshot else ():
        if account.enabled and account.spns and not rules.built_in(account):
            yield Weakness(subject=rules.subject(account), severity=Severity.HIGH,
                           title=f"Privileged account '{rules.name(account)}' can be Kerberoasted (it has an SPN)",
                           evidence=f"{rules.name(account)} in {rules.roles(held)}: servicePrincipalName "
                                    f"{rules.shown(account.spns[0], 80)}"
                                    + (f" and {len(account.spns) - 1} more" if len(account.spns) > 1 else ""),
                           remediation=f"Move the service on '{rules.name(account)}' to a gMSA, or remove the SPN "
                                       "and take the account out of privileged groups.")


@check("WA315", "privileges", "directory-admin-password-old", evidence=DIRECTORY)
def admin_password_old(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An enabled privileged account whose password was last set more than a year ago
    (pwdLastSet). Medium.

    Why it matters: old admin passwords are the ones in old breaches and old backups.
    Fix: change the account's password now, and review privileged passwords at least yearly.
    """
    snapshot = rules.directory_of(host)
    for account, held in rules.privileged_users(snapshot) if snapshot else ():
        age = account.password_age(ctx.now)
        if account.enabled and age is not None and age > rules.PASSWORD_MAX_AGE:
            yield Weakness(subject=rules.subject(account), severity=Severity.MEDIUM,
                           title=f"Privileged account '{rules.name(account)}' has a password "
                                 f"{rules.age_days(age)} old",
                           evidence=f"{rules.name(account)} in {rules.roles(held)}: pwdLastSet "
                                    f"{rules.when(account.password_set)}",
                           remediation=f"Change the password of '{rules.name(account)}'.")


@check("WA316", "privileges", "directory-admin-not-protected", evidence=DIRECTORY)
def admin_not_protected(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An enabled privileged user account outside Protected Users, or not marked "sensitive
    and cannot be delegated" (NOT_DELEGATED). Medium.

    Why it matters: without them, the account's credentials are cached on the machines it logs
    on to and can be delegated to any service trusted for delegation, where an attacker
    harvests them.
    Fix: add the account to Protected Users (test first: it stops NTLM, DES and RC4 for it) and
    tick "Account is sensitive and cannot be delegated".
    """
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    for account, held in rules.privileged_users(snapshot):
        if not account.enabled or rules.built_in(account):
            continue
        missing = []
        if account.dn.casefold() not in snapshot.protected_users:
            missing.append("not a member of Protected Users")
        if not account.flags & AccountFlag.NOT_DELEGATED:
            missing.append(f"{rules.uac(account)} lacks {rules.FLAG_WORDS[AccountFlag.NOT_DELEGATED]}")
        if missing:
            yield Weakness(subject=rules.subject(account), severity=Severity.MEDIUM,
                           title=f"Privileged account '{rules.name(account)}' is not protected from credential theft",
                           evidence=f"{rules.name(account)} in {rules.roles(held)}: " + "; ".join(missing),
                           remediation=f"Add '{rules.name(account)}' to Protected Users and mark it sensitive "
                                       "and not delegable.")


@check("WA317", "privileges", "directory-krbtgt-password-old", evidence=DIRECTORY)
def krbtgt_password_old(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """The krbtgt account's password (the key of every Kerberos ticket) was last changed more
    than 180 days ago (medium), or more than a year ago (high).

    Why it matters: anyone who once copied the domain's secrets can forge tickets for any
    account ("golden tickets") until krbtgt's password changes, twice.
    Fix: reset the krbtgt password twice, at least 10 hours apart (Microsoft's
    New-KrbtgtKeys.ps1 does it safely), and every 180 days after.
    """
    snapshot = rules.directory_of(host)
    for account in snapshot.users if snapshot else ():
        age = account.password_age(ctx.now)
        if account.name.casefold() != "krbtgt" or age is None or age <= rules.KRBTGT_MEDIUM:
            continue
        yield Weakness(subject="ad-account:krbtgt",
                       severity=Severity.HIGH if age > rules.KRBTGT_HIGH else Severity.MEDIUM,
                       title=f"The krbtgt password is {rules.age_days(age)} old",
                       evidence=f"krbtgt: pwdLastSet {rules.when(account.password_set)}",
                       remediation="Reset the krbtgt password twice, 10+ hours apart, then every 180 days.")


@check("WA318", "privileges", "directory-unconstrained-delegation", evidence=DIRECTORY)
def unconstrained_delegation(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An enabled account other than a domain controller trusted for unconstrained delegation
    (TRUSTED_FOR_DELEGATION, 0x80000). High.

    Why it matters: every user who authenticates to it leaves a reusable ticket in its memory;
    an attacker on that machine can make a domain controller authenticate to it and become
    the domain.
    Fix: switch it to constrained (or resource-based constrained) delegation for the services
    it needs, or clear "Trust this computer for delegation to any service".
    """
    snapshot = rules.directory_of(host)
    for account in snapshot.accounts if snapshot else ():
        if (account.enabled and account.flags & AccountFlag.TRUSTED_FOR_DELEGATION
                and not account.domain_controller and not rules.built_in(account)):
            kind = "Computer" if account.computer else "Account"
            yield Weakness(subject=rules.subject(account), severity=Severity.HIGH,
                           title=f"{kind} '{rules.name(account)}' is trusted for unconstrained delegation",
                           evidence=f"{rules.name(account)}: "
                                    f"{rules.has_flag(account, AccountFlag.TRUSTED_FOR_DELEGATION)}",
                           remediation=f"Use constrained delegation on '{rules.name(account)}' or clear 'Trust "
                                       "this computer for delegation to any service'.")


@check("WA319", "privileges", "directory-machine-account-quota", evidence=DIRECTORY)
def machine_account_quota(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """ms-DS-MachineAccountQuota above 0: every domain user may join up to that many computers
    to the domain (the default is 10). Medium.

    Why it matters: a computer account an attacker creates is a foothold for relay and
    resource-based delegation attacks, made with nothing but a staff login.
    Fix: set ms-DS-MachineAccountQuota to 0 on the domain object and delegate joining
    computers to the team that builds them.
    """
    snapshot = rules.directory_of(host)
    if snapshot is not None and snapshot.machine_account_quota:
        yield Weakness(subject="ad-domain:machine-account-quota", severity=Severity.MEDIUM,
                       title=f"Any domain user may add {snapshot.machine_account_quota} computers to the domain",
                       evidence=f"ms-DS-MachineAccountQuota {snapshot.machine_account_quota} on "
                                f"{rules.shown(snapshot.base_dn, 120)}",
                       remediation="Set ms-DS-MachineAccountQuota to 0 and delegate computer joins to the build team.")
