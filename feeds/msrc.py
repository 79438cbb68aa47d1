"""Microsoft's monthly security update documents (MSRC CVRF), read into the Windows builds each
month's update brings.

One document a month (`cvrfDocument-2026-Mar.xml`, or the API's JSON form of it). From each:
the Patch Tuesday date (DocumentTracking/InitialReleaseDate), the products (FullProductName
and ProductID, and whether a product sits in the ESU family), and per vulnerability the Vendor
Fix remediations: KB, SubType and FixedBuild ("10.0.22631.6783") per product, with the Exploit
Status threat ("Exploited:Yes").

Only Windows itself is kept: a product named "Windows 10/11 ..." or "Windows Server ..." whose
fix names a 10.0 build. A record is one fix for one (build, client or server) line in one
month; `feeds.windows` turns a line's records into its monthly ladder.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feeds.model import FeedError, WindowsUpdate

_NS = {"cvrf": "http://www.icasi.org/CVRF/schema/cvrf/1.1", "prod": "http://www.icasi.org/CVRF/schema/prod/1.1",
       "vuln": "http://www.icasi.org/CVRF/schema/vuln/1.1"}
_BUILD = re.compile(r"^10\.0\.(\d{4,6})\.(\d{1,6})$")
_KB = re.compile(r"^(?:KB)?(\d{6,8})$")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,7}$")
_MONTH_ID = re.compile(r"^(\d{4})-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WINDOWS = re.compile(r"^Windows (?:10|11|Server)\b", re.IGNORECASE)
# the kinds of fix that carry a build: a cumulative update moves a line to its UBR; a hotpatch
# (or a security-only update) reaches a lower UBR on its own track, judged apart
CUMULATIVE = frozenset({"security update", "monthly rollup"})
PARTIAL = frozenset({"security hotpatch update", "security only"})
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024  # the largest real month is ~4 MB

# the API's JSON form numbers what the XML names
_JSON_VENDOR_FIX = 2
_JSON_EXPLOIT_STATUS = 1


@dataclass
class _Fix:
    kb: str
    subtype: str
    build: str
    products: tuple[str, ...]


@dataclass
class _Document:
    month_id: str = ""
    released: str = ""
    products: dict[str, str] = field(default_factory=dict)
    esu: set[str] = field(default_factory=set)
    # (cve, exploited, fixes)
    vulnerabilities: list[tuple[str, bool, list[_Fix]]] = field(default_factory=list)


def month_of(month_id: str) -> str:
    """"2026-Mar" -> "2026-03"; FeedError for anything else."""
    match = _MONTH_ID.match(month_id)
    if not match:
        raise FeedError(f"document id {month_id[:40]!r} is not a month such as 2026-Mar")
    return f"{match[1]}-{_MONTHS.index(match[2]) + 1:02d}"


def month_ids(today: dt.date, count: int) -> list[str]:
    """The `count` most recent months whose documents are out by `today`, oldest first. Patch
    Tuesday falls on the 8th to the 14th: this month counts from the 15th."""
    year, month = today.year, today.month
    if today.day < 15:
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    found = []
    for _ in range(count):
        found.append(f"{year}-{_MONTHS[month - 1]}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return found[::-1]


def _text(element: ET.Element | None, path: str) -> str:
    if element is None:
        return ""
    return (element.findtext(path, default="", namespaces=_NS) or "").strip()


def _exploited(description: str) -> bool:
    return any(part.strip().casefold() == "exploited:yes" for part in description.split(";"))


def _from_xml(root: ET.Element) -> _Document:
    if root.tag != f"{{{_NS['cvrf']}}}cvrfdoc":
        raise FeedError("not a CVRF document (the root element is not cvrf:cvrfdoc)")
    doc = _Document(month_id=_text(root, "cvrf:DocumentTracking/cvrf:Identification/cvrf:ID"),
                    released=_text(root, "cvrf:DocumentTracking/cvrf:InitialReleaseDate"))
    tree = root.find("prod:ProductTree", _NS)
    if tree is not None:
        for product in tree.iter(f"{{{_NS['prod']}}}FullProductName"):
            doc.products[product.get("ProductID", "")] = (product.text or "").strip()
        for branch in tree.iter(f"{{{_NS['prod']}}}Branch"):
            if branch.get("Type") == "Product Family" and branch.get("Name") == "ESU":
                doc.esu |= {p.get("ProductID", "") for p in branch.iter(f"{{{_NS['prod']}}}FullProductName")}
    for vulnerability in root.iterfind("vuln:Vulnerability", _NS):
        exploited = any(_exploited(_text(t, "vuln:Description"))
                        for t in vulnerability.iterfind("vuln:Threats/vuln:Threat", _NS)
                        if t.get("Type") == "Exploit Status")
        fixes = [_Fix(kb=_text(r, "vuln:Description"), subtype=_text(r, "vuln:SubType"),
                      build=_text(r, "vuln:FixedBuild"),
                      products=tuple((p.text or "").strip() for p in r.iterfind("vuln:ProductID", _NS)))
                 for r in vulnerability.iterfind("vuln:Remediations/vuln:Remediation", _NS)
                 if r.get("Type") == "Vendor Fix"]
        doc.vulnerabilities.append((_text(vulnerability, "vuln:CVE"), exploited, fixes))
    return doc


def _value(node: Any) -> str:
    """A JSON text that may be given bare or as {"Value": text}."""
    if isinstance(node, dict):
        node = node.get("Value", "")
    return node.strip() if isinstance(node, str) else ""


def _listed(node: Any) -> list[Any]:
    return node if isinstance(node, list) else []


def _json_branches(node: Any, esu: bool, doc: _Document) -> None:
    """The product tree's branches, however deep: the ESU family's product ids."""
    for branch in _listed(node):
        if not isinstance(branch, dict):
            continue
        inside = esu or (branch.get("Name") == "ESU")
        for item in _listed(branch.get("Items")) + _listed(branch.get("FullProductName")):
            if isinstance(item, dict) and "ProductID" in item and inside:
                doc.esu.add(_value(item.get("ProductID")))
        _json_branches(branch.get("Items"), inside, doc)
        _json_branches(branch.get("Branch"), inside, doc)


def _from_json(data: Any) -> _Document:
    if not isinstance(data, dict) or not isinstance(data.get("DocumentTracking"), dict):
        raise FeedError("not a CVRF document (no DocumentTracking)")
    tracking = data["DocumentTracking"]
    identification = tracking.get("Identification")
    doc = _Document(month_id=_value(identification.get("ID")) if isinstance(identification, dict) else "",
                    released=_value(tracking.get("InitialReleaseDate")))
    tree: dict[str, Any] = data["ProductTree"] if isinstance(data.get("ProductTree"), dict) else {}
    for product in _listed(tree.get("FullProductName")):
        if isinstance(product, dict):
            doc.products[_value(product.get("ProductID"))] = _value(product)
    _json_branches(tree.get("Branch"), False, doc)
    for vulnerability in _listed(data.get("Vulnerability")):
        if not isinstance(vulnerability, dict):
            continue
        exploited = any(isinstance(t, dict) and t.get("Type") == _JSON_EXPLOIT_STATUS
                        and _exploited(_value(t.get("Description"))) for t in _listed(vulnerability.get("Threats")))
        fixes = [_Fix(kb=_value(r.get("Description")), subtype=_value(r.get("SubType")),
                      build=_value(r.get("FixedBuild")),
                      products=tuple(_value(p) for p in _listed(r.get("ProductID"))))
                 for r in _listed(vulnerability.get("Remediations"))
                 if isinstance(r, dict) and r.get("Type") == _JSON_VENDOR_FIX]
        doc.vulnerabilities.append((_value(vulnerability.get("CVE")), exploited, fixes))
    return doc


def _kind(subtype: str) -> str:
    lowered = subtype.casefold()
    return "cumulative" if lowered in CUMULATIVE else "partial" if lowered in PARTIAL else ""


def _records(doc: _Document) -> Iterator[WindowsUpdate]:
    month = month_of(doc.month_id)
    try:
        released = dt.datetime.fromisoformat(doc.released.replace("Z", "+00:00")).date()
    except ValueError:
        raise FeedError(f"{doc.month_id}: InitialReleaseDate {doc.released[:40]!r} is not a date") from None
    # (build, server, ubr, kb, kind) -> product names, CVEs, exploited CVEs, ESU
    found: dict[tuple[int, bool, int, str, str], tuple[set[str], set[str], set[str], list[bool]]] = defaultdict(
        lambda: (set(), set(), set(), []))
    for cve, exploited, fixes in doc.vulnerabilities:
        if not _CVE.match(cve):
            continue
        for fix in fixes:
            build, kb, kind = _BUILD.match(fix.build), _KB.match(fix.kb), _kind(fix.subtype)
            if not (build and kb and kind):
                continue  # "Release Notes" in place of a KB, a build of another product, an unknown kind
            for product_id in fix.products:
                name = doc.products.get(product_id, "")
                if not _WINDOWS.match(name):
                    continue
                key = (int(build[1]), "server" in name.casefold(), int(build[2]), kb[1], kind)
                products, cves, exploited_cves, esu = found[key]
                products.add(name)
                cves.add(cve)
                if exploited:
                    exploited_cves.add(cve)
                esu.append(product_id in doc.esu)
    for (build_number, server, ubr, kb_number, kind), (products, cves, exploited_cves, esu) in sorted(found.items()):
        yield WindowsUpdate(month=month, released=released, build=build_number, server=server, ubr=ubr, kb=kb_number,
                            kind=kind, esu=all(esu), product=min(products), cves=tuple(sorted(cves)),
                            exploited=tuple(sorted(exploited_cves)))


def read(data: bytes) -> list[WindowsUpdate]:
    """One document's Windows updates, from its XML or JSON form."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise FeedError(f"larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB: not a monthly document")
    data = data.removeprefix(b"\xef\xbb\xbf")  # some months' XML (2023-Jan, Feb, Mar) and JSON begin with a BOM
    if data.lstrip()[:1] == b"{":
        try:
            doc = _from_json(json.loads(data.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FeedError(f"not JSON ({exc.__class__.__name__})") from None
    else:
        try:
            # expat resolves no external entities, and the expat Python ships (2.4.1 and later)
            # refuses billion-laughs expansion: a hostile document is a ParseError
            doc = _from_xml(ET.fromstring(data))  # noqa: S314
        except ET.ParseError as exc:
            raise FeedError(f"not XML ({exc})") from None
    return list(_records(doc))


def load(path: Path) -> list[WindowsUpdate]:
    try:
        return read(path.read_bytes())
    except FeedError as exc:
        raise FeedError(f"{path}: {exc}") from None
