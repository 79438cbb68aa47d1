"""Rebuild the intel snapshot bundled with warpagent (feeds/bundled/) from public data.

    python scripts/make_intel_snapshot.py KEV_JSON ENDOFLIFE_PRODUCTS_DIR ENDOFLIFE_DATE

KEV_JSON is CISA's catalog exactly as it serves it (known_exploited_vulnerabilities.json);
ENDOFLIFE_PRODUCTS_DIR is the `products/` folder of the endoflife.date repository, as of
ENDOFLIFE_DATE (YYYY-MM-DD: the repository's commit date; page files carry no date). The KEV file
is kept byte for byte; the product pages are read with warpagent's own page loader and written
in the shape of the endoflife.date API v1 (`/api/v1/products/full`), which the same feed loader
reads. Both are gzipped, and MANIFEST.json records what each is and of which date.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feeds import endoflife  # noqa: E402
from feeds.model import EolProduct  # noqa: E402

OUT = ROOT / "feeds" / "bundled"


def _api_item(product: EolProduct) -> dict[str, Any]:
    def release(cycle: Any) -> dict[str, Any]:
        dated = isinstance(cycle.eol, dt.date)
        return {"name": cycle.cycle, "codename": cycle.codename or None,
                "releaseDate": cycle.release_date.isoformat() if cycle.release_date else None,
                "isLts": cycle.lts, "isEol": bool(cycle.eol) if not dated else None,
                "eolFrom": cycle.eol.isoformat() if dated else None,
                "latest": {"name": cycle.latest} if cycle.latest else None}
    identifiers = [{"type": "cpe", "id": c} for c in product.cpes] + [{"type": "purl", "id": p} for p in product.purls]
    return {"name": product.name, "label": product.title, "category": product.category,
            "identifiers": identifiers, "releases": [release(c) for c in product.cycles]}


def _write(name: str, data: bytes) -> None:
    # mtime 0: the same input always gives the same bytes, so a rebuild shows no spurious diff
    (OUT / name).write_bytes(gzip.compress(data, compresslevel=9, mtime=0))


def main(kev_path: Path, products: Path, eol_date: dt.date) -> None:
    catalog = json.loads(kev_path.read_bytes())
    pages = sorted(products.glob("*.md"))
    items = [_api_item(endoflife.product_from_page(page)) for page in pages]
    OUT.mkdir(parents=True, exist_ok=True)
    _write("kev.json.gz", kev_path.read_bytes())
    _write("endoflife.json.gz", json.dumps({"schema_version": "1.0.0", "total": len(items), "result": items},
                                           separators=(",", ":"), sort_keys=True).encode())
    manifest = {
        "kev": {"file": "kev.json.gz", "as_of": catalog["dateReleased"][:10],
                "what": f"CISA KEV catalog version {catalog['catalogVersion']}, {catalog['count']} entries",
                "origin": "cisagov/kev-data (CC0)"},
        "endoflife": {"file": "endoflife.json.gz", "as_of": eol_date.isoformat(),
                      "what": f"endoflife.date, {len(items)} products",
                      "origin": "endoflife-date/endoflife.date products/ (MIT)"},
    }
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {OUT}: {manifest['kev']['what']}; {manifest['endoflife']['what']}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]), dt.date.fromisoformat(sys.argv[3]))
