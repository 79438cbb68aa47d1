"""apt sources: warpagent's reading against apt's own. apt is asked which release files it would
fetch (`apt-get --print-uris update` over a private Dir root: it prints and fetches nothing),
and the repositories it names must be exactly the ones warpagent reads, file by file.

The corpus: debian-12-image.sources is /etc/apt/sources.list.d/debian.sources as the Debian 12
image of the project's machine ships it (written by Debian; tests/assets/corpus/debian). The
inline-key stanza has the shape 1Password, VS Code and Launchpad PPA files use (Signed-By
holding an armoured key, its blank line written as a line of spaces); the key is a stand-in."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers.supply import apt_deb822, apt_list

INLINE_KEY = """Types: deb
URIs: https://downloads.1password.com/linux/debian/amd64
Suites: stable
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 \n mQINBGAAAAABEAC+stand+in+key+material
 =abcd
 -----END PGP PUBLIC KEY BLOCK-----
"""

CASES = {
    "inline-key.sources": INLINE_KEY,
    "debian.sources": """# the Debian archive
Types: deb deb-src
URIs: http://deb.debian.org/debian https://mirror.example.test/debian
Suites: bookworm bookworm-updates
# a comment inside the stanza
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Enabled: no
""",
    "vendor.list": """# vendor repository
deb [arch=amd64 signed-by=/etc/apt/keyrings/vendor.gpg] https://packages.vendor.test/apt stable main
deb-src [signed-by=/etc/apt/keyrings/vendor.gpg] https://packages.vendor.test/apt stable main  # sources too
deb [trusted=yes] http://insecure.example.test/repo bookworm main
""",
    # issue 29: apt reads field names in any case; warpagent refused these and missed WA604 twice
    "lower-case.sources": """types: deb
uris: http://insecure.example.test/repo
suites: bookworm
components: main
trusted: yes

TYPES: deb
URIS: http://deb.debian.org/debian
SUITES: bookworm
COMPONENTS: main
ENABLED: no
""",
    # apt refuses this one: the same repository with two different keys (none is a value too)
    "conflicting.list": """deb [signed-by=/etc/apt/keyrings/vendor.gpg] https://packages.vendor.test/apt stable main
deb-src https://packages.vendor.test/apt stable main
""",
}


IMAGE = Path(__file__).parent / "assets" / "corpus" / "debian" / "debian-12-image.sources"
CASES["debian-12-image.sources"] = IMAGE.read_text()


def _apt_reading(tmp_path: Path, name: str, text: str) -> set[tuple[str, str]] | None:
    """(URI, suite) of every repository apt would fetch, or None when apt refuses the file."""
    root = tmp_path / "root"
    shutil.rmtree(root, ignore_errors=True)
    for folder in ("etc/apt/sources.list.d", "etc/apt/apt.conf.d", "etc/apt/preferences.d",
                   "var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/lib/dpkg"):
        (root / folder).mkdir(parents=True)
    (root / "var/lib/dpkg/status").touch()
    (root / "etc/apt/sources.list.d" / name).write_text(text)
    result = subprocess.run(["apt-get", "-o", f"Dir={root}", "-o", f"Dir::State::status={root}/var/lib/dpkg/status",
                             "-o", "APT::Architecture=amd64", "--print-uris", "update"],
                            capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        return None
    found = set()
    for uri in re.findall(r"^'([^']+)/InRelease'", result.stdout, re.MULTILINE):
        base, _dists, suite = uri.rpartition("/dists/")
        found.add((base, suite))
    return found


def _ours(name: str, text: str) -> set[tuple[str, str]] | None:
    parse = apt_deb822 if name.endswith(".sources") else apt_list
    try:
        sources = parse(text, name)
    except EvidenceError:
        return None
    return {(s.uri.rstrip("/"), suite) for s in sources for suite in s.suites}


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt is the oracle")
@pytest.mark.parametrize("name", [*CASES, "malformed.sources", "no-uris.sources"])
def test_warpagent_reads_the_repositories_apt_reads(name: str, tmp_path: Path) -> None:
    text = CASES.get(name) or {"malformed.sources": "Types deb\nURIs: http://x.test/debian\n",
                               "no-uris.sources": "Types: deb\nSuites: stable\n"}[name]
    apt = _apt_reading(tmp_path, name, text)
    assert _ours(name, text) == apt, f"{name}: warpagent and apt disagree"


def test_the_inline_key_is_kept_whole() -> None:
    [source] = apt_deb822(INLINE_KEY, "1password.sources")
    assert source.signed_by == "(inline key)" and source.uri == "https://downloads.1password.com/linux/debian/amd64"
