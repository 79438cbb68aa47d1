"""The regional picture: what a WARP's members shared, aggregated so no member can be singled out.

Pure functions: STIX objects pulled from the hub in, a RegionalPicture out; no I/O, no clock.

- Each member is one pseudonymous identity. Its posture on a day is the set of posture objects
  (and sightings) of its latest share that day (their `modified`); a newer day replaces an older one.
- A snapshot at a moment takes each member's latest posture up to then. A member whose latest is
  older than `stale_after_days` is stale: listed, but left out of every count (never clean).
- k-anonymity: a figure "c of n members" is revealed only when each side of the split (the c
  members and the n - c others) is empty or at least k members. Otherwise it is withheld and
  shown as "fewer than k": a CVE three of four members have would otherwise tell a reader that
  the fourth, whom it may know, does not.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warpagent.model.findings import CATEGORIES
from warpagent.sharing import buckets
from warpagent.sharing.timestamps import parse_timestamp

KevLookup = Callable[[Iterable[str]], Mapping[str, tuple[bool, bool]]]  # CVE -> (in KEV, ransomware-linked)
TREND_POINTS = 6


def reveal(count: int, of: int, k: int) -> bool:
    """May "count of `of` members" be shown? Each side must be empty or hold at least k members."""
    rest = of - count
    return of >= k and (count == 0 or count >= k) and (rest == 0 or rest >= k)


@dataclass(frozen=True)
class Figure:
    """A count of members out of the members it was taken over; None where withheld."""

    count: int | None
    of: int | None

    @property
    def withheld(self) -> bool:
        return self.count is None

    @property
    def empty(self) -> bool:
        """No members to count at all (before anyone shared): nothing is hidden."""
        return self.count is None and self.of == 0

    @property
    def percent(self) -> int | None:
        if self.count is None or not self.of:
            return None
        return round(100 * self.count / self.of)

    def shown(self, k: int) -> str:
        """The figure as a page shows it: the count, "<k" where withheld, "no data" where no member
        measured (a month nobody measured is not a withheld figure)."""
        if self.empty:
            return "no data"
        return f"<{k}" if self.count is None else str(self.count)

    def as_dict(self) -> dict[str, Any]:
        if self.count is None:
            return {"count": None, "of": 0} if self.of == 0 else {"withheld": True}
        return {"count": self.count, "of": self.of}

    @staticmethod
    def from_dict(value: object) -> Figure:
        """A figure as published; anything else (withheld, missing, malformed) is withheld."""
        if isinstance(value, Mapping) and isinstance(value.get("count"), int) and isinstance(value.get("of"), int) \
                and 0 <= value["count"] <= value["of"]:
            return Figure(value["count"], value["of"])
        if isinstance(value, Mapping) and value.get("count") is None and value.get("of") == 0:
            return Figure(None, 0)
        return Figure(None, None)


def figure(count: int, of: int, k: int) -> Figure:
    """A revealed figure, or a withheld one; Figure(None, 0) says there were no members to count."""
    if of == 0:
        return Figure(None, 0)
    return Figure(count, of) if reveal(count, of, k) else Figure(None, None)


@dataclass(frozen=True)
class CategoryShare:
    measured: bool
    open_findings: str  # bucket
    past_due: str | None  # bucket; None from agents that do not share it


@dataclass(frozen=True)
class MemberPosture:
    """One member's shared posture on one day."""

    member: str  # identity id
    as_of: dt.date
    categories: Mapping[str, CategoryShare]
    cves: frozenset[str]
    software: frozenset[tuple[str, str]]  # (product, version); version "" when withheld


@dataclass(frozen=True)
class CategoryPicture:
    category: str
    measured: Figure  # members who measured the category, of the current members
    with_open: Figure  # members with open weaknesses, of those who measured it
    previous: Figure  # the same at the end of the month before
    change: int | None  # with_open minus previous, when both are revealed
    median_open: str | None  # the median member's open findings (bucket), when measured by k or more
    past_due: Figure  # members with findings past their deadlines, of those who share it
    trend: tuple[Figure, ...]  # with_open at each trend point, oldest first

    def trend_shown(self, k: int) -> list[str]:
        return [point.shown(k) for point in self.trend]


@dataclass(frozen=True)
class CveSpread:
    cve: str
    members: int
    kev: bool
    ransomware: bool = False


@dataclass(frozen=True)
class ProductSpread:
    product: str
    members: int
    versions: tuple[tuple[str, int], ...]  # (version, members), revealed ones only


@dataclass(frozen=True)
class MemberRow:
    member: str  # identity id
    label: str  # the identity's pseudonymous name
    as_of: dt.date
    stale: bool
    categories: tuple[tuple[str, str | None], ...]  # (category, open bucket or None when not measured)
    past_due: bool | None


@dataclass(frozen=True)
class RegionalPicture:
    title: str
    as_of: dt.date
    k: int
    stale_after_days: int
    members_total: int
    members_current: int
    stale: Figure
    past_due: Figure  # members with any finding past its deadline, of current members who share it
    categories: tuple[CategoryPicture, ...]
    trend_points: tuple[dt.date, ...]
    cves: tuple[CveSpread, ...]
    cves_withheld: int  # CVEs seen by too few (or too many but not all) members to name
    products: tuple[ProductSpread, ...]
    products_withheld: int
    members: tuple[MemberRow, ...]
    kev_known: bool  # the hub had CISA KEV data to flag CVEs with
    rejected: tuple[tuple[str, int], ...] = field(default=())  # (reason, objects) the hub refused lately


# --- from STIX objects to member postures -------------------------------------------------------

def _day(stamp: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(stamp)[:10])
    except ValueError:
        return None


def sealed_versions(objects: Iterable[Mapping[str, Any]]) -> dict[tuple[str, dt.date], set[tuple[str, str]]]:
    """(member, day) -> the (product, version) pairs the member sent to the hub's sealed versions
    collection that day, from its latest version of the day."""
    latest: dict[tuple[str, dt.date], Mapping[str, Any]] = {}
    for obj in objects:
        day, member = _day(obj.get("as_of")), obj.get("created_by_ref")
        if day and isinstance(member, str) and isinstance(obj.get("software"), list):
            held = latest.get((member, day))
            if held is None or _stamp(obj) > _stamp(held):
                latest[(member, day)] = obj
    return {key: {(str(s["product"]), str(s["version"])) for s in obj["software"]
                  if isinstance(s, dict) and s.get("product") and s.get("version")} for key, obj in latest.items()}


_NO_STAMP = dt.datetime.min.replace(tzinfo=dt.UTC)


def _stamp(obj: Mapping[str, Any]) -> dt.datetime:
    """An object's version as a moment (the same instant may be written with or without milliseconds)."""
    return parse_timestamp(obj.get("modified")) or _NO_STAMP


def member_postures(postures: Iterable[Mapping[str, Any]], sightings: Iterable[Mapping[str, Any]],
                    vulnerabilities: Iterable[Mapping[str, Any]],
                    sealed: Mapping[tuple[str, dt.date], set[tuple[str, str]]] | None = None) -> list[MemberPosture]:
    """Every (member, day) posture in the objects, from every version pulled; `sealed` adds the
    versions members sent the coordinator alone (counted like the rest, revealed only at k)."""
    by_day: dict[tuple[str, dt.date], dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for obj in postures:
        day = _day(obj.get("as_of"))
        member = obj.get("created_by_ref")
        if day is None or not isinstance(member, str) or obj.get("category") not in CATEGORIES:
            continue
        held = by_day[(member, day)].get(str(obj["category"]))
        if held is None or _stamp(obj) > _stamp(held):  # a later share the same day replaces an earlier one
            by_day[(member, day)][str(obj["category"])] = obj
    cve_of = {}
    for obj in vulnerabilities:
        for ref in obj.get("external_references", []):
            if isinstance(ref, dict) and ref.get("source_name") == "cve" and isinstance(ref.get("external_id"), str):
                cve_of[obj["id"]] = sys.intern(ref["external_id"])  # one string per CVE, however many sightings
    cves: dict[tuple[str, dt.datetime], set[str]] = defaultdict(set)  # by the share (version) they came in
    cves_of_day: dict[tuple[str, dt.date | None], set[str]] = defaultdict(set)
    for obj in sightings:
        member, cve = obj.get("created_by_ref"), cve_of.get(obj.get("sighting_of_ref"))
        if isinstance(member, str) and cve:
            cves[(member, _stamp(obj))].add(cve)
            cves_of_day[(member, _day(obj.get("modified")))].add(cve)
    out = []
    for (member, day), categories in by_day.items():
        shares = {c: CategoryShare(measured=bool(o.get("measured")), open_findings=str(o.get("open_findings", "0")),
                                   past_due=str(o["past_due"]) if "past_due" in o else None)
                  for c, o in categories.items()}
        software = {(str(s.get("product")), str(s.get("version", ""))) for o in categories.values()
                    for s in o.get("software", []) if isinstance(s, dict) and s.get("product")}
        software |= (sealed or {}).get((member, day), set())
        shared_at = max(_stamp(o) for o in categories.values())  # the day's latest share: its sightings
        seen = cves.get((member, shared_at), set()) if shared_at != _NO_STAMP else cves_of_day[(member, day)]
        out.append(MemberPosture(member=member, as_of=day, categories=shares, cves=frozenset(seen),
                                 software=frozenset(software)))
    return out


# --- snapshots and figures ---------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    current: tuple[MemberPosture, ...]
    stale: tuple[MemberPosture, ...]


def snapshot(history: Sequence[MemberPosture], at: dt.date, stale_after_days: int) -> Snapshot:
    latest: dict[str, MemberPosture] = {}
    for posture in history:
        if posture.as_of <= at and (posture.member not in latest or posture.as_of > latest[posture.member].as_of):
            latest[posture.member] = posture
    current = tuple(p for p in latest.values() if (at - p.as_of).days <= stale_after_days)
    stale = tuple(p for p in latest.values() if (at - p.as_of).days > stale_after_days)
    return Snapshot(current=current, stale=stale)


def _with_open(members: Sequence[MemberPosture], category: str, k: int) -> Figure:
    measured = [m for m in members if m.categories.get(category, CategoryShare(False, "0", None)).measured]
    count = sum(1 for m in measured if m.categories[category].open_findings != "0")
    return figure(count, len(measured), k)


def month_end_before(day: dt.date) -> dt.date:
    return day.replace(day=1) - dt.timedelta(days=1)


def trend_points(as_of: dt.date) -> tuple[dt.date, ...]:
    """The ends of the months before as_of, oldest first, then as_of itself."""
    points = [as_of]
    for _ in range(TREND_POINTS - 1):
        points.insert(0, month_end_before(points[0]))
    return tuple(points)


def _category(category: str, now: Snapshot, before: Snapshot, trend: Sequence[Snapshot], k: int) -> CategoryPicture:
    current = now.current
    measured = [m for m in current if m.categories.get(category, CategoryShare(False, "0", None)).measured]
    with_open = _with_open(current, category, k)
    previous = _with_open(before.current, category, k)
    change = None if with_open.count is None or previous.count is None else with_open.count - previous.count
    median = None
    if len(measured) >= k:
        median = buckets.median(m.categories[category].open_findings for m in measured)
    sharing_due = [m for m in measured if m.categories[category].past_due is not None]
    past_due = figure(sum(1 for m in sharing_due if m.categories[category].past_due != "0"), len(sharing_due), k)
    return CategoryPicture(category=category, measured=figure(len(measured), len(current), k), with_open=with_open,
                           previous=previous, change=change, median_open=median, past_due=past_due,
                           trend=tuple(_with_open(s.current, category, k) for s in trend))


def build(history: Sequence[MemberPosture], *, title: str, as_of: dt.date, k: int, stale_after_days: int,
          labels: Mapping[str, str], kev: KevLookup | None = None,
          rejected: Sequence[tuple[str, int]] = (), top: int = 15) -> RegionalPicture:
    """The regional picture as of a day. `kev` maps CVEs to (in KEV, ransomware-linked), when known."""
    now = snapshot(history, as_of, stale_after_days)
    before = snapshot(history, month_end_before(as_of), stale_after_days)
    points = trend_points(as_of)
    trend = [snapshot(history, point, stale_after_days) for point in points]
    current = now.current
    everyone = len(current) + len(now.stale)

    cve_members: dict[str, int] = defaultdict(int)
    for member in current:
        for cve in member.cves:
            cve_members[cve] += 1
    shown = {cve: n for cve, n in cve_members.items() if reveal(n, len(current), k)}
    flags = dict(kev(shown)) if kev is not None else {}
    cves = sorted((CveSpread(cve=c, members=n, kev=flags.get(c, (False, False))[0],
                             ransomware=flags.get(c, (False, False))[1]) for c, n in shown.items()),
                  key=lambda s: (not s.kev, not s.ransomware, -s.members, s.cve))

    product_members: dict[str, int] = defaultdict(int)
    version_members: dict[tuple[str, str], int] = defaultdict(int)
    for member in current:
        for product in {p for p, _v in member.software}:
            product_members[product] += 1
        for product, version in member.software:
            if version:
                version_members[(product, version)] += 1
    products = sorted((ProductSpread(product=p, members=n, versions=tuple(sorted(
        ((v, m) for (pp, v), m in version_members.items() if pp == p and reveal(m, len(current), k)),
        key=lambda item: (-item[1], item[0]))))
        for p, n in product_members.items() if reveal(n, len(current), k)), key=lambda s: (-s.members, s.product))

    sharing_due = [m for m in current if any(c.past_due is not None for c in m.categories.values())]
    any_due = sum(1 for m in sharing_due if any(c.past_due not in (None, "0") for c in m.categories.values()))

    rows = sorted((MemberRow(member=m.member, label=labels.get(m.member, m.member), as_of=m.as_of,
                             stale=m in now.stale,
                             categories=tuple((c, m.categories[c].open_findings
                                               if c in m.categories and m.categories[c].measured else None)
                                              for c in CATEGORIES),
                             past_due=None if not any(c.past_due is not None for c in m.categories.values())
                             else any(c.past_due not in (None, "0") for c in m.categories.values()))
                   for m in (*current, *now.stale)), key=lambda r: (r.stale, r.label))
    return RegionalPicture(
        title=title, as_of=as_of, k=k, stale_after_days=stale_after_days, members_total=everyone,
        members_current=len(current), stale=figure(len(now.stale), everyone, k),
        past_due=figure(any_due, len(sharing_due), k),
        categories=tuple(_category(c, now, before, trend, k) for c in CATEGORIES), trend_points=points,
        cves=tuple(cves[:top]), cves_withheld=len(cve_members) - len(shown),
        products=tuple(products[:top]), products_withheld=len(product_members) - sum(
            1 for n in product_members.values() if reveal(n, len(current), k)),
        members=tuple(rows), kev_known=kev is not None, rejected=tuple(rejected))
