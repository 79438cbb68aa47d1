"""Hub passwords: PBKDF2 hashes from `hub hash-password`, accepted by the schema and the check."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli
from warpagent import config
from warpagent.hub.server import PasswordCheck, hash_password


def test_hash_password_cli_output_is_accepted_by_config_and_check(tmp_path: Path) -> None:
    result = run_cli("hub", "hash-password", cwd=tmp_path, env={}, timeout=60)
    assert result.returncode == 2  # no password on stdin: too short
    hashed = run_cli_with_stdin(tmp_path, "correct-horse-battery\n")
    (tmp_path / "hub.yaml").write_text(f"""organisation: {{name: WARP}}
hub:
  users:
    - {{name: member-01, role: member, password_hash: '{hashed}'}}
""")
    settings = config.load(str(tmp_path / "hub.yaml"))
    assert settings.hub is not None and settings.hub.users[0].password_hash == hashed
    check = PasswordCheck({}, {"member-01": hashed})
    assert check("member-01", "correct-horse-battery") == "member-01"
    assert check("member-01", "correct-horse-battery") == "member-01"  # remembered: no second PBKDF2
    assert check("member-01", "wrong") is None
    assert check("member-02", "correct-horse-battery") is None


def run_cli_with_stdin(cwd: Path, text: str) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "warpagent", "hub", "hash-password"], input=text, cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def test_plain_passwords_compare_in_constant_time_and_hashes_are_salted() -> None:
    check = PasswordCheck({"coordinator": "s3cret-coordinator"}, {})
    assert check("coordinator", "s3cret-coordinator") == "coordinator"
    assert check("coordinator", "s3cret-coordinatoR") is None and check("", "") is None
    assert hash_password("same", iterations=1000) != hash_password("same", iterations=1000)
    assert PasswordCheck({}, {"m": hash_password("pw", iterations=1000)})("m", "pw") == "m"
