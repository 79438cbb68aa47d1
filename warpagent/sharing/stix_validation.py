"""stix2-validator's own judgement of a bundle, with its schemas read and crawled once.

stix2-validator 3.3 builds a new jsonschema validator for every object it checks: it re-reads
the type's schema file, and the `referencing` registry behind each new validator crawls every
schema again at each `$ref`. On a member's share of 100,000 findings (8,000 objects) that was
26 of 34 seconds. Here each schema's validator is built once per process over one registry that
holds every schema file of the validator's own folder, crawled once; the validator, its schemas,
its patching of them and its rules are its own, so its verdicts are unchanged
(tests/test_stix_validation.py compares them with the unmodified validator's on bad bundles).
"""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from typing import Any

import stix2validator.validator as upstream
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from stix2validator import ValidationOptions, validate_parsed_json, validate_string

OPTIONS = ValidationOptions(version="2.1")
_built: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()
_original = (upstream.load_validator, upstream.load_schema)


@functools.lru_cache(maxsize=256)
def _schema_text(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def _load_schema(schema_path: str) -> Any:
    # Parsed afresh from the cached text: the validator edits the bundle and observed-data schemas it is given.
    try:
        return json.loads(_schema_text(schema_path))
    except ValueError as exc:
        raise upstream.SchemaInvalidError(f"Invalid JSON in schema or included schema: {schema_path}\n{exc}") from None


@functools.lru_cache(maxsize=8)
def _registry(schema_dir: str) -> Registry:
    """Every schema under `schema_dir`, as the validator itself would retrieve it, crawled once."""
    retrieve = functools.partial(upstream.retrieve_from_filesystem, schema_dir=schema_dir)
    resources = [(path.as_uri(), retrieve(path.as_uri())) for path in sorted(Path(schema_dir).rglob("*.json"))
                 if "examples" not in path.parts]
    return Registry(retrieve=retrieve).with_resources(resources).crawl()  # type: ignore[call-arg]


def _load_validator(schema_path: str, schema: Any, schema_dir: str) -> Any:
    key = (schema_path, schema_dir)
    with _lock:
        if key not in _built:
            patched = upstream._PATCHED_SCHEMAS.get(schema_path)
            if patched is None:
                patched = upstream._PATCHED_SCHEMAS[schema_path] = upstream.patch_schema(schema, schema_path)
            registry = _registry(schema_dir).with_resource(schema_path, DRAFT202012.create_resource(patched)).crawl()
            _built[key] = upstream.STIXValidator(patched, registry=registry,
                                                 format_checker=upstream.Draft202012Validator.FORMAT_CHECKER)
        return _built[key]


upstream.load_validator = _load_validator
upstream.load_schema = _load_schema


def errors(bundle_json: str) -> list[str]:
    """stix2-validator's errors for the bundle (warnings are not errors); empty means valid."""
    return [str(e) for e in validate_string(bundle_json, OPTIONS).errors]


def object_errors(obj: dict[str, Any]) -> list[str]:
    """The validator's errors for one parsed object (or a bundle)."""
    results = validate_parsed_json(obj, OPTIONS)
    return [str(e) for r in (results if isinstance(results, list) else [results]) for e in r.errors]


def upstream_errors(bundle_json: str) -> list[str]:
    """The same judgement by the validator exactly as shipped (slow): the reference for tests and bench."""
    fast = (upstream.load_validator, upstream.load_schema)
    upstream.load_validator, upstream.load_schema = _original
    try:
        return errors(bundle_json)
    finally:
        upstream.load_validator, upstream.load_schema = fast
