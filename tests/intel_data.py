"""Intel for tests, in the feeds' own formats: the real KEV catalog and endoflife.date pages from
../shared/intel, the machine's distro-info-data and debian-security-support, and small NVD, OSV
and EPSS files built from real CVE facts (tests/assets/intel)."""

from __future__ import annotations

import datetime as dt
import gzip
import lzma
import os
import shutil
from pathlib import Path

from feeds.update import FeedSettings, update

ROOT = Path(__file__).resolve().parent.parent


def _shared_intel() -> Path:
    """The real public intel kept beside the project (../shared/intel). A checkout elsewhere
    (a CI clone in a temporary folder) finds it through $WARPAGENT_SHARED_INTEL, a parent
    folder's shared/intel, or the project machines' /work/shared/intel."""
    candidates = [Path(os.environ["WARPAGENT_SHARED_INTEL"])] if os.environ.get("WARPAGENT_SHARED_INTEL") else []
    candidates += [parent / "shared" / "intel" for parent in ROOT.parents]
    candidates.append(Path("/work/shared/intel"))
    for candidate in candidates:
        if (candidate / "cisa-kev").is_dir():
            return candidate
    raise RuntimeError("the shared intel data (../shared/intel) was not found; set WARPAGENT_SHARED_INTEL "
                       "to the folder holding cisa-kev/ and endoflife-date/")


SHARED = _shared_intel()
ASSETS = Path(__file__).resolve().parent / "assets" / "intel"
KEV_FILE = SHARED / "cisa-kev" / "known_exploited_vulnerabilities.json"
EOL_PRODUCTS = SHARED / "endoflife-date" / "products"
DISTRO_INFO = Path("/usr/share/distro-info")
SECURITY_SUPPORT = Path("/usr/share/debian-security-support")
DEBIAN_PACKAGES = ASSETS.parent / "corpus" / "debian"  # real extracts of Debian 12's package indexes (SOURCES.md there)
MSRC = ASSETS.parent / "msrc"  # Microsoft's real monthly documents (SOURCES.md there)


def import_folder(target: Path) -> Path:
    """A folder laid out as `feeds update --from` expects."""
    (target / "kev").mkdir(parents=True)
    shutil.copy(KEV_FILE, target / "kev")
    (target / "epss").mkdir()
    (target / "epss" / "epss_scores-current.csv.gz").write_bytes(gzip.compress((ASSETS / "epss.csv").read_bytes()))
    shutil.copytree(ASSETS / "nvd", target / "nvd")
    shutil.copytree(ASSETS / "osv", target / "osv")
    (target / "endoflife").mkdir()
    shutil.copytree(EOL_PRODUCTS, target / "endoflife" / "products")
    (target / "distro-info").mkdir()
    for name in ("debian.csv", "ubuntu.csv"):
        shutil.copy(DISTRO_INFO / name, target / "distro-info")
    (target / "security-support").mkdir()
    for path in SECURITY_SUPPORT.glob("security-support-ended.deb*"):
        shutil.copy(path, target / "security-support")
    shutil.copytree(DEBIAN_PACKAGES, target / "distro-packages", ignore=shutil.ignore_patterns("*.md", "*.sources"))
    (target / "msrc").mkdir()
    for month in ("2026-Feb", "2026-Mar"):
        document = f"cvrfDocument-{month}.xml"
        (target / "msrc" / document).write_bytes(lzma.decompress((MSRC / f"{document}.xz").read_bytes()))
    return target


def build_intel(work: Path) -> FeedSettings:
    """Import the test intel into `work/intel` and return the settings that point at it."""
    settings = FeedSettings(dir=work / "intel")
    result = update(settings, from_dirs=[import_folder(work / "import")], now=lambda: dt.datetime.now(dt.UTC))
    assert result.ok, result.failed
    return settings
