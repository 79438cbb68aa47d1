"""Where each feed comes from, the files it leaves in the raw cache, and how to load them.

The raw cache (`<feeds.dir>/raw/<source>/`) and an import folder (`feeds update --from DIR`)
share one layout, so a council can copy an online agent's raw cache to an air-gapped one:

    kev/known_exploited_vulnerabilities.json       CISA KEV catalog
    epss/epss_scores-current.csv.gz                FIRST EPSS scores
    nvd/nvdcve-2.0-YYYY.json.gz (or any *.json)    NVD CVE API 2.0 JSON: yearly files or API pages
    osv/<Ecosystem>/all.zip (or *.json records)    OSV advisories per ecosystem (Debian, Ubuntu)
    endoflife/full.json or endoflife/products/*.md endoflife.date API v1, or a repository mirror
    distro-info/debian.csv, ubuntu.csv             distro-info-data
    security-support/security-support-ended.debNN  debian-security-support
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from feeds import distro, endoflife, epss, kev, nvd, osv
from feeds.intel_store import LoadedIntel
from feeds.model import FeedError, SourceStatus


@dataclass(frozen=True)
class Download:
    url: str
    file: str  # where it lands under the source's raw folder
    checksum_url: str = ""  # NVD's .meta: sha256 of the uncompressed file


def downloads(source: str, mirror: str, nvd_first_year: int, osv_ecosystems: tuple[str, ...],
              today: dt.date) -> list[Download]:
    """What to fetch for a source: from the public feeds, or the same layout under a mirror URL."""
    if source == "nvd":
        years = range(nvd_first_year, today.year + 1)
        base = f"{mirror}/nvd" if mirror else "https://nvd.nist.gov/feeds/json/cve/2.0"
        return [Download(f"{base}/nvdcve-2.0-{y}.json.gz", f"nvdcve-2.0-{y}.json.gz",
                         f"{base}/nvdcve-2.0-{y}.meta") for y in years]
    if source == "osv":
        base = f"{mirror}/osv" if mirror else "https://osv-vulnerabilities.storage.googleapis.com"
        return [Download(f"{base}/{e}/all.zip", f"{e}/all.zip") for e in osv_ecosystems]
    public = {
        "kev": [("https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
                 "known_exploited_vulnerabilities.json")],
        "epss": [("https://epss.empiricalsecurity.com/epss_scores-current.csv.gz", "epss_scores-current.csv.gz")],
        "endoflife": [("https://endoflife.date/api/v1/products/full", "full.json")],
        "distro-info": [(f"https://salsa.debian.org/debian/distro-info-data/-/raw/main/{n}.csv", f"{n}.csv")
                        for n in ("debian", "ubuntu")],
        "security-support": [
            (f"https://salsa.debian.org/debian/debian-security-support/-/raw/master/security-support-ended.deb{n}",
             f"security-support-ended.deb{n}") for n in (10, 11, 12, 13)],
    }[source]
    if mirror:
        return [Download(f"{mirror}/{source}/{name}", name) for _, name in public]
    return [Download(url, name) for url, name in public]


SOURCES = ("kev", "epss", "nvd", "osv", "endoflife", "distro-info", "security-support")


def _files(folder: Path, *patterns: str) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        # dot files are warpagent's own bookkeeping (.http.json validators, .updated stamps)
        found += [p for p in sorted(folder.glob(pattern)) if p.is_file() and not p.name.startswith(".")]
    return list(dict.fromkeys(found))


def load_source(source: str, folder: Path, intel: LoadedIntel) -> SourceStatus:
    """Load one source's raw folder into `intel`; FeedError names the file when it is unusable."""
    if source == "kev":
        files = _files(folder, "*.json")
        for path in files:
            _catalog, entries = kev.load(path)
            intel.kev += entries
        return _status(source, folder, len(intel.kev), files, "")
    if source == "epss":
        files = _files(folder, "*.csv.gz", "*.csv")
        date = ""
        for path in files:
            date, scores = epss.load(path)
            intel.epss += scores
        return _status(source, folder, len(intel.epss), files, f"scores of {date[:10]}" if date else "")
    if source == "nvd":
        files = _files(folder, "*.json.gz", "*.json")
        for path in files:
            intel.cves += nvd.load(path)
        return _status(source, folder, len(intel.cves), files, "")
    if source == "osv":
        files = _files(folder, "*/all.zip", "*.zip", "*.json", "*/*.json")
        for path in files:
            intel.distro_fixes += osv.load(path)
        return _status(source, folder, len(intel.distro_fixes), files, "distribution fixes")
    if source == "endoflife":
        if (folder / "products").is_dir():
            intel.eol += endoflife.load(folder)
            files = [folder / "products"]
        else:
            files = _files(folder, "*.json")
            for path in files:
                intel.eol += endoflife.load(path)
        return _status(source, folder, len(intel.eol), files, "products")
    if source == "distro-info":
        files = _files(folder, "*.csv")
        for path in files:
            intel.os_releases += distro.load_distro_info(path)
        return _status(source, folder, len(intel.os_releases), files, "releases")
    if source == "security-support":
        files = _files(folder, "security-support-ended.deb*")
        for path in files:
            intel.support_ended += distro.load_security_support(path)
        return _status(source, folder, len(intel.support_ended), files, "packages")
    raise FeedError(f"unknown feed source {source!r}")


def _status(source: str, folder: Path, records: int, files: list[Path], detail: str) -> SourceStatus:
    if not files:
        raise FeedError(f"{folder}: no {source} files found (see 'feeds update --help' for the layout)")
    stamp_file = folder / ".updated"
    updated = (dt.datetime.fromisoformat(stamp_file.read_text().strip()) if stamp_file.exists()
               else dt.datetime.fromtimestamp(max(f.stat().st_mtime for f in files), dt.UTC))
    return SourceStatus(source=source, updated=updated, records=records, detail=detail)
