"""ScubaGear's results (CISA's Microsoft 365 assessor): `ScubaResults_<uuid>.json` (named
`ScubaResults.json` before 1.5), or `ScubaResults.csv` where the JSON is absent. Both begin
with a byte-order mark.

The JSON holds MetaData (TenantId, DomainName, DisplayName, TimestampZulu, ToolVersion) and
Results: per product key, groups of Controls, each with `Control ID`, `Result`, `Criticality`
and HTML `Details`; from 1.6 the omitted and incorrect-result fields, from 1.7 Comments and
ResolutionDate. Unknown products are read like the rest; what a result means is decided here
once (`ControlResult`), so no check reads ScubaGear's strings.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import html.parser
import io
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers.backups import timestamp
from warpagent.model.tenant import ControlResult, TenantControl, TenantResults

_CONTROL_ID = re.compile(r"^MS\.[A-Z][A-Z0-9]{1,20}\.\d{1,3}\.\d{1,3}v\d{1,3}$")
_RESULTS = {"pass": ControlResult.PASS, "fail": ControlResult.FAIL, "warning": ControlResult.WARNING,
            "n/a": ControlResult.NOT_MEASURED, "omitted": ControlResult.OMITTED,
            "incorrect result": ControlResult.INCORRECT}
MAX_TEXT = 2000


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style") or (tag == "div" and ("class", "policy-indicators") in attrs):
            self.skip += 1
        elif tag == "br":
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if self.skip and tag in ("script", "style", "div"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def plain(text: object) -> str:
    """ScubaGear's HTML as one line of text (its policy indicators and any script left out)."""
    if not isinstance(text, str):
        return ""
    parser = _Text()
    parser.feed(text[:20 * MAX_TEXT])
    parser.close()
    return " ".join(html.unescape("".join(parser.parts)).split())[:MAX_TEXT]


def result_of(text: object) -> ControlResult:
    """Pass, Fail, Warning; N/A and any Error ("Error - Test results missing") are not measured."""
    value = text.strip().casefold() if isinstance(text, str) else ""
    return _RESULTS.get(value, ControlResult.NOT_MEASURED)


def _comment(value: object) -> str:
    if isinstance(value, list):
        return plain("; ".join(v for v in value if isinstance(v, str)))
    return "" if value in ("System.Object[]", "N/A") else plain(value)


def _date(value: object) -> dt.date | None:
    if not isinstance(value, str) or not value.strip() or value.strip() == "N/A":
        return None
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def _control(row: Mapping[str, Any], product: str, where: str) -> TenantControl:
    control_id = row.get("Control ID")
    if not isinstance(control_id, str) or not _CONTROL_ID.match(control_id.strip()):
        raise EvidenceError(f"{where}: 'Control ID' {str(control_id)[:40]!r} is not a control id such as MS.AAD.7.1v1")
    result = result_of(row.get("Result"))
    would_be = None
    if result is ControlResult.OMITTED:
        would_be = result_of(row.get("OmittedEvaluationResult"))
    elif result is ControlResult.INCORRECT:
        would_be = result_of(row.get("IncorrectResult"))
    criticality = row.get("Criticality") if isinstance(row.get("Criticality"), str) else ""
    return TenantControl(control_id=control_id.strip(), product=product, result=result,
                         shall=str(criticality).split("/")[0].strip().casefold() == "shall",
                         requirement=plain(row.get("Requirement")), details=plain(row.get("Details")),
                         would_be=would_be, comment=_comment(row.get("Comments")),
                         until=_date(row.get("ResolutionDate")))


def _product_of(control_id: str) -> str:
    return control_id.split(".")[1]


def from_json(text: str, source: str) -> TenantResults:
    try:
        data = json.loads(text.removeprefix("\ufeff"))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise EvidenceError(f"not JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("MetaData"), dict) or not isinstance(
            data.get("Results"), dict):
        raise EvidenceError("not ScubaGear results: no MetaData and Results")
    meta = data["MetaData"]
    controls = []
    for product, groups in data["Results"].items():
        for group in groups if isinstance(groups, list) else []:
            rows = group.get("Controls") if isinstance(group, dict) else None
            for row in rows if isinstance(rows, list) else []:
                if not isinstance(row, dict):
                    raise EvidenceError(f"Results.{str(product)[:20]}: a control that is not an object")
                controls.append(_control(row, str(product)[:30], f"Results.{str(product)[:20]}"))
    stamp = meta.get("TimestampZulu")
    return TenantResults(
        tenant_id=str(meta.get("TenantId") or "")[:64], domain=str(meta.get("DomainName") or "")[:255],
        display_name=str(meta.get("DisplayName") or "")[:255],
        assessed=timestamp(stamp if isinstance(stamp, str) else "", "MetaData.TimestampZulu"),
        tool_version=str(meta.get("ToolVersion") or "")[:20], controls=tuple(controls), source=source)


def from_csv(text: str, source: str, assessed: dt.datetime) -> TenantResults:
    """ScubaResults.csv: the same controls, without the tenant's MetaData (the caller names it)."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    missing = [c for c in ("Control ID", "Result", "Criticality", "Details") if c not in (reader.fieldnames or ())]
    if missing:
        raise EvidenceError(f"line 1: not ScubaGear's ScubaResults.csv: missing column(s) {', '.join(missing)}")
    controls = [_control(row, _product_of(str(row.get("Control ID") or "x.x")), f"line {reader.line_num}")
                for row in reader]
    return TenantResults(tenant_id="", domain="", display_name="", assessed=assessed, tool_version="",
                         controls=tuple(controls), source=source)


def with_unknown(results: TenantResults, known: Iterable[str]) -> TenantResults:
    """The results with the control ids no mapping covers named (by prefix, without the version)."""
    prefixes = tuple(known)
    unknown = tuple(sorted({c.control_id for c in results.controls
                            if not any(c.policy == p or c.policy.startswith(p + ".") for p in prefixes)}))
    return TenantResults(**{**results.__dict__, "unknown": unknown})
