"""The coverage account: per category, measured or not, with which intel, and why not."""

from __future__ import annotations

from warpagent.model.findings import CATEGORIES
from warpagent.scan import coverage


def _by_category(unmeasured: set[str], present: set[str]) -> dict[str, coverage.CategoryCoverage]:
    return {c.category: c for c in coverage.categories(unmeasured, present)}


def test_each_category_says_what_it_was_measured_with_or_why_not() -> None:
    kev_only = _by_category({"patches", "privileges"}, {"kev"})
    assert list(kev_only) == list(CATEGORIES)
    assert kev_only["patches"].describe() == ("not measured: no NVD vulnerability database or distribution security "
                                              "advisories (OSV) (run 'warpagent feeds update')")
    assert kev_only["privileges"].describe() == ("not measured: no host evidence (estates[].evidence or SSH "
                                                 "collection) or directory (estates[].directory) for it")
    assert _by_category({"backups"}, set())["backups"].describe() == (
        "not measured: no host evidence (estates[].evidence or SSH collection) for it")
    assert kev_only["supply_chain"].describe() == ("measured with CISA known exploited vulnerabilities; without NVD "
                                                   "vulnerability database, distribution security advisories (OSV)")
    everything = _by_category(set(), {"kev", "epss", "nvd", "osv", "endoflife", "distro-info", "security-support"})
    assert all(c.measured and not c.missing for c in everything.values())
    assert everything["patches"].intel == ("nvd", "osv", "kev", "epss")
    half = _by_category(set(), {"osv"})["patches"]
    assert half.describe() == "measured with distribution security advisories (OSV); without NVD vulnerability database"


def test_an_estate_never_scanned_is_measured_in_nothing() -> None:
    [never, scanned] = coverage.estates([("schools", None), ("corporate", ["backups"])], {"nvd"})
    assert never.estate == "schools" and len(never.unmeasured) == 7
    assert [c.category for c in scanned.unmeasured] == ["backups"]
