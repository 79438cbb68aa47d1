"""Parsers for password policy and sshd settings: /etc/login.defs, pwquality.conf, the PAM
password stack (Debian's common-password, Red Hat's system-auth) and /etc/ssh/sshd_config.
Pure functions from text to evidence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from warpagent.evidence.formats import EvidenceError
from warpagent.model.evidence import PasswordPolicy, Setting, SshdConfig, Where
from warpagent.numbers import NotANumber, whole, whole_or_none
from warpagent.text import shown

NEVER_EXPIRES = 99999  # login.defs' and shadow's "no maximum age"
# built-in defaults of the PAM modules when no minlen is given
PAM_UNIX_MINLEN = 6
PWQUALITY_MINLEN = 8
CRACKLIB_MINLEN = 9


def _settings(text: str, file: str, separator: str | None) -> Iterator[tuple[str, str, Where]]:
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if separator:
            key, sep, value = line.partition(separator)
            if not sep:
                # pwquality allows bare boolean options ("enforce_for_root")
                key, value = line, "1"
        else:
            parts = line.split(None, 1)
            key, value = parts[0], parts[1] if len(parts) > 1 else ""
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise EvidenceError(f"line {number}: expected a setting name, got {line[:60]!r}")
        yield key, value.strip(), Where(file, number)


def login_defs(text: str, file: str = "etc/login.defs") -> dict[str, Setting]:
    return {key: Setting(value, where) for key, value, where in _settings(text, file, None)}


def pwquality(text: str, file: str = "etc/security/pwquality.conf") -> dict[str, Setting]:
    return {key: Setting(value, where) for key, value, where in _settings(text, file, "=")}


def _int(setting: Setting, name: str) -> int:
    try:
        return whole(setting.value, name, signed=True, digits=10)
    except NotANumber:
        raise EvidenceError(f"{setting.where}: {name} must be a whole number, got {setting.value!r}") from None


def _pam_password_lines(text: str, file: str) -> Iterator[tuple[str, dict[str, str], Where]]:
    """(module, arguments) for each `password` line of a PAM stack."""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("@include"):
            continue
        line = re.sub(r"\[[^]]*\]", "control", line)  # "[success=1 default=ignore]" is one control field
        parts = line.lstrip("-").split()
        if len(parts) < 3:
            raise EvidenceError(f"line {number}: expected 'type control module [arguments]'")
        if parts[0] != "password":
            continue
        module = parts[2].rsplit("/", 1)[-1]
        arguments = dict(([*a.split("=", 1), ""])[:2] for a in parts[3:])
        yield module, arguments, Where(file, number)


def _passwdqc_options(arguments: dict[str, str], where: Where,
                      load: Callable[[str], str | None]) -> tuple[dict[str, str], dict[str, Where]]:
    """pam_passwdqc's options in the order it reads them: `config=FILE` reads FILE's lines
    (one option each, `#` comments) at that point, so options after it on the line win."""
    options: dict[str, str] = {}
    set_at: dict[str, Where] = {}
    for key, value in arguments.items():
        if key != "config":
            options[key], set_at[key] = value, where
            continue
        text = load(value)
        if text is None:
            raise EvidenceError(f"{where}: config={shown(value, 80)} is not in the evidence; collect it "
                                "beside the PAM stack")
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if line:
                name, _sep, setting = line.partition("=")
                options[name.strip()], set_at[name.strip()] = setting.strip(), Where(value.lstrip("/"), number)
    return options, set_at


def password_policy(pam: str | None, pam_file: str, quality: dict[str, Setting] | None,
                    defs: dict[str, Setting] | None,
                    load: Callable[[str], str | None] = lambda path: None) -> PasswordPolicy:
    """The effective policy for new passwords. PAM decides length and deny-list checks; login.defs'
    PASS_MIN_LEN is ignored where PAM is used (as on every modern distribution). `load` reads a
    file a module names by its host path (pam_passwdqc's config=)."""
    min_length: Setting | None = None
    deny_list: Setting | None = None
    notes: list[str] = []
    if pam is not None:
        for module, arguments, where in _pam_password_lines(pam, pam_file):
            if module == "pam_pwquality.so":
                conf = quality or {}
                if "minlen" in arguments:
                    min_length = Setting(arguments["minlen"], where)
                elif "minlen" in conf:
                    min_length = conf["minlen"]
                else:
                    min_length = Setting(str(PWQUALITY_MINLEN), where)
                dictcheck = arguments.get("dictcheck") or (conf["dictcheck"].value if "dictcheck" in conf else "1")
                if dictcheck != "0":
                    deny_list = Setting("pam_pwquality dictionary check", where)
            elif module == "pam_cracklib.so":
                min_length = Setting(arguments.get("minlen", str(CRACKLIB_MINLEN)), where)
                deny_list = Setting("pam_cracklib dictionary check", where)
            elif module == "pam_passwdqc.so":
                options, set_at = _passwdqc_options(arguments, where, load)
                # min=N0,N1,N2,N3,N4: the last is for passphrases; the smallest enabled value applies
                values = options.get("min", "disabled,24,11,8,7").split(",")
                lengths = [n for n in (whole_or_none(v, "min", digits=10) for v in values) if n is not None]
                min_length = Setting(str(min(lengths)) if lengths else "0", set_at.get("min", where))
                deny_list = Setting("pam_passwdqc word-list check", where)
            elif module == "pam_unix.so" and min_length is None:
                min_length = Setting(arguments.get("minlen", str(PAM_UNIX_MINLEN)), where)
        if min_length is not None:
            _int(min_length, "minlen")
    else:
        notes.append("no PAM password stack collected (etc/pam.d/common-password or system-auth)")
    max_days = None
    if defs and "PASS_MAX_DAYS" in defs and _int(defs["PASS_MAX_DAYS"], "PASS_MAX_DAYS") < NEVER_EXPIRES:
        max_days = defs["PASS_MAX_DAYS"]
    return PasswordPolicy(min_length=min_length, deny_list=deny_list, max_days=max_days,
                          pam_read=pam is not None, notes=tuple(notes))


# --- sshd_config ----------------------------------------------------------------------------

SshdLoader = Callable[[str], list[tuple[str, str]]]  # host glob -> [(relative file, text)]


def sshd_config(text: str, load: SshdLoader, file: str = "etc/ssh/sshd_config") -> SshdConfig:
    """Global settings as sshd applies them: the first value of a keyword wins, Include
    directives are followed where they appear, and Match blocks (conditional) end the global part."""
    settings: dict[str, Setting] = {}
    _sshd_file(text, file, load, settings, chain=(file,))
    return SshdConfig(settings=tuple(settings.items()))


def _sshd_words(text: str, file: str, number: int) -> list[str]:
    """A directive's arguments as sshd splits them: double quotes group words, and a word that
    begins with '#' outside quotes starts a comment (`PermitRootLogin yes # for now` is `yes`)."""
    words: list[str] = []
    for match in re.finditer(r'"([^"]*)("?)|(\S+)', text):
        quoted, closed, bare = match.groups()
        if bare is not None:
            if bare.startswith("#"):
                break
            words.append(bare)
        elif not closed:
            raise EvidenceError(f"{file} line {number}: unterminated quote (sshd refuses this configuration)")
        else:
            words.append(quoted)
    return words


def _sshd_file(text: str, file: str, load: SshdLoader, settings: dict[str, Setting], chain: tuple[str, ...]) -> bool:
    """Returns False once a Match block starts: nothing after it is global. `chain` is the files
    that included this one: sshd refuses a file that includes itself or its includer, and so do we."""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = re.split(r"\s*=\s*|\s+", line, maxsplit=1)
        keyword = parts[0].lower()
        value = " ".join(_sshd_words(parts[1], file, number)) if len(parts) > 1 else ""
        if not re.fullmatch(r"[a-z0-9]+", keyword):
            raise EvidenceError(f"line {number}: expected 'Keyword value', got {line[:60]!r}")
        if keyword == "match":
            return False
        if keyword == "include":
            if len(chain) > 8:
                raise EvidenceError(f"{file} line {number}: Include nested too deeply")
            for pattern in value.split():
                if not pattern.startswith("/"):
                    pattern = "/etc/ssh/" + pattern
                for included_file, included in load(pattern):
                    if included_file in chain:
                        raise EvidenceError(f"{file} line {number}: Include loop: {included_file} is already "
                                            "being read (sshd refuses this configuration too)")
                    if not _sshd_file(included, included_file, load, settings, (*chain, included_file)):
                        return False
            continue
        settings.setdefault(keyword, Setting(value, Where(file, number)))
    return True
