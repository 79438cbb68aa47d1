"""endoflife.date: the API v1 JSON (`/api/v1/products/full` or one product) and a mirror of the
repository's `products/*.md` pages (YAML front matter), for councils that run air-gapped."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from feeds.model import EolCycle, EolProduct, FeedError


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        return dt.date.fromisoformat(value[:10])
    return None


def _eol(value: Any) -> dt.date | bool:
    if isinstance(value, bool):
        return value
    parsed = _date(value)
    if parsed is None:
        return False
    return parsed


def _identifiers(items: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    cpes, purls = [], []
    for item in items or ():
        if not isinstance(item, Mapping):
            continue
        # the repository writes {cpe: "..."}; the API writes {type: "cpe", id: "..."}
        kind, value = (item.get("type"), item.get("id")) if "type" in item else next(iter(item.items()), ("", ""))
        if kind == "cpe" and isinstance(value, str):
            cpes.append(value)
        elif kind == "purl" and isinstance(value, str):
            purls.append(value)
    return tuple(cpes), tuple(purls)


def product_from_page(path: Path) -> EolProduct:
    """One `products/<name>.md` page of the endoflife.date repository."""
    try:
        text = path.read_text(encoding="utf-8")
        if not text.startswith("---"):
            raise ValueError("no YAML front matter")
        front = yaml.safe_load(text.split("---", 2)[1])
        if not isinstance(front, dict) or not isinstance(front.get("releases"), list):
            raise ValueError("front matter has no 'releases' list")
        cycles = []
        for index, release in enumerate(front["releases"]):
            if "releaseCycle" not in release:
                raise ValueError(f"releases[{index}] has no releaseCycle")
            cycles.append(EolCycle(
                cycle=str(release["releaseCycle"]), release_date=_date(release.get("releaseDate")),
                eol=_eol(release.get("eol")), latest=str(release.get("latest") or ""),
                lts=bool(release.get("lts")), codename=str(release.get("codename") or "")))
        cpes, purls = _identifiers(front.get("identifiers"))
        return EolProduct(name=path.stem, title=str(front.get("title", path.stem)),
                          category=str(front.get("category", "")), cpes=cpes, purls=purls, cycles=tuple(cycles))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, TypeError, AttributeError) as exc:
        raise FeedError(f"{path}: not an endoflife.date product page ({exc})") from None


def product_from_api(item: Mapping[str, Any]) -> EolProduct:
    cycles = []
    for release in item.get("releases") or ():
        eol: dt.date | bool = _date(release.get("eolFrom")) or bool(release.get("isEol"))
        latest = release.get("latest") or {}
        cycles.append(EolCycle(
            cycle=str(release["name"]), release_date=_date(release.get("releaseDate")), eol=eol,
            latest=str(latest.get("name") or "") if isinstance(latest, Mapping) else "",
            lts=bool(release.get("isLts")), codename=str(release.get("codename") or "")))
    cpes, purls = _identifiers(item.get("identifiers"))
    return EolProduct(name=str(item["name"]), title=str(item.get("label") or item["name"]),
                      category=str(item.get("category", "")), cpes=cpes, purls=purls, cycles=tuple(cycles))


def load(path: Path) -> list[EolProduct]:
    """A repository mirror (a folder holding `products/` or the `products/` folder), or API v1 JSON."""
    if path.is_dir():
        folder = path / "products" if (path / "products").is_dir() else path
        pages = sorted(folder.glob("*.md"))
        if not pages:
            raise FeedError(f"{folder}: holds no endoflife.date product pages (*.md)")
        return [product_from_page(page) for page in pages]
    try:
        data = json.loads(path.read_bytes())
        result = data["result"]
        items = result if isinstance(result, list) else [result]
        return [product_from_api(item) for item in items]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FeedError(f"{path}: not endoflife.date API v1 JSON ({exc.__class__.__name__}: {exc})") from None
