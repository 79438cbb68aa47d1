"""CISA Known Exploited Vulnerabilities: the catalog JSON exactly as CISA serves it."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from feeds.model import FeedError, KevEntry

_CVE = re.compile(r"^CVE-\d{4}-\d{4,19}$")


def load(path: Path) -> tuple[str, list[KevEntry]]:
    """(catalogVersion, entries). A catalog whose count disagrees with its entries is truncated."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise FeedError(f"{path}: not a readable KEV catalog ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("vulnerabilities"), list):
        raise FeedError(f"{path}: not a KEV catalog (no 'vulnerabilities' list)")
    items = data["vulnerabilities"]
    if isinstance(data.get("count"), int) and data["count"] != len(items):
        raise FeedError(f"{path}: says {data['count']} entries but holds {len(items)}; the download "
                        "looks truncated")
    entries = []
    for index, item in enumerate(items):
        where = f"{path}: vulnerabilities[{index}]"
        try:
            cve = item["cveID"]
            if not _CVE.match(cve):
                raise ValueError(f"cveID {cve!r} is not a CVE id")
            entries.append(KevEntry(
                cve=cve, vendor=item.get("vendorProject", ""), product=item.get("product", ""),
                name=item.get("vulnerabilityName", ""), date_added=dt.date.fromisoformat(item["dateAdded"]),
                due_date=dt.date.fromisoformat(item["dueDate"]),
                ransomware=item.get("knownRansomwareCampaignUse", "").strip().lower() == "known",
                action=item.get("requiredAction", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise FeedError(f"{where}: {exc.__class__.__name__}: {exc}") from None
    return str(data.get("catalogVersion", "")), entries
