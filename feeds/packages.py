"""Distribution package indexes: which upstream versions a distribution release builds.

nginx 1.22.1 and Redis 7.0.15 are past their upstream end of life, and they are also what Debian
12 ships, with Debian's security support until 2028. From a banner alone, a version that a
supported distribution release builds is not proof of end of life. This source reads the
distribution's own `Packages` indexes (apt's format, read with python-debian) and keeps, for the
products endoflife.date tracks, which upstream version each release's source package carries.

Raw files are named `<distro>_<suite>_<component>_Packages[.xz|.gz]`; an import folder may hold
them as apt keeps them (`/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages`)
or as a mirror does (`dists/bookworm/main/binary-amd64/Packages.xz`).
"""

from __future__ import annotations

import gzip
import io
import lzma
import re
from pathlib import Path

from debian.deb822 import Packages

from feeds.model import DistroBuild, FeedError
from feeds.versions import upstream_part

# endoflife.date product -> the Debian source packages that build it
SOURCE_PACKAGES: dict[str, tuple[str, ...]] = {
    "nginx": ("nginx",), "redis": ("redis",), "apache-http-server": ("apache2",), "php": ("php7.4", "php8.2", "php8.4"),
    "postgresql": ("postgresql-13", "postgresql-15", "postgresql-16", "postgresql-17"),
    "mariadb": ("mariadb", "mariadb-10.5"), "tomcat": ("tomcat9", "tomcat10"), "haproxy": ("haproxy",),
    "exim": ("exim4",), "postfix": ("postfix",), "squid": ("squid",), "memcached": ("memcached",),
    "openssl": ("openssl",), "nodejs": ("nodejs",), "dovecot": ("dovecot",), "proftpd": ("proftpd-dfsg",),
    "rabbitmq": ("rabbitmq-server",), "python": ("python3.9", "python3.11", "python3.13"),
    "openssh": ("openssh",),  # not in endoflife.date; its lifecycle is feeds/vendor_policy.py's
}
_BY_SOURCE = {package: product for product, packages in SOURCE_PACKAGES.items() for package in packages}
SOURCE_PACKAGES_ALL = frozenset(_BY_SOURCE)
# Debian's supported releases and their package indexes (each suite's updates and security too)
DEBIAN_SUITES = ("bookworm", "bookworm-updates", "bookworm-security", "trixie", "trixie-updates", "trixie-security")
_RAW = re.compile(r"^(?P<distro>[a-z]+)_(?P<suite>[a-z0-9-]+)_(?P<component>[a-z0-9-]+)_Packages(\.xz|\.gz)?$")
MAX_INDEX_BYTES = 512 * 2**20  # a full Debian main index is about 50 MiB uncompressed


def raw_name(parts: tuple[str, ...]) -> str | None:
    """The raw-cache name for a Packages index found at `parts` under an import folder."""
    name = parts[-1]
    if _RAW.match(name):
        return name
    apt = re.match(r"^[^_]*_(?P<distro>debian|ubuntu)[^_]*_dists_(?P<suite>[a-z0-9-]+)_(?P<component>[a-z0-9-]+)_"
                   r"binary-[a-z0-9]+_Packages(?P<ext>\.xz|\.gz)?$", name)
    if apt:
        return f"{apt['distro']}_{apt['suite']}_{apt['component']}_Packages{apt['ext'] or ''}"
    if re.fullmatch(r"Packages(\.xz|\.gz)?", name) and len(parts) >= 5 and parts[-5] == "dists" \
            and parts[-2].startswith("binary-"):
        distro = next((p for p in parts[:-5] if p in ("debian", "debian-security", "ubuntu")), "debian")
        return f"{distro.split('-')[0]}_{parts[-4]}_{parts[-3]}_{name}"
    return None


def _text(path: Path) -> str:
    opener = {".xz": lzma.open, ".gz": gzip.open}.get(path.suffix)
    with (opener(path, "rb") if opener else path.open("rb")) as handle:  # type: ignore[operator]
        data = handle.read(MAX_INDEX_BYTES + 1)
    if len(data) > MAX_INDEX_BYTES:
        raise FeedError(f"{path}: larger than {MAX_INDEX_BYTES // 2**20} MiB uncompressed; not a package index")
    return data.decode("utf-8", errors="strict")


def load(path: Path) -> list[DistroBuild]:
    """The builds of tracked products in one Packages index (one record per source package version)."""
    named = _RAW.match(path.name)
    if not named:
        raise FeedError(f"{path}: not named <distro>_<suite>_<component>_Packages[.xz|.gz]")
    builds: dict[tuple[str, str], DistroBuild] = {}
    for number, paragraph in enumerate(Packages.iter_paragraphs(io.StringIO(_text(path)), use_apt_pkg=False)):
        if "Package" not in paragraph or "Version" not in paragraph:
            raise FeedError(f"{path}: paragraph {number + 1} has no Package or Version; not a Packages index")
        source, _sep, source_version = paragraph.get("Source", paragraph["Package"]).partition(" ")
        product = _BY_SOURCE.get(source)
        if product is None:
            continue
        version = source_version.strip("()") or paragraph["Version"]
        builds.setdefault((source, version), DistroBuild(
            product=product, upstream=upstream_part(version), distro=named["distro"], suite=named["suite"],
            package=source, version=version))
    return list(builds.values())
