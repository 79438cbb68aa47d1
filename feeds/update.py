"""`feeds update`: fetch (or import) each source into a staging folder, prove it loads, swap it
into the raw cache, then compile the intel store. A source that fails keeps its previous files,
so the intel in use is never worse than before the update.

Downloads use conditional requests (If-None-Match / If-Modified-Since from the last response),
retry with backoff on connection errors and 429/5xx, and check NVD's published sha256.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import logging
import shutil
import urllib.parse
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from feeds import baseline, sources
from feeds.intel_store import IntelStore, LoadedIntel, compile_store
from feeds.model import FeedError, SourceStatus

log = logging.getLogger(__name__)

INTEL_FILE = "intel.db"
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class FeedSettings:
    dir: Path
    sources: tuple[str, ...] = sources.SOURCES
    mirror: str = ""
    nvd_first_year: int = 2002
    msrc_months: int = 24
    osv_ecosystems: tuple[str, ...] = ("Debian", "Ubuntu")
    stale_after_days: int = 3
    timeout_s: float = 60.0
    ca_bundle: Path | None = None
    bundled: bool = True  # use warpagent's bundled snapshot (KEV, endoflife.date) until a feed has its own data

    def is_stale(self, status: SourceStatus, now: dt.datetime) -> bool:
        """Older than stale_after: `feeds status` and the scan summary both say so."""
        age = status.age_days(now)
        return age is not None and age > self.stale_after_days

    @property
    def intel_path(self) -> Path:
        return self.dir / INTEL_FILE

    @property
    def raw(self) -> Path:
        return self.dir / "raw"


@dataclass
class UpdateResult:
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # source -> one-line reason
    not_offered: list[str] = field(default_factory=list)  # an import that held no files of these
    imported: dict[str, list[str]] = field(default_factory=dict)  # source -> "file -> raw copy" lines
    previous: dict[str, str] = field(default_factory=dict)  # source -> what it had before ("" for nothing)
    unreachable: bool = False  # no download reached its server: the machine looks offline

    @property
    def ok(self) -> bool:
        return not self.failed


def _previous(settings: FeedSettings, source: str) -> str:
    """What a source held before this update, in words ("" when it had no data)."""
    folder = settings.raw / source
    if not folder.is_dir():
        return ""
    as_of = baseline.bundled_as_of(folder)
    if as_of:
        return f"the bundled snapshot of {as_of.isoformat()}"
    try:
        stamp = dt.datetime.fromisoformat((folder / ".updated").read_text().strip())
    except (OSError, ValueError):
        return "the previous data"
    return f"the data of {stamp:%Y-%m-%d}"


def _session(settings: FeedSettings) -> requests.Session:
    session = requests.Session()
    # A server that answers but fails (429, 5xx, a dropped read) is retried with backoff; one that
    # cannot be reached at all is tried once more, not for half a minute per file: offline is normal.
    retry = Retry(total=3, connect=1, read=3, status=3, backoff_factor=0.5,
                  status_forcelist=(429, 500, 502, 503, 504), allowed_methods=("GET", "HEAD"),
                  raise_on_status=False)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.headers["User-Agent"] = "warpagent feeds (https://github.com/warpagent)"
    return session


def _timeouts(settings: FeedSettings) -> tuple[float, float]:
    """(connect, read): a server that is there answers a connection within seconds."""
    return min(CONNECT_TIMEOUT_S, settings.timeout_s), settings.timeout_s


def _verify(settings: FeedSettings) -> str | bool:
    return str(settings.ca_bundle) if settings.ca_bundle else True


def _fetch(session: requests.Session, settings: FeedSettings, item: sources.Download, current: Path,
           staged: Path, validators: dict[str, dict[str, str]]) -> bool:
    """Fetch one file into `staged`; False when the server says the cached copy is current."""
    known = validators.get(item.url, {})
    expected_sha = ""
    if item.checksum_url:
        meta = session.get(item.checksum_url, timeout=_timeouts(settings), verify=_verify(settings))
        meta.raise_for_status()
        fields = dict(line.split(":", 1) for line in meta.text.splitlines() if ":" in line)
        expected_sha = fields.get("sha256", "").strip().lower()
        if expected_sha and known.get("sha256") == expected_sha and current.exists():
            shutil.copy2(current, staged)
            return False
    headers = {}
    if current.exists():
        if known.get("etag"):
            headers["If-None-Match"] = known["etag"]
        if known.get("last_modified"):
            headers["If-Modified-Since"] = known["last_modified"]
    response = session.get(item.url, headers=headers, timeout=_timeouts(settings), verify=_verify(settings),
                           stream=True)
    if response.status_code == 304 and current.exists():
        shutil.copy2(current, staged)
        return False
    response.raise_for_status()
    staged.parent.mkdir(parents=True, exist_ok=True)
    with staged.open("wb") as out:
        for chunk in response.iter_content(1 << 20):
            out.write(chunk)
    if expected_sha:
        data = staged.read_bytes()
        try:
            plain = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise FeedError(f"{item.url}: download is not valid gzip ({exc}); it looks truncated") from None
        if hashlib.sha256(plain).hexdigest() != expected_sha:
            raise FeedError(f"{item.url}: sha256 does not match {item.checksum_url}; the download is damaged")
    validators[item.url] = {"etag": response.headers.get("ETag", ""),
                            "last_modified": response.headers.get("Last-Modified", ""), "sha256": expected_sha}
    return True


def _stage_download(source: str, settings: FeedSettings, staging: Path, today: dt.date,
                    session: requests.Session) -> bool:
    current_folder = settings.raw / source
    validator_file = current_folder / ".http.json"
    validators = json.loads(validator_file.read_text()) if validator_file.exists() else {}
    changed = False
    for item in sources.downloads(source, settings.mirror.rstrip("/"), settings.nvd_first_year,
                                  settings.osv_ecosystems, today, settings.msrc_months):
        staged = staging / item.file
        staged.parent.mkdir(parents=True, exist_ok=True)
        changed |= _fetch(session, settings, item, current_folder / item.file, staged, validators)
    (staging / ".http.json").write_text(json.dumps(validators, indent=1))
    return changed


def _stage_import(files: dict[str, Path], staging: Path) -> list[str]:
    """Copy one source's recognised files into its staging folder; says where each went."""
    moved = []
    for raw_name, path in sorted(files.items()):
        target = staging / raw_name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        moved.append(f"{path} -> {raw_name}")
    return moved


def _host(source: str, settings: FeedSettings, today: dt.date) -> str:
    items = sources.downloads(source, settings.mirror.rstrip("/"), settings.nvd_first_year,
                              settings.osv_ecosystems, today, settings.msrc_months)
    return urllib.parse.urlsplit(items[0].url).netloc if items else ""


def _unreachable(exc: BaseException) -> bool:
    """True when the server could not be reached at all (no route, refused, no DNS, connect timeout)."""
    # a TLS failure is a server that answered (with a certificate we refuse): reached, not offline
    return isinstance(exc, requests.ConnectionError | requests.ConnectTimeout) and not isinstance(
        exc, requests.ReadTimeout | requests.exceptions.SSLError)


# Release and support-end data a Debian machine carries (distro-info-data, debian-security-support):
# what scripts/install.sh and `warpagent init` import, so a first scan measures unsupported
# operating systems with no internet.
MACHINE_OFFLINE = (Path("/usr/share/distro-info"), Path("/usr/share/debian-security-support"))


def machine_offline() -> list[Path]:
    """The folders of MACHINE_OFFLINE this machine has."""
    return [folder for folder in MACHINE_OFFLINE if folder.is_dir()]


def update(settings: FeedSettings, *, from_dirs: Sequence[Path] = (),
           now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
           only: Sequence[str] | None = None) -> UpdateResult:
    """Download every wanted source (or import it from `from_dirs`) and rebuild the intel store.
    Until a source has data of its own it holds warpagent's bundled snapshot, when there is one."""
    result = UpdateResult()
    settings.raw.mkdir(parents=True, exist_ok=True)
    wanted = [s for s in settings.sources if only is None or s in only]
    seeded = baseline.seed(settings.raw, tuple(wanted)) if settings.bundled else []
    for origin in from_dirs:
        if not origin.is_dir():
            raise FeedError(f"{origin}: not a folder; --from names a folder holding the feeds' files "
                            "('feeds update --help' lists their names)")
    offered = sources.recognise(list(from_dirs)) if from_dirs else {}
    if from_dirs and not any(offered.get(s) for s in wanted):
        raise FeedError(f"{', '.join(map(str, from_dirs))}: holds no feed files warpagent recognises "
                        "('feeds update --help' lists their names); nothing was imported")
    session = _session(settings)
    reached_any, tried_any = False, False
    unreachable_hosts: set[str] = set()
    staged: dict[str, Path] = {}  # sources with new data, waiting until the store compiles with them
    for source in wanted:
        result.previous[source] = _previous(settings, source)
        if from_dirs and not offered.get(source):
            result.not_offered.append(source)
            continue
        host = "" if from_dirs else _host(source, settings, now().date())
        if host in unreachable_hosts or (len(unreachable_hosts) >= 2 and not reached_any):
            result.failed[source] = (f"not tried: {host} could not be reached" if host in unreachable_hosts
                                     else "not tried: no feed server could be reached")
            continue
        staging = settings.raw / f".{source}.staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            if from_dirs:
                result.imported[source] = _stage_import(offered[source], staging)
                changed = True
            else:
                tried_any = True
                changed = _stage_download(source, settings, staging, now().date(), session)
                reached_any = True
            if not changed and (settings.raw / source).exists():
                result.unchanged.append(source)
                _replace(settings.raw / source, staging)  # keeps refreshed validators
                continue
            sources.load_source(source, staging, LoadedIntel())  # a file that does not load fails its feed alone
            (staging / ".updated").write_text(now().isoformat())
            staged[source] = staging
        except (FeedError, requests.RequestException, OSError, ValueError) as exc:
            if _unreachable(exc):
                unreachable_hosts.add(host)
            else:
                reached_any = True
            reason = _one_line(exc)
            result.failed[source] = reason
            log.info("feeds: %s not updated: %s", source, reason)
        finally:
            if source not in staged:
                shutil.rmtree(staging, ignore_errors=True)
    result.unreachable = tried_any and not reached_any
    if not (staged or seeded) and _store_current(settings.intel_path):
        return result  # nothing new: the store stays exactly as it was
    try:
        # The new data replaces the old only once the whole store has compiled with it: a feed that
        # loads but cannot be compiled leaves the raw cache and the store exactly as they were.
        compile_intel(settings, now(), staged)
    except FeedError as exc:
        for source, staging in staged.items():
            result.failed[source] = f"not used, the intel store did not compile with it: {_one_line(exc)}"
            shutil.rmtree(staging, ignore_errors=True)
        return result
    for source, staging in staged.items():
        _replace(settings.raw / source, staging)
        result.updated.append(source)
        log.info("feeds: %s updated", source)
    return result


def ensure_intel(settings: FeedSettings, now: dt.datetime) -> None:
    """Before a scan or `feeds status`: lay in the bundled snapshot for sources with no data yet,
    and compile the store when it is missing or was built by an older warpagent."""
    seeded = baseline.seed(settings.raw, settings.sources) if settings.bundled else []
    if seeded or not _store_current(settings.intel_path):
        compile_intel(settings, now)


def _store_current(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        with IntelStore(path):
            return True
    except FeedError:
        return False


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"{exc.response.url}: HTTP {exc.response.status_code}"
    if isinstance(exc, requests.RequestException):
        request = getattr(exc, "request", None)
        where = getattr(request, "url", "") or ""
        why = "cannot reach the server" if _unreachable(exc) else "cannot download"
        return f"{where}: {why} ({exc.__class__.__name__})".lstrip(": ")
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


def _replace(target: Path, staging: Path) -> None:
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def compile_intel(settings: FeedSettings, built: dt.datetime, staged: dict[str, Path] | None = None) -> list[str]:
    """Compile every source in the raw cache (a staged folder in place of a source's raw one);
    returns the sources compiled. FeedError when the store cannot be built: the old one stays."""
    staged = staged or {}
    intel = LoadedIntel()
    compiled = []
    for source in sources.SOURCES:
        folder = staged.get(source, settings.raw / source)
        if not folder.is_dir():
            continue
        part = LoadedIntel()  # a source that fails half way must add nothing
        try:
            status = sources.load_source(source, folder, part)
        except FeedError as exc:
            if source in staged:
                raise
            log.error("feeds: %s in the raw cache cannot be used: %s", source, exc)
            continue
        part.sources.append(status)
        intel.absorb(part)
        compiled.append(source)
    if compiled:
        try:
            compile_store(intel, settings.intel_path, built)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as exc:
            # a record that loaded but cannot be indexed: the loaders should have refused it
            raise FeedError(f"a record could not be compiled ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    return compiled
