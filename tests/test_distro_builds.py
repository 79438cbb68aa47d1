"""A version the distribution itself builds is not end of life from a banner alone: Debian's own
package indexes (real extracts, tests/assets/corpus/debian) say nginx 1.22.1 is what Debian 12
ships and supports; with the host's package list, Debian's support decides."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from feeds import packages, sources, vendor_policy
from tests import banner_server
from tests.conftest import run_cli
from tests.intel_data import DEBIAN_PACKAGES, import_folder

NGINX = "127.0.0.23"  # a bare 'Server: nginx/1.22.1' banner, as Debian 12's nginx sends
OLD_SSH, BARE_SSH = "127.0.0.24", "127.0.0.25"  # OpenSSH 5.3 (2009), and 9.2p1 without its Debian suffix


def test_debian_indexes_give_each_tracked_products_upstream_version() -> None:
    builds = packages.load(DEBIAN_PACKAGES / "debian_bookworm_main_Packages")
    by_product = {(b.product, b.package): b for b in builds}
    nginx = by_product[("nginx", "nginx")]
    assert (nginx.upstream, nginx.version, nginx.suite, nginx.release) == ("1.22.1", "1.22.1-9+deb12u9", "bookworm",
                                                                           "bookworm")
    redis = by_product[("redis", "redis")]
    assert (redis.upstream, redis.version) == ("7.0.15", "5:7.0.15-1~deb12u7")  # epoch and revision dropped
    assert by_product[("apache-http-server", "apache2")].upstream == "2.4.68"
    assert not [b for b in builds if b.package == "bash"]  # not a product endoflife.date tracks
    assert len([b for b in builds if b.package == "nginx"]) == 1  # nginx and nginx-common: one source build
    security = packages.load(DEBIAN_PACKAGES / "debian_bookworm-security_main_Packages")
    assert {b.suite for b in security} == {"bookworm-security"} and {b.release for b in security} == {"bookworm"}


@pytest.mark.parametrize(("parts", "raw"), [
    (("lists", "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"), "debian_bookworm_main_Packages"),
    (("mirror", "debian-security", "dists", "bookworm-security", "main", "binary-amd64", "Packages.xz"),
     "debian_bookworm-security_main_Packages.xz"),
    (("x", "debian_trixie_main_Packages.gz"), "debian_trixie_main_Packages.gz"),
    (("x", "Packages"), None),  # a bare Packages file says nothing of its release
])
def test_package_indexes_are_recognised_in_apt_and_mirror_layouts(parts: tuple[str, ...], raw: str | None) -> None:
    assert packages.raw_name(parts) == raw


def test_a_damaged_index_is_a_named_feed_error(tmp_path: Path) -> None:
    folder = tmp_path / "distro-packages"
    folder.mkdir()
    (folder / "debian_bookworm_main_Packages.xz").write_bytes(b"not xz")
    with pytest.raises(sources.FeedError, match=r"debian_bookworm_main_Packages\.xz: not in the feed's format"):
        sources.load_source("distro-packages", folder, sources.LoadedIntel())


@pytest.fixture(scope="module")
def nginx_banner() -> Iterator[None]:
    with banner_server.running(f"{NGINX}:8081=http-nginx-1.22.1", f"{OLD_SSH}:2222=ssh-openssh-5.3",
                               f"{BARE_SSH}:2222=ssh-openssh-9.2p1"):
        yield


@pytest.mark.parametrize(("version", "unsupported"), [("5.3", True), ("9.2p1", True), ("10.1p1", True),
                                                      ("10.2", False), ("10.2p1", False), ("11.0", False)])
def test_openssh_supports_only_its_latest_release(version: str, unsupported: bool) -> None:
    policy = vendor_policy.for_cpe(f"cpe:/a:openbsd:openssh:{version}")
    assert policy is not None and policy.source.startswith("https://www.openssh.com/")
    assert policy.unsupported(version) is unsupported


def test_openssh_past_its_developers_support_is_found_and_debian_s_build_is_low(nginx_banner: None,
                                                                                 tmp_path: Path) -> None:
    config = tmp_path / "warpagent.yaml"
    config.write_text(f"organisation: {{name: Test Council}}\nfeeds: {{bundled: false}}\nestates:\n"
                      f"  - {{name: ssh, targets: [{OLD_SSH}, {BARE_SSH}], ports: '2222', timeout: 5m}}\n")
    assert run_cli("--config", str(config), "feeds", "update", "--from", str(import_folder(tmp_path / "imp")),
                   cwd=tmp_path).returncode == 0
    found = {f["asset"]: f for f in json.loads(run_cli("--config", str(config), "scan", "--json",
                                                       cwd=tmp_path).stdout)["findings"] if f["check_id"] == "WA201"}
    old = found[OLD_SSH]
    assert (old["severity"], old["title"]) == ("high", "OpenSSH 5.3 is no longer supported by its developers")
    assert "only the latest release is supported" in old["evidence"] and "openssh.com" in old["evidence"]
    bare = found[BARE_SSH]
    assert bare["severity"] == "low" and "Debian 12 (bookworm) still supports this version" in bare["title"]


def test_a_product_no_source_gives_a_lifecycle_for_is_named_in_coverage(nginx_banner: None, tmp_path: Path) -> None:
    with banner_server.running("127.0.0.26:2121=ftp-vsftpd-2.3.4"):
        config = tmp_path / "warpagent.yaml"
        config.write_text("organisation: {name: Test Council}\nfeeds: {bundled: false}\nestates:\n"
                          "  - {name: ftp, targets: [127.0.0.26], ports: '2121', timeout: 5m}\n")
        assert run_cli("--config", str(config), "feeds", "update", "--from", str(import_folder(tmp_path / "imp")),
                       cwd=tmp_path).returncode == 0
        summary = json.loads(run_cli("--config", str(config), "scan", "--json", cwd=tmp_path).stdout)["summary"][0]
    unsupported = next(c for c in summary["coverage"] if c["category"] == "unsupported")
    assert unsupported["lifecycle_unknown"] == ["vsftpd 2.3.4"]  # endoflife.date does not list vsftpd
    assert unsupported["detail"].endswith("lifecycle unknown (no published support dates) for vsftpd 2.3.4")


def test_debian_s_nginx_is_low_from_a_banner_and_debian_s_business_with_its_package_list(
        nginx_banner: None, tmp_path: Path) -> None:
    config = tmp_path / "warpagent.yaml"
    config.write_text(f"organisation: {{name: Test Council}}\nfeeds: {{bundled: false}}\nestates:\n"
                      f"  - {{name: web, targets: [{NGINX}], ports: '8081', evidence: [./evidence], timeout: 5m}}\n")
    (tmp_path / "evidence").mkdir()
    imported = run_cli("--config", str(config), "feeds", "update", "--from", str(import_folder(tmp_path / "imp")),
                       cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    scanned = json.loads(run_cli("--config", str(config), "scan", "--json", cwd=tmp_path).stdout)
    [eol] = [f for f in scanned["findings"] if f["check_id"] == "WA201"]
    assert eol["severity"] == "low"
    assert eol["title"] == "nginx 1.22 is past upstream end of life; Debian 12 (bookworm) still supports this version"
    assert "ships it as nginx 1.22.1-9+deb12u" in eol["evidence"] and "until 2028-06-30" in eol["evidence"]
    assert "not proof of end of life (confidence: low)" in eol["evidence"]
    coverage = {c["category"]: c for c in scanned["summary"][0]["coverage"]}
    assert "distro-packages" in coverage["unsupported"]["intel"]

    host = tmp_path / "evidence" / NGINX  # the host's package list shows Debian's own nginx
    (host / "etc").mkdir(parents=True)
    (host / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
    (host / "var" / "lib" / "dpkg").mkdir(parents=True)
    (host / "var" / "lib" / "dpkg" / "status").write_text(
        "Package: nginx\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.22.1-9+deb12u9\n")
    again = json.loads(run_cli("--config", str(config), "scan", "--json", cwd=tmp_path).stdout)
    assert not [f for f in again["findings"] if f["check_id"] == "WA201"]  # Debian's support decides (WA203)
    assert [f["status"] for f in again["findings"] if f["check_id"] == "WA203"]  # bookworm: LTS only, said so


def test_with_only_the_bundled_snapshot_debians_own_nginx_is_never_high(nginx_banner: None, tmp_path: Path) -> None:
    """Issue 29: with the bundled snapshot and no Debian indexes imported, Debian 12's own nginx
    1.22.1 was "past end of life", high, from its banner. The snapshot now carries what Debian's
    supported releases build (their real package indexes, compacted) and their support dates."""
    config = tmp_path / "warpagent.yaml"
    config.write_text(f"organisation: {{name: Test Council}}\nestates:\n"
                      f"  - {{name: web, targets: [{NGINX}], ports: '8081', timeout: 5m}}\n")
    scanned = run_cli("--config", str(config), "scan", "--json", cwd=tmp_path)
    assert scanned.returncode in (0, 1), scanned.stderr
    [nginx] = [f for f in json.loads(scanned.stdout)["findings"] if f["check_id"] == "WA201"]
    assert nginx["severity"] == "low" and "Debian 12 (bookworm) still supports this version" in nginx["title"]
    status = json.loads(run_cli("--config", str(config), "feeds", "status", "--json", cwd=tmp_path).stdout)
    sources = {s["source"]: s for s in status["sources"]}
    assert sources["distro-packages"]["bundled_snapshot"] and sources["distro-info"]["bundled_snapshot"]
