from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from warpagent.collect import nmap_xml
from warpagent.errors import CollectError
from warpagent.model.findings import ScriptTable


def test_recorded_estate_parses_with_structured_scripts(asset: Callable[[str], str]) -> None:
    parsed = nmap_xml.parse(asset("nmap-estate.xml"), {"198.18.18.11": "infra.council.test"})
    assert parsed.complete
    assert parsed.finished == ("198.18.18.10", "198.18.18.11", "198.18.18.20")
    infra = parsed.hosts[1]
    assert infra.asset == "infra.council.test"
    ssh = next(s for s in infra.open_services() if s.port == 22)
    assert ssh.product == "OpenSSH" and ssh.version.startswith("9.2p1")
    assert ssh.cpes == ("cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel")  # every CPE kept
    algos = ssh.script("ssh2-enum-algos")
    assert algos is not None and "diffie-hellman-group1-sha1" in algos.data.table("kex_algorithms").strings()
    web = parsed.hosts[0]
    tls = next(s for s in web.services if s.port == 443)
    assert tls.tunnel == "ssl"
    ciphers = tls.script("ssl-enum-ciphers")
    assert ciphers is not None
    first = ciphers.data.table("TLSv1.0").table("ciphers").items[0]
    assert isinstance(first, ScriptTable) and first.text("name") == "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"
    snmp = next(s for s in infra.services if s.protocol == "udp")
    assert (snmp.port, snmp.state, snmp.extrainfo) == (161, "open", "public")


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.7, 0.95])
def test_cut_short_xml_keeps_every_complete_host(asset: Callable[[str], str], fraction: float) -> None:
    xml = asset("nmap-estate.xml")
    cut = xml[: int(len(xml) * fraction)]
    parsed = nmap_xml.parse(cut, {})
    assert not parsed.complete
    complete_hosts = cut.count("</host>")
    assert len(parsed.hosts) == complete_hosts
    assert parsed.finished == ("198.18.18.10", "198.18.18.11", "198.18.18.20")[:complete_hosts]


def test_nothing_written_yet_is_an_empty_partial_result(asset: Callable[[str], str]) -> None:
    assert nmap_xml.parse("", {}).hosts == ()
    header_only = asset("nmap-estate.xml").split("<host ")[0]
    parsed = nmap_xml.parse(header_only, {})
    assert parsed.hosts == () and not parsed.complete


def test_malformed_xml_is_a_clear_error(asset: Callable[[str], str]) -> None:
    with pytest.raises(CollectError) as caught:
        nmap_xml.parse(asset("nmap-malformed.xml"), {}, source="tests/assets/nmap-malformed.xml")
    message = str(caught.value)
    assert message.startswith("tests/assets/nmap-malformed.xml: nmap XML cannot be read (mismatched tag")
    assert "\n" not in message


def test_xml_that_is_not_nmap_is_a_clear_error() -> None:
    with pytest.raises(CollectError, match="nmap XML cannot be read"):
        nmap_xml.parse("<nmaprun><host><address addr='198.18.0.1' addrtype='ipv4'/><ports><port "
                       "protocol='tcp' portid='1'/></ports></host></nmaprun>", {})


def test_timed_out_hosts_are_not_counted_as_scanned(asset: Callable[[str], str]) -> None:
    parsed = nmap_xml.parse(asset("nmap-host-timeout.xml"), {})
    assert parsed.timed_out == ("198.18.0.50",)
    assert parsed.finished == ("198.18.0.51",)
    assert [h.address for h in parsed.hosts] == ["198.18.0.51"]


# --- hostile XML: each a named, one-line CollectError, never an internal error ------------------

HEAD = '<?xml version="1.0"?><nmaprun scanner="nmap" args="nmap" start="1" version="7.93">'
HOST = ('<host><status state="up" reason="syn-ack"/><address addr="198.18.0.1" addrtype="ipv4"/><ports>'
        '<port protocol="tcp" portid="{port}"><state state="open" reason="syn-ack"/><service name="http"/>'
        '{script}</port></ports></host>')
TAIL = '<runstats><finished time="2" exit="success"/><hosts up="1" down="0" total="1"/></runstats></nmaprun>'


def test_deeply_nested_script_tables_are_cut_not_crashed() -> None:
    from warpagent.collect.nmap_xml import MAX_TABLE_DEPTH, parse

    script = '<script id="x" output="o">' + "<table>" * 5000 + "<elem>deep</elem>" + "</table>" * 5000 + "</script>"
    (host,) = parse(HEAD + HOST.format(port=80, script=script) + TAIL, {}).hosts
    depth, table = 0, host.services[0].scripts[0].data
    while table.items:
        table, depth = table.items[0], depth + 1  # type: ignore[assignment]
    assert depth <= MAX_TABLE_DEPTH


@pytest.mark.parametrize(("xml", "said"), [
    (HEAD + HOST.format(port=70000, script="") + TAIL, "names port '70000', which is not a port number"),
    (HEAD + HOST.format(port="-1", script="") + TAIL, "names port '-1'"),
    (HEAD + '<runstats><finished time="1" exit="error" errormsg="Failed to open device eth9"/></runstats>'
     '</nmaprun>', "nmap stopped with its own error: Failed to open device eth9"),
    ('<?xml version="1.0"?><html><body>proxy login</body></html>', "not nmap XML (no <nmaprun> element)"),
    ('<?xml version="1.0"?><scan><nmaprun></nmaprun></scan>', "the root element is <scan>"),
])
def test_hostile_xml_is_one_clear_line(xml: str, said: str) -> None:
    from warpagent.collect.nmap_xml import parse
    from warpagent.errors import CollectError

    with pytest.raises(CollectError) as refused:
        parse(xml, {}, source="chunk 1")
    assert said in str(refused.value) and "\n" not in str(refused.value)
    assert str(refused.value).startswith("chunk 1: ")


def test_nmap_killed_before_writing_anything_is_an_empty_partial_scan() -> None:
    from warpagent.collect.nmap_xml import parse

    assert parse('<?xml version="1.0"?><!DOCTYPE nmaprun>', {}).complete is False


def test_a_closed_file_without_runstats_is_a_scan_cut_off(asset: Callable[[str], str]) -> None:
    """Issue 29: nmap XML with no <runstats> at all was refused with python-nmap's internal text
    ("'NoneType' object has no attribute 'get'"); it is a scan cut off, its hosts kept."""
    recorded = asset("nmap-estate.xml")
    stripped = re.sub(r"<runstats>.*?</runstats>", "", recorded, flags=re.DOTALL)
    assert "<runstats" not in stripped and stripped.rstrip().endswith("</nmaprun>")
    whole, cut = nmap_xml.parse(recorded, {}), nmap_xml.parse(stripped, {})
    assert whole.complete and not cut.complete
    assert [h.address for h in cut.hosts] == [h.address for h in whole.hosts]
    assert cut.hosts == whole.hosts
