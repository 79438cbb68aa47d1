"""Turn nmap XML (complete, or cut short by a timeout) into inventory hosts.

python-nmap parses the host, port and service fields; the structured NSE output (<table>
and <elem>) and every CPE, which python-nmap flattens or drops, are read from the same XML.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nmap

from warpagent.errors import CollectError
from warpagent.model.findings import Host, ScriptResult, ScriptTable, ScriptValue, Service
from warpagent.text import shown

_CLOSING = ('<runstats><finished time="0" timestr="" elapsed="0" summary="cut short" exit="error"/>'
            '<hosts up="0" down="0" total="0"/></runstats></nmaprun>')


@dataclass(frozen=True)
class ParsedScan:
    hosts: tuple[Host, ...]
    finished: tuple[str, ...]  # addresses nmap reported on and did not time out
    timed_out: tuple[str, ...]  # hosts nmap gave up on (--host-timeout)
    complete: bool  # nmap wrote its closing runstats: every listed target was handled


def repair(xml: str) -> tuple[str, bool]:
    """Close XML that nmap did not finish: keep every complete <host>. Returns (xml, was_complete)."""
    if "</nmaprun>" in xml:
        if "<runstats" in xml:
            return xml, True
        # closed, but without the runstats nmap writes last: a scan cut off (or a tool that
        # rewrote the file); its hosts are kept and the scan is not taken as complete
        end = xml.rfind("</nmaprun>")
        return xml[:end] + _CLOSING + xml[end + len("</nmaprun>"):], False
    start = xml.find("<nmaprun")
    if start < 0:
        return "", False
    last_host = xml.rfind("</host>")
    if last_host >= 0:
        cut = last_host + len("</host>")
    else:
        cut = xml.find(">", start) + 1
        if cut <= 0:
            return "", False
    return xml[:cut] + _CLOSING, False


MAX_TABLE_DEPTH = 32  # NSE tables nest a few levels; deeper is a crafted file, and is cut there


def _script_value(element: ET.Element, depth: int = 0) -> ScriptValue:
    if element.tag == "elem":
        return element.text or ""
    keyed: list[tuple[str, ScriptValue]] = []
    items: list[ScriptValue] = []
    if depth >= MAX_TABLE_DEPTH:
        return ScriptTable()
    for child in element:
        if child.tag not in ("elem", "table"):
            continue
        value = _script_value(child, depth + 1)
        key = child.get("key")
        if key is None:
            items.append(value)
        else:
            keyed.append((key, value))
    return ScriptTable(keyed=tuple(keyed), items=tuple(items))


def _scripts(parent: ET.Element | None) -> tuple[ScriptResult, ...]:
    if parent is None:
        return ()
    out = []
    for script in parent.findall("script"):
        data = _script_value(script)
        out.append(ScriptResult(id=script.get("id", ""), output=script.get("output", ""),
                                data=data if isinstance(data, ScriptTable) else ScriptTable()))
    return tuple(out)


def host_key(host: ET.Element) -> str:
    """The address python-nmap keys a host by: its IPv4 address, else the first address."""
    for address in host.findall("address"):
        if address.get("addrtype") == "ipv4":
            return address.get("addr", "")
    first = host.find("address")
    return first.get("addr", "") if first is not None else ""


def parse(xml: str, names: Mapping[str, str], source: str = "nmap") -> ParsedScan:
    """Parse nmap XML; `names` maps address -> the configured host name for asset naming."""
    text, complete = repair(xml)
    if not text:
        if re.search(r"<[A-Za-z]", xml):  # an element, but no <nmaprun>: some other file, not a scan cut short
            raise CollectError(f"{source}: not nmap XML (no <nmaprun> element); check the file is nmap -oX output")
        return ParsedScan(hosts=(), finished=(), timed_out=(), complete=False)
    try:
        dom = ET.fromstring(text)  # noqa: S314 - see the import
    except (ET.ParseError, RecursionError, ValueError) as exc:
        raise _unreadable(source, exc) from None
    if dom.tag != "nmaprun":
        raise CollectError(f"{source}: not nmap XML (the root element is <{shown(dom.tag, 40)}>, not <nmaprun>); "
                           "check the file is nmap -oX output")
    finished_element = dom.find("runstats/finished")
    error = finished_element.get("errormsg", "") if finished_element is not None else ""
    if error and not dom.findall("host"):
        raise CollectError(f"{source}: nmap stopped with its own error: {shown(error, 200)}")
    for port in dom.iter("port"):
        number = port.get("portid", "")
        if not (number.isascii() and number.isdigit() and 0 <= int(number) <= 65535):
            raise CollectError(f"{source}: nmap XML names port '{shown(number, 20)}', which is not a port number "
                               "(0-65535); the file is damaged or not nmap's")
    try:
        result: dict[str, Any] = nmap.PortScanner.analyse_nmap_xml_scan(
            _bare_scanner(), nmap_xml_output=text)
    except (ET.ParseError, nmap.PortScannerError, AttributeError, TypeError, ValueError, KeyError,
            IndexError, RecursionError) as exc:
        raise _unreadable(source, exc) from None
    hosts: list[Host] = []
    finished: list[str] = []
    timed_out: list[str] = []
    by_key = {host_key(h): h for h in dom.findall("host")}
    for address, data in result["scan"].items():
        element = by_key.get(address)
        if element is None:
            continue
        if element.get("timedout") == "true":
            timed_out.append(address)
            continue
        services: list[Service] = []
        for protocol in ("tcp", "udp", "sctp"):
            for port, info in sorted(data.get(protocol, {}).items()):
                port_element = element.find(f"ports/port[@protocol='{protocol}'][@portid='{port}']")
                service_element = port_element.find("service") if port_element is not None else None
                services.append(Service(
                    port=int(port), protocol=protocol, state=info.get("state", ""),
                    name=info.get("name", ""), product=info.get("product", ""),
                    version=info.get("version", ""), extrainfo=info.get("extrainfo", ""),
                    tunnel=service_element.get("tunnel", "") if service_element is not None else "",
                    cpes=tuple(c.text for c in service_element.findall("cpe") if c.text)
                    if service_element is not None else (),
                    scripts=_scripts(port_element),
                ))
        finished.append(address)
        hosts.append(Host(address=address, asset=names.get(address, address),
                          state=data.get("status", {}).get("state", "unknown"),
                          services=tuple(services), host_scripts=_scripts(element.find("hostscript"))))
    return ParsedScan(hosts=tuple(hosts), finished=tuple(finished), timed_out=tuple(timed_out),
                      complete=complete)


def _unreadable(source: str, exc: BaseException) -> CollectError:
    detail = shown(str(exc).splitlines()[0], 120) if str(exc) else exc.__class__.__name__
    return CollectError(f"{source}: nmap XML cannot be read ({detail}); "
                        "rerun the scan or check the file is complete nmap -oX output")


def _bare_scanner() -> nmap.PortScanner:
    # analyse_nmap_xml_scan needs an instance but not the `nmap -V` probe its __init__ runs
    # (which would cost a process start per parse and fail where nmap is not installed).
    scanner: nmap.PortScanner = nmap.PortScanner.__new__(nmap.PortScanner)
    scanner._scan_result = {}
    scanner._nmap_last_output = ""
    return scanner
