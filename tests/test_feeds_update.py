"""`feeds update` against a real HTTP mirror on loopback: conditional requests, retries, checksums,
and the rule that a feed that fails keeps the previous intel in use; `feeds status` and the CLI."""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import hashlib
import json
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from feeds.intel_store import IntelStore
from feeds.update import FeedSettings, update
from tests.conftest import run_cli
from tests.intel_data import ASSETS, DISTRO_INFO, KEV_FILE, import_folder

ROOT = Path(__file__).resolve().parent.parent
# the mirror serves NVD's file for the year the update runs in: `update` fetches every year up to today's
YEAR = dt.datetime.now(dt.UTC).year


@dataclass
class Mirror:
    root: Path
    url: str = ""
    requests: list[tuple[str, dict[str, str], int]] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)  # path -> status to answer instead


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    state = Mirror(root=tmp_path / "mirror")
    (state.root / "kev").mkdir(parents=True)
    shutil.copy(KEV_FILE, state.root / "kev")
    (state.root / "nvd").mkdir()
    plain = (ASSETS / "nvd" / "cves.json").read_bytes()
    (state.root / "nvd" / f"nvdcve-2.0-{YEAR}.json.gz").write_bytes(gzip.compress(plain))
    (state.root / "nvd" / f"nvdcve-2.0-{YEAR}.meta").write_text(
        f"lastModifiedDate:2026-11-24T03:00:01-05:00\r\nsize:{len(plain)}\r\nsha256:{hashlib.sha256(plain).hexdigest().upper()}\r\n")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            target = state.root / path.lstrip("/")
            status = state.faults.get(path, 200 if target.is_file() else 404)
            if status == 200:
                body = target.read_bytes()
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                modified = email.utils.formatdate(target.stat().st_mtime, usegmt=True)
                if self.headers.get("If-None-Match") == etag:
                    status, body = 304, b""
                self.send_response(status)
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", modified)
            else:
                body = b"fault"
                self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            state.requests.append((path, dict(self.headers), status))

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def settings_for(mirror: Mirror, work: Path, sources: tuple[str, ...] = ("kev", "nvd")) -> FeedSettings:
    return FeedSettings(dir=work / "intel", sources=sources, mirror=mirror.url, nvd_first_year=YEAR, timeout_s=10)


def kev_count(settings: FeedSettings) -> int:
    with IntelStore(settings.intel_path) as intel:
        return {s.source: s.records for s in intel.sources()}["kev"]


def test_download_then_conditional_requests(mirror: Mirror, tmp_path: Path) -> None:
    settings = settings_for(mirror, tmp_path)
    first = update(settings)
    assert first.ok and sorted(first.updated) == ["kev", "nvd"]
    with IntelStore(settings.intel_path) as intel:
        assert [m.cve for m in intel.nvd_matches("cpe:/a:openbsd:openssh:9.2p1", [])] == ["CVE-2024-6387"]
        assert intel.cve_facts(["CVE-2021-41773"])["CVE-2021-41773"].kev is not None
    mirror.requests.clear()
    again = update(settings)
    assert again.ok and sorted(again.unchanged) == ["kev", "nvd"]
    kev_requests = [(h, s) for p, h, s in mirror.requests if p.endswith("known_exploited_vulnerabilities.json")]
    assert kev_requests and kev_requests[0][0].get("If-None-Match") and kev_requests[0][1] == 304
    # NVD's .meta sha256 is unchanged, so the year file itself is not fetched again
    assert [p for p, _h, _s in mirror.requests if p.endswith(".json.gz")] == []
    assert kev_count(settings) == 1404


def test_server_errors_are_retried_then_reported_and_previous_intel_kept(mirror: Mirror, tmp_path: Path) -> None:
    settings = settings_for(mirror, tmp_path)
    assert update(settings).ok
    kev_path = "/kev/known_exploited_vulnerabilities.json"
    mirror.faults[kev_path] = 500
    mirror.requests.clear()
    result = update(settings)
    assert not result.ok and "HTTP 500" in result.failed["kev"]
    assert len([p for p, _h, _s in mirror.requests if p == kev_path]) >= 3  # retried with backoff
    assert kev_count(settings) == 1404 and result.unchanged == ["nvd"]


def test_truncated_download_and_bad_checksum_are_rejected(mirror: Mirror, tmp_path: Path) -> None:
    settings = settings_for(mirror, tmp_path)
    assert update(settings).ok
    kev_file = mirror.root / "kev" / "known_exploited_vulnerabilities.json"
    kev_file.write_bytes(KEV_FILE.read_bytes()[:500_000])
    gz = mirror.root / "nvd" / f"nvdcve-2.0-{YEAR}.json.gz"
    gz.write_bytes(gzip.compress(b'{"vulnerabilities": []}'))
    meta = mirror.root / "nvd" / f"nvdcve-2.0-{YEAR}.meta"
    meta.write_text(meta.read_text().replace("sha256:", "sha256:00"))
    result = update(settings)
    assert "not a readable KEV catalog" in result.failed["kev"]
    assert "sha256 does not match" in result.failed["nvd"]
    assert kev_count(settings) == 1404
    with IntelStore(settings.intel_path) as intel:
        assert intel.nvd_matches("cpe:/a:vsftpd:vsftpd:2.3.4", [])  # the previous NVD data is still in use


def _nvd_with(mirror: Mirror, configurations: object) -> None:
    data = json.loads((ASSETS / "nvd" / "cves.json").read_text())
    data["vulnerabilities"][0]["cve"]["configurations"] = configurations
    plain = json.dumps(data).encode()
    (mirror.root / "nvd" / f"nvdcve-2.0-{YEAR}.json.gz").write_bytes(gzip.compress(plain))
    (mirror.root / "nvd" / f"nvdcve-2.0-{YEAR}.meta").write_text(f"sha256:{hashlib.sha256(plain).hexdigest()}\r\n")


def test_a_bad_feed_never_breaks_later_updates(mirror: Mirror, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(mirror, tmp_path)
    assert update(settings).ok
    raw_before = (settings.raw / "nvd" / f"nvdcve-2.0-{YEAR}.json.gz").read_bytes()
    store_before = settings.intel_path.read_bytes()
    _nvd_with(mirror, [1])  # the shape that once loaded, replaced the good copy, then broke compiling
    refused = update(settings)
    assert "vulnerabilities[0]" in refused.failed["nvd"] and "configurations is not a list of" in refused.failed["nvd"]
    assert (settings.raw / "nvd" / f"nvdcve-2.0-{YEAR}.json.gz").read_bytes() == raw_before
    # a record that loads but cannot be compiled (caused here by a failing compiler: no file reaches
    # that state past the loaders any more) keeps both the raw copy and the store as they were
    _nvd_with(mirror, [])
    import feeds.update as update_module

    real = update_module.compile_store

    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("'int' object has no attribute 'get'")

    monkeypatch.setattr(update_module, "compile_store", broken)
    failed = update(settings)
    assert "not used, the intel store did not compile with it" in failed.failed["nvd"] and "nvd" not in failed.updated
    assert (settings.raw / "nvd" / f"nvdcve-2.0-{YEAR}.json.gz").read_bytes() == raw_before
    assert settings.intel_path.read_bytes() == store_before
    assert not list(settings.raw.glob(".*staging"))
    monkeypatch.setattr(update_module, "compile_store", real)
    later = update(settings)  # nothing to repair by hand: the next update just works
    assert later.ok and "nvd" in later.updated


def test_down_server_is_a_clear_failure_and_the_bundled_snapshot_stays(tmp_path: Path) -> None:
    settings = FeedSettings(dir=tmp_path / "intel", sources=("kev",), mirror="http://127.0.0.1:9", timeout_s=2)
    result = update(settings)
    assert set(result.failed) == {"kev"} and "cannot reach the server" in result.failed["kev"]
    assert result.unreachable and result.previous["kev"] == "the bundled snapshot of 2025-08-25"
    with IntelStore(settings.intel_path) as intel:
        (kev,) = intel.sources()
        assert (kev.records, kev.bundled) == (1404, dt.date(2025, 8, 25))
    without = FeedSettings(dir=tmp_path / "bare", sources=("kev",), mirror="http://127.0.0.1:9", timeout_s=2,
                           bundled=False)
    assert "kev" in update(without).failed and not without.intel_path.exists()


def test_a_successful_download_replaces_the_bundled_snapshot(mirror: Mirror, tmp_path: Path) -> None:
    settings = settings_for(mirror, tmp_path)
    result = update(settings)
    assert result.ok and result.previous["kev"] == "the bundled snapshot of 2025-08-25"
    assert not (settings.raw / "kev" / ".bundled").exists()
    with IntelStore(settings.intel_path) as intel:
        assert {s.source: s.bundled for s in intel.sources()} == {"kev": None, "nvd": None}


def test_cli_import_status_and_stale_warning(tmp_path: Path) -> None:
    config = tmp_path / "warpagent.yaml"
    config.write_text("organisation: {name: Test Council}\nestates:\n  - {name: loop, targets: [127.0.0.1]}\n"
                      "feeds: {dir: ./intel, stale_after: 1d}\n")
    first = run_cli("--config", str(config), "feeds", "status", cwd=tmp_path)
    assert first.returncode == 3 and "Traceback" not in first.stderr
    assert re.search(r"^kev +1404 +bundled snapshot of 2025-08-25 \(\d+ days ago\)  STALE$", first.stdout, re.M)
    assert re.search(r"^nvd +no data yet$", first.stdout, re.M)
    bad = run_cli("--config", str(config), "feeds", "update", "--from", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert bad.returncode == 3 and "nowhere: not a folder" in bad.stderr and "Traceback" not in bad.stderr
    imported = run_cli("--config", str(config), "feeds", "update", "--from", str(import_folder(tmp_path / "imp")),
                       "--json", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert sorted(json.loads(imported.stdout)["updated"]) == sorted(
        ["kev", "epss", "nvd", "osv", "endoflife", "distro-info", "security-support", "distro-packages", "msrc"])
    status = run_cli("--config", str(config), "feeds", "status", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    records = {s["source"]: s["records"] for s in json.loads(status.stdout)["sources"]}
    assert records["kev"] == 1404 and records["endoflife"] == 464 and records["nvd"] == 4
    stamp = tmp_path / "intel" / "raw" / "kev" / ".updated"
    stamp.write_text((dt.datetime.now(dt.UTC) - dt.timedelta(days=5)).isoformat())
    assert run_cli("--config", str(config), "feeds", "update", "--from", str(tmp_path / "empty-folder-is-absent"),
                   cwd=tmp_path).returncode == 3
    (tmp_path / "empty").mkdir()
    nothing = run_cli("--config", str(config), "feeds", "update", "--from", str(tmp_path / "empty"), cwd=tmp_path)
    assert nothing.returncode == 3 and "holds no feed files warpagent recognises" in nothing.stderr
    # another feed's import recompiles the store, with kev's own (now old) date kept
    assert run_cli("--config", str(config), "feeds", "update", "--from", str(DISTRO_INFO), cwd=tmp_path).returncode == 0
    stale = run_cli("--config", str(config), "feeds", "status", cwd=tmp_path)
    assert stale.returncode == 3 and "feed kev is stale" in stale.stderr


def test_daemon_updates_feeds_daily_unless_off(tmp_path: Path) -> None:
    from warpagent import config
    from warpagent.daemon import scheduler

    text = "organisation: {name: T}\nestates: [{name: loop, targets: [127.0.0.1]}]\n"
    default = scheduler.desired_jobs(config.parse_text(text, "t.yaml", tmp_path), None)
    assert (default[0].id, default[0].cron) == ("feeds", "30 0 * * *")
    off = scheduler.desired_jobs(config.parse_text(text + "schedule: {feeds: 'off'}\n", "t.yaml", tmp_path), None)
    assert "feeds" not in [j.id for j in off]
