"""Active Directory paths ransomware crews use first, read over LDAP by the read-only account
(PingCastle's rules, Microsoft's and BloodHound's documentation as reference; no code of theirs).

Delegation to domain controllers, SID history, trusts without SID filtering, leftover
adminCount, the Guest and built-in Administrator accounts, weak Kerberos encryption, computer
passwords that stopped rotating, anonymous access, the functional level and the Recycle Bin.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from checks import directory_rules as rules
from checks.base import CheckContext, Weakness, check
from warpagent.model.directory import STALE_AFTER, AccountFlag, DirectorySnapshot
from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import Host, Severity

DIRECTORY = (EvidenceKind.DIRECTORY,)
GUEST_RID, ADMINISTRATOR_RID, KRBTGT_RID = 501, 500, 502
AES = 0x18  # msDS-SupportedEncryptionTypes AES128 | AES256
WEAK_ETYPES = 0x7  # DES-CBC-CRC | DES-CBC-MD5 | RC4-HMAC
ROTATION_LAG = dt.timedelta(days=45)  # computers change their password every 30 days by default
BUILTIN_ADMIN_PASSWORD = dt.timedelta(days=365)
ANONYMOUS, EVERYONE = "S-1-5-7", "S-1-1-0"
FUNCTIONAL_2016 = 7
LEVEL_NAMES = {0: "2000", 1: "2003 interim", 2: "2003", 3: "2008", 4: "2008 R2", 5: "2012", 6: "2012 R2",
               7: "2016"}


def _dc_names(snapshot: DirectorySnapshot) -> set[str]:
    return {a.name.removesuffix("$").casefold() for a in snapshot.accounts if a.domain_controller}


def _spn_host(spn: str) -> str:
    """"ldap/dc1.council.local:389/council.local" -> "dc1"."""
    host = spn.partition("/")[2].partition("/")[0].partition(":")[0]
    return host.partition(".")[0].casefold()


@check("WA321", "privileges", "directory-delegation-to-domain-controllers", evidence=DIRECTORY)
def delegation_paths(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """Kerberos delegation that reaches the domain: constrained delegation
    (msDS-AllowedToDelegateTo) naming a domain controller or krbtgt, resource-based delegation
    (msDS-AllowedToActOnBehalfOfOtherIdentity) set on a domain controller (high); protocol
    transition (TRUSTED_TO_AUTH_FOR_DELEGATION, 0x1000000) elsewhere (medium); other
    constrained delegation (low).

    Board: some accounts can impersonate anyone to the council's domain controllers.

    Why it matters: whoever controls an account allowed to delegate to a domain controller can
    act as a domain administrator there; attackers look for exactly these paths.
    Fix: remove the delegation (or point it at the one service that needs it), and never allow
    delegation to domain controllers."""
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    dcs = _dc_names(snapshot)
    for account in snapshot.accounts:
        if not account.enabled:
            continue
        if account.domain_controller:
            if account.resource_delegation:
                yield Weakness(subject=f"{rules.subject(account)}:rbcd", severity=Severity.HIGH,
                               title=f"Domain controller '{rules.name(account)}' accepts resource-based delegation",
                               evidence=f"{rules.name(account)}: msDS-AllowedToActOnBehalfOfOtherIdentity is set",
                               remediation=f"Clear msDS-AllowedToActOnBehalfOfOtherIdentity on "
                                           f"'{rules.name(account)}'.")
            continue
        if not account.delegate_to:
            continue
        to_dc = [spn for spn in account.delegate_to
                 if _spn_host(spn) in dcs or spn.casefold().startswith("krbtgt/")]
        transition = bool(account.flags & AccountFlag.TRUSTED_TO_AUTH_FOR_DELEGATION)
        severity = Severity.HIGH if to_dc else Severity.MEDIUM if transition else Severity.LOW
        yield Weakness(
            subject=f"{rules.subject(account)}:delegation", severity=severity,
            title=f"'{rules.name(account)}' may delegate to "
                  + ("a domain controller" if to_dc else "other services") + (" as anyone" if transition else ""),
            evidence=f"{rules.name(account)}: msDS-AllowedToDelegateTo "
                     f"{', '.join(rules.shown(s, 80) for s in account.delegate_to[:5])}"
                     + ("; TRUSTED_TO_AUTH_FOR_DELEGATION (0x1000000) set" if transition else ""),
            remediation=f"Remove the delegation from '{rules.name(account)}', or limit it to the one service it "
                        "needs, never a domain controller.")


@check("WA322", "privileges", "directory-sid-history", evidence=DIRECTORY)
def sid_history(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An enabled account with sIDHistory: a SID of this same domain (high: a planted
    privilege, never a migration) or of another domain (medium: a migration left behind).

    Board: some accounts carry hidden extra identities that can grant them others' rights.

    Why it matters: a SID in sIDHistory gives the account every right of that SID; attackers
    add a Domain Admins SID to an ordinary account to keep their access.
    Fix: clear sIDHistory once a migration is over (Get-ADUser -Properties sIDHistory)."""
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    for account in snapshot.accounts:
        if not account.enabled or not account.sid_history:
            continue
        own = [s for s in account.sid_history if snapshot.domain_sid and s.startswith(f"{snapshot.domain_sid}-")]
        yield Weakness(subject=f"{rules.subject(account)}:sid-history",
                       severity=Severity.HIGH if own else Severity.MEDIUM,
                       title=f"'{rules.name(account)}' has SID history" + (" from this same domain" if own else ""),
                       evidence=f"{rules.name(account)}: sIDHistory {', '.join(account.sid_history[:5])}",
                       remediation=f"Clear sIDHistory on '{rules.name(account)}'.")


@check("WA323", "privileges", "directory-trust-without-sid-filtering", evidence=DIRECTORY)
def trusts_unfiltered(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A domain this one trusts with SID filtering off: an external trust without quarantine
    (trustAttributes lacks 0x4) or a forest trust with SID history enabled (0x40).

    Board: an outside domain the council trusts could make itself an administrator here.

    Why it matters: without SID filtering, an attacker who controls the other domain can present
    this domain's admin SIDs and be believed.
    Fix: netdom trust /quarantine:yes (external) or /enablesidhistory:no (forest)."""
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    for trust in snapshot.trusts:
        if trust.sid_filtering_off:
            name = rules.shown(trust.name, 80)
            yield Weakness(subject=f"ad-trust:{trust.name.casefold()}", severity=Severity.HIGH,
                           title=f"The trust with '{name}' does not filter SIDs",
                           evidence=f"trustedDomain {name}: trustDirection {trust.direction}, trustType "
                                    f"{trust.trust_type}, trustAttributes {trust.attributes:#x}",
                           remediation=f"Turn SID filtering on for the trust with '{name}'.")


@check("WA324", "privileges", "directory-leftover-admincount", evidence=DIRECTORY)
def leftover_admin_count(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """Enabled accounts with adminCount=1 that are in no privileged group any more (counted):
    AdminSDHolder's protection stays behind when an admin leaves the groups.

    Board: some former administrator accounts still carry administrator protections.

    Why it matters: they keep a frozen, non-inheriting permission set that hides them from
    normal delegation, and they are often forgotten former admins.
    Fix: clear adminCount and re-enable inheritance on each (or delete the account)."""
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    admins = snapshot.privileged()
    leftover = [a for a in snapshot.accounts if a.enabled and a.admin_count == 1 and not a.computer
                and a.dn.casefold() not in admins and a.rid != KRBTGT_RID]
    if leftover:
        yield Weakness(subject="ad-accounts:leftover-admincount", severity=Severity.LOW,
                       title=f"{len(leftover)} accounts keep adminCount=1 outside every privileged group",
                       evidence=f"adminCount 1, in no privileged group: {rules.listed(leftover)}",
                       remediation="Clear adminCount and re-enable permission inheritance on each account.")


@check("WA415", "passwords", "directory-guest-and-builtin-administrator", evidence=DIRECTORY)
def builtin_accounts(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """The Guest account (RID 501) enabled (high); the built-in Administrator (RID 500) used in
    the last 90 days or with a password over a year old (medium).

    Board: the domain's built-in Guest or Administrator account is open or in everyday use.

    Why it matters: Guest needs no password; the built-in Administrator cannot be locked out,
    so attackers guess its password without limit.
    Fix: disable Guest; keep the built-in Administrator for emergencies, with a long password
    changed yearly, and give admins named accounts."""
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    for account in snapshot.accounts:
        if account.rid == GUEST_RID and account.enabled and not account.computer:
            yield Weakness(subject=f"{rules.subject(account)}:guest-enabled", severity=Severity.HIGH,
                           title="The domain's Guest account is enabled",
                           evidence=f"{rules.name(account)} (RID 501): userAccountControl {int(account.flags)} "
                                    "lacks ACCOUNTDISABLE (0x2)",
                           remediation=f"Disable-ADAccount {rules.name(account)}")
        if account.rid == ADMINISTRATOR_RID and account.enabled and not account.computer:
            age = account.password_age(ctx.now)
            used = account.last_logon is not None and ctx.now - account.last_logon < STALE_AFTER
            if used or (age is not None and age > BUILTIN_ADMIN_PASSWORD):
                yield Weakness(
                    subject=f"{rules.subject(account)}:builtin-admin", severity=Severity.MEDIUM,
                    title="The built-in Administrator account is " + ("in use" if used else "on an old password"),
                    evidence=f"{rules.name(account)} (RID 500): lastLogonTimestamp {rules.when(account.last_logon)}, "
                             f"pwdLastSet {rules.when(account.password_set)}",
                    remediation="Give each administrator a named account; change the built-in Administrator's "
                                "password and keep it for emergencies only.")


@check("WA417", "passwords", "directory-gpp-password", evidence=(EvidenceKind.SYSVOL,))
def gpp_passwords(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A Group Policy Preferences file in SYSVOL with a cpassword (a password set through Group
    Policy: a local administrator, a service, a scheduled task, a mapped drive), in any GPO,
    disabled ones included (critical). Read over SMB; the value is never decrypted or kept.

    Board: a password is stored where every member of staff can read and decrypt it.

    Why it matters: Microsoft published the key (MS14-025): every domain user can read SYSVOL
    and decrypt these passwords in seconds, often a local administrator's on every PC.
    Fix: delete the preference item (or the file), then change the password it held everywhere
    it is used; use LAPS for local administrator passwords."""
    snapshot = rules.directory_of(host)
    if snapshot is None or not snapshot.gpp_passwords:
        return
    for item in snapshot.gpp_passwords:
        yield Weakness(subject=f"ad-gpp:{item.file.casefold()}:{item.element.casefold()}:{item.name.casefold()}",
                       severity=Severity.CRITICAL,
                       title=f"A Group Policy Preferences password in GPO {rules.shown(item.gpo, 40)}",
                       evidence=f"SYSVOL {rules.shown(item.file, 160)}: <{rules.shown(item.element, 40)}"
                                + (f" name='{rules.shown(item.name, 60)}'" if item.name else "")
                                + "> carries a cpassword (not read further)",
                       remediation=f"Remove the preference item from GPO {rules.shown(item.gpo, 40)}, then change "
                                   "the password it held wherever it is used.", evidence_kind=EvidenceKind.SYSVOL)


@check("WA416", "passwords", "directory-weak-kerberos-and-stale-computer-passwords", evidence=DIRECTORY)
def kerberos_hygiene(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """Enabled accounts with a servicePrincipalName whose Kerberos keys are DES or RC4 only
    (msDS-SupportedEncryptionTypes without AES, or USE_DES_KEY_ONLY) (medium); enabled
    computers in use whose password has not changed for 45 days more than their last logon
    (counted, low).

    Board: some service accounts use old encryption that can be cracked offline.

    Why it matters: RC4 and DES tickets are cracked offline far faster than AES ones
    (Kerberoasting); a computer that stopped rotating its password keeps a stale secret.
    Fix: set msDS-SupportedEncryptionTypes to AES (24) and reset the password; rejoin computers
    that stopped rotating."""
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    for account in snapshot.accounts:
        if not account.enabled or not account.spns or account.domain_controller:
            continue
        types = account.encryption_types
        des_only = bool(account.flags & AccountFlag.USE_DES_KEY_ONLY)
        if des_only or (types is not None and types & WEAK_ETYPES and not types & AES):
            yield Weakness(subject=f"{rules.subject(account)}:weak-etypes", severity=Severity.MEDIUM,
                           title=f"'{rules.name(account)}' has a service name and only DES or RC4 Kerberos keys",
                           evidence=f"{rules.name(account)}: msDS-SupportedEncryptionTypes "
                                    f"{types if types is not None else 'not set'}"
                                    + ("; USE_DES_KEY_ONLY (0x200000) set" if des_only else ""),
                           remediation=f"Set-ADUser {rules.name(account)} -KerberosEncryptionType AES128,AES256, then "
                                       "reset its password.")
    stuck = [c for c in snapshot.computers if c.enabled and not c.domain_controller and c.last_logon
             and c.password_set and dt.timedelta(0) <= ctx.now - c.last_logon < STALE_AFTER
             and c.last_logon - c.password_set > ROTATION_LAG]
    if stuck:
        yield Weakness(subject="ad-computers:password-not-rotating", severity=Severity.LOW,
                       title=f"{len(stuck)} computers in use have stopped changing their password",
                       evidence=f"pwdLastSet over {ROTATION_LAG.days} days before lastLogonTimestamp: "
                                f"{rules.listed(stuck)}",
                       remediation="Find out why (DisablePasswordChange, a restored image) and rejoin the computers.")


@check("WA541", "configs", "directory-anonymous-access-and-functional-level", evidence=DIRECTORY)
def anonymous_access(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """Anonymous access to the directory: Anonymous Logon or Everyone in Pre-Windows 2000
    Compatible Access (matched by objectSid), or dSHeuristics' seventh character 2 (anonymous
    LDAP operations) (high); the domain functional level below Windows Server 2016 (medium).

    Board: anyone on the network can read the council's directory without a password, or the
    domain runs at an outdated level.

    Why it matters: anonymous reads give attackers every account name to spray passwords at;
    an old functional level keeps old, weaker protocols and misses newer protections.
    Fix: empty Anonymous Logon and Everyone out of Pre-Windows 2000 Compatible Access, reset
    dSHeuristics; raise the functional level once every DC runs 2016 or later."""
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    open_to = [s for s in snapshot.pre2000_members if s in (ANONYMOUS, EVERYONE)]
    if open_to:
        yield Weakness(subject="ad-domain:pre2000-anonymous", severity=Severity.HIGH,
                       title="Anonymous users can read the directory (Pre-Windows 2000 Compatible Access)",
                       evidence=f"Pre-Windows 2000 Compatible Access (S-1-5-32-554) has member(s) "
                                f"{', '.join(open_to)} ({'Anonymous Logon' if ANONYMOUS in open_to else 'Everyone'})",
                       remediation="Remove Anonymous Logon and Everyone from Pre-Windows 2000 Compatible Access.")
    if len(snapshot.ds_heuristics) >= 7 and snapshot.ds_heuristics[6] == "2":
        yield Weakness(subject="ad-domain:dsheuristics-anonymous", severity=Severity.HIGH,
                       title="Anonymous LDAP operations are allowed (dSHeuristics)",
                       evidence=f"CN=Directory Service: dSHeuristics '{rules.shown(snapshot.ds_heuristics, 40)}', "
                                "seventh character 2",
                       remediation="Set the seventh character of dSHeuristics back to 0.")
    level = snapshot.functional_level
    if level is not None and 0 <= level < FUNCTIONAL_2016:
        yield Weakness(subject="ad-domain:functional-level", severity=Severity.MEDIUM,
                       title=f"The domain runs at the Windows Server {LEVEL_NAMES.get(level, str(level))} "
                             "functional level",
                       evidence=f"the domain object's msDS-Behavior-Version {level} (below 7, Windows Server 2016)",
                       remediation="Upgrade the remaining older domain controllers, then raise the domain and forest "
                                   "functional levels to 2016.")


@check("WA542", "configs", "directory-ldap-signing-not-required", evidence=DIRECTORY)
def ldap_signing(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """The domain controller accepts unsigned simple binds on plain LDAP (port 389): probed
    with one bind of a made-up name, nothing of the council's sent (high).

    Board: the domain controller accepts unprotected directory sign-ins that attackers can relay.

    Why it matters: without LDAP signing, credentials relayed from any PC (NTLM relay) can
    change the directory: add an admin, grant delegation.
    Fix: set "Domain controller: LDAP server signing requirements" to "Require signing"
    (ldap server require strong auth = yes on Samba)."""
    snapshot = rules.directory_of(host)
    if snapshot is None or snapshot.ldap_signing_required is not False:
        return
    yield Weakness(subject="ad-domain:ldap-signing", severity=Severity.HIGH,
                   title="The domain controller does not require LDAP signing",
                   evidence="a simple bind with a made-up name on port 389 was checked against the directory "
                            "(result 49, invalidCredentials) rather than refused (result 8, strongerAuthRequired)",
                   remediation="Require LDAP signing on every domain controller (Group Policy: Domain controller: "
                               "LDAP server signing requirements = Require signing).")


@check("WA705", "backups", "directory-recycle-bin-off", evidence=DIRECTORY)
def recycle_bin(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """The AD Recycle Bin is off: a deleted user, group or OU cannot be restored with its
    attributes and memberships, only rebuilt or restored from a DC backup (medium).

    Board: deleted directory accounts and groups cannot simply be brought back.

    Why it matters: ransomware crews and mistakes delete accounts and OUs; without the Recycle
    Bin, getting them back means an authoritative restore from a domain controller's backup.
    Fix: Enable-ADOptionalFeature 'Recycle Bin Feature' (forest level 2008 R2 or later)."""
    snapshot = rules.directory_of(host)
    if snapshot is None or snapshot.recycle_bin is not False:
        return
    yield Weakness(subject="ad-domain:recycle-bin", severity=Severity.MEDIUM, title="The AD Recycle Bin is off",
                   evidence="CN=Partitions: msDS-EnabledFeature does not name the Recycle Bin Feature",
                   remediation="Enable-ADOptionalFeature 'Recycle Bin Feature' -Scope ForestOrConfigurationSet "
                               "-Target <forest>")
