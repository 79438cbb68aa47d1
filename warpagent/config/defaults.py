"""The schema is the one home of every default: the typed settings' defaults are read from it,
and a parsed config document is completed from it before the settings are built.

A section the schema gives `default: {}` is made when absent, so its keys' defaults apply; a
section without one (reports.email, hub, scan.celery) stays absent: its absence means "off".
"""

from __future__ import annotations

import copy
import functools
import re
from importlib import resources
from typing import Any

import yaml

DURATION = re.compile(r"^(\d{1,12})\s*([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@functools.cache
def schema() -> dict[str, Any]:
    # libyaml's loader where PyYAML has it: the schema is read by every command, and the pure
    # Python loader takes about 70 ms of each start for a file warpagent itself ships
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = resources.files("warpagent.config").joinpath("schema.yaml").read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader, C or Python
    return loaded


def duration_seconds(text: str) -> int:
    """'90s', '15m', '6h', '1d' in seconds (ValueError if it is not one)."""
    match = DURATION.match(text.strip())
    if not match:
        raise ValueError(text)
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def _child(node: dict[str, Any], step: str) -> dict[str, Any]:
    if step.endswith("[]"):
        items = node["properties"][step[:-2]]["items"]
        return next(alt for alt in items.get("oneOf", [items]) if "properties" in alt) if "oneOf" in items else items
    return node["properties"][step]


def default(path: str) -> Any:
    """The schema's default for a key path such as 'estates[].timeout' (KeyError if it has none)."""
    node = schema()
    for step in path.split("."):
        node = _child(node, step)
    if "default" not in node:
        raise KeyError(f"the schema gives no default for {path}")
    return copy.deepcopy(node["default"])


def seconds(path: str) -> int:
    """A duration key's default, in seconds."""
    return duration_seconds(str(default(path)))


def _fill(value: Any, node: dict[str, Any]) -> Any:
    if isinstance(value, dict) and "properties" in node:
        for key, sub in node["properties"].items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = _fill(value[key], sub)
        return value
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        items = node["items"]
        alternatives = items.get("oneOf", [items])
        for index, item in enumerate(value):
            match = next((alt for alt in alternatives if isinstance(item, dict) and "properties" in alt
                          and set(item) <= set(alt["properties"])), None)
            if match is not None:
                value[index] = _fill(item, match)
        return value
    return value


def completed(document: dict[str, Any]) -> dict[str, Any]:
    """A valid document with every default the schema gives filled in (the input is not changed)."""
    return _fill(copy.deepcopy(document), schema())
