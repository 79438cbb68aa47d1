"""Reading an estate's Microsoft 365 evidence: ScubaGear's output folders or result files
(or Maester's, whose CISA tests are the same controls).

A configured path is a results file, a ScubaGear output folder (`M365BaselineConformance_<stamp>`)
or a folder of them: the newest results in it are read (ScubaResults_*.json, or ScubaResults.csv
where no JSON is there). Each tenant is one record; nothing is contacted.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from warpagent.evidence.folders import read_file
from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers import maester, scuba
from warpagent.model.tenant import ControlResult, TenantResults
from warpagent.text import capped

MAX_FILE_BYTES = 64 * 1024 * 1024  # a whole tenant's results with its raw export are ~2 MB
MAESTER_RESULTS = "TestResults-*.json"  # Invoke-Maester's (ScubaGear's own TestResults.json has no dash)
_RUN_FOLDER = re.compile(r"(\d{4})_(\d{2})_(\d{2})_(\d{2})_(\d{2})_(\d{2})$")


@dataclass(frozen=True)
class TenantEvidence:
    tenants: tuple[TenantResults, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...]


def tenant_asset(tenant: TenantResults) -> str:
    return f"Microsoft 365 tenant {tenant.domain}"


def _results_file(path: Path) -> Path | None:
    """The newest ScubaGear results under a path (a file, a run folder, or a folder of runs)."""
    if path.is_file():
        return path
    for pattern in ("ScubaResults*.json", "ScubaResults.csv", MAESTER_RESULTS):
        found = [p for p in path.rglob(pattern) if p.is_file() and not p.is_symlink()]
        if found:
            return max(found, key=lambda p: (p.stat().st_mtime, str(p)))
    return None


def _assessed(path: Path) -> dt.datetime:
    """A CSV's assessment time: its run folder's stamp, else the file's own time."""
    stamp = _RUN_FOLDER.search(path.parent.name)
    if stamp:
        year, month, day, hour, minute, second = (int(x) for x in stamp.groups())
        return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)


def _read(path: Path, *, configured: Path, known: tuple[str, ...]) -> TenantResults:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise EvidenceError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB: not ScubaGear's results")
    text = path.read_bytes().decode("utf-8-sig")
    if path.match(MAESTER_RESULTS):
        return scuba.with_unknown(maester.from_json(text, str(path)), known)
    if path.suffix.casefold() == ".json":
        results = scuba.from_json(text, str(path))
        if not results.domain:
            raise EvidenceError("MetaData.DomainName is empty: the tenant cannot be named")
        return scuba.with_unknown(results, known)
    # the CSV carries no tenant: it is named by the configured path, stable night after night
    results = scuba.from_csv(text, str(path), _assessed(path))
    return scuba.with_unknown(TenantResults(**{**results.__dict__, "domain": configured.name}), known)


def read(paths: Iterable[Path], now: dt.datetime, max_age: dt.timedelta,
         known: Iterable[str]) -> TenantEvidence:
    tenants: dict[str, TenantResults] = {}  # by tenant id (the CSV has none: by its name)
    names: dict[str, set[tuple[bool, str]]] = {}  # (from Maester, name): every name its results give it
    problems: list[str] = []
    notes: list[str] = []
    prefixes = tuple(known)
    for configured in paths:
        if not configured.exists():
            problems.append(f"{configured}: ScubaGear results not found; check the estate's 'm365' paths")
            continue
        path = _results_file(configured)
        if path is None:
            problems.append(f"{configured}: holds no ScubaResults*.json, ScubaResults.csv or Maester "
                            "TestResults-*.json; point 'm365' at ScubaGear's output folder")
            continue
        results = read_file(path, functools.partial(_read, configured=configured, known=prefixes),
                            "ScubaGear's results", problems)
        if results is None:
            continue
        if now - results.assessed > max_age:
            notes.append(f"{tenant_asset(results)}: ScubaGear's results are from {results.assessed:%Y-%m-%d}, older "
                         f"than {max_age.days} days; run ScubaGear again")
        if results.unknown:
            notes.append(capped(f"{tenant_asset(results)}: {len(results.unknown)} control(s) warpagent does not map "
                                f"yet, not judged: {', '.join(results.unknown)}"))
        measured = [c for c in results.controls if c.result is not ControlResult.NOT_MEASURED]
        notes.append(f"{tenant_asset(results)}: {len(results.controls) - len(measured)} of {len(results.controls)} "
                     "controls not measured by ScubaGear (manual, not implemented, third party or an error)")
        key = (results.tenant_id or results.domain).casefold()
        names.setdefault(key, set()).add((results.tool_version.startswith("Maester"), results.domain))
        earlier = tenants.get(key)
        if earlier is None or results.assessed > earlier.assessed:
            tenants[key] = results
    return TenantEvidence(tenants=tuple(replace(t, domain=_name(names[k])) for k, t in tenants.items()),
                          problems=tuple(problems), notes=tuple(notes))


def _name(names: set[tuple[bool, str]]) -> str:
    """One name for a tenant read from several tools' results, the same whichever tool ran last, so
    its findings keep their asset: ScubaGear's (the tenant's domain) before Maester's (its display name)."""
    return min(names)[1]
