"""passwords (WA4xx): weak and poorly-managed passwords.

From host evidence (etc/shadow hash schemes, the PAM password stack with pwquality and
login.defs, sshd_config) and, opt-in, from default-credential probes of the estate's services.
NCSC's password guidance is the yardstick: a minimum length of 8 with a deny list of common
passwords, and no forced expiry.
"""

from __future__ import annotations

from collections.abc import Iterator

from checks.base import CheckContext, Weakness, check
from warpagent.model.evidence import EvidenceKind, PasswordState, Setting, SshdConfig
from warpagent.model.findings import Host, Severity

NCSC_MIN_LENGTH = 8
SSHD_DEFAULTS = {"permitrootlogin": "prohibit-password", "passwordauthentication": "yes",
                 "kbdinteractiveauthentication": "yes", "permitemptypasswords": "no"}

# Hash schemes (as the account parser names them) that a GPU cracks at scale.
WEAK_SCHEMES = {"des": "DES crypt", "bsdicrypt": "extended DES crypt", "md5crypt": "MD5 crypt",
                "sunmd5": "Sun MD5 crypt"}


@check("WA401", "passwords", "empty-password", evidence=(EvidenceKind.SHADOW,))
def empty_password(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An account has an empty password field in /etc/shadow: it may log in with no password
    wherever PAM allows `nullok` (Debian's default stack does).

    Board: an account has no password at all.

    Why it matters: anyone who can reach a login prompt can become this user.
    Fix: lock the account (`passwd -l NAME`) or set a strong password; remove `nullok` from PAM.
    """
    for account in host.evidence.accounts:
        if account.password is PasswordState.EMPTY:
            yield Weakness(subject=f"shadow:{account.name}:empty",
                           severity=Severity.CRITICAL if account.login_shell else Severity.HIGH,
                           title=f"Account '{account.name}' has no password",
                           evidence=f"{account.shadow_where}: the password field is empty",
                           remediation=f"passwd -l {account.name} (or set a strong password), and remove "
                                       "'nullok' from the PAM auth stack.")


@check("WA402", "passwords", "weak-password-hash", evidence=(EvidenceKind.SHADOW,))
def weak_password_hash(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An account's password is stored with a weak hash scheme (DES or MD5 crypt), which a
    stolen shadow file gives up to a cracking rig in minutes. Only the scheme is read: warpagent
    never stores or logs a hash.

    Why it matters: old hashes are cracked fast, and the passwords are often reused elsewhere.
    Fix: set `ENCRYPT_METHOD YESCRYPT` (or SHA512) in login.defs and the PAM stack, then make the
    user change the password (`passwd -e NAME`).
    """
    for account in host.evidence.accounts:
        if account.password is PasswordState.HASHED and account.scheme in WEAK_SCHEMES:
            yield Weakness(subject=f"shadow:{account.name}:scheme", severity=Severity.HIGH,
                           title=f"Account '{account.name}' has its password hashed with "
                                 f"{WEAK_SCHEMES[account.scheme]}",
                           evidence=f"{account.shadow_where}: hash scheme {account.scheme} (the hash itself is "
                                    "not read)",
                           remediation="Use yescrypt or SHA-512 (ENCRYPT_METHOD in /etc/login.defs and the pam_unix "
                                       f"line), then force a new password: passwd -e {account.name}")


def _minimum(setting: Setting) -> int:
    return int(setting.value)


@check("WA403", "passwords", "password-policy-weak", evidence=(EvidenceKind.POLICY,))
def password_policy_weak(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """The PAM password stack accepts passwords shorter than 8 characters and checks no deny
    list of common passwords (NCSC: at least 8, and block the most common ones).

    Board: the system accepts short passwords and the commonest ones.

    Why it matters: short passwords and the commonest choices fall first to guessing and spraying.
    Fix: add pam_pwquality to the password stack (`apt install libpam-pwquality`) with `minlen = 12`
    and `dictcheck = 1` in /etc/security/pwquality.conf.
    """
    policy = host.evidence.policy
    if policy is None or policy.min_length is None:
        return
    minimum = _minimum(policy.min_length)
    if minimum < NCSC_MIN_LENGTH and policy.deny_list is None:
        yield Weakness(subject="policy:password-length", severity=Severity.MEDIUM,
                       title=f"Passwords as short as {minimum} characters are accepted, with no deny list",
                       evidence=f"{policy.min_length.where}: minimum length {minimum}; no pam_pwquality, "
                                "pam_cracklib or pam_passwdqc in the password stack",
                       remediation="apt install libpam-pwquality (it joins the PAM stack), then set minlen = 12 "
                                   "and dictcheck = 1 in /etc/security/pwquality.conf.")


@check("WA404", "passwords", "password-forced-expiry", evidence=(EvidenceKind.POLICY,))
def password_forced_expiry(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """Passwords are forced to expire (PASS_MAX_DAYS in login.defs). NCSC advises against
    forced expiry: people respond with predictable, weaker passwords. Reported as info.

    Why it matters: regular forced changes make passwords weaker, not stronger.
    Fix: set `PASS_MAX_DAYS 99999` and change passwords only when a compromise is suspected.
    """
    policy = host.evidence.policy
    if policy is None or policy.max_days is None:
        return
    yield Weakness(subject="policy:password-expiry", severity=Severity.INFO,
                   title=f"Passwords are forced to expire every {policy.max_days.value} days",
                   evidence=f"{policy.max_days.where}: PASS_MAX_DAYS {policy.max_days.value}",
                   remediation="Set PASS_MAX_DAYS 99999 in /etc/login.defs (NCSC: no forced expiry; change "
                               "passwords on suspicion of compromise).")


def _sshd(sshd: SshdConfig, keyword: str) -> tuple[str, str]:
    """(effective value, where it was set or 'sshd default')."""
    setting = sshd.get(keyword)
    if setting is None and keyword == "kbdinteractiveauthentication":
        setting = sshd.get("challengeresponseauthentication")  # its older name
    if setting is None:
        return SSHD_DEFAULTS[keyword], "sshd default"
    return setting.value.lower(), str(setting.where)


@check("WA405", "passwords", "ssh-root-password-login", evidence=(EvidenceKind.SSHD,))
def ssh_root_password_login(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """sshd_config lets root log in with a password (`PermitRootLogin yes` with password or
    keyboard-interactive authentication on), or lets any account log in with an empty password.

    Board: the most powerful account can log in remotely with just a password.

    Why it matters: root is the one account name every attacker knows; password logins to it
    are brute-forced from the internet within minutes of exposure.
    Fix: `PermitRootLogin prohibit-password` (or `no`), `PasswordAuthentication no`, and
    `PermitEmptyPasswords no`, then `systemctl reload ssh`.
    """
    sshd = host.evidence.sshd
    if sshd is None:
        return
    root, root_where = _sshd(sshd, "permitrootlogin")
    plain_auth, password_where = _sshd(sshd, "passwordauthentication")
    interactive, interactive_where = _sshd(sshd, "kbdinteractiveauthentication")
    if root == "yes" and "yes" in (plain_auth, interactive):
        how = ("PasswordAuthentication", password_where) if plain_auth == "yes" else \
            ("KbdInteractiveAuthentication", interactive_where)
        yield Weakness(subject="sshd:root-password", severity=Severity.HIGH,
                       title="SSH lets root log in with a password",
                       evidence=f"{root_where}: PermitRootLogin yes; {how[1]}: {how[0]} yes",
                       remediation="Set PermitRootLogin prohibit-password and PasswordAuthentication no in "
                                   "/etc/ssh/sshd_config, then systemctl reload ssh.")
    empty, empty_where = _sshd(sshd, "permitemptypasswords")
    if empty == "yes":
        yield Weakness(subject="sshd:empty-passwords", severity=Severity.CRITICAL,
                       title="SSH accepts logins with empty passwords",
                       evidence=f"{empty_where}: PermitEmptyPasswords yes",
                       remediation="Set PermitEmptyPasswords no in /etc/ssh/sshd_config, then systemctl reload ssh.")


@check("WA406", "passwords", "default-credentials-accepted", evidence=(EvidenceKind.CREDENTIAL,))
def default_credentials_accepted(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A service accepted a vendor default credential from warpagent's tiny built-in list
    (opt-in per estate: `default_credentials`). The password is never recorded.

    Board: a device or service still accepts its maker's default password.

    Why it matters: default credentials are the first thing attackers and worms try; a device
    that still has them belongs to whoever finds it first.
    Fix: change the password (or SNMP community) now, and disable the default account if it can be.
    """
    for accepted in host.evidence.credentials:
        endpoint = f"{accepted.port}/{accepted.protocol}"
        if accepted.service == "snmp":
            title = f"SNMP on {endpoint} answers to the default community '{accepted.user}'"
        else:
            title = f"{accepted.service.upper()} on {endpoint} accepts a default password for '{accepted.user}'"
        yield Weakness(subject=f"credential:{endpoint}:{accepted.user}", severity=Severity.CRITICAL,
                       port=accepted.port, protocol=accepted.protocol,
                       title=title,
                       evidence=f"default-credential probe on {endpoint} ({accepted.service}): the default "
                                f"password for '{accepted.user}' was accepted",
                       remediation=f"Change the password for '{accepted.user}' on this {accepted.service} service "
                                   "(or disable the account), and check the device's other default accounts.")

