"""Start-up: the IRI grammar jsonschema would compile at import (about a second of every
command) is deferred until an IRI is checked, and the check's answer is unchanged."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_no_command_compiles_the_iri_grammar_at_start_up() -> None:
    probe = ("import sys, warpagent.cli.main, jsonschema; "
             "print(sorted(m for m in sys.modules if m.startswith('rfc3987_syntax.')))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(("value", "valid"), [("https://warp.example.org/taxii2/", True), ("urn:uuid:1", True),
                                              ("http://exa mple.org/", False), ("not an iri", False),
                                              ("https://例え.jp/パス", True)])
def test_the_deferred_iri_check_answers_as_the_real_one(value: str, valid: bool) -> None:
    probe = ("import sys, warpagent; from jsonschema import Draft202012Validator as V; "
             f"deferred = V.FORMAT_CHECKER.conforms({value!r}, 'iri'); "
             "import rfc3987_syntax; "
             f"real = rfc3987_syntax.is_valid_syntax('iri', {value!r}); print(deferred, real)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            check=True)
    assert result.stdout.split() == [str(valid), str(valid)]
