from __future__ import annotations

from collections.abc import Callable

import pytest

from warpagent import nmap_xml
from warpagent.errors import CollectError
from warpagent.models import ScriptTable


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
