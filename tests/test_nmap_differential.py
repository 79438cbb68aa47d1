"""nmap XML: warpagent's reading against python-libnmap's, on nmap output collected by
python-libnmap's authors (tests/assets/corpus/nmap, origins in SOURCES.md there). For every
host nmap found up, the same ports, states, services, products and versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from libnmap.parser import NmapParser

from warpagent.collect import nmap_xml

CORPUS = Path(__file__).parent / "assets" / "corpus" / "nmap"
Port = tuple[str, int, str, str, str, str]


def _libnmap(path: Path) -> dict[str, set[Port]]:
    report = NmapParser.parse_fromfile(str(path))
    return {host.address: {(s.protocol, s.port, s.state, s.service, s.service_dict.get("product", ""),
                            s.service_dict.get("version", "")) for s in host.services}
            for host in report.hosts if host.is_up()}


def _ours(path: Path) -> dict[str, set[Port]]:
    parsed = nmap_xml.parse(path.read_text(), {})
    return {host.address: {(s.protocol, s.port, s.state, s.name, s.product, s.version) for s in host.services}
            for host in parsed.hosts if host.state == "up"}


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.xml")), ids=lambda p: p.name)
def test_every_up_host_has_the_ports_and_services_libnmap_reads(path: Path) -> None:
    theirs, ours = _libnmap(path), _ours(path)
    assert theirs, "the file has hosts that are up"
    assert ours == theirs
