from __future__ import annotations

from pathlib import Path

import pytest

from warpagent.collect import ports


def test_top_ports_come_from_nmaps_own_frequency_table() -> None:
    top = ports.parse("top-1000")
    assert len(top.tcp) == 1000
    assert {21, 22, 23, 25, 80, 443, 445, 3389}.issubset(top.tcp)
    assert top.udp == (161,)
    assert set(ports.parse("top-10").tcp).issubset(top.tcp)


def test_lists_ranges_and_protocol_prefixes() -> None:
    spec = ports.parse("21-23,80,T:8443,U:161,162")
    assert spec.tcp == (21, 22, 23, 80, 8443)
    assert spec.udp == (161, 162)
    assert spec.nmap_argument() == "T:21-23,80,8443,U:161-162"


@pytest.mark.parametrize(("spec", "message"), [
    ("22,0", "'0' in '22,0' is outside 1-65535"),
    ("443-80", "'443-80' is outside 1-65535 or runs backwards"),
    ("22;id", "'22;id' is not a port, range or T:/U: item"),
    ("top-0", "N in top-N must be 1..65535"),
    ("", "empty port list"),
])
def test_bad_specs_say_why(spec: str, message: str) -> None:
    assert message in (ports.problem(spec) or "")


def test_top_n_from_a_given_services_file(tmp_path: Path) -> None:
    table = tmp_path / "nmap-services"
    table.write_text("# comment\nssh\t22/tcp\t0.18\nhttp\t80/tcp\t0.48\nsnmp\t161/udp\t0.43\nx\t9/tcp\t0.01\n")
    assert ports.top_tcp_ports(2, table) == (22, 80)


def test_top_n_adds_every_port_a_check_exists_for_and_lists_stay_exact() -> None:
    from warpagent.collect.ports import parse, top_tcp_ports
    from warpagent.scan import engine

    checked = engine.check_ports()
    assert {6379, 9200, 11211, 27017, 3389, 5900, 5985, 5986} <= set(checked)
    assert 6379 not in top_tcp_ports(1000)  # why the rule exists
    top = parse("top-1000", checked_tcp=checked)
    assert set(checked) <= set(top.tcp) and set(top_tcp_ports(1000)) <= set(top.tcp)
    assert parse("22,443", checked_tcp=checked).tcp == (22, 443)
