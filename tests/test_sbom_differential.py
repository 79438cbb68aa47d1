"""SBOMs: warpagent's reading against the format owners' own parsers, on SBOMs written by others
(tests/assets/corpus/sbom, origins in SOURCES.md there). CycloneDX is read through
cyclonedx-python-lib, so here its reading is held against the document itself: every component
in the JSON tree, nested ones included, and nothing else. SPDX is read by warpagent's own code
and held against spdx-tools, the SPDX project's parser."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from warpagent.evidence.parsers.supply import sbom

CORPUS = Path(__file__).parent / "assets" / "corpus" / "sbom"
Reading = set[tuple[str, str, str]]


def _tree(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for component in components:
        yield component
        yield from _tree(component.get("components", []))


def _ours(path: Path) -> Reading:
    return {(c.name, c.version, c.purl) for c in sbom(path.read_text(), path.name)}


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.cdx-*.json")), ids=lambda p: p.name)
def test_cyclonedx_components_are_every_component_of_the_document(path: Path) -> None:
    document = json.loads(path.read_text())
    assert path.name.endswith(f".cdx-{document['specVersion']}.json")
    written = {(c["name"], c.get("version", ""), c.get("purl", "")) for c in _tree(document.get("components", []))}
    assert written and _ours(path) == written


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.spdx.json")), ids=lambda p: p.name)
def test_spdx_packages_agree_with_spdx_tools(path: Path) -> None:
    from spdx_tools.spdx.parser.parse_anything import parse_file

    document = parse_file(str(path))
    theirs: Reading = set()
    cpes: set[tuple[str, str]] = set()
    for package in document.packages:
        refs = [(str(r.reference_type).lower(), r.locator) for r in package.external_references]
        purl = next((locator for kind, locator in refs if kind == "purl"), "")
        theirs.add((package.name, str(package.version or ""), purl))
        cpes |= {(package.name, locator) for kind, locator in refs[:1] if kind.startswith("cpe")}
    assert theirs and _ours(path) == theirs
    ours_cpes = {(c.name, c.cpe) for c in sbom(path.read_text(), path.name) if c.cpe}
    assert cpes <= ours_cpes
