"""Set-up mistakes found only at 2 a.m. (issue 28): relative paths, missing files and secrets,
and the README's pseudonym key command on a fresh machine."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_cli
from warpagent import config

# Every key whose value is a path, each given relative to the config file's folder.
EVERY_PATH_KEY = """organisation: {name: Paths Council}
store: ./data/w.db
estates:
  - name: corp
    targets: [127.0.0.1]
    evidence:
      - ./evidence
      - ssh: {hosts: [127.0.0.1], username: scan, key_file: ./keys/id_ed25519, known_hosts: ./keys/known_hosts}
    suppliers: ./suppliers.yaml
    directory: {url: 'ldaps://127.0.0.1', base_dn: 'DC=x', bind_dn: 'CN=r,DC=x', password_env: DIR_PW,
                ca_bundle: ./pki/dc.pem}
    mail: {ca_bundle: ./pki/mail.pem}
sharing:
  pseudonym_key_file: ./keys/pseudonym.key
  outbox: ./data/outbox
  peers: [{name: w, url: 'https://127.0.0.1/taxii2/', collection: c, username: u, password_env: P,
           ca_bundle: ./pki/warp.pem}]
reports:
  logo: ./brand/logo.png
  email: {smtp_host: 127.0.0.1, from: a@council.test, to: [b@council.test], outbox: ./data/mail,
          ca_bundle: ./pki/smtp.pem}
feeds: {dir: ./intel, ca_bundle: ./pki/feeds.pem}
hub:
  store: ./hub.db
  ca_bundle: ./pki/hub-ca.pem
  tls: {cert_file: ./pki/hub.crt, key_file: ./pki/hub.key}
  users: [{name: coordinator, role: coordinator, password_env: HUB_PW}]
"""


def _paths(value: Any, at: str = "") -> Iterator[tuple[str, str]]:
    """(field path, value) for every Path in the settings, and every str field named like a path."""
    if isinstance(value, Path):
        yield at, str(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            child = getattr(value, item.name)
            if isinstance(child, str) and item.name in ("ca_bundle", "store") and child:
                yield f"{at}.{item.name}", child
            else:
                yield from _paths(child, f"{at}.{item.name}")
    elif isinstance(value, tuple):
        for index, child in enumerate(value):
            if isinstance(child, str) and at.endswith(".evidence"):
                yield f"{at}[{index}]", child
            else:
                yield from _paths(child, f"{at}[{index}]")


def test_every_relative_path_is_relative_to_the_config_folder(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "etc" / "warpagent"
    folder.mkdir(parents=True)
    (folder / "w.yaml").write_text(EVERY_PATH_KEY)
    elsewhere = tmp_path / "cron"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = config.load("../etc/warpagent/w.yaml")  # a relative --config, as a cron line may give it
    found = dict(_paths(settings))
    assert len(found) >= 17, found  # every key above, so none escapes the test
    wrong = {key: value for key, value in found.items() if not value.startswith(str(folder) + os.sep)}
    assert wrong == {}
    assert settings.store.path == folder / "data" / "w.db"
    assert settings.hub is not None and settings.hub.database_url == f"sqlite:///{folder}/hub.db"  # not /hub.db


def test_check_config_names_what_is_missing_and_each_unset_secret(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text("""organisation: {name: X}
store: ./w.db
estates: [{name: e, targets: [127.0.0.1], evidence: [./evidence, ./collected], suppliers: ./suppliers.yaml,
           directory: {url: 'ldaps://127.0.0.1', base_dn: 'DC=x', bind_dn: 'CN=r', password_env: DIR_PW}}]
sharing: {peers: [{name: w, url: 'https://127.0.0.1/taxii2/', collection: c, username: u, password_env: WARP_PW}]}
""")
    (tmp_path / "collected").mkdir()
    env = {"DIR_PW": "", "WARP_PW": "", "WARPAGENT_PSEUDONYM_KEY": ""}
    result = run_cli("--config", "w.yaml", "check-config", cwd=tmp_path, env=env)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines == [
        f"w.yaml: At 'estates[0].evidence': folder {tmp_path}/evidence does not exist; create it or correct the "
        "path (until then every run that needs it is partial)",
        f"w.yaml: At 'estates[0].suppliers': file {tmp_path}/suppliers.yaml does not exist; create it or correct "
        "the path (until then every run that needs it is partial)"]
    (tmp_path / "evidence").mkdir()
    (tmp_path / "suppliers.yaml").write_text("suppliers: []\n")
    warned = run_cli("--config", "w.yaml", "check-config", cwd=tmp_path, env=env)
    assert warned.returncode == 0, warned.stderr
    assert "3 warnings" in warned.stdout
    named = re.findall(r"At '([^']+)': environment variable (\w+) is not set", warned.stderr)
    assert named == [("estates[0].directory.password_env", "DIR_PW"),
                     ("sharing.pseudonym_key_env", "WARPAGENT_PSEUDONYM_KEY"),
                     ("sharing.peers[0].password_env", "WARP_PW")]
    assert all("the daemon's environment" in line for line in warned.stderr.splitlines())
    clean = run_cli("--config", "w.yaml", "check-config", cwd=tmp_path,
                    env={"DIR_PW": "x", "WARP_PW": "y", "WARPAGENT_PSEUDONYM_KEY": "z" * 64})
    assert clean.returncode == 0 and clean.stderr == "" and "warning" not in clean.stdout


def test_an_evidence_path_that_is_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text("organisation: {name: X}\nstore: ./w.db\n"
                                     "estates: [{name: e, evidence: [./evidence.tar]}]\n")
    (tmp_path / "evidence.tar").write_bytes(b"not a folder")
    result = run_cli("--config", "w.yaml", "check-config", cwd=tmp_path)
    assert result.returncode == 2 and "folder" in result.stderr and "is not a folder" in result.stderr


def test_the_readme_pseudonym_key_command_works_on_a_fresh_machine(tmp_path: Path) -> None:
    """The folder does not exist yet and openssl may not be installed: the command must still work."""
    readme = (ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "pseudonym.key" in line and line.startswith("(umask"))
    folder = tmp_path / "etc" / "warpagent"
    shell = command.replace("/etc/warpagent", str(folder))
    assert subprocess.run(["bash", "-c", shell], check=False, timeout=30).returncode == 0
    key = folder / "pseudonym.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and re.fullmatch(r"[0-9a-f]{64}\n", key.read_text())
    (tmp_path / "w.yaml").write_text(f"organisation: {{name: X}}\nestates: [{{name: e, targets: [127.0.0.1]}}]\n"
                                     f"sharing: {{pseudonym_key_file: {key}}}\n")
    assert len(config.load(str(tmp_path / "w.yaml")).pseudonym_key()) == 64


def test_init_lays_the_machines_release_data_into_the_new_feeds_folder(tmp_path: Path) -> None:
    """Issue 30: a fresh `init DIR` had an empty feeds folder, so a Debian 10 host raised no
    end-of-life finding while "unsupported" counted as measured."""
    made = run_cli("init", str(tmp_path / "council"), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert f"imported this machine's distro-info, security-support into {tmp_path}/council/intel" in made.stdout
    config_file = tmp_path / "council" / "warpagent.yaml"
    host = tmp_path / "council" / "evidence" / "old-web" / "etc"
    host.mkdir(parents=True)
    (host / "os-release").write_text('ID=debian\nVERSION_ID="10"\nVERSION_CODENAME=buster\n')
    (host / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    config_file.write_text(re.sub(r"(?ms)^estates:.*?(?=^\S)", "estates:\n  - name: servers\n    evidence: "
                                  "[./evidence]\n", config_file.read_text()))
    scanned = run_cli("--config", str(config_file), "scan", "--json", cwd=tmp_path)
    assert scanned.returncode in (0, 1), scanned.stderr
    found = [f for f in json.loads(scanned.stdout)["findings"] if f["check_id"] == "WA203"]
    assert [f["asset"] for f in found] == ["old-web"] and "Buster" in found[0]["title"]


def test_a_schedule_written_off_without_quotes_is_off(tmp_path: Path) -> None:
    """Issue 30: the README says `schedule.feeds: off`; YAML reads a bare off as false, and the
    config was refused with "False is not of type 'string'"."""
    from warpagent.daemon.scheduler import desired_jobs

    (tmp_path / "w.yaml").write_text("organisation: {name: X}\nstore: ./w.db\nestates: [{name: e, targets: "
                                     "[127.0.0.1]}, {name: f, targets: [127.0.0.2]}]\nschedule: {feeds: off, "
                                     "board_report: 'off', share_after_scan: off, notify_failures: no, "
                                     "estates: {f: off}}\n")
    settings = config.load(str(tmp_path / "w.yaml"))
    assert (settings.schedule.feeds, settings.schedule.board_report) == ("off", "off")
    assert settings.schedule.share_after_scan is False and settings.schedule.notify_failures is False
    assert [job.id for job in desired_jobs(settings, None)] == ["scan:e"]
