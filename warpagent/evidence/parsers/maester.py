"""Maester's results (`TestResults-<stamp>.json`, from `Invoke-Maester`): its CISA tests
(`CISA.MS.AAD.7.1`, zero-padded in places: `CISA.MS.EXO.03.1`) read as the ScubaGear controls
they implement, so one mapping judges both. Maester's own and other suites' tests (MT.*,
EIDSCA.*, ORCA.*, CIS.*) are not read.

Maester names no baseline version: a control id is the policy alone (`MS.EXO.3.1`). Its test
titles carry the baseline's SHALL or SHOULD; Passed and Failed are results, anything else
(Skipped, Error, NotRun, Investigate) is not measured.
"""

from __future__ import annotations

import json
import re
from typing import Any

from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers.backups import timestamp
from warpagent.evidence.parsers.scuba import plain
from warpagent.model.tenant import ControlResult, TenantControl, TenantResults

_CISA_ID = re.compile(r"^CISA\.(MS\.[A-Z][A-Z0-9]{1,20})\.(\d{1,3})\.(\d{1,3})$")


def is_maester(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("Tests"), list) and "ExecutedAt" in data


def control_id(maester_id: str) -> str:
    """"CISA.MS.EXO.03.1" -> "MS.EXO.3.1"; "" when it is not one of the CISA tests."""
    match = _CISA_ID.match(maester_id.strip())
    return f"{match[1]}.{int(match[2])}.{int(match[3])}" if match else ""


def _control(test: dict[str, Any]) -> TenantControl | None:
    found = control_id(str(test.get("Id") or ""))
    if not found:
        return None
    title = plain(test.get("Title"))
    shall = " SHALL" in f" {title}"
    result = test.get("Result")
    if result == "Passed":
        outcome = ControlResult.PASS
    elif result == "Failed":
        outcome = ControlResult.FAIL if shall else ControlResult.WARNING
    else:
        outcome = ControlResult.NOT_MEASURED
    detail: dict[str, Any] = test["ResultDetail"] if isinstance(test.get("ResultDetail"), dict) else {}
    said = detail.get("TestResult") if outcome is not ControlResult.NOT_MEASURED else detail.get("SkippedReason")
    return TenantControl(control_id=found, product=found.split(".")[1], result=outcome, shall=shall,
                         requirement=title, details=plain(said))


def from_json(text: str, source: str) -> TenantResults:
    try:
        data = json.loads(text.removeprefix("\ufeff"))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise EvidenceError(f"not JSON ({exc.__class__.__name__})") from None
    if not is_maester(data):
        raise EvidenceError("not Maester's results: no Tests and ExecutedAt")
    controls = [c for t in data["Tests"] if isinstance(t, dict) and (c := _control(t)) is not None]
    name = str(data.get("TenantName") or data.get("TenantId") or "")[:255]
    stamp = data.get("ExecutedAt")
    return TenantResults(tenant_id=str(data.get("TenantId") or "")[:64], domain=name, display_name=name,
                         assessed=timestamp(stamp if isinstance(stamp, str) else "", "ExecutedAt"),
                         tool_version=f"Maester {str(data.get('CurrentVersion') or '')[:20]}",
                         controls=tuple(controls), source=source)
