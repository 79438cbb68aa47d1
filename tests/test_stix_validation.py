"""warpagent's validation is stix2-validator's own, with schemas read once: on good and broken
bundles it must say exactly what the validator as shipped says."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.test_stix_readers import _posture
from warpagent.sharing import stix_bundle, stix_validation


def _first(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(o for o in bundle["objects"] if o["type"] == kind)


BREAKAGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "negative sighting count": lambda b: _first(b, "sighting").update(count=-3),
    "vulnerability name not a string": lambda b: _first(b, "vulnerability").update(name=5),
    "note without content": lambda b: _first(b, "note").pop("content"),
    "timestamp not a timestamp": lambda b: _first(b, "report").update(published="yesterday"),
    "id of the wrong type": lambda b: _first(b, "identity").update(id="report--0b5f3e21-8b4a-4b0a-9f3e-2a1b0c9d8e7f"),
    "bad property name": lambda b: _first(b, "course-of-action").update({"Bad-Name": 1}),
    "created after modified": lambda b: _first(b, "note").update(created="2030-01-01T00:00:00.000Z"),
    "unknown marking": lambda b: _first(b, "note").update(object_marking_refs=["marking-definition--x"]),
}


@pytest.mark.parametrize("breakage", [None, *BREAKAGES])
def test_verdicts_equal_the_validator_as_shipped(breakage: str | None) -> None:
    bundle = copy.deepcopy(stix_bundle.build(_posture()))
    if breakage:
        BREAKAGES[breakage](bundle)
    text = json.dumps(bundle)
    ours, shipped = stix_validation.errors(text), stix_validation.upstream_errors(text)
    assert ours == shipped
    assert bool(ours) == (breakage is not None)


def test_one_object_is_judged_as_the_validator_judges_it() -> None:
    bundle = stix_bundle.build(_posture())
    sighting = dict(_first(bundle, "sighting"), count="many")
    assert stix_validation.object_errors(_first(bundle, "sighting")) == []
    [error] = stix_validation.object_errors(sighting)
    assert "count" in error and "many" in error
