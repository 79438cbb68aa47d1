"""A new user's first evening on a machine with no internet: the bundled intel snapshot, imports
from wherever the feeds' files sit, feeds update with nothing reachable, and the small things
(init's next command, check-config proving the store, the pseudonym key, bare `warpagent`)."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from feeds import baseline, endoflife, packages
from feeds.intel_store import IntelStore
from feeds.sources import SOURCES as FEED_SOURCES
from tests.conftest import ROOT, run_cli
from tests.intel_data import DISTRO_INFO, EOL_PRODUCTS, KEV_FILE, SECURITY_SUPPORT

HEX_KEY = "0f" * 16  # 32 hex characters: the shortest key accepted


def _config(tmp_path: Path, extra: str = "", feeds: str = "{dir: ./intel}") -> Path:
    path = tmp_path / "warpagent.yaml"
    path.write_text(f"organisation: {{name: First Night Council}}\nstore: ./w.db\nfeeds: {feeds}\n"
                    f"estates:\n  - {{name: loop, targets: [127.0.0.1], ports: '22', timeout: 1m}}\n{extra}")
    return path


def _closed_port() -> int:
    """A loopback port nothing listens on: every connection to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the bundled snapshot ---------------------------------------------------------------------

def test_bundled_snapshot_is_the_shared_public_data(tmp_path: Path) -> None:
    feeds = {f.source: f for f in baseline.bundled()}
    assert set(feeds) == {"kev", "endoflife", "distro-packages", "distro-info"}
    assert gzip.decompress(feeds["kev"].file.read_bytes()) == KEV_FILE.read_bytes()  # CISA's bytes, unchanged
    (tmp_path / "full.json").write_bytes(gzip.decompress(feeds["endoflife"].file.read_bytes()))
    api = endoflife.load(tmp_path / "full.json")
    pages = [endoflife.product_from_page(p) for p in sorted(EOL_PRODUCTS.glob("*.md"))]
    assert api == pages  # the API-shaped copy reads back exactly as the repository's pages do
    assert str(feeds["kev"].as_of) == json.loads(KEV_FILE.read_text())["dateReleased"][:10]
    # what Debian's releases build: their real indexes' stanzas for the tracked products, in the
    # indexes' own format, read by the same loader; and distro-info-data's CSVs as Debian ships them
    indexes = json.loads(gzip.decompress(feeds["distro-packages"].file.read_bytes()))
    for name, text in indexes.items():
        (tmp_path / name).write_text(text)
    builds = [b for name in indexes for b in packages.load(tmp_path / name)]
    assert {b.suite for b in builds} >= {"bookworm", "bookworm-security", "trixie"}
    assert any(b.product == "nginx" and b.upstream == "1.22.1" and b.release == "bookworm" for b in builds)
    releases = json.loads(gzip.decompress(feeds["distro-info"].file.read_bytes()))
    assert set(releases) == {"debian.csv", "ubuntu.csv"} and "bookworm" in releases["debian.csv"]


def test_first_scan_offline_uses_the_snapshot_and_says_what_it_still_needs(tmp_path: Path) -> None:
    config = _config(tmp_path)
    scan = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path)
    assert scan.returncode == 0, scan.stderr
    (summary,) = json.loads(scan.stdout)["summary"]
    said = " ".join(summary["problems"])
    assert ("snapshot bundled with warpagent is in use for distro-info (as of 2026-12-05), distro-packages (as of "
            "2026-12-05), endoflife (as of 2026-08-22), kev (as of 2025-08-25)") in said
    assert "patches: no NVD or OSV data" in said
    assert "patches" in summary["unmeasured"] and "unsupported" not in summary["unmeasured"]  # KEV alone: not green
    said_of = {c["category"]: c for c in summary["coverage"]}
    assert said_of["patches"]["detail"] == (
        "not measured: no Microsoft security update documents or NVD vulnerability database or distribution "
        "security advisories (OSV) (run 'warpagent feeds update')")
    assert said_of["unsupported"]["measured"] and said_of["unsupported"]["intel"] == [
        "distro-info", "endoflife", "distro-packages"]
    assert said_of["configs"]["detail"] == "measured from scan results and host evidence"
    assert said_of["privileges"]["detail"].startswith("not measured: no host evidence")
    text = run_cli("--config", str(config), "scan", cwd=tmp_path).stdout
    assert "    patches       not measured: no Microsoft security update documents or NVD" in text
    status = run_cli("--config", str(config), "feeds", "status", "--json", cwd=tmp_path)
    sources = {s["source"]: s for s in json.loads(status.stdout)["sources"]}
    assert sources["kev"]["bundled_snapshot"] == "2025-08-25" and sources["kev"]["records"] == 1404
    assert status.returncode == 3 and "feed kev is stale (the bundled snapshot" in status.stderr
    board = run_cli("--config", str(config), "report", "board", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    assert re.search(r'CISA known exploited vulnerabilities <span data-intel="bundled">\(snapshot shipped with '
                     r'warpagent, as of 25 Aug 2025: \d+ months old\)', board.stdout)  # its age, in words
    assert re.search(r'NVD vulnerability database <span data-intel="missing">\(not available\)', board.stdout)
    assert 'data-metric="rag-patches">N/A' in board.stdout and 'data-metric="rag-unsupported">Green' in board.stdout
    assert re.search(r'data-measured="[^"/]+/patches" class="muted"><td>[^<]*</td><td>Missing security patches</td>'
                     r'<td>not measured: no Microsoft security update documents or NVD', board.stdout)
    technical = run_cli("--config", str(config), "report", "technical", cwd=tmp_path)
    assert technical.returncode == 0, technical.stderr
    assert re.search(r'data-measured="[^"/]+/backups" data-state="not-measured"', technical.stdout)
    assert ('data-state="measured"><td></td><td>Unsupported software</td><td>measured with Debian and Ubuntu '
            'release dates, endoflife.date') in technical.stdout
    assert ("No open findings in what was measured. Not measured, so not known to be clean: Missing security "
            "patches, Inappropriate user privileges") in technical.stdout  # never a bare "No open findings"


def test_snapshot_can_be_turned_off_and_status_json_is_always_json(tmp_path: Path) -> None:
    config = _config(tmp_path, feeds="{dir: ./intel, bundled: false}")
    status = run_cli("--config", str(config), "feeds", "status", "--json", cwd=tmp_path)
    report = json.loads(status.stdout)
    assert status.returncode == 3 and report["sources"] == [] and "no intel at" in report["problem"]
    assert "Traceback" not in status.stderr
    assert not (tmp_path / "intel" / "raw" / "kev").exists()


# --- feeds update --from ------------------------------------------------------------------------

def test_import_finds_feed_files_wherever_they_sit(tmp_path: Path) -> None:
    config = _config(tmp_path)
    usb = tmp_path / "usb"
    (usb / "from-cisa").mkdir(parents=True)
    shutil.copy(KEV_FILE, usb)  # at the folder's root
    shutil.copytree(EOL_PRODUCTS, usb / "git" / "endoflife-date" / "products")  # a clone of the repository
    (usb / "notes.txt").write_text("not a feed")
    result = run_cli("--config", str(config), "feeds", "update", "--from", str(usb),
                     "--from", str(DISTRO_INFO), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"kev: updated from 1 file\n  {usb / 'known_exploited_vulnerabilities.json'} -> " \
           "known_exploited_vulnerabilities.json" in result.stdout
    assert "endoflife: updated from 464 files" in result.stdout and "distro-info: updated from 2 files" in result.stdout
    assert "nvd: not in the import folder; no data" in result.stdout
    assert "security-support: not in the import folder; no data" in result.stdout
    with IntelStore(tmp_path / "intel" / "intel.db") as intel:
        kev = next(s for s in intel.sources() if s.source == "kev")
        assert kev.records == 1404 and kev.bundled is None  # the import replaced the snapshot


def test_import_of_a_folder_with_no_feed_files_is_an_error_and_changes_nothing(tmp_path: Path) -> None:
    config = _config(tmp_path)
    empty = tmp_path / "holiday-photos"
    empty.mkdir()
    (empty / "beach.jpg").write_bytes(b"\xff\xd8")
    result = run_cli("--config", str(config), "feeds", "update", "--from", str(empty), cwd=tmp_path)
    assert result.returncode == 3 and result.stderr.count("\n") == 1
    assert f"{empty}: holds no feed files warpagent recognises" in result.stderr


def test_the_same_feed_file_twice_is_named_not_chosen(tmp_path: Path) -> None:
    config = _config(tmp_path)
    usb = tmp_path / "usb"
    for copy in ("a", "b"):
        (usb / copy).mkdir(parents=True)
        shutil.copy(SECURITY_SUPPORT / "security-support-ended.deb12", usb / copy)
    result = run_cli("--config", str(config), "feeds", "update", "--from", str(usb), cwd=tmp_path)
    assert result.returncode == 3 and "security-support-ended.deb12 is also at" in result.stderr


def test_import_never_follows_links_out_of_the_folder(tmp_path: Path) -> None:
    config = _config(tmp_path)
    usb = tmp_path / "usb"
    usb.mkdir()
    (usb / "debian.csv").symlink_to(DISTRO_INFO / "debian.csv")
    (usb / "elsewhere").symlink_to(DISTRO_INFO, target_is_directory=True)
    result = run_cli("--config", str(config), "feeds", "update", "--from", str(usb), cwd=tmp_path)
    assert result.returncode == 3 and "holds no feed files" in result.stderr


# --- feeds update with nothing reachable ------------------------------------------------------------

def test_update_offline_gives_up_at_once_and_says_what_was_kept(tmp_path: Path) -> None:
    port = _closed_port()
    config = _config(tmp_path, feeds=f"{{dir: ./intel, mirror: 'http://127.0.0.1:{port}', timeout: 5s}}")
    result = run_cli("--config", str(config), "feeds", "update", cwd=tmp_path)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert "Retrying" not in result.stderr and "Traceback" not in result.stderr and "WARNING" not in result.stderr
    per_feed = [line for line in lines if line.startswith("warpagent: feed ")]
    assert len(per_feed) == len(FEED_SOURCES) == 9  # one line per feed
    assert any(line.startswith("warpagent: feed kev not updated: ") and line.endswith(
        "the bundled snapshot of 2025-08-25 kept") for line in per_feed)
    assert any(line.startswith("warpagent: feed nvd not updated: ") and line.endswith("no data yet")
               for line in per_feed)
    # only the first feed was tried: the others share its unreachable server and are not retried for each file
    assert sum("cannot reach the server" in line for line in per_feed) == 1
    assert sum(f"not tried: 127.0.0.1:{port} could not be reached" in line for line in per_feed) == 8
    assert "feeds update --from DIR" in lines[-1]


# --- init, check-config, the key, bare warpagent -------------------------------------------------------

def test_init_names_the_exact_next_command_and_hints_fit_what_was_passed(tmp_path: Path) -> None:
    init = run_cli("init", "site", cwd=tmp_path)
    assert init.returncode == 0
    next_command = init.stdout.strip().rsplit("run: ", 1)[1]
    assert next_command == "warpagent --config site/warpagent.yaml check-config"
    checked = run_cli(*next_command.split()[1:], cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    folder = run_cli("--config", "site", "check-config", cwd=tmp_path)
    assert folder.returncode == 2 and folder.stderr.strip() == (
        "site: is a folder, not a config file; pass --config site/warpagent.yaml "
        "(write one there with 'warpagent init site')")
    other = run_cli("--config", "elsewhere/council.yaml", "check-config", cwd=tmp_path)
    assert other.returncode == 2 and other.stderr.strip() == (
        "elsewhere/council.yaml: no such file; run 'warpagent init elsewhere' to write "
        "elsewhere/warpagent.yaml, then pass --config elsewhere/warpagent.yaml")


def test_check_config_proves_the_store(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    config = _config(tmp_path).read_text().replace("store: ./w.db", "store: ./a-file/w.db")
    (tmp_path / "warpagent.yaml").write_text(config)
    result = run_cli("--config", "warpagent.yaml", "check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert "warpagent.yaml: At 'store':" in result.stderr and "a-file is a file, not a folder" in result.stderr
    (tmp_path / "junk.db").write_bytes(b"this is not SQLite" * 100)
    (tmp_path / "warpagent.yaml").write_text(config.replace("./a-file/w.db", "./junk.db"))
    junk = run_cli("--config", "warpagent.yaml", "check-config", cwd=tmp_path)
    assert junk.returncode == 2 and "cannot open the findings store" in junk.stderr
    assert (tmp_path / "junk.db").read_bytes() == b"this is not SQLite" * 100  # nothing written


def _share(tmp_path: Path, config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli("--config", str(config), "share", "--dry-run", "--out", "bundle.json", cwd=tmp_path, env=env)


def test_pseudonym_key_rules(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert run_cli("--config", str(config), "scan", cwd=tmp_path).returncode == 0
    short = _share(tmp_path, config, {"WARPAGENT_PSEUDONYM_KEY": "council-secret-42"})
    assert short.returncode == 2 and short.stderr.count("\n") == 1
    assert "is not a key of at least 32 hex characters; make one once with" in short.stderr
    assert "council-secret-42" not in short.stderr  # never echoed
    assert _share(tmp_path, config, {"WARPAGENT_PSEUDONYM_KEY": HEX_KEY}).returncode == 0
    from_env = json.loads((tmp_path / "bundle.json").read_text())
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text(HEX_KEY + "\n")
    key_file.chmod(0o644)
    with_file = config.read_text() + f"sharing: {{pseudonym_key_file: {key_file}}}\n"
    config.write_text(with_file)
    readable = _share(tmp_path, config, {"WARPAGENT_PSEUDONYM_KEY": ""})
    assert readable.returncode == 2 and f"can be read by other users; run 'chmod 600 {key_file}'" in readable.stderr
    key_file.chmod(0o600)
    assert _share(tmp_path, config, {"WARPAGENT_PSEUDONYM_KEY": ""}).returncode == 0
    from_file = json.loads((tmp_path / "bundle.json").read_text())
    identity = lambda b: {o["id"] for o in b["objects"] if o["type"] == "identity"}  # noqa: E731
    assert identity(from_env) == identity(from_file) != set()  # the same key, the same pseudonym


def test_bare_warpagent_prints_the_help(tmp_path: Path) -> None:
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 2 and result.stdout.startswith("usage: warpagent")
    assert "examples:" in result.stdout and result.stderr == ""


def test_files_the_readme_commands_write_are_ignored_by_git(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout")
    written = ["warpagent.db", "board.html", "bundle.json", "intel/intel.db", "intel/raw/kev/x.json",
               "warpagent.db.daemon.lock", "outbox/x.json", "mail-outbox/board-2026-11.eml"]
    result = subprocess.run(["git", "check-ignore", "--no-index", *written], cwd=ROOT, capture_output=True, text=True,
                            check=False, env={**os.environ, "GIT_DIR": str(ROOT / ".git")})
    assert sorted(result.stdout.split()) == sorted(written)


def test_sharing_before_any_scan_says_nothing_was_measured(tmp_path: Path) -> None:
    from warpagent.store.findings import Store

    config = _config(tmp_path)
    with Store(tmp_path / "w.db"):
        pass  # a store, but no scan has finished
    shared = _share(tmp_path, config, {"WARPAGENT_PSEUDONYM_KEY": HEX_KEY})
    assert shared.returncode == 0, shared.stderr
    postures = [o for o in json.loads((tmp_path / "bundle.json").read_text())["objects"]
                if o["type"] == "x-warpagent-posture"]
    assert len(postures) == 7 and not any(p["measured"] for p in postures)  # never "0 open" for the unscanned
