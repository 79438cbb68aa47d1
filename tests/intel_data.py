"""Intel for tests, in the feeds' own formats: the real KEV catalog and endoflife.date pages from
../shared/intel, the machine's distro-info-data and debian-security-support, and small NVD, OSV
and EPSS files built from real CVE facts (tests/assets/intel)."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path

from feeds.update import FeedSettings, update

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "intel"
ASSETS = Path(__file__).resolve().parent / "assets" / "intel"
KEV_FILE = SHARED / "cisa-kev" / "known_exploited_vulnerabilities.json"
EOL_PRODUCTS = SHARED / "endoflife-date" / "products"
DISTRO_INFO = Path("/usr/share/distro-info")
SECURITY_SUPPORT = Path("/usr/share/debian-security-support")


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
    return target


def build_intel(work: Path) -> FeedSettings:
    """Import the test intel into `work/intel` and return the settings that point at it."""
    settings = FeedSettings(dir=work / "intel")
    result = update(settings, from_dir=import_folder(work / "import"),
                    now=lambda: dt.datetime.now(dt.UTC))
    assert result.ok, result.failed
    return settings
