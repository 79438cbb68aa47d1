"""sshd_config: warpagent's reading against sshd's own (`sshd -T`, the effective configuration
sshd prints, from the Debian openssh-server installed here). Every keyword warpagent reads from
a file must have the value sshd gives it.

Corpus: Debian's own template, /usr/share/openssh/sshd_config, as the openssh-server package
installs it (written by Debian's OpenSSH maintainers), and files in the shapes councils' hosts
have: trailing comments, quoted values, a keyword set twice, drop-ins through Include, Match.
One exception: keywords sshd accumulates (AcceptEnv, HostKey, ListenAddress, Subsystem...;
`sshd -T` prints them once per value) are not compared. warpagent keeps their first value, and
no check reads them."""

from __future__ import annotations

import glob
import shutil
import subprocess
from pathlib import Path

import pytest

from warpagent.evidence.parsers.policy import sshd_config

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
DEBIAN_TEMPLATE = Path("/usr/share/openssh/sshd_config")

CASES = {
    "comments-and-quotes": """# a council web server
PermitRootLogin yes # until the migration
PasswordAuthentication no	#tab before the comment
Banner "/etc/issue.net # not a comment inside quotes"
MaxAuthTries 3 # three strikes
X11Forwarding = no
""",
    "first-value-wins": """PermitRootLogin without-password
PermitRootLogin yes
KbdInteractiveAuthentication no
PermitEmptyPasswords no
""",
    "include-then-match": """Include {dropins}/*.conf
PasswordAuthentication yes
Match User backup
    PasswordAuthentication no
""",
}
DROPIN = "PasswordAuthentication no # hardened by the drop-in\nPermitRootLogin no\n"


def _effective(config: Path, host_key: Path) -> dict[str, list[str]]:
    result = subprocess.run([SSHD, "-T", "-f", str(config), "-o", f"HostKey={host_key}"], capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    values: dict[str, list[str]] = {}
    for keyword, _, value in (line.partition(" ") for line in result.stdout.splitlines()):
        values.setdefault(keyword, []).append(value)
    return values


@pytest.fixture(scope="module")
def host_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("hostkey") / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    return key


def _load_from_disk(pattern: str) -> list[tuple[str, str]]:
    return [(path, Path(path).read_text()) for path in sorted(glob.glob(pattern))]


@pytest.mark.skipif(not Path(SSHD).exists(), reason="sshd is the oracle")
@pytest.mark.parametrize("name", ["debian-template", *CASES])
def test_every_keyword_warpagent_reads_has_the_value_sshd_gives_it(name: str, tmp_path: Path,
                                                                  host_key: Path) -> None:
    if name == "debian-template":
        if not DEBIAN_TEMPLATE.exists():
            pytest.skip("openssh-server's template is not installed")
        text = DEBIAN_TEMPLATE.read_text().replace("Include /etc/ssh/sshd_config.d/*.conf", "")  # the host's drop-ins
    else:
        dropins = tmp_path / "sshd_config.d"
        dropins.mkdir()
        (dropins / "10-hardening.conf").write_text(DROPIN)
        text = CASES[name].format(dropins=dropins)
    config = tmp_path / "sshd_config"
    config.write_text(text)
    ours = dict(sshd_config(text, _load_from_disk, str(config)).settings)
    assert ours, "the file sets keywords"
    sshd = _effective(config, host_key)
    compared = 0
    for keyword, setting in ours.items():
        if len(sshd.get(keyword, [])) > 1:
            continue  # accumulated by sshd (see above)
        [theirs] = sshd[keyword]
        fold = (lambda v: v) if keyword == "banner" else str.lower  # a path keeps its case
        assert fold(theirs) == fold(setting.value), f"{name}: {keyword} is {theirs!r} to sshd, {setting.value!r} here"
        compared += 1
    assert compared  # every case sets keywords sshd reads singly
