from __future__ import annotations

import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from warpagent.collect.scope import resolve, target_problem
from warpagent.errors import ScopeError

NAMES = {"web.council.test": ["198.18.6.10"], "dual.council.test": ["198.18.5.11", "2001:db8::11"],
         "printer.council.test": ["198.18.5.3"]}


def resolver(name: str) -> list[str]:
    return NAMES.get(name, [])


@pytest.mark.parametrize("text", ["198.18.0.1", "198.18.0.0/24", "2001:db8::1", "2001:db8::/120",
                                  "host", "web.council.test", "WEB-01.council.test."])
def test_valid_targets(text: str) -> None:
    assert target_problem(text) is None


@pytest.mark.parametrize("text", ["10.0.0.300", "-sV", "-iL/etc/passwd", "198.18.0.1 198.18.0.2",
                                  "198.18.0.0/33", "a..b", "web_01.council.test", "", " 198.18.0.1",
                                  "198.18.0.1;id", "$(reboot)", "x" * 64 + ".test", "1.2.3"])
def test_anything_nmap_could_read_as_an_option_or_list_is_refused(text: str) -> None:
    assert target_problem(text) is not None


def test_cidr_expands_to_host_addresses_and_exclusions_hold() -> None:
    scope = resolve("corp", ["198.18.5.0/28", "web.council.test"], ["198.18.5.8/29", "printer.council.test"],
                    1000, resolver)
    assert scope.addresses == ("198.18.5.1", "198.18.5.2", "198.18.5.4", "198.18.5.5", "198.18.5.6",
                               "198.18.5.7", "198.18.6.10")
    assert scope.excluded == 7 + 1  # .8-.14 of the /28, and the printer's .3
    assert scope.asset("198.18.6.10") == "web.council.test"
    assert scope.asset("198.18.5.1") == "198.18.5.1"


def test_excluding_a_host_name_excludes_every_address_it_has() -> None:
    scope = resolve("corp", ["dual.council.test", "198.18.5.11"], ["dual.council.test"], 100, resolver)
    assert scope.addresses == ()


def test_an_exclusion_that_does_not_resolve_stops_the_scan() -> None:
    with pytest.raises(ScopeError, match=r"exclusion 'gone\.council\.test' does not resolve"):
        resolve("corp", ["198.18.5.0/30"], ["gone.council.test"], 100, resolver)


def test_unresolved_targets_are_reported_not_guessed() -> None:
    scope = resolve("corp", ["gone.council.test", "198.18.5.1"], [], 100, resolver)
    assert scope.addresses == ("198.18.5.1",)
    assert scope.unresolved == ("gone.council.test",)


def test_max_addresses_stops_a_typo_before_it_expands() -> None:
    with pytest.raises(ScopeError, match="holds 16777216 addresses, more than max_addresses"):
        resolve("corp", ["10.0.0.0/8"], [], 65536, resolver)
    with pytest.raises(ScopeError, match="expands to more than max_addresses"):
        resolve("corp", ["198.18.5.0/28", "198.18.6.0/28"], [], 20, resolver)


def test_ipv6_and_duplicates() -> None:
    scope = resolve("corp", ["2001:db8::/126", "2001:db8::1", "198.18.5.1"], [], 100, resolver)
    assert scope.addresses == ("198.18.5.1", "2001:db8::1", "2001:db8::2", "2001:db8::3")


def test_single_address_networks_are_kept() -> None:
    assert resolve("c", ["198.18.5.9/32", "198.18.5.0/31"], [], 10, resolver).addresses == (
        "198.18.5.0", "198.18.5.1", "198.18.5.9")


# --- hostile scope ids, IPv4-mapped addresses, and nmap's own reading of what it is handed -------

@pytest.mark.parametrize("text", ["::1%x 10.0-255.0-255.0-255", "::1%x\n192.168.0-255.1-254", "::1%é",
                                  "fe80::1%" + "a" * 16, "fe80::1%eth0/1", "::1%", "::1%a b", "::1%-iL"])
def test_ipv6_zones_that_are_not_interface_names_are_refused(text: str) -> None:
    problem = target_problem(text)
    assert problem is not None and "\n" not in problem and len(problem) < 300
    with pytest.raises(ScopeError) as refused:
        resolve("corp", ["198.18.0.1", text], [], 65536, resolver)
    assert refused.value.key == "targets[1]"
    with pytest.raises(ScopeError) as as_exclusion:
        resolve("corp", ["198.18.0.1"], [text], 65536, resolver)
    assert as_exclusion.value.key == "exclude[0]"


def test_a_zone_on_a_link_local_address_is_kept_and_an_unzoned_exclusion_covers_it() -> None:
    assert resolve("corp", ["fe80::1%eth0"], [], 10, resolver).addresses == ("fe80::1%eth0",)
    assert resolve("corp", ["fe80::1%eth0", "198.18.0.1"], ["fe80::1"], 10, resolver).addresses == ("198.18.0.1",)


def test_ipv4_mapped_ipv6_is_the_ipv4_address_both_ways() -> None:
    excluded = resolve("corp", ["198.18.20.0/30"], ["::ffff:198.18.20.1"], 10, resolver)
    assert excluded.addresses == ("198.18.20.2",) and excluded.excluded == 1
    mapped_target = resolve("corp", ["::ffff:198.18.20.1", "::ffff:198.18.20.0/127"], ["198.18.20.0"], 10, resolver)
    assert mapped_target.addresses == ("198.18.20.1",)


def test_targets_file_holds_only_canonical_addresses() -> None:
    from warpagent.collect.scope import targets_file

    assert targets_file(["198.18.0.1", "2001:db8::1"]) == "198.18.0.1\n2001:db8::1\n"
    for hostile in ["198.18.0.0/24", "2001:DB8::1", "::ffff:198.18.0.1", "198.18.0.1\n10.0.0.0/8", "-sV",
                    "::1%x 10.0.0.0/8"]:
        with pytest.raises(ScopeError):
            targets_file([hostile])


NMAP = shutil.which("nmap")


def _nmap_reads(text: str, *extra: str) -> list[str]:
    """What nmap itself makes of an -iL file: -sL lists targets and sends no packet, -n asks no DNS."""
    with tempfile.TemporaryDirectory() as work:
        listing = Path(work) / "targets.txt"
        listing.write_text(text, encoding="ascii")
        out = subprocess.run([NMAP, "-sL", "-n", *extra, "-iL", str(listing), "-oX", "-"], capture_output=True,
                             text=True, timeout=60, check=True).stdout
    return [a.get("addr", "") for a in ET.fromstring(out).iter("address")]  # noqa: S314 - nmap's own output


@pytest.mark.skipif(NMAP is None, reason="nmap is installed by scripts/install.sh")
def test_nmap_reads_exactly_the_scope_it_is_handed() -> None:
    from warpagent.collect.scope import targets_file

    scope = resolve("corp", ["198.18.30.0/28", "::ffff:198.18.30.20", "dual.council.test", "web.council.test",
                             "198.18.30.3"], ["198.18.30.8/30", "::ffff:198.18.30.1", "printer.council.test"], 100,
                    resolver)
    v4 = [a for a in scope.addresses if ":" not in a]
    v6 = [a for a in scope.addresses if ":" in a]
    assert "198.18.30.1" not in v4 and "198.18.30.9" not in v4 and "198.18.30.20" in v4
    assert _nmap_reads(targets_file(v4)) == v4  # nmap's own list: one target a line, nothing more
    assert _nmap_reads(targets_file(v6), "-6") == v6 == ["2001:db8::11"]


@pytest.mark.skipif(NMAP is None, reason="nmap is installed by scripts/install.sh")
def test_what_the_old_guard_let_through_nmap_would_have_read_as_millions() -> None:
    """The reason for the zone rule, shown with nmap itself: the text after '%' is more targets."""
    assert len(_nmap_reads("::1%x 198.18.31.0-3\n")) > 1
