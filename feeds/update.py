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
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from feeds import sources
from feeds.intel_store import LoadedIntel, compile_store
from feeds.model import FeedError, SourceStatus

log = logging.getLogger(__name__)

INTEL_FILE = "intel.db"


@dataclass(frozen=True)
class FeedSettings:
    dir: Path
    sources: tuple[str, ...] = sources.SOURCES
    mirror: str = ""
    nvd_first_year: int = 2002
    osv_ecosystems: tuple[str, ...] = ("Debian", "Ubuntu")
    stale_after_days: int = 3
    timeout_s: float = 60.0
    ca_bundle: Path | None = None

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

    @property
    def ok(self) -> bool:
        return not self.failed


def _session(settings: FeedSettings) -> requests.Session:
    session = requests.Session()
    retry = Retry(total=3, connect=3, read=3, status=3, backoff_factor=0.5,
                  status_forcelist=(429, 500, 502, 503, 504), allowed_methods=("GET", "HEAD"),
                  raise_on_status=False)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.headers["User-Agent"] = "warpagent feeds (https://github.com/warpagent)"
    return session


def _verify(settings: FeedSettings) -> str | bool:
    return str(settings.ca_bundle) if settings.ca_bundle else True


def _fetch(session: requests.Session, settings: FeedSettings, item: sources.Download, current: Path,
           staged: Path, validators: dict[str, dict[str, str]]) -> bool:
    """Fetch one file into `staged`; False when the server says the cached copy is current."""
    known = validators.get(item.url, {})
    expected_sha = ""
    if item.checksum_url:
        meta = session.get(item.checksum_url, timeout=settings.timeout_s, verify=_verify(settings))
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
    response = session.get(item.url, headers=headers, timeout=settings.timeout_s, verify=_verify(settings),
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
                                  settings.osv_ecosystems, today):
        staged = staging / item.file
        staged.parent.mkdir(parents=True, exist_ok=True)
        changed |= _fetch(session, settings, item, current_folder / item.file, staged, validators)
    (staging / ".http.json").write_text(json.dumps(validators, indent=1))
    return changed


def _stage_import(source: str, origin: Path, staging: Path) -> bool:
    folder = origin / source
    if not folder.is_dir():
        return False
    shutil.copytree(folder, staging, dirs_exist_ok=True)
    return True


def update(settings: FeedSettings, *, from_dir: Path | None = None,
           now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
           only: Sequence[str] | None = None) -> UpdateResult:
    result = UpdateResult()
    settings.raw.mkdir(parents=True, exist_ok=True)
    session = _session(settings)
    wanted = [s for s in settings.sources if only is None or s in only]
    if from_dir is not None and not from_dir.is_dir():
        raise FeedError(f"{from_dir}: not a folder; --from names a folder laid out as 'feeds update --help' shows")
    for source in wanted:
        staging = settings.raw / f".{source}.staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            if from_dir is not None:
                changed = _stage_import(source, from_dir, staging)
                if not changed:
                    result.unchanged.append(source)
                    continue
            else:
                changed = _stage_download(source, settings, staging, now().date(), session)
            if not changed and (settings.raw / source).exists():
                result.unchanged.append(source)
                _replace(settings.raw / source, staging)  # keeps refreshed validators
                continue
            sources.load_source(source, staging, LoadedIntel())  # prove it loads before it replaces anything
            (staging / ".updated").write_text(now().isoformat())
            _replace(settings.raw / source, staging)
            result.updated.append(source)
            log.info("feeds: %s updated", source)
        except (FeedError, requests.RequestException, OSError, ValueError) as exc:
            reason = _one_line(exc)
            result.failed[source] = reason
            log.error("feeds: %s not updated, previous data kept: %s", source, reason)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    compile_intel(settings, now())
    return result


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"{exc.response.url}: HTTP {exc.response.status_code}"
    if isinstance(exc, requests.RequestException):
        request = getattr(exc, "request", None)
        where = getattr(request, "url", "") or ""
        return f"{where}: cannot download ({exc.__class__.__name__})".lstrip(": ")
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


def _replace(target: Path, staging: Path) -> None:
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def compile_intel(settings: FeedSettings, built: dt.datetime) -> list[str]:
    """Compile every source in the raw cache; returns the sources compiled."""
    intel = LoadedIntel()
    compiled = []
    for source in sources.SOURCES:
        folder = settings.raw / source
        if not folder.is_dir():
            continue
        part = LoadedIntel()  # a source that fails half way must add nothing
        try:
            status = sources.load_source(source, folder, part)
        except FeedError as exc:
            log.error("feeds: %s in the raw cache cannot be used: %s", source, exc)
            continue
        part.sources.append(status)
        intel.absorb(part)
        compiled.append(source)
    if compiled:
        compile_store(intel, settings.intel_path, built)
    return compiled
