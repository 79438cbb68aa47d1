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
    distro-packages/debian_<suite>_main_Packages.xz Debian's package indexes of its supported releases
    msrc/cvrfDocument-YYYY-Mon.xml (or .json)      Microsoft's monthly security update documents (CVRF)

An import folder need not keep that layout: `recognise` finds each feed's files by their own
names wherever they sit under it (/usr/share/distro-info and /usr/share/debian-security-support
as Debian installs them, a KEV file at the folder's root, a clone of the endoflife.date
repository), and files inside a folder named after a source belong to that source.
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import gzip
import lzma
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feeds import baseline, distro, endoflife, epss, kev, msrc, nvd, osv, packages
from feeds.intel_store import LoadedIntel
from feeds.model import FeedError, SourceStatus


@dataclass(frozen=True)
class Download:
    url: str
    file: str  # where it lands under the source's raw folder
    checksum_url: str = ""  # NVD's .meta: sha256 of the uncompressed file


def downloads(source: str, mirror: str, nvd_first_year: int, osv_ecosystems: tuple[str, ...],
              today: dt.date, msrc_months: int = 24) -> list[Download]:
    """What to fetch for a source: from the public feeds, or the same layout under a mirror URL."""
    if source == "nvd":
        years = range(nvd_first_year, today.year + 1)
        base = f"{mirror}/nvd" if mirror else "https://nvd.nist.gov/feeds/json/cve/2.0"
        return [Download(f"{base}/nvdcve-2.0-{y}.json.gz", f"nvdcve-2.0-{y}.json.gz",
                         f"{base}/nvdcve-2.0-{y}.meta") for y in years]
    if source == "osv":
        base = f"{mirror}/osv" if mirror else "https://osv-vulnerabilities.storage.googleapis.com"
        return [Download(f"{base}/{e}/all.zip", f"{e}/all.zip") for e in osv_ecosystems]
    if source == "msrc":
        base = f"{mirror}/msrc" if mirror else "https://api.msrc.microsoft.com/cvrf/v3.0/cvrf"
        return [Download(f"{base}/cvrfDocument-{m}.xml" if mirror else f"{base}/{m}", f"cvrfDocument-{m}.xml")
                for m in msrc.month_ids(today, msrc_months)]
    if source == "distro-packages":
        if mirror:
            return [Download(f"{mirror}/distro-packages/debian_{s}_main_Packages.xz", f"debian_{s}_main_Packages.xz")
                    for s in packages.DEBIAN_SUITES]
        return [Download(f"https://deb.debian.org/{'debian-security' if s.endswith('-security') else 'debian'}"
                         f"/dists/{s}/main/binary-amd64/Packages.xz", f"debian_{s}_main_Packages.xz")
                for s in packages.DEBIAN_SUITES]
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


SOURCES = ("kev", "epss", "nvd", "osv", "endoflife", "distro-info", "security-support", "distro-packages", "msrc")


def _files(folder: Path, *patterns: str) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        # dot files are warpagent's own bookkeeping (.http.json validators, .updated stamps)
        found += [p for p in sorted(folder.glob(pattern)) if p.is_file() and not p.name.startswith(".")]
    return list(dict.fromkeys(found))


Loaded = tuple[list[Any], str]  # the records a file holds, and what its own header says of them


@dataclass(frozen=True)
class _Format:
    """How one source's raw folder is read: which files, which loader, where the records go."""

    patterns: tuple[str, ...]
    load: Callable[[Path], Loaded]
    into: str  # the LoadedIntel list the records join
    detail: str = ""
    mirror_folder: str = ""  # a sub-folder that is loaded whole instead (a repository mirror)


def _plain(loader: Callable[[Path], list[Any]]) -> Callable[[Path], Loaded]:
    return lambda path: (loader(path), "")


def _kev(path: Path) -> Loaded:
    return kev.load(path)[1], ""


def _epss(path: Path) -> Loaded:
    score_date, scores = epss.load(path)
    return scores, f"scores of {score_date[:10]}" if score_date else ""


FORMATS: dict[str, _Format] = {
    "kev": _Format(("*.json",), _kev, "kev"),
    "epss": _Format(("*.csv.gz", "*.csv"), _epss, "epss"),
    "nvd": _Format(("*.json.gz", "*.json"), _plain(nvd.load), "cves"),
    "osv": _Format(("*/all.zip", "*.zip", "*.json", "*/*.json"), _plain(osv.load), "distro_fixes",
                   "distribution fixes"),
    "endoflife": _Format(("*.json",), _plain(endoflife.load), "eol", "products", mirror_folder="products"),
    "distro-info": _Format(("*.csv",), _plain(distro.load_distro_info), "os_releases", "releases"),
    "security-support": _Format(("security-support-ended.deb*",), _plain(distro.load_security_support),
                                "support_ended", "packages"),
    "distro-packages": _Format(("*_Packages", "*_Packages.xz", "*_Packages.gz"), _plain(packages.load),
                               "distro_builds", "builds of tracked products"),
    "msrc": _Format(("cvrfDocument-*.xml", "cvrfDocument-*.json"), _plain(msrc.load), "windows_updates",
                    "Windows update fixes"),
}


# What a loader raises on records its checks did not foresee (a number where text belongs, JSON
# nested past the parser's depth, a zip member that is corrupt or encrypted, a short CSV row).
_UNFORESEEN = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OverflowError,
               UnicodeError, EOFError, zipfile.BadZipFile, zlib.error, csv.Error, NotImplementedError, RuntimeError,
               lzma.LZMAError, gzip.BadGzipFile)


def _guarded(load: Callable[[Path], Loaded], path: Path) -> Loaded:
    """One file's records; whatever the file holds, a FeedError naming it, never an internal error."""
    try:
        return load(path)
    except FeedError:
        raise
    except _UNFORESEEN as exc:
        detail = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise FeedError(f"{path}: not in the feed's format ({exc.__class__.__name__}"
                        f"{': ' + detail if detail else ''}); the file is damaged or not this feed") from None


def load_source(source: str, folder: Path, intel: LoadedIntel) -> SourceStatus:
    """Load one source's raw folder into `intel`; FeedError names the file when it is unusable."""
    fmt = FORMATS.get(source)
    if fmt is None:
        raise FeedError(f"unknown feed source {source!r}")
    if fmt.mirror_folder and (folder / fmt.mirror_folder).is_dir():
        files = [folder / fmt.mirror_folder]
        loaded = [_guarded(fmt.load, folder)]
    else:
        files = _files(folder, *fmt.patterns)
        loaded = [_guarded(fmt.load, path) for path in files]
    records = [record for file_records, _said in loaded for record in file_records]
    getattr(intel, fmt.into).extend(records)
    said = [text for _records, text in loaded if text]
    return _status(source, folder, len(records), files, said[-1] if said else fmt.detail)


def _status(source: str, folder: Path, records: int, files: list[Path], detail: str) -> SourceStatus:
    if not files:
        raise FeedError(f"{folder}: no {source} files found (see 'feeds update --help' for the layout)")
    stamp_file = folder / ".updated"
    updated = (dt.datetime.fromisoformat(stamp_file.read_text().strip()) if stamp_file.exists()
               else dt.datetime.fromtimestamp(max(f.stat().st_mtime for f in files), dt.UTC))
    return SourceStatus(source=source, updated=updated, records=records, detail=detail,
                        bundled=baseline.bundled_as_of(folder))


# Each feed's files by their own names, wherever they sit: (source, pattern on the file name).
_OWN_NAMES = (
    ("kev", "known_exploited_vulnerabilities.json"),
    ("epss", "epss_scores*.csv.gz"), ("epss", "epss_scores*.csv"),
    ("nvd", "nvdcve-2.0-*.json.gz"), ("nvd", "nvdcve-2.0-*.json"),
    ("distro-info", "debian.csv"), ("distro-info", "ubuntu.csv"),
    ("security-support", "security-support-ended.deb*"),
    ("msrc", "cvrfDocument-????-???.xml"), ("msrc", "cvrfDocument-????-???.json"),
)
MAX_IMPORT_FILES = 200_000  # an import folder is walked once; past this it is the wrong folder


def _raw_name(source: str, parts: tuple[str, ...]) -> str | None:
    """Where a file at `parts` (its path under the import folder) lands in `source`'s raw folder."""
    name = parts[-1]
    if source in parts[:-1]:  # the raw-cache layout: <source>/... keeps its path below the source folder
        below = "/".join(parts[len(parts) - 1 - parts[:-1][::-1].index(source):])
        fmt = FORMATS[source]
        if any(fnmatch.fnmatch(below, pattern) for pattern in fmt.patterns):
            return below
        if fmt.mirror_folder and below.startswith(f"{fmt.mirror_folder}/") and name.endswith(".md"):
            return below
    if source == "osv" and name == "all.zip" and len(parts) >= 2:
        return f"{parts[-2]}/all.zip"  # OSV's own bucket layout: <Ecosystem>/all.zip
    if (source == "endoflife" and name.endswith(".md") and len(parts) >= 2 and parts[-2] == "products"
            and any(p.startswith("endoflife") for p in parts[:-2])):
        return f"products/{name}"  # a clone of the endoflife.date repository
    if any(s == source and fnmatch.fnmatch(name, pattern) for s, pattern in _OWN_NAMES):
        return name
    if source == "distro-packages":
        return packages.raw_name(parts)
    return None


def _walk(origin: Path) -> Iterator[tuple[str, ...]]:
    """Every regular file under `origin` as path parts; links are not followed, dot files skipped."""
    count = 0
    for folder, dirs, files in os.walk(origin, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder).relative_to(origin).parts
        for name in sorted(files):
            path = Path(folder) / name
            if name.startswith(".") or path.is_symlink() or not path.is_file():
                continue
            count += 1
            if count > MAX_IMPORT_FILES:
                raise FeedError(f"{origin}: holds more than {MAX_IMPORT_FILES:,} files; point --from at the "
                                "folder that holds the feed files")
            yield (*base, name)


def recognise(origins: list[Path]) -> dict[str, dict[str, Path]]:
    """The feed files under the import folders: source -> {name in its raw folder: file}.
    The same raw name found twice is an error naming both, never a silent choice."""
    found: dict[str, dict[str, Path]] = {}
    for origin in origins:
        for parts in _walk(origin):
            for source in SOURCES:
                raw_name = _raw_name(source, parts)
                if raw_name is None:
                    continue
                path = origin.joinpath(*parts)
                earlier = found.setdefault(source, {}).get(raw_name)
                if earlier is not None and earlier != path:
                    raise FeedError(f"{path}: {source} file {raw_name} is also at {earlier}; import one of them "
                                    "(point --from at a folder holding each feed file once)")
                found[source][raw_name] = path
                break
    return found
