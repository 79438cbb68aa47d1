"""YAML that people and hosts write, read strictly: the config and the supplier register.

PyYAML's safe loader keeps the last of two equal keys without a word (a second `estates:`
silently replaces the first), expands merge keys that hide where a value came from, and
expands aliases, so nine short lines can stand for a billion values. Here a duplicate key or a
merge key is refused with its line, and a document too deep or too large once expanded is
refused before anything walks it.
"""

from __future__ import annotations

from typing import Any

import yaml

from warpagent.text import shown

MAX_NODES = 200_000  # values once aliases are expanded: more than any config or register has
MAX_DEPTH = 64


class YamlRefused(Exception):
    """A construct refused on `line` (1-based)."""

    def __init__(self, node: yaml.Node, reason: str) -> None:
        super().__init__(reason)
        self.line = node.start_mark.line + 1
        self.reason = reason


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[object, int] = {}
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlRefused(key_node, "a YAML merge key ('<<'); write the keys out in full")
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
            except TypeError:
                raise YamlRefused(key_node, "a key that is not a plain value") from None
            if repeated:
                raise YamlRefused(key_node, f"key {shown(str(key), 40)!r} is given twice in one mapping (first on "
                                            f"line {seen[key] + 1}); keep one")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    """The document; YamlRefused, yaml.YAMLError or RecursionError (runaway nesting) when it is not one."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader that refuses more


def too_big(document: object) -> str:
    """Why a loaded document is too deep or too large to walk ('' when it is fine), found without
    recursion and without expanding more than MAX_NODES values."""
    stack: list[tuple[object, int]] = [(document, 0)]
    count = 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            return f"more than {MAX_NODES:,} values once its YAML aliases are expanded; write it out plainly"
        if depth > MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep"
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for pair in value.items() for v in pair)
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return ""
