"""Defaults live once, in the schema: the typed settings are built from it and their dataclass
defaults read it, so the embedded default and a config of required keys only are pinned."""

from __future__ import annotations

import ast
import dataclasses
import enum
import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from warpagent import config
from warpagent.config import defaults
from warpagent.errors import ConfigError

ASSETS = ROOT / "tests/assets/config"
BASE = Path("/council")


def _plain(value: object) -> object:
    return value.value if isinstance(value, enum.Enum) else str(value)


def _as_json(settings: config.Settings) -> object:
    return json.loads(json.dumps(dataclasses.asdict(settings), default=_plain, sort_keys=True))


@pytest.mark.parametrize(("text", "pinned"), [
    (None, "embedded.settings.json"),
    ("minimal_everything.yaml", "minimal_everything.settings.json"),
])
def test_settings_are_those_pinned_before_defaults_moved_to_the_schema(text: str | None, pinned: str) -> None:
    """The pinned files were written by the release before the move (dataclass, _build and schema
    each holding the defaults); the settings built from the schema alone are the same. Changed
    since only where a default was meant to change (Cyber Essentials' 14-day deadlines; the
    per-service estates[].service_timeout, 90 s per host before version detection ran per port with
    quick waits) and by new
    keys (reports.alerts, schedule.alerts, estates[].directory, estates[].domains and mail, scan.dns_*,
    estates[].backups.max_age_by_job, estates[].windows_updates and patch_deadline, estates[].m365,
    feeds.msrc_months, estates[].fallback_timeout, sharing.peers[].versions_collection)."""
    source = config.EMBEDDED if text is None else text
    document = config.example_text() if text is None else (ASSETS / text).read_text(encoding="utf-8")
    built = config.parse_text(document, source, BASE)
    assert _as_json(built) == json.loads((ASSETS / pinned).read_text(encoding="utf-8"))


def test_the_dataclass_defaults_are_the_schemas() -> None:
    built = config.parse_text((ASSETS / "minimal_everything.yaml").read_text(encoding="utf-8"), "m.yaml", BASE)
    estate = built.estates[0]
    assert dataclasses.replace(estate, evidence=(), ssh=(), backups=config.BackupPolicy()) == config.EstateConfig(
        name=estate.name, targets=estate.targets)
    assert built.estates[0].backups.restic[0] == config.ResticRepository(
        name="files", repository="/srv/restic", password_env="RESTIC_PASSWORD")  # noqa: S106 - a variable name
    assert built.sharing.peers[0] == config.PeerConfig(name="warp", url="https://warp.example.gov.uk/taxii2/",
                                                       collection="members")
    assert built.scan == config.ScanSettings(celery=config.CelerySettings(broker="redis://198.18.0.5:6379/0"))
    assert built.schedule == config.ScheduleSettings()
    assert built.reports.rag == config.RagRules()
    assert dataclasses.replace(built.sharing, peers=(), outbox=Path("outbox")) == config.SharingSettings()


def test_no_default_is_written_in_the_builder() -> None:
    """`section.get(key, value)` in the builder would be a second home for a default."""
    tree = ast.parse((ROOT / "warpagent/config/load.py").read_text(encoding="utf-8"))
    second_homes = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and len(node.args) == 2]
    assert second_homes == []


def test_an_absent_section_without_a_schema_default_stays_absent() -> None:
    filled = defaults.completed({"organisation": {"name": "x"}, "estates": [{"name": "a", "targets": ["t"]}]})
    assert "email" not in filled["reports"] and "hub" not in filled and "celery" not in filled["scan"]
    assert filled["estates"][0]["timeout"] == "6h" and filled["reports"]["rag"]["kev_days"] == 14


def test_a_default_the_schema_lacks_is_a_clear_error_not_a_silent_value() -> None:
    with pytest.raises(KeyError, match=r"no default for estates\[\]\.name"):
        defaults.default("estates[].name")


def test_validation_still_sees_the_users_document_not_the_filled_one() -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse_text("organisation: {name: x}\nestates: [{name: a, targets: [198.18.0.1]}]\n"
                          "schedule: {timezone: Mars/Olympus}\n", "c.yaml", BASE)
    assert caught.value.problems == ["c.yaml: At 'schedule.timezone': 'Mars/Olympus' is not a time zone; use an "
                                     "IANA name such as Europe/London"]


def test_the_key_reference_shows_the_schemas_defaults() -> None:
    """config/README.md's default column is read by people; it must say what the schema does."""
    rows = {}
    for line in (ROOT / "config/README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = cells[2]
    checked = 0
    for path, shown in rows.items():
        try:
            value = defaults.default(path)
        except (KeyError, StopIteration):
            continue
        if value in ("", [], {}) or isinstance(value, list):
            continue
        written = json.dumps(value) if isinstance(value, bool) else str(value)
        assert f"`{written}`" in shown, f"config/README.md: {path} shows {shown!r}; the schema's default is {written}"
        checked += 1
    assert checked > 60
