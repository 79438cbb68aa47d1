"""The sudoers parser: /etc/sudoers with its includes, as sudo itself reads it (tested against
cvtsudoers on files written by others). Pure: files come through the loader it is given."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from warpagent.evidence.formats import EvidenceError
from warpagent.model.evidence import SudoRule, Where
from warpagent.text import shown

_ALIAS = re.compile(r"^(User_Alias|Runas_Alias|Host_Alias|Cmnd_Alias|Cmd_Alias)\s+(.*)$")
_INCLUDE = re.compile(r"^[@#](include|includedir)\s+(\S+)\s*$")
_TAGS = re.compile(r"^((?:NO)?(?:PASSWD|EXEC|SETENV|LOG_INPUT|LOG_OUTPUT|MAIL|FOLLOW|INTERCEPT|NOEXEC)):\s*")
_ALIAS_NAME = re.compile(r"[A-Z][A-Z0-9_]*")

SudoLoader = Callable[[str], str | None]  # host path -> text, None when not collected
SudoLister = Callable[[str], list[str]]  # host directory -> file names in it


def _logical_lines(text: str, file: str = "sudoers") -> Iterator[tuple[int, str]]:
    """Lines with backslash continuations joined, comments dropped (but not #include)."""
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        line = raw.rstrip()
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        line = (buffer + line).strip()
        buffer = ""
        if not line:
            continue
        if line.startswith("#") and not _INCLUDE.match(line) and not re.match(r"#\d+\s", line):
            continue  # a comment; "#0 ALL = ALL" is uid 0's rule, as sudo reads it
        yield start, line
    if buffer.strip():  # sudo's regress test25: a continuation with nothing to continue
        raise EvidenceError(f"{file} line {start}: the last line ends in '\\' with nothing after it; "
                            "sudo refuses this file")


def _uncomment(line: str) -> str:
    """The line without a trailing comment: an unescaped, unquoted '#' after a blank (not '#1000', a uid)."""
    quoted = escaped = False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif (char == "#" and not quoted and index > 0 and line[index - 1] in " \t"
              and not line[index + 1:index + 2].isdigit()):
            return line[:index].rstrip()
    return line


def _split_unescaped(text: str, separator: str) -> list[str]:
    """Split at each separator that no backslash escapes, no double quote holds and no run-as
    list's parentheses enclose ("(root, www-data) /bin/ls" is one item)."""
    parts: list[str] = []
    current: list[str] = []
    quoted, escaped, depth = False, False, 0
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char in "()" and not quoted:
            depth = max(0, depth + (1 if char == "(" else -1))
            current.append(char)
        elif char == separator and not quoted and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(item: str) -> str:
    r"""A name as sudo reads it: quoted, only \" and \\ are escapes ("C/non\'UNIX" keeps its
    backslash); bare, a backslash escapes any character."""
    item = item.strip()
    if len(item) >= 2 and item[0] == item[-1] == '"':
        return re.sub(r'\\(["\\])', r"\1", item[1:-1])
    return re.sub(r"\\(.)", r"\1", item)


def _command_text(item: str) -> str:
    r"""A command and its arguments as sudo reads them: the grammar's own escapes (\, \: \= \#
    \\) undone, the rest kept for the glob or regex that matches arguments (\^x, \*); a regular
    expression (a word from ^ to $) exactly as written (^/usr/bin/\$tree$)."""
    words = item.strip().split(" ")
    return " ".join(w if w.startswith("^") and w.endswith("$") else re.sub(r"\\([,:=#\\])", r"\1", w)
                    for w in words)


def _split_list(text: str) -> list[str]:
    return [_unescape(item) for item in _split_unescaped(text, ",") if item.strip()]


@dataclass
class _SudoState:
    aliases: dict[str, list[str]]
    rules: list[SudoRule]
    seen: set[str]
    defined: set[str] = field(default_factory=set)  # "User_Alias:NAME": sudo refuses a second definition


# What sudo's grammar refuses outright (its regress tests 4-8, 12, 13, 25 and 29), so that a file
# sudo will not load is never read as granting anything: an empty quoted name, a group or
# netgroup with no name, a quote left open at the end of a line, a run-as list with no command,
# a regular expression with no closing $.
_EMPTY_NAME = re.compile(r'(?:^|[\s,=(:])(?:""|"%:?"|"\+"|%:?(?=[\s,)]|$)|\+(?=[\s,)]|$))')
_OPEN_QUOTE = re.compile(r'^(?:[^"\\]|\\.|"(?:[^"\\]|\\.)*")*"(?:[^"\\]|\\.)*$')
_RUNAS_ALONE = re.compile(r"\)\s*$")
# what may stand before a command in an item: a run-as list, tags, options
_LEADING = re.compile(r"^(?:\s*\([^)]*\)|\s*[A-Z_]+:(?!/)|\s*[A-Z_]+=\S+)*\s*")


def _refused_shapes(line: str, file: str, number: int) -> None:
    def refuse(why: str) -> EvidenceError:
        return EvidenceError(f"{file} line {number}: {why}; sudo refuses this file")

    alias = _ALIAS.match(line)
    # names: an alias of users, hosts or run-as users, or a rule's users and hosts (commands may
    # hold quotes and "" freely: `/bin/ls ""` is "no arguments")
    names = (line if alias and not alias.group(1).startswith("Cm") else "" if alias
             else line.partition("=")[0])
    if _OPEN_QUOTE.match(names):
        raise refuse("a quote is left open at the end of the line")
    if _EMPTY_NAME.search(names):
        raise refuse("an empty name, group or netgroup")
    if "=" in line and not alias and _RUNAS_ALONE.search(_uncomment(line)):
        raise refuse("a run-as list with no command after it")
    if alias or "=" not in line:
        return
    for item in _split_unescaped(_uncomment(line).partition("=")[2], ","):
        command = _LEADING.sub("", item.strip().rpartition(" = ")[2] if " = " in item else item.strip())
        path, _sep, arguments = command.strip().partition(" ")
        for regex in (path, arguments.strip()):
            if regex.startswith("^") and not regex.endswith("$"):
                raise refuse(f"the regular expression {shown(regex, 40)} has no closing $")


def _expand(items: list[str], aliases: dict[str, list[str]],
            active: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Aliases replaced by their members, each once; a negated alias ('!SHELLS') negates each
    member. An alias met again inside its own expansion (a cycle, which visudo warns of) adds
    nothing more, as sudo reads it."""
    out: list[str] = []
    for item in items:
        negated = item.startswith("!")
        bare = item.lstrip("!").strip()
        if _ALIAS_NAME.fullmatch(bare) and bare != "ALL" and bare in aliases:
            if bare in active:
                continue
            for member in _expand(aliases[bare], aliases, active | {bare}):
                flipped = member.startswith("!") != negated
                out.append(("!" if flipped else "") + member.lstrip("!"))
        else:
            out.append(("!" if negated else "") + bare)
    return tuple(dict.fromkeys(out))


_OPTION = re.compile(r"^(TIMEOUT|NOTBEFORE|NOTAFTER|CWD|CHDIR|CHROOT|ROLE|TYPE|APPARMOR_PROFILE|PRIVS|LIMITPRIVS)"
                     r"=(\S+)\s*")
# words sudo's grammar keeps for itself: never alias names
_RESERVED = frozenset({"ALL", "CHROOT", "CWD", "TIMEOUT", "NOTBEFORE", "NOTAFTER", "ROLE", "TYPE", "PRIVS",
                       "LIMITPRIVS", "APPARMOR_PROFILE", "INTERCEPT_TYPE"})
_SUDO_TIME = re.compile(r"^\d{10}(\d{2}){0,2}([.,]\d+)?(Z|[+-]\d{4})?$")  # ',' as the decimal mark too
_SUDO_TIMEOUT = re.compile(r"^(\d+[dhms]?)+$", re.IGNORECASE)  # sudo reads 7D4H10M30S as 7d4h10m30s
_ONE_DIGEST = re.compile(r"^(?:sha224|sha256|sha384|sha512):[A-Za-z0-9+/=]+(?:\s+|$)")


def _option(name: str, value: str, file: str, number: int) -> None:
    value = value.replace("\\,", ",")  # "20170214083000\,5Z": the comma escaped from the list
    if name in ("NOTBEFORE", "NOTAFTER") and not _SUDO_TIME.match(value):
        raise EvidenceError(f"{file} line {number}: {name}={shown(value, 40)} is not a time sudo reads "
                            "(YYYYMMDDHH[MM[SS]][Z]); sudo refuses this file")
    if name == "TIMEOUT" and not _SUDO_TIMEOUT.match(value):
        raise EvidenceError(f"{file} line {number}: TIMEOUT={shown(value, 40)} is not a duration; sudo refuses "
                            "this file")


def _without_digests(command: str) -> str:
    """The command with the digests before it taken off ("sha224:... sha256:... /bin/ls" -> "/bin/ls")."""
    while (digest := _ONE_DIGEST.match(command)) is not None:
        command = command[digest.end():]
    return command


def _commands(members: tuple[str, ...]) -> tuple[str, ...]:
    """Commands as sudo runs them: the digests a Cmnd_Alias member carries ("sha224:... /bin/ls")
    are a check on the file, not part of the command; a member that is only a digest (one of a
    list naming the next command) is no command."""
    out = []
    for member in members:
        negated, command = member.startswith("!"), _without_digests(member.lstrip("!"))
        if command:
            out.append(("!" if negated else "") + command)
    return tuple(dict.fromkeys(out))


def _clauses(text: str) -> list[str]:
    """`hosts = commands` clauses: split at each unescaped ':' that is not part of a tag
    (NOPASSWD:), a digest (sha256:) or a run-as list ((root:wheel))."""
    clauses: list[str] = []
    current: list[str] = []
    depth, escaped, quoted = 0, False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted  # "foo:bar" is a name, not two clauses
        elif quoted:
            pass
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == ":" and depth == 0:
            before = re.search(r"([A-Za-z0-9_]+)$", "".join(current))
            word = before.group(1) if before else ""
            if not (_TAGS.match(word + ":") or word in ("sha224", "sha256", "sha384", "sha512")):
                clauses.append("".join(current))
                current = []
                continue
        current.append(char)
    clauses.append("".join(current))
    return clauses


def _users_and_hosts(head: str) -> list[str]:
    """'alice, "%domain admins" web1, db1' -> the user list and the host list: each a comma list,
    the two apart at the first blank outside quotes that no comma joins."""
    joined = re.sub(r"\s*,\s*", ",", head.strip())
    quoted = escaped = False
    for index, char in enumerate(joined):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True  # "foo\"" holds a quote
        elif char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            return [joined[:index], joined[index:].strip()]
    return [joined]


def _user_spec(line: str, number: int, state: _SudoState, file: str) -> None:
    line = _uncomment(line)
    first, *more = _clauses(line)
    head, sep, commands_text = first.partition("=")
    if not sep:
        raise EvidenceError(f"{file} line {number}: expected 'who where = (as whom) commands'")
    # users then hosts: each a comma list, the two apart by a blank that no comma joins
    who_where = _users_and_hosts(head)
    if len(who_where) != 2:
        raise EvidenceError(f"{file} line {number}: expected users then hosts before '='")
    users = _expand(_split_list(who_where[0]), state.aliases)
    texts = [commands_text]
    for clause in more:
        _hosts, sep, clause_commands = clause.partition("=")
        if not sep:
            raise EvidenceError(f"{file} line {number}: a ':' clause without 'hosts = commands'")
        texts.append(clause_commands)
    # (run-as users) -> (commands, the NOPASSWD ones): sudo gives each command its own run-as list
    granted: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
    for text in texts:
        runas: tuple[str, ...] = ("root",)  # sudo's default, until a run-as list says otherwise
        passwd_tag = False
        for item in _split_unescaped(text, ","):
            item = item.strip()
            if item.startswith("("):
                close = item.find(")")
                if close < 0:
                    raise EvidenceError(f"{file} line {number}: unclosed '(' in the run-as list")
                # an empty user list, "()" or "( : wheel)", is the invoking user (with that group), not root
                runas = tuple(_expand(_split_list(item[1:close].split(":", 1)[0]), state.aliases))
                item = item[close + 1:].strip()
            while (option := _OPTION.match(item)) is not None:
                _option(option.group(1), option.group(2), file, number)
                item = item[option.end():]
            while (tag := _TAGS.match(item)) is not None:
                if tag.group(1) == "NOPASSWD":
                    passwd_tag = True
                elif tag.group(1) == "PASSWD":
                    passwd_tag = False
                item = item[tag.end():]
            negated = item.startswith("!")
            # digests before a command check the file, they are not the command; an item that is only
            # a digest (one of a list: the command follows the last of them) grants nothing
            item = _without_digests(item.lstrip("!").strip())
            if not item:
                continue
            expanded = _commands(_expand([("!" if negated else "") + _command_text(item)], state.aliases))
            commands, without_password = granted.setdefault(runas, ([], []))
            commands.extend(expanded)
            if passwd_tag:
                without_password.extend(expanded)
    for runas, (commands, without_password) in granted.items() or {("root",): ([], [])}.items():
        state.rules.append(SudoRule(users=users, runas=runas, commands=tuple(commands),
                                    nopasswd=tuple(without_password), where=Where(file, number),
                                    text=" ".join(line.split())))


def _parse_file(path: str, file: str, load: SudoLoader, listdir: SudoLister, state: _SudoState) -> None:
    if path in state.seen:
        return  # sudo itself refuses include loops; so do we, quietly
    state.seen.add(path)
    text = load(path)
    if text is None:
        return
    for number, line in _logical_lines(text, file):
        include = _INCLUDE.match(line)
        if include is None and re.match(r"^[@#]include(dir)?\s", line):
            raise EvidenceError(f"{file} line {number}: {shown(line.split()[0], 12)} takes one path; sudo refuses "
                                "this file")
        if include:
            target = include.group(2)
            if not target.startswith("/"):
                target = path.rsplit("/", 1)[0] + "/" + target
            if include.group(1) == "includedir":
                # sudo skips names that end in '~' or contain '.', so editor backups never apply
                for name in sorted(n for n in listdir(target) if not n.endswith("~") and "." not in n):
                    _parse_file(f"{target}/{name}", f"{target.lstrip('/')}/{name}", load, listdir, state)
            else:
                _parse_file(target, target.lstrip("/"), load, listdir, state)
            continue
        if line.startswith("Defaults"):
            continue
        _refused_shapes(line, file, number)
        alias = _ALIAS.match(line)
        if alias:
            for definition in re.split(r"\s:\s", alias.group(2)):
                name, sep, members = definition.partition("=")
                if not sep or not _ALIAS_NAME.fullmatch(name.strip()):
                    raise EvidenceError(f"{file} line {number}: malformed {alias.group(1)}")
                if name.strip() in _RESERVED:
                    raise EvidenceError(f"{file} line {number}: {name.strip()} is a reserved word, not an alias "
                                        "name; sudo refuses this file")
                key = f"{alias.group(1).replace('Cmd_', 'Cmnd_')}:{name.strip()}"
                if key in state.defined:
                    raise EvidenceError(f"{file} line {number}: alias {name.strip()} is defined twice; "
                                        "sudo refuses this file")
                state.defined.add(key)
                state.aliases[name.strip()] = _split_list(members)
            continue
        _user_spec(line, number, state, file)


def sudoers(load: SudoLoader, listdir: SudoLister, root: str = "/etc/sudoers") -> list[SudoRule]:
    """Every user specification reachable from /etc/sudoers, following @include, @includedir
    and their '#' spellings, with User, Runas and Cmnd aliases expanded."""
    state = _SudoState(aliases={}, rules=[], seen=set(), defined=set())
    _parse_file(root, root.lstrip("/"), load, listdir, state)
    return state.rules


# the shortest field hash_scheme() reads as each scheme, so a redacted file parses the same
