"""What start-up never needs, deferred until something does.

jsonschema imports `rfc3987_syntax` when it is installed, and that module compiles its IRI
grammar at import: about a second of every command's start, for a check only the STIX
validator's `iri` formats make. Here the import is deferred to the first such check, so a
command that validates no IRI never pays for it and one that does gets the same answer.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

_DEFERRED = "rfc3987_syntax"


def defer_iri_grammar() -> None:
    """Stand a stub in for rfc3987_syntax that imports the real module on first use."""
    if _DEFERRED in sys.modules or importlib.util.find_spec(_DEFERRED) is None:
        return
    stub = types.ModuleType(_DEFERRED)

    def is_valid_syntax(rule: str, value: str) -> bool:
        if sys.modules.get(_DEFERRED) is stub:
            del sys.modules[_DEFERRED]
        real = importlib.import_module(_DEFERRED)
        return bool(real.is_valid_syntax(rule, value))

    stub.is_valid_syntax = is_valid_syntax  # type: ignore[attr-defined]
    sys.modules[_DEFERRED] = stub
