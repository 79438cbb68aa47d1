"""passwords in Active Directory (WA410-WA416): the domain's password policies, account flags
that weaken or skip passwords, LAPS, and accounts nobody uses. From the directory read over
LDAP; counts where a list could run to thousands (the names stay in the local evidence)."""

from __future__ import annotations

from collections.abc import Iterator

from checks import directory_rules as rules
from checks.base import CheckContext, Weakness, check
from warpagent.model.directory import AccountFlag, PasswordSettings
from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import Host, Severity

DIRECTORY = (EvidenceKind.DIRECTORY,)


def _policy_problems(policy: PasswordSettings) -> Iterator[tuple[str, Severity, str, str]]:
    """(aspect, severity, title, the attribute and value) for each way a policy falls short."""
    length_attr = "msDS-MinimumPasswordLength" if policy.fine_grained else "minPwdLength"
    lockout_attr = "msDS-LockoutThreshold" if policy.fine_grained else "lockoutThreshold"
    reversible_attr = ("msDS-PasswordReversibleEncryptionEnabled TRUE" if policy.fine_grained
                       else "pwdProperties includes DOMAIN_PASSWORD_STORE_CLEARTEXT (0x10)")
    if policy.min_length < rules.MIN_LENGTH:
        yield ("min-length", Severity.HIGH, f"allows passwords of {policy.min_length} characters",
               f"{length_attr} {policy.min_length}")
    if policy.lockout_threshold == 0:
        yield ("lockout", Severity.MEDIUM, "never locks an account out after wrong guesses", f"{lockout_attr} 0")
    elif policy.lockout_threshold > rules.MAX_LOCKOUT:
        yield ("lockout", Severity.MEDIUM, f"allows {policy.lockout_threshold} wrong guesses before lockout",
               f"{lockout_attr} {policy.lockout_threshold}")
    if policy.reversible:
        yield ("reversible", Severity.HIGH, "stores passwords with reversible encryption", reversible_attr)


@check("WA410", "passwords", "directory-password-policy-weak", evidence=DIRECTORY)
def password_policy_weak(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """The domain's password policy, or a fine-grained password settings object, falls short of
    the NCSC's guidance and Cyber Essentials: a minimum length under 8 (high), no lockout or more
    than 10 wrong guesses allowed (medium), or passwords stored with reversible encryption (high).

    Board: the rules for staff passwords are weaker than the national baseline.

    Why it matters: short passwords and unlimited guesses are what password spraying needs;
    reversibly encrypted passwords are as good as plain text to anyone who copies the
    directory.
    Fix: in the Default Domain Policy (or the PSO), set the minimum length to 12 or more (8 at
    the very least, with MFA), an account lockout threshold of 10 or fewer, and turn off "Store
    passwords using reversible encryption"; then reset the passwords it stored that way.
    """
    snapshot = rules.directory_of(host)
    for policy in snapshot.policies if snapshot else ():
        for aspect, severity, title, value in _policy_problems(policy):
            what = f"Fine-grained password policy '{rules.shown(policy.name, 64)}'" if policy.fine_grained \
                else "The domain password policy"
            yield Weakness(subject=f"ad-policy:{policy.name.casefold()}:{aspect}", severity=severity,
                           title=f"{what} {title}", evidence=f"{value} on {rules.shown(policy.where, 160)}",
                           remediation="Set a minimum length of 12 (8 at least, with MFA), lock out after 10 "
                                       "or fewer wrong guesses, and never store reversible passwords.")


FLAG_RULES = (
    (AccountFlag.PASSWD_NOTREQD, "may have an empty password (password not required)",
     "Clear the flag (Set-ADUser NAME -PasswordNotRequired $false) and set a strong password."),
    (AccountFlag.DONT_REQ_PREAUTH, "does not need Kerberos pre-authentication (AS-REP roastable)",
     "Tick 'Do not require Kerberos preauthentication' off (Set-ADAccountControl NAME "
     "-DoesNotRequirePreAuth $false) and change the password."),
    (AccountFlag.ENCRYPTED_TEXT_PWD_ALLOWED, "stores its password with reversible encryption",
     "Clear 'Store password using reversible encryption' (Set-ADUser NAME "
     "-AllowReversiblePasswordEncryption $false) and change the password."),
)


@check("WA411", "passwords", "directory-account-password-flags", evidence=DIRECTORY)
def account_password_flags(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An enabled account whose userAccountControl weakens its password: PASSWD_NOTREQD (0x20, it
    may have none), DONT_REQ_PREAUTH (0x400000: anyone can ask for data encrypted with its
    password and crack it offline, "AS-REP roasting") or ENCRYPTED_TEXT_PWD_ALLOWED (0x80,
    reversible encryption). High.

    Board: some staff or service accounts can be logged into without a real password, or have
    passwords anyone can crack offline.

    Why it matters: each of these is a ready-made way in that needs no phishing and trips no
    lockout.
    Fix: clear the flag on the account and change its password.
    """
    snapshot = rules.directory_of(host)
    for account in snapshot.accounts if snapshot else ():
        if not account.enabled or account.domain_controller:
            continue
        for flag, words, fix in FLAG_RULES:
            if account.flags & flag:
                yield Weakness(subject=f"{rules.subject(account)}:{str(flag.name).casefold()}", severity=Severity.HIGH,
                               title=f"Account '{rules.name(account)}' {words}",
                               evidence=f"{rules.name(account)}: {rules.has_flag(account, flag)}",
                               remediation=fix.replace("NAME", rules.name(account)))


@check("WA412", "passwords", "directory-passwords-never-expire", evidence=DIRECTORY)
def passwords_never_expire(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """Enabled user accounts whose passwords never expire (DONT_EXPIRE_PASSWORD), as one count.
    Low: the NCSC does not ask for regular expiry, but a password that is never changed is
    never changed after a leak either, and these are mostly service accounts.

    Why it matters: service accounts with old, shared passwords are what attackers find in
    scripts and spreadsheets.
    Fix: move service accounts to group managed service accounts (gMSA); for people, rely on
    long passwords, MFA and a change after any suspected leak, and clear the flag.
    """
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    found = [a for a in snapshot.users if a.enabled and a.flags & AccountFlag.DONT_EXPIRE_PASSWORD
             and not rules.built_in(a)]
    if found:
        yield Weakness(subject="ad-accounts:password-never-expires", severity=Severity.LOW,
                       title=f"{len(found)} enabled accounts have passwords that never expire",
                       evidence=f"userAccountControl includes {rules.FLAG_WORDS[AccountFlag.DONT_EXPIRE_PASSWORD]}: "
                                f"{rules.listed(found)}",
                       remediation="Move service accounts to gMSAs and clear 'Password never expires' elsewhere.")


@check("WA413", "passwords", "directory-no-laps", evidence=DIRECTORY)
def no_laps(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """Neither Windows LAPS (msLAPS-Password) nor legacy LAPS (ms-Mcs-AdmPwd) is in the
    directory's schema, so local administrator passwords are not managed. Medium.

    Board: the local administrator password on council PCs is probably the same everywhere.

    Why it matters: one local administrator password shared by every PC lets an attacker on one
    PC log on to all of them.
    Fix: deploy Windows LAPS (built into Windows since April 2023: `Update-LapsADSchema`, then a
    Group Policy to enable it) so each computer's local administrator password is random and
    rotated.
    """
    snapshot = rules.directory_of(host)
    if snapshot is not None and not snapshot.laps_in_schema:
        yield Weakness(subject="ad-domain:laps", severity=Severity.MEDIUM,
                       title="LAPS is not deployed: local administrator passwords are not managed",
                       evidence="the schema holds neither msLAPS-Password nor ms-Mcs-AdmPwd",
                       remediation="Deploy Windows LAPS (Update-LapsADSchema and a Group Policy to enable it).")


@check("WA414", "passwords", "directory-stale-accounts", evidence=DIRECTORY)
def stale_accounts(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """Enabled user accounts older than 90 days that have not logged on for 90 days (or ever),
    as one count with the names in the local evidence. Low; medium when they are over 10% of
    enabled users.

    Board: accounts of people who have left, or were never used, are still open.

    Why it matters: nobody notices when an unused account starts being used, and leavers'
    passwords are the ones least likely to have changed.
    Fix: disable them (a leavers process tied to HR), and delete after a set period.
    """
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    enabled = [a for a in snapshot.users if a.enabled and not rules.built_in(a)]
    found = [a for a in enabled if a.stale(ctx.now)]
    if found:
        severity = Severity.MEDIUM if len(found) > rules.ADMIN_SHARE * len(enabled) else Severity.LOW
        yield Weakness(subject="ad-accounts:stale", severity=severity,
                       title=f"{len(found)} enabled accounts have not logged on for 90 days",
                       evidence=f"lastLogonTimestamp older than 90 days or never, whenCreated older than 90 days: "
                                f"{rules.listed(found)}",
                       remediation="Disable accounts unused for 90 days and tie account removal to the leavers "
                                   "process.")
