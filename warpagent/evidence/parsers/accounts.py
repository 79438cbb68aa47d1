"""Parsers for the account database and sudo rules: /etc/passwd, /etc/group, /etc/shadow and
/etc/sudoers with its includes. Pure functions from text to evidence.

/etc/shadow is read for two facts per account only: the hash scheme and whether the password
is empty, locked or disabled (plus the account's expiry date). The hash itself is never kept,
and no error message ever quotes a shadow line.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from warpagent.evidence.formats import EvidenceError
from warpagent.model.evidence import Account, Group, PasswordState, Where
from warpagent.numbers import NotANumber, whole

_EPOCH = dt.date(1970, 1, 1)
_DES = re.compile(r"[./0-9A-Za-z]{13}")
_SCHEMES = (("$y$", "yescrypt"), ("$gy$", "gost-yescrypt"), ("$7$", "scrypt"), ("$2a$", "bcrypt"),
            ("$2b$", "bcrypt"), ("$2y$", "bcrypt"), ("$6$", "sha512crypt"), ("$5$", "sha256crypt"),
            ("$sha1$", "sha1crypt"), ("$md5", "sunmd5"), ("$1$", "md5crypt"), ("_", "bsdicrypt"))


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line


def passwd(text: str, file: str = "etc/passwd") -> list[Account]:
    accounts = []
    for number, line in _lines(text):
        fields = line.split(":")
        if len(fields) != 7 or not fields[0]:
            raise EvidenceError(f"line {number}: expected 7 ':'-separated fields (name:x:uid:gid:gecos:home:shell)")
        try:
            uid, gid = whole(fields[2], "uid", digits=10), whole(fields[3], "gid", digits=10)
        except NotANumber:
            raise EvidenceError(f"line {number}: uid and gid must be numbers") from None
        accounts.append(Account(name=fields[0], uid=uid, gid=gid, home=fields[5], shell=fields[6].strip(),
                                where=Where(file, number)))
    return accounts


def group(text: str, file: str = "etc/group") -> list[Group]:
    groups = []
    for number, line in _lines(text):
        fields = line.split(":")
        if len(fields) != 4 or not fields[0]:
            raise EvidenceError(f"line {number}: expected 4 ':'-separated fields (name:x:gid:members)")
        try:
            gid = whole(fields[2], "gid", digits=10)
        except NotANumber:
            raise EvidenceError(f"line {number}: gid must be a number") from None
        members = tuple(m.strip() for m in fields[3].split(",") if m.strip())
        groups.append(Group(name=fields[0], gid=gid, members=members, where=Where(file, number)))
    return groups


def hash_scheme(field: str) -> tuple[PasswordState, str]:
    """The state and scheme of a shadow password field, without keeping any of the hash."""
    if field == "":
        return PasswordState.EMPTY, ""
    state = PasswordState.HASHED
    if field.startswith("!"):
        field = field.lstrip("!")
        if field in ("", "*"):
            return PasswordState.DISABLED, ""
        state = PasswordState.LOCKED
    if field.startswith("*") or field in ("x", "NP", "LK"):
        return PasswordState.DISABLED, ""
    for prefix, scheme in _SCHEMES:
        if field.startswith(prefix):
            return state, scheme
    if _DES.fullmatch(field):
        return state, "des"
    return state, "unknown"


@dataclass(frozen=True)
class ShadowEntry:
    state: PasswordState
    scheme: str
    expires: dt.date | None
    where: Where


def shadow(text: str, file: str = "etc/shadow") -> dict[str, ShadowEntry]:
    entries = {}
    for number, line in _lines(text):
        fields = line.split(":")
        if len(fields) != 9 or not fields[0]:
            # never quote the line: it holds a password hash
            raise EvidenceError(f"line {number}: expected 9 ':'-separated fields; not a shadow file")
        state, scheme = hash_scheme(fields[1])
        expires = None
        if fields[7].strip():
            try:
                expires = _EPOCH + dt.timedelta(days=whole(fields[7].strip(), "expiry", signed=True, digits=6))
            except (NotANumber, OverflowError):
                raise EvidenceError(f"line {number}: the expiry field (8th) must be a day number") from None
        entries[fields[0]] = ShadowEntry(state, scheme, expires, Where(file, number))
    return entries


def with_shadow(accounts: list[Account], entries: dict[str, ShadowEntry]) -> list[Account]:
    out = []
    for account in accounts:
        entry = entries.get(account.name)
        if entry is None:
            out.append(account)
            continue
        out.append(replace(account, password=entry.state, scheme=entry.scheme, expires=entry.expires,
                           shadow_where=entry.where))
    return out


_SCHEME_TOKENS = {prefix_scheme: prefix for prefix, prefix_scheme in reversed(_SCHEMES)} | {
    "des": "REDACTED.des.", "unknown": "?"}


def redact_shadow(text: str) -> str:
    """/etc/shadow with every hash replaced by a token of the same scheme and state, so a
    collected copy on disk holds no hash at all. Lines that are not shadow entries are dropped."""
    out = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) != 9:
            continue
        state, scheme = hash_scheme(fields[1])
        token = {PasswordState.EMPTY: "", PasswordState.DISABLED: "*"}.get(state, _SCHEME_TOKENS.get(scheme, "?"))
        fields[1] = ("!" if state is PasswordState.LOCKED else "") + token
        out.append(":".join(fields))
    return "\n".join(out) + ("\n" if out else "")
