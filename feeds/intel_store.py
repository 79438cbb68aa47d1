"""The compiled intel store: one SQLite file built at update time, indexed for matching.

Built whole into a temporary file beside the live one and swapped in with an atomic rename,
so a failed or interrupted update leaves the previous intel in use. Reading it is `IntelStore`,
the implementation of `feeds.model.Intel` that the checks use.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from feeds import aliases, applicability, cpe, eol_store, versions, windows, windows_store
from feeds.model import (
    CveFacts,
    CveMatch,
    CveRecord,
    DistroBuild,
    DistroFix,
    DistroMatch,
    EolCycle,
    EolProduct,
    EolVerdict,
    EpssScore,
    FeedError,
    KevEntry,
    Month,
    OsRelease,
    SourceStatus,
    SupportEnded,
    WindowsUpdate,
)

FORMAT = 4  # 2: sources say when the bundled snapshot is in use; 3: distribution builds; 4: Windows updates

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (source TEXT PRIMARY KEY, updated TEXT NOT NULL, records INTEGER NOT NULL, detail TEXT NOT NULL,
                      bundled TEXT);
CREATE TABLE cve (id TEXT PRIMARY KEY, cvss REAL, severity TEXT NOT NULL, published TEXT NOT NULL,
                  description TEXT NOT NULL, configurations TEXT NOT NULL);
CREATE TABLE nvd_product (vendor TEXT NOT NULL, product TEXT NOT NULL, cve TEXT NOT NULL);
CREATE TABLE kev (cve TEXT PRIMARY KEY, vendor TEXT, product TEXT, name TEXT, date_added TEXT, due_date TEXT,
                  ransomware INTEGER, action TEXT);
CREATE TABLE epss (cve TEXT PRIMARY KEY, score REAL NOT NULL, percentile REAL NOT NULL);
CREATE TABLE distro_fix (ecosystem TEXT NOT NULL, package TEXT NOT NULL, advisory TEXT NOT NULL, cves TEXT NOT NULL,
                         introduced TEXT NOT NULL, fixed TEXT NOT NULL, fixed_rank INTEGER, cvss REAL);
CREATE TABLE distro_order (ecosystem TEXT NOT NULL, package TEXT NOT NULL, scheme TEXT NOT NULL,
                           versions TEXT NOT NULL, PRIMARY KEY (ecosystem, package));
CREATE TABLE eol_product (name TEXT PRIMARY KEY, title TEXT NOT NULL, category TEXT NOT NULL,
                          cpes TEXT NOT NULL, purls TEXT NOT NULL);
CREATE TABLE eol_cycle (product TEXT NOT NULL, cycle TEXT NOT NULL, release_date TEXT, eol TEXT NOT NULL,
                        latest TEXT NOT NULL, lts INTEGER NOT NULL, codename TEXT NOT NULL);
CREATE TABLE eol_key (vendor TEXT NOT NULL, product TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE os_release (distro TEXT NOT NULL, version TEXT NOT NULL, codename TEXT NOT NULL, series TEXT NOT NULL,
                         released TEXT, eol TEXT, eol_extended TEXT);
CREATE TABLE support_ended (release TEXT NOT NULL, package TEXT NOT NULL, last_version TEXT NOT NULL,
                            ended TEXT NOT NULL, note TEXT NOT NULL, PRIMARY KEY (release, package));
CREATE TABLE distro_build (product TEXT NOT NULL, upstream TEXT NOT NULL, distro TEXT NOT NULL, suite TEXT NOT NULL,
                           package TEXT NOT NULL, version TEXT NOT NULL);
"""

_INDEXES = """
CREATE INDEX nvd_product_key ON nvd_product (vendor, product);
CREATE INDEX distro_fix_key ON distro_fix (ecosystem, package);
CREATE INDEX distro_fix_package ON distro_fix (package);
CREATE INDEX eol_key_key ON eol_key (vendor, product);
CREATE INDEX eol_cycle_product ON eol_cycle (product);
CREATE INDEX distro_build_key ON distro_build (product, upstream);
"""


@dataclass
class LoadedIntel:
    """Everything the loaders read, per source, ready to compile."""

    cves: list[CveRecord] = field(default_factory=list)
    kev: list[KevEntry] = field(default_factory=list)
    epss: list[EpssScore] = field(default_factory=list)
    distro_fixes: list[DistroFix] = field(default_factory=list)
    eol: list[EolProduct] = field(default_factory=list)
    os_releases: list[OsRelease] = field(default_factory=list)
    support_ended: list[SupportEnded] = field(default_factory=list)
    distro_builds: list[DistroBuild] = field(default_factory=list)
    windows_updates: list[WindowsUpdate] = field(default_factory=list)
    sources: list[SourceStatus] = field(default_factory=list)

    def absorb(self, other: LoadedIntel) -> None:
        """Add everything another load read (one source's, proven whole) to this one."""
        for item in fields(self):
            getattr(self, item.name).extend(getattr(other, item.name))


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def compile_store(intel: LoadedIntel, path: Path, built: dt.datetime) -> None:
    """Write the compiled store to `path` atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.building")
    temporary.unlink(missing_ok=True)
    try:
        db = sqlite3.connect(str(temporary))
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.executescript(_SCHEMA + windows_store.SCHEMA)
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("format", str(FORMAT)), ("built", built.isoformat())])
        db.executemany("INSERT INTO sources VALUES (?, ?, ?, ?, ?)",
                       [(s.source, (s.updated or built).isoformat(), s.records, s.detail,
                         s.bundled.isoformat() if s.bundled else None) for s in intel.sources])
        db.executemany("INSERT OR REPLACE INTO cve VALUES (?, ?, ?, ?, ?, ?)",
                       ((c.id, c.cvss, c.severity, c.published, c.description[:500],
                         json.dumps(c.configurations, separators=(",", ":"))) for c in intel.cves))
        db.executemany("INSERT INTO nvd_product VALUES (?, ?, ?)",
                       ((vendor, product, c.id) for c in intel.cves for vendor, product in c.vulnerable_products()))
        db.executemany("INSERT OR REPLACE INTO kev VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       ((k.cve, k.vendor, k.product, k.name, k.date_added.isoformat(), k.due_date.isoformat(),
                         int(k.ransomware), k.action) for k in intel.kev))
        db.executemany("INSERT OR REPLACE INTO epss VALUES (?, ?, ?)",
                       ((e.cve, e.score, e.percentile) for e in intel.epss))
        _compile_distro(db, intel.distro_fixes)
        eol_store.write(db, intel.eol)
        db.executemany("INSERT INTO os_release VALUES (?, ?, ?, ?, ?, ?, ?)",
                       ((r.distro, r.version, r.codename, r.series, _iso(r.released), _iso(r.eol),
                         _iso(r.eol_extended)) for r in intel.os_releases))
        db.executemany("INSERT OR REPLACE INTO support_ended VALUES (?, ?, ?, ?, ?)",
                       ((s.release, s.package, s.last_version, s.ended.isoformat(), s.note)
                        for s in intel.support_ended))
        db.executemany("INSERT INTO distro_build VALUES (?, ?, ?, ?, ?, ?)",
                       ((b.product, b.upstream, b.distro, b.suite, b.package, b.version) for b in intel.distro_builds))
        windows_store.insert(db, intel.windows_updates)
        db.executescript(_INDEXES)
        db.commit()
        db.close()
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _compile_distro(db: sqlite3.Connection, fixes: Sequence[DistroFix]) -> None:
    """Each package's fixed versions sorted once with the library: their rank is the sort key."""
    by_package: dict[tuple[str, str], list[DistroFix]] = defaultdict(list)
    for fix in fixes:
        by_package[(fix.ecosystem, fix.package)].append(fix)
    for (ecosystem, package), items in by_package.items():
        scheme = versions.scheme_for(ecosystem)
        try:
            ordered = versions.sort_versions([f.fixed for f in items if f.fixed], scheme)
        except ValueError as exc:
            raise FeedError(f"OSV {ecosystem} {package}: {exc}") from None
        rank = {v: i for i, v in enumerate(ordered)}
        db.execute("INSERT INTO distro_order VALUES (?, ?, ?, ?)", (ecosystem, package, scheme, json.dumps(ordered)))
        db.executemany("INSERT INTO distro_fix VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       ((f.ecosystem, f.package, f.advisory, json.dumps(f.cves), f.introduced, f.fixed,
                         rank.get(f.fixed), f.cvss) for f in items))


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


class IntelStore:
    """Read-only lookups over a compiled store (feeds.model.Intel)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            fmt = self._db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except sqlite3.Error as exc:
            raise FeedError(f"{path}: not a compiled intel store ({exc}); run 'warpagent feeds update'") from None
        if fmt is None or fmt[0] != str(FORMAT):
            raise FeedError(f"{path}: intel store format {fmt[0] if fmt else '?'} is not {FORMAT}; "
                            "run 'warpagent feeds update' to rebuild it")
        self._sources = {row["source"] for row in self._db.execute("SELECT source FROM sources")}
        # an estate repeats the same package versions on every host: match each distinct one once
        self._distro_cache: dict[tuple[str, str, str], list[DistroMatch]] = {}
        self._facts_cache: dict[str, CveFacts] = {}
        self._windows_cache: dict[tuple[int, bool], tuple[Month, ...]] = {}
        self._months: tuple[str, ...] | None = None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> IntelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has(self, source: str) -> bool:
        return source in self._sources

    def sources(self) -> list[SourceStatus]:
        return [SourceStatus(r["source"], dt.datetime.fromisoformat(r["updated"]), r["records"], r["detail"],
                             dt.date.fromisoformat(r["bundled"]) if r["bundled"] else None)
                for r in self._db.execute("SELECT * FROM sources ORDER BY source")]

    # --- NVD -------------------------------------------------------------------------------

    def nvd_matches(self, subject: str, host_cpes: Sequence[str]) -> list[CveMatch]:
        try:
            product = cpe.parse(subject)
        except ValueError:
            return []
        platform = []
        for text in host_cpes:
            try:
                platform.append(cpe.parse(text))
            except ValueError:
                continue
        keys = aliases.names_for(product.key)
        rows = self._db.execute(
            f"SELECT DISTINCT c.id, c.configurations FROM nvd_product p JOIN cve c ON c.id = p.cve "  # noqa: S608
            f"WHERE {' OR '.join('(p.vendor = ? AND p.product = ?)' for _ in keys)}",
            [part for key in keys for part in key]).fetchall()
        matches = []
        for row in rows:
            match = applicability.evaluate(row["id"], json.loads(row["configurations"]), product, platform)
            if match is not None:
                matches.append(match)
        return sorted(matches, key=lambda m: m.cve)

    # --- distributions ---------------------------------------------------------------------

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - the store lives as long as its cache
    def _package(self, ecosystem: str, package: str) -> tuple[str, tuple[str, ...], tuple[tuple[str, tuple[str, ...],
                                                                                        str, str, int | None,
                                                                                        float | None], ...]]:
        order = self._db.execute("SELECT scheme, versions FROM distro_order WHERE ecosystem = ? AND package = ?",
                                 (ecosystem, package)).fetchone()
        if order is None:
            return "dpkg", (), ()
        rows = self._db.execute("SELECT advisory, cves, introduced, fixed, fixed_rank, cvss FROM distro_fix "
                                "WHERE ecosystem = ? AND package = ?", (ecosystem, package)).fetchall()
        return order[0], tuple(json.loads(order[1])), tuple(
            (r[0], tuple(json.loads(r[1])), r[2], r[3], r[4], r[5]) for r in rows)

    def distro_matches(self, ecosystem: str, package: str, version: str) -> list[DistroMatch]:
        """Advisories whose fix is newer than the installed version (fixes not yet applied)."""
        key = (ecosystem, package, version)
        found = self._distro_cache.get(key)
        if found is None:
            found = self._distro_cache[key] = self._distro_matches(ecosystem, package, version)
        return found

    def _distro_matches(self, ecosystem: str, package: str, version: str) -> list[DistroMatch]:
        scheme, ordered, fixes = self._package(ecosystem, package)
        if not fixes:
            return []
        if scheme == "dpkg" and ":" not in version and ordered and ":" in ordered[-1]:
            # banners never show the epoch; the package's own epoch is the right one to assume
            version = f"{ordered[-1].split(':', 1)[0]}:{version}"
        position = versions.count_at_or_below(ordered, version, scheme)
        compare = versions.COMPARATORS[scheme]
        out = []
        for advisory, cves, introduced, fixed, rank, cvss in fixes:
            if rank is None or rank < position:
                continue  # no fix released (not a missing patch), or fixed at or below what is installed
            if introduced not in ("", "0") and compare(version, introduced) < 0:
                continue
            out.append(DistroMatch(advisory=advisory, cves=cves, fixed=fixed, ecosystem=ecosystem, cvss=cvss))
        return out

    def distro_ecosystems(self, distro: str, package: str, upstream: str) -> list[str]:
        """Releases of a distribution that ship this upstream version of a source package."""
        family = {"debian": "Debian", "ubuntu": "Ubuntu"}.get(distro.lower(), distro)
        rows = self._db.execute("SELECT DISTINCT ecosystem, fixed FROM distro_fix WHERE package = ? AND "
                                "ecosystem LIKE ?", (package, f"{family}:%")).fetchall()
        return sorted({r[0] for r in rows if r[1] and versions.upstream_part(r[1]) == upstream})

    # --- CVE facts -------------------------------------------------------------------------

    def cve_facts(self, cves: Iterable[str]) -> dict[str, CveFacts]:
        out = {}
        for cve_id in sorted(set(cves)):
            cached = self._facts_cache.get(cve_id)
            if cached is not None:
                out[cve_id] = cached
                continue
            row = self._db.execute("SELECT cvss, severity, description FROM cve WHERE id = ?", (cve_id,)).fetchone()
            kev_row = self._db.execute("SELECT * FROM kev WHERE cve = ?", (cve_id,)).fetchone()
            epss_row = self._db.execute("SELECT score, percentile FROM epss WHERE cve = ?", (cve_id,)).fetchone()
            kev = None if kev_row is None else KevEntry(
                cve=cve_id, vendor=kev_row["vendor"], product=kev_row["product"], name=kev_row["name"],
                date_added=dt.date.fromisoformat(kev_row["date_added"]),
                due_date=dt.date.fromisoformat(kev_row["due_date"]), ransomware=bool(kev_row["ransomware"]),
                action=kev_row["action"])
            out[cve_id] = CveFacts(
                cve=cve_id, cvss=row["cvss"] if row else None, severity=row["severity"] if row else "",
                description=row["description"] if row else "", kev=kev,
                epss=EpssScore(cve_id, epss_row[0], epss_row[1]) if epss_row else None)
            self._facts_cache[cve_id] = out[cve_id]
        return out

    # --- end of life -----------------------------------------------------------------------

    def eol_product(self, name: str) -> EolProduct | None:
        row = self._db.execute("SELECT * FROM eol_product WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        cycles = tuple(EolCycle(cycle=c["cycle"], release_date=_date(c["release_date"]),
                                eol=eol_store.eol_value(c["eol"]),
                                latest=c["latest"], lts=bool(c["lts"]), codename=c["codename"])
                       for c in self._db.execute("SELECT * FROM eol_cycle WHERE product = ?", (name,)))
        return EolProduct(name=row["name"], title=row["title"], category=row["category"],
                          cpes=tuple(json.loads(row["cpes"])), purls=tuple(json.loads(row["purls"])), cycles=cycles)

    def eol_for_cpe(self, text: str) -> EolVerdict | None:
        try:
            product_cpe = cpe.parse(text)
        except ValueError:
            return None
        version = product_cpe.full_version
        if version in (cpe.ANY, cpe.NA, ""):
            return None
        for key in aliases.names_for(product_cpe.key):
            row = self._db.execute("SELECT name FROM eol_key WHERE vendor = ? AND product = ?", key).fetchone()
            if row is None:
                continue
            product = self.eol_product(row[0])
            if product is None:
                continue
            cycle = eol_store.cycle_of(version, product.cycles)
            if cycle is not None:
                return EolVerdict(product=product, cycle=cycle)
        return None

    def os_releases(self, distro: str) -> list[OsRelease]:
        """Every release of a distribution, in distro-info's order (oldest first)."""
        return [OsRelease(distro=row["distro"], version=row["version"], codename=row["codename"],
                          series=row["series"], released=_date(row["released"]), eol=_date(row["eol"]),
                          eol_extended=_date(row["eol_extended"]))
                for row in self._db.execute("SELECT * FROM os_release WHERE distro = ? ORDER BY rowid",
                                            (distro.lower(),))]

    def os_release(self, distro: str, version_or_series: str) -> OsRelease | None:
        wanted = version_or_series.lower()
        for release in self.os_releases(distro):
            if wanted in (release.version.lower(), release.series.lower(), release.codename.lower()) or (
                    release.version and wanted.split(".")[0] == release.version and release.distro == "debian"):
                return release
        return None

    def distro_builds(self, product: str, upstream: str) -> list[DistroBuild]:
        """The distribution source packages that build `product` at exactly this upstream version."""
        rows = self._db.execute("SELECT * FROM distro_build WHERE product = ? AND upstream = ? ORDER BY distro, suite",
                                (product, upstream)).fetchall()
        return [DistroBuild(product=r["product"], upstream=r["upstream"], distro=r["distro"], suite=r["suite"],
                            package=r["package"], version=r["version"]) for r in rows]

    def support_ended(self, release: str, package: str) -> SupportEnded | None:
        row = self._db.execute("SELECT * FROM support_ended WHERE release = ? AND package = ?",
                               (release, package)).fetchone()
        if row is None:
            return None
        return SupportEnded(release=row["release"], package=row["package"], last_version=row["last_version"],
                            ended=dt.date.fromisoformat(row["ended"]), note=row["note"])

    def windows_ladder(self, build: int, server: bool) -> tuple[Month, ...]:
        """One Windows line's (build, client or server) monthly ladder from the MSRC documents."""
        if (build, server) not in self._windows_cache:
            self._windows_cache[(build, server)] = windows.ladder(windows_store.line(self._db, build, server))
        return self._windows_cache[(build, server)]

    def windows_months(self) -> tuple[str, ...]:
        """The months ("2026-03") whose MSRC documents are loaded, oldest first."""
        self._months = windows_store.months(self._db) if self._months is None else self._months
        return self._months
