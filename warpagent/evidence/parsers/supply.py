"""Parsers for supply-chain evidence: apt sources (one-line `.list` and deb822 `.sources`),
CycloneDX (1.2-1.7, read by cyclonedx-python-lib) and SPDX (2.2/2.3) JSON SBOMs, and the
council's supplier register (YAML).
Pure functions from text to evidence.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import yaml
from cyclonedx.model.bom import Bom
from cyclonedx.schema.deprecation import BaseSchemaDeprecationWarning

from warpagent.config import strict_yaml
from warpagent.evidence.formats import EvidenceError, stanzas
from warpagent.model.evidence import Assurance, PackageSource, SbomComponent, Supplier, Where
from warpagent.text import shown

CYCLONEDX_VERSIONS = ("1.2", "1.3", "1.4", "1.5", "1.6", "1.7")


# --- apt sources ----------------------------------------------------------------------------

def _yes(value: str) -> bool:
    return value.strip().lower() in ("yes", "true", "1")


def _agreed(sources: list[PackageSource]) -> list[PackageSource]:
    """apt refuses a sources list that gives one repository two different Signed-By keys
    ("Conflicting values set for option Signed-By"), and then updates nothing: so does warpagent."""
    keys: dict[tuple[str, str], str] = {}
    for source in sources:
        for suite in source.suites:
            repository = (source.uri.rstrip("/"), suite)
            if keys.setdefault(repository, source.signed_by) != source.signed_by:
                raise EvidenceError(f"line {source.where.line}: {shown(repository[0], 80)} {shown(suite, 40)} is given "
                                    "two different Signed-By keys; apt refuses the file (and updates nothing)")
    return sources


def apt_list(text: str, file: str) -> list[PackageSource]:
    """One-line style: `deb [trusted=yes signed-by=/k.gpg] http://host/debian bookworm main`."""
    sources = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"(deb|deb-src)\s+(?:\[([^]]*)\]\s+)?(\S+)\s+(\S+)(?:\s+.*)?", line)
        if not match:
            raise EvidenceError(f"line {number}: expected 'deb [options] URI suite [components]'")
        options = dict(([*o.split("=", 1), ""])[:2] for o in (match.group(2) or "").split())
        sources.append(PackageSource(uri=match.group(3), suites=(match.group(4),),
                                     trusted=_yes(options.get("trusted", "")),
                                     signed_by=options.get("signed-by", ""), where=Where(file, number)))
    return _agreed(sources)


def apt_deb822(text: str, file: str) -> list[PackageSource]:
    """deb822 style (`.sources`): Types, URIs, Suites, Components, Signed-By, Trusted, Enabled;
    field names in any case, as apt reads them (`types:`, `URIS:`)."""
    sources = []
    for start, named in stanzas(text, comments=True):
        fields = {key.casefold(): value for key, value in named.items()}
        if "uris" not in fields or "types" not in fields:
            raise EvidenceError(f"line {start}: a stanza without Types or URIs; not an apt .sources file")
        if fields.get("enabled", "yes").strip().lower() == "no":
            continue
        signed_by = fields.get("signed-by", "")
        for uri in fields["uris"].split():
            sources.append(PackageSource(uri=uri, suites=tuple(fields.get("suites", "").split()),
                                         trusted=_yes(fields.get("trusted", "")),
                                         signed_by="(inline key)" if "\n" in signed_by else signed_by,
                                         where=Where(file, start)))
    return _agreed(sources)


# --- SBOMs ----------------------------------------------------------------------------------

def _cyclonedx(document: Mapping[str, Any], file: str) -> Iterator[SbomComponent]:
    """Components as cyclonedx-python-lib (CycloneDX's own library) reads them, nested ones too."""
    version = str(document.get("specVersion", ""))
    if version not in CYCLONEDX_VERSIONS:
        raise EvidenceError(f"CycloneDX specVersion {shown(version, 20)!r} is not one of "
                            f"{', '.join(CYCLONEDX_VERSIONS)} (CycloneDX JSON began with 1.2)")
    try:
        with warnings.catch_warnings():
            # the library warns of each field a newer CycloneDX deprecates: the SBOM's author's business, not the run's
            warnings.simplefilter("ignore", BaseSchemaDeprecationWarning)
            bom = Bom.from_json(document)  # type: ignore[attr-defined]
    except RecursionError:
        raise EvidenceError("components nested too deeply to read") from None
    except Exception as exc:  # noqa: BLE001 - the library raises many kinds for a document it cannot read
        raise EvidenceError(f"CycloneDX {version} that cyclonedx-python-lib cannot read "
                            f"({exc.__class__.__name__}: {shown(str(exc).splitlines()[0] if str(exc) else '', 120)})"
                            ) from None

    def walk(components: Iterable[Any], path: str) -> Iterator[SbomComponent]:
        for component in components:
            purl = str(component.purl) if component.purl is not None else ""
            ref = component.bom_ref.value if component.bom_ref is not None and component.bom_ref.value else ""
            label = ref or purl or f"{component.name}@{component.version or ''}"
            here = f"{path}[{shown(label, 120)}]"
            yield SbomComponent(name=str(component.name), version=str(component.version or ""), purl=purl,
                                cpe=str(component.cpe or ""), where=Where(f"{file}:{here}"))
            yield from walk(component.components, f"{here}.components")

    yield from walk(bom.components, "components")


def _spdx(document: Mapping[str, Any], file: str) -> Iterator[SbomComponent]:
    packages = document.get("packages", [])
    if not isinstance(packages, list):
        raise EvidenceError("packages is not a list")
    for index, package in enumerate(packages):
        here = f"packages[{index}]"
        if not isinstance(package, dict) or not isinstance(package.get("name"), str):
            raise EvidenceError(f"{here} has no name")
        purl = cpe_name = ""
        for ref in package.get("externalRefs") or ():
            kind = str(ref.get("referenceType", "")).lower()
            if kind == "purl" and not purl:
                purl = str(ref.get("referenceLocator", ""))
            elif kind.startswith("cpe") and not cpe_name:
                cpe_name = str(ref.get("referenceLocator", ""))
        yield SbomComponent(name=package["name"], version=str(package.get("versionInfo", "")), purl=purl,
                            cpe=cpe_name, where=Where(f"{file}:{here}"))


def sbom(text: str, file: str) -> list[SbomComponent]:
    """Components of a CycloneDX or SPDX JSON SBOM, nested CycloneDX components included."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvidenceError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise EvidenceError("not a CycloneDX or SPDX document (expected a JSON object)")
    if document.get("bomFormat") == "CycloneDX":
        return list(_cyclonedx(document, file))
    if str(document.get("spdxVersion", "")).startswith("SPDX-2."):
        return list(_spdx(document, file))
    raise EvidenceError("neither CycloneDX (bomFormat) nor SPDX 2.x (spdxVersion) JSON")


# --- supplier register ----------------------------------------------------------------------

def _date(value: Any, where: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise EvidenceError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def _text(value: Any, where: str, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise EvidenceError(f"{where}: expected text")
    return value.strip()


def suppliers(text: str, file: str) -> list[Supplier]:
    """The register: `suppliers:` then one entry per supplier (see config/README.md)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        document = strict_yaml.load(text)
    except strict_yaml.YamlRefused as exc:
        raise EvidenceError(f"line {exc.line}: {exc.reason}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise EvidenceError(f"not valid YAML{f' (line {mark.line + 1})' if mark else ''}") from None
    except RecursionError:
        raise EvidenceError("nested too deeply to be a supplier register") from None
    too_big = strict_yaml.too_big(document)
    if too_big:
        raise EvidenceError(too_big)
    if not isinstance(document, dict) or not isinstance(document.get("suppliers"), list):
        raise EvidenceError("expected a 'suppliers:' list")
    if not isinstance(root, yaml.MappingNode):
        raise EvidenceError("expected a 'suppliers:' list")
    node = next(v for k, v in root.value if k.value == "suppliers")
    out = []
    for index, entry in enumerate(document["suppliers"]):
        here = f"suppliers[{index}]"
        if not isinstance(entry, dict):
            raise EvidenceError(f"{here}: expected a mapping with name, service, access, assurance, last_review")
        unknown = set(entry) - {"name", "service", "access", "assurance", "last_review", "notes"}
        if unknown:
            raise EvidenceError(f"{here}: unknown key {shown(str(sorted(unknown, key=str)[0]), 40)!r}")
        access = entry.get("access", [])
        if isinstance(access, str):
            access = [access]
        if not isinstance(access, list) or not all(isinstance(a, str) for a in access):
            raise EvidenceError(f"{here}.access: expected a list of access routes")
        assurance = []
        for a_index, item in enumerate(entry.get("assurance") or ()):
            a_here = f"{here}.assurance[{a_index}]"
            if not isinstance(item, dict):
                raise EvidenceError(f"{a_here}: expected scheme and expires")
            assurance.append(Assurance(scheme=_text(item.get("scheme"), f"{a_here}.scheme"),
                                       expires=_date(item.get("expires"), f"{a_here}.expires")))
        out.append(Supplier(name=_text(entry.get("name"), f"{here}.name"),
                            service=_text(entry.get("service"), f"{here}.service", required=False),
                            access=tuple(a.strip().lower() for a in access), assurance=tuple(assurance),
                            last_review=_date(entry.get("last_review"), f"{here}.last_review"),
                            where=Where(file, node.value[index].start_mark.line + 1)))
    return out
