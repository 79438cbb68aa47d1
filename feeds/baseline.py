"""The intel warpagent ships with: a dated snapshot of the small public feeds (CISA KEV and
endoflife.date) and of what Debian's supported releases build (the tracked products' entries of
their real package indexes, with distro-info-data's release dates), so a machine with no
internet measures known-exploited vulnerabilities and end-of-life software from its first scan,
and does not call Debian's own nginx 1.22.1 past end of life from its banner.

The snapshot is laid into the raw cache exactly as a download would be, for each source that has
no data yet, with a marker saying it is the bundled copy; the first successful `feeds update`
replaces it like any older copy. Rebuilt with scripts/make_intel_snapshot.py; origins and
licences in feeds/bundled/MANIFEST.json and the LICENSE files beside it.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

BUNDLED = Path(__file__).parent / "bundled"
MARKER = ".bundled"  # in a raw source folder: the snapshot's date, while the bundled copy is in use
RAW_NAMES = {"kev": "known_exploited_vulnerabilities.json", "endoflife": "full.json"}  # as a download names them
# sources bundled as several raw files: a gzipped JSON of raw file name -> text
MULTI_FILE = frozenset({"distro-packages", "distro-info"})


@dataclass(frozen=True)
class BundledFeed:
    source: str
    file: Path
    as_of: dt.date
    what: str


def bundled() -> list[BundledFeed]:
    """The feeds in the snapshot this copy of warpagent carries (none when it was left out of a build)."""
    try:
        manifest = json.loads((BUNDLED / "MANIFEST.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [BundledFeed(source, BUNDLED / entry["file"], dt.date.fromisoformat(entry["as_of"]), entry["what"])
            for source, entry in manifest.items() if source in RAW_NAMES or source in MULTI_FILE]


def bundled_as_of(folder: Path) -> dt.date | None:
    """The snapshot's date when `folder` (a raw source folder) still holds the bundled copy."""
    try:
        return dt.date.fromisoformat((folder / MARKER).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def seed(raw: Path, wanted: tuple[str, ...]) -> list[str]:
    """Lay the snapshot into `raw` for every wanted source that has no folder there yet."""
    seeded = []
    for feed in bundled():
        target = raw / feed.source
        if feed.source not in wanted or target.exists():
            continue
        staging = raw / f".{feed.source}.bundled"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if feed.source in MULTI_FILE:
            files: dict[str, str] = json.loads(gzip.decompress(feed.file.read_bytes()))
            for name, text in files.items():
                (staging / Path(name).name).write_text(text, encoding="utf-8")
        else:
            with gzip.open(feed.file, "rb") as packed, (staging / RAW_NAMES[feed.source]).open("wb") as out:
                shutil.copyfileobj(packed, out)
        (staging / ".updated").write_text(dt.datetime.combine(feed.as_of, dt.time(), dt.UTC).isoformat())
        (staging / MARKER).write_text(feed.as_of.isoformat())
        staging.rename(target)  # whole or not at all: a half-copied snapshot is never loaded
        seeded.append(feed.source)
    return seeded
