from __future__ import annotations

import pytest

from warpagent.errors import ScopeError
from warpagent.scope import resolve, target_problem

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
