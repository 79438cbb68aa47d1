"""NVD CVE API 2.0 JSON: an API response page, or a yearly bulk file (same shape, often gzipped)."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from feeds.model import CveRecord, FeedError

# NVD scores a CVE with several CVSS versions; the newest version NVD itself (Primary) gave wins.
_METRICS = (("cvssMetricV40", "4.0"), ("cvssMetricV31", "3.1"), ("cvssMetricV30", "3.0"), ("cvssMetricV2", "2.0"))


def read_json(path: Path, what: str) -> Any:
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return json.loads(raw)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError) as exc:
        raise FeedError(f"{path}: not a readable {what} ({exc}); the file may be truncated") from None


def _score(metrics: Mapping[str, Any]) -> tuple[float | None, str, str]:
    for key, version in _METRICS:
        entries = metrics.get(key) or []
        ranked = sorted(entries, key=lambda e: e.get("type") != "Primary")
        for entry in ranked:
            data = entry.get("cvssData", {})
            score = data.get("baseScore")
            if isinstance(score, (int, float)):
                severity = data.get("baseSeverity") or entry.get("baseSeverity") or ""
                return float(score), version, str(severity).lower()
    return None, "", ""


def parse_cve(item: Mapping[str, Any]) -> CveRecord | None:
    """One 'cve' object; None for a rejected CVE."""
    if item.get("vulnStatus") == "Rejected":
        return None
    cve_id = item["id"]
    if not isinstance(cve_id, str) or not cve_id.startswith("CVE-"):
        raise ValueError(f"id {cve_id!r} is not a CVE id")
    description = next((d.get("value", "") for d in item.get("descriptions", ()) if d.get("lang") == "en"), "")
    cvss, version, severity = _score(item.get("metrics") or {})
    configurations = item.get("configurations") or []
    if not isinstance(configurations, list) or not all(
            isinstance(c, dict) and isinstance(c.get("nodes", []), list)
            and all(isinstance(n, dict) and isinstance(n.get("cpeMatch", []), list)
                    and all(isinstance(m, dict) for m in n.get("cpeMatch", [])) for n in c.get("nodes", []))
            for c in configurations):
        raise ValueError("configurations is not a list of {nodes: [{cpeMatch: [...]}]} as NVD writes it")
    return CveRecord(id=cve_id, published=str(item.get("published", ""))[:10], description=description,
                     cvss=cvss, cvss_version=version, severity=severity, configurations=tuple(configurations))


def load(path: Path) -> list[CveRecord]:
    data = read_json(path, "NVD CVE JSON 2.0 file")
    if not isinstance(data, dict) or not isinstance(data.get("vulnerabilities"), list):
        raise FeedError(f"{path}: not NVD CVE JSON 2.0 (no 'vulnerabilities' list)")
    items = data["vulnerabilities"]
    expected = data.get("resultsPerPage")
    if isinstance(expected, int) and expected != len(items):
        raise FeedError(f"{path}: says {expected} results but holds {len(items)}; the file looks truncated")
    records = []
    for index, wrapper in enumerate(items):
        try:
            record = parse_cve(wrapper["cve"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FeedError(f"{path}: vulnerabilities[{index}]: {exc.__class__.__name__}: {exc}") from None
        if record is not None:
            records.append(record)
    return records
