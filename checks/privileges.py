"""privileges (WA3xx): accounts and rules that give more power than anyone should have.

All from host evidence (etc/passwd, etc/group, etc/shadow, etc/sudoers and sudoers.d); each
finding points at the file and line.
"""

from __future__ import annotations

from collections.abc import Iterator

from checks.base import CheckContext, Weakness, check
from warpagent.model.evidence import Account, EvidenceKind, Group, SudoRule
from warpagent.model.findings import Host, Severity

ADMIN_GROUPS = ("root", "sudo", "wheel", "admin", "adm", "docker", "lxd")
# groups whose members may run anything as root (with their own password) by the usual policy
SUDO_ADMIN_GROUPS = ("%sudo", "%wheel", "%admin")
SHELLS = ("/bin/sh", "/bin/bash", "/usr/bin/bash", "/bin/dash", "/usr/bin/zsh", "/bin/zsh", "/bin/su",
          "/usr/bin/su", "/usr/bin/sudo", "/usr/bin/env", "/usr/bin/python3", "/usr/bin/perl")


@check("WA301", "privileges", "uid0-account-not-root", evidence=(EvidenceKind.ACCOUNT,))
def uid0_not_root(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An account other than root has user id 0, so it is root under another name.

    Why it matters: a second root account is a classic backdoor, and even when made on purpose it
    hides root's use from logs and reviews that look for "root".
    Fix: remove the account (`userdel NAME`) or give it its own user id, and use sudo for admin work.
    """
    for account in host.evidence.accounts:
        if account.uid == 0 and account.name != "root":
            yield Weakness(subject=f"account:{account.name}", severity=Severity.CRITICAL,
                           title=f"Account '{account.name}' has user id 0 (a second root)",
                           evidence=f"{account.where}: {account.name} has uid 0",
                           remediation=f"Remove '{account.name}' (userdel {account.name}) or give it a user id "
                                       "of its own; admins should use sudo from their own accounts.")


def _unrestricted(rule: SudoRule) -> tuple[str, ...]:
    """The commands that amount to running anything: ALL, or a shell or interpreter."""
    return tuple(c for c in rule.commands if c == "ALL" or c.split()[0] in SHELLS)


def _as_root(rule: SudoRule) -> bool:
    """Whether the rule runs commands as root: root, ALL or uid 0 in its run-as list, and root not
    excluded ("(ALL, !root)"). "()" and "( : wheel)" run as the invoking user, "(%patrick)" or an
    alias of other users as them."""
    runas = set(rule.runas)
    return bool(runas & {"root", "ALL", "#0"}) and not runas & {"!root", "!#0"}


@check("WA302", "privileges", "sudo-unrestricted", evidence=(EvidenceKind.SUDO,))
def sudo_unrestricted(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A sudo rule lets someone run anything as root: `NOPASSWD: ALL` (high), or ALL (or a
    shell) for users outside the admin group (medium). `%sudo`/`%wheel`/`%admin ALL` with a
    password is the normal admin policy and is not reported.

    Board: a rule lets someone act as the system's administrator without the usual checks.

    Why it matters: a rule that asks for no password (NOPASSWD) turns any compromise of that
    account (a stolen SSH key, a web shell as a service user) into root at once, with no
    password in the way.
    Fix: limit the rule to the exact commands needed, and drop NOPASSWD.
    """
    for rule in host.evidence.sudo_rules:
        if set(rule.users) <= {"root"} or not _as_root(rule):
            continue
        unrestricted = _unrestricted(rule)
        if not unrestricted:
            continue
        without_password = [c for c in unrestricted if c in rule.nopasswd]
        who = ", ".join(rule.users)

        def what(command: str) -> str:
            return "any command (ALL)" if command == "ALL" else command
        if without_password:
            severity = Severity.HIGH
            title = f"sudo lets {who} run {what(without_password[0])} as root with no password"
        elif set(rule.users) <= set(SUDO_ADMIN_GROUPS):
            continue
        else:
            severity = Severity.MEDIUM
            title = f"sudo lets {who} run {what(unrestricted[0])} as root"
        yield Weakness(subject=f"sudo:{rule.where.file}:{who}", severity=severity, title=title,
                       evidence=f"{rule.where}: {rule.text}",
                       remediation="Replace the rule with the specific commands the job needs (a Cmnd_Alias) "
                                   "and remove NOPASSWD; edit with visudo -f " + rule.where.file.removeprefix("etc/"))


def _members(host: Host, group: Group) -> list[Account]:
    """Listed members and accounts whose primary group it is (root itself excepted)."""
    names = set(group.members) | {a.name for a in host.evidence.accounts if a.gid == group.gid}
    return [a for a in host.evidence.accounts if a.name in names and a.name != "root"]


def _membership(account: Account, group: Group) -> tuple[str, str]:
    """How the account is in the group, and the command that takes it out: a listed member
    leaves with gpasswd; an account whose primary group it is needs another primary group."""
    if account.name in group.members:
        return f"{group.where}: {group.name} lists {account.name}", f"gpasswd -d {account.name} {group.name}"
    return (f"{account.where}: {group.name} (gid {group.gid}) is {account.name}'s primary group",
            f"usermod -g <another group> {account.name}")


@check("WA303", "privileges", "admin-group-stale-or-service-account",
       evidence=(EvidenceKind.ACCOUNT, EvidenceKind.SHADOW))
def admin_group_members(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A member of an admin group (root, sudo, wheel, admin, adm, docker, lxd) is a service
    account, or a person's account that is locked or expired (someone who has left).

    Why it matters: a service account with admin rights makes every flaw in that service an admin
    compromise; a leaver's account left in an admin group is one password reset away from reuse.
    `docker` and `lxd` membership is root in all but name.
    Fix: remove the account from the group (`gpasswd -d USER GROUP`); give services only the rights
    they need, and remove leavers promptly.
    """
    today = ctx.now.date()
    for group_name in ADMIN_GROUPS:
        group = next((g for g in host.evidence.groups if g.name == group_name), None)
        if group is None:
            continue
        for account in _members(host, group):
            how, remove = _membership(account, group)
            if account.service:
                yield Weakness(subject=f"account:{account.name}:{group_name}", severity=Severity.MEDIUM,
                               title=f"Service account '{account.name}' is in the admin group '{group_name}'",
                               evidence=f"{how}; {account.where}: uid {account.uid} (a service account)",
                               remediation=f"{remove}, and grant the service only the specific rights it needs.",
                               evidence_kind=EvidenceKind.ACCOUNT)
            elif account.inactive(today):
                state = "expired" if account.expired(today) else "locked"
                yield Weakness(subject=f"shadow:{account.name}:{group_name}", severity=Severity.MEDIUM,
                               title=f"{state.capitalize()} account '{account.name}' is still in the admin "
                                     f"group '{group_name}'",
                               evidence=f"{how}; {account.shadow_where}: the account is {state}",
                               remediation=f"{remove}; if the person has left, remove the account "
                                           f"(userdel {account.name}).",
                               evidence_kind=EvidenceKind.SHADOW)


@check("WA304", "privileges", "service-account-login-shell", evidence=(EvidenceKind.ACCOUNT,))
def service_account_login_shell(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A service (system) account has an interactive login shell.

    Why it matters: service accounts should never log in; a shell lets a leaked key or a
    password set by mistake turn into an interactive session as that service.
    Fix: `usermod -s /usr/sbin/nologin NAME`.
    """
    for account in host.evidence.accounts:
        if account.service and account.login_shell:
            yield Weakness(subject=f"account:{account.name}:shell", severity=Severity.LOW,
                           title=f"Service account '{account.name}' has a login shell ({account.shell})",
                           evidence=f"{account.where}: uid {account.uid}, shell {account.shell}",
                           remediation=f"usermod -s /usr/sbin/nologin {account.name}")

