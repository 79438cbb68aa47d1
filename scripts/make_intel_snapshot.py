"""Rebuild the intel snapshot bundled with warpagent (feeds/bundled/) from public data.

    python scripts/make_intel_snapshot.py KEV_JSON ENDOFLIFE_PRODUCTS_DIR ENDOFLIFE_DATE
    python scripts/make_intel_snapshot.py --distributions APT_LISTS_DIR DISTRO_INFO_DIR INDEXES_DATE

The second form adds what Debian's supported releases build: APT_LISTS_DIR holds the releases'
Packages indexes as apt keeps them after `apt-get update` (signatures checked by apt; any
compression apt uses, read back with apt-helper), DISTRO_INFO_DIR is /usr/share/distro-info
(Debian's distro-info-data), INDEXES_DATE the day of the indexes. Only the stanzas of the
source packages that build the tracked products are kept (Package, Source, Version): a table of
a few hundred lines, in the indexes' own format, which the same feed loader reads.

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
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from debian.deb822 import Packages  # noqa: E402

from feeds import endoflife, packages  # noqa: E402
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


def _index_text(path: Path) -> str:
    """A Packages index as apt stored it, whatever its compression (apt-helper reads them all)."""
    done = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", str(path)], capture_output=True, check=True)
    return done.stdout.decode("utf-8")


def _compact(text: str) -> str:
    """The index's stanzas for the tracked products' source packages, with only what the loader reads."""
    stanzas = []
    for paragraph in Packages.iter_paragraphs(io.StringIO(text), use_apt_pkg=False):
        source = paragraph.get("Source", paragraph.get("Package", "")).partition(" ")[0]
        if source in packages.SOURCE_PACKAGES_ALL:
            stanzas.append("".join(f"{key}: {paragraph[key]}\n" for key in ("Package", "Source", "Version")
                                   if key in paragraph))
    return "\n".join(sorted(set(stanzas)))


def distributions(lists: Path, distro_info: Path, as_of: dt.date) -> None:
    indexes: dict[str, str] = {}
    for path in sorted(lists.glob("*_Packages*")):
        name = packages.raw_name((path.name.removesuffix(".lz4"),))  # apt's own lz4 copy, read back by apt-helper
        if name is None:
            continue
        name = name.removesuffix(".xz").removesuffix(".gz")
        indexes[name] = _compact(_index_text(path))
    csvs = {name: (distro_info / name).read_text(encoding="utf-8") for name in ("debian.csv", "ubuntu.csv")}
    _write("distro-packages.json.gz", json.dumps(indexes, sort_keys=True).encode())
    _write("distro-info.json.gz", json.dumps(csvs, sort_keys=True).encode())
    manifest = json.loads((OUT / "MANIFEST.json").read_text(encoding="utf-8"))
    suites = ", ".join(sorted(n.split("_")[1] for n in indexes))
    lines = sum(text.count("Package: ") for text in indexes.values())
    manifest["distro-packages"] = {
        "file": "distro-packages.json.gz", "as_of": as_of.isoformat(),
        "what": f"Debian package indexes ({suites}): {lines} builds of tracked products",
        "origin": "deb.debian.org Packages indexes, signatures checked by apt (Debian's packages: free licences)"}
    manifest["distro-info"] = {
        "file": "distro-info.json.gz", "as_of": as_of.isoformat(),
        "what": "Debian and Ubuntu releases and their support dates (distro-info-data)",
        "origin": "Debian's distro-info-data package, /usr/share/distro-info (ISC)"}
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {OUT}: {manifest['distro-packages']['what']}; {manifest['distro-info']['what']}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--distributions":
        distributions(Path(sys.argv[2]), Path(sys.argv[3]), dt.date.fromisoformat(sys.argv[4]))
    elif len(sys.argv) == 4:
        main(Path(sys.argv[1]), Path(sys.argv[2]), dt.date.fromisoformat(sys.argv[3]))
    else:
        sys.exit(__doc__)
