"""What the directory checks share: the thresholds (as data, with their sources) and how a
finding names an account. Pure, no I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from warpagent.model.directory import AccountFlag, DirectoryAccount, DirectorySnapshot, PrivilegedRole
from warpagent.model.findings import Host
from warpagent.text import first_few, shown

# Privileged accounts: PingCastle's and Microsoft's "few, and always the same few" rule.
ADMIN_SHARE = 0.10  # more than 10% of active users hold a privileged group...
ADMIN_MAX = 50  # ...or more than 50 do
ADMIN_RULE_FROM_USERS = 100  # judged once the directory has over 100 active users
PASSWORD_MAX_AGE = dt.timedelta(days=365)  # a privileged password older than a year
KRBTGT_MEDIUM = dt.timedelta(days=180)  # Microsoft: reset krbtgt at least every 180 days
KRBTGT_HIGH = dt.timedelta(days=365)
# NCSC password guidance and Cyber Essentials (v3.2, user access control)
MIN_LENGTH = 8
MAX_LOCKOUT = 10  # Cyber Essentials: lock out after no more than 10 guesses (or throttle)
NAMES_SHOWN = 20  # names listed in a count finding's evidence (the rest counted)

FLAG_WORDS = {AccountFlag.DONT_EXPIRE_PASSWORD: "DONT_EXPIRE_PASSWORD (0x10000)",
              AccountFlag.PASSWD_NOTREQD: "PASSWD_NOTREQD (0x20)",
              AccountFlag.DONT_REQ_PREAUTH: "DONT_REQ_PREAUTH (0x400000)",
              AccountFlag.ENCRYPTED_TEXT_PWD_ALLOWED: "ENCRYPTED_TEXT_PWD_ALLOWED (0x80)",
              AccountFlag.TRUSTED_FOR_DELEGATION: "TRUSTED_FOR_DELEGATION (0x80000)",
              AccountFlag.NOT_DELEGATED: "NOT_DELEGATED (0x100000)"}


def directory_of(host: Host) -> DirectorySnapshot | None:
    return host.evidence.directory


def name(account: DirectoryAccount) -> str:
    """An account's name as a finding may quote it (directory text is untrusted)."""
    return shown(account.name, 64)


def subject(account: DirectoryAccount) -> str:
    return f"ad-account:{account.name.casefold()}"


def uac(account: DirectoryAccount) -> str:
    return f"userAccountControl {int(account.flags)} (0x{int(account.flags):x})"


def has_flag(account: DirectoryAccount, flag: AccountFlag) -> str:
    """The evidence words for a flag the account carries: "userAccountControl 66048 (0x10200) includes ..."."""
    return f"{uac(account)} includes {FLAG_WORDS[flag]}"


def built_in(account: DirectoryAccount) -> bool:
    """Accounts the directory keeps for itself: krbtgt, and the DNS service's dns-<dc>."""
    lowered = account.name.casefold()
    return lowered == "krbtgt" or lowered.startswith("krbtgt_") or lowered.startswith("dns-")


def privileged_users(snapshot: DirectorySnapshot) -> list[tuple[DirectoryAccount, tuple[PrivilegedRole, ...]]]:
    """Each user account (not computer) in a privileged group, with the groups, in name order."""
    held = snapshot.privileged()
    found = [(a, held[a.dn.casefold()]) for a in snapshot.users if a.dn.casefold() in held]
    return sorted(found, key=lambda pair: pair[0].name.casefold())


def roles(held: Iterable[PrivilegedRole]) -> str:
    return ", ".join(r.value for r in held)


def age_days(age: dt.timedelta) -> str:
    return f"{age.days} days"


def listed(accounts: Iterable[DirectoryAccount]) -> str:
    """Names for a count finding's evidence, the first NAMES_SHOWN and how many more."""
    return first_few(sorted(name(a) for a in accounts), NAMES_SHOWN)


def when(stamp: dt.datetime | None) -> str:
    return f"{stamp:%Y-%m-%d}" if stamp else "never"
