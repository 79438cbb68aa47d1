"""A shared posture and the regional picture in words and numbers, for STIX `note` objects.

MISP and OpenCTI drop custom SDOs, `x_` properties and extensions, so a coordinator reading a
member's bundle in either would see nothing of its posture. Each figure a person needs travels
again here, as text in standard objects those tools import; the custom SDOs stay for machines.
The words come only from buckets, counts, dates, check ids and product names already in the
bundle, so they can say nothing the anonymised posture does not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from warpagent.model.findings import CATEGORY_NAMES
from warpagent.sharing.anonymise import CategoryPosture, SoftwareSeen
from warpagent.sharing.buckets import words as bucket
from warpagent.sharing.regional import CategoryPicture, CveSpread, Figure, ProductSpread


def _name(category: str) -> str:
    return f"{CATEGORY_NAMES.get(category, category)} ({category})"


def member_category(cat: CategoryPosture, as_of: dt.date, software: list[SoftwareSeen],
                    check_names: Mapping[str, str]) -> tuple[str, str]:
    """(abstract, content) of one member's posture in one category."""
    name = _name(cat.category)
    if not cat.measured:
        return (f"{name}: not measured",
                f"{name} on {as_of}: not measured. No check of this category ran, so no count is given "
                "and none should be read as zero.")
    lines = [f"{name} on {as_of}: measured.",
             f"Open findings: {bucket(cat.open_findings)}."]
    if cat.by_severity:
        lines.append("By severity: " + "; ".join(f"{sev} {bucket(b)}" for sev, b in cat.by_severity) + ".")
    lines.append(f"Open findings past the member's deadlines (CISA KEV, critical, high): {bucket(cat.past_due)}.")
    lines.append(f"Accepted risks and false positives, not counted as open: {bucket(cat.decided)}.")
    lines.append(f"Oldest open finding first seen on {cat.oldest_open}." if cat.oldest_open else "No open finding.")
    for check in cat.checks:
        label = f"{check.check_id} {check_names[check.check_id]}" if check.check_id in check_names else check.check_id
        lines.append(f"Check {label} (worst severity {check.severity.label}): {bucket(check.findings)} "
                     f"open findings on {bucket(check.assets)} assets.")
    if software:
        named = [f"{s.product} {s.version}" if s.version else f"{s.product} (version withheld: rare)" for s in software]
        lines.append("Software behind these findings: " + ", ".join(named) + ".")
    return f"{name}: {bucket(cat.open_findings)} open findings", "\n".join(lines)


def figure(value: Figure, what: str) -> str:
    if value.count is None:
        return f"{what}: withheld (fewer than k members on one side)"
    return f"{what}: {value.count} of {value.of}"


def regional_category(cat: CategoryPicture, as_of: dt.date, k: int) -> tuple[str, str]:
    """(abstract, content) of the region's picture in one category."""
    name = _name(cat.category)
    lines = [f"{name}, regional picture on {as_of} (counts of members; k = {k}).",
             figure(cat.measured, "Members who measured it, of current members") + ".",
             figure(cat.with_open, "Members with open findings, of those who measured it") + ".",
             figure(cat.previous, "The same at the end of the month before") + "."]
    if cat.change is not None:
        lines.append(f"Change since then: {cat.change:+d} members.")
    if cat.median_open is not None:
        lines.append(f"The median member's open findings: {bucket(cat.median_open)}.")
    lines.append(figure(cat.past_due, "Members with findings past their deadlines, of those who share it") + ".")
    abstract = (f"{name}: {cat.with_open.count} of {cat.with_open.of} members with open findings"
                if cat.with_open.count is not None else f"{name}: member counts withheld")
    return abstract, "\n".join(lines)


def regional_cve(cve: CveSpread) -> str:
    flags = [w for w, on in (("in CISA KEV", cve.kev), ("used in ransomware campaigns", cve.ransomware)) if on]
    return f"{cve.cve} seen by {cve.members} members" + (f" ({', '.join(flags)})" if flags else "") + "."


def regional_products(products: tuple[ProductSpread, ...], withheld: int) -> str:
    lines = [f"{p.product}: {p.members} members" + (
        " (" + ", ".join(f"{v}: {n}" for v, n in p.versions) + ")" if p.versions else "") + "." for p in products]
    if withheld:
        lines.append(f"{withheld} products withheld (seen by too few members to name).")
    return "\n".join(lines) or "No product is seen by enough members to name."
