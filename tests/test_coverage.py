"""The coverage account: per category, measured or not, with which intel, and why not."""

from __future__ import annotations

from pathlib import Path

from warpagent.model.findings import CATEGORIES
from warpagent.scan import coverage


def _by_category(unmeasured: set[str], present: set[str]) -> dict[str, coverage.CategoryCoverage]:
    return {c.category: c for c in coverage.categories(unmeasured, present)}


def test_each_category_says_what_it_was_measured_with_or_why_not() -> None:
    kev_only = _by_category({"patches", "privileges"}, {"kev"})
    assert list(kev_only) == list(CATEGORIES)
    assert kev_only["patches"].describe() == (
        "not measured: no Microsoft security update documents or NVD vulnerability database or distribution "
        "security advisories (OSV) (run 'warpagent feeds update')")
    assert kev_only["privileges"].describe() == ("not measured: no host evidence (estates[].evidence or SSH "
                                                 "collection) or directory (estates[].directory) for it")
    assert _by_category({"backups"}, set())["backups"].describe() == (
        "not measured: no host evidence (estates[].evidence or SSH collection) for it")
    assert kev_only["supply_chain"].describe() == ("measured with CISA known exploited vulnerabilities; without NVD "
                                                   "vulnerability database, distribution security advisories (OSV)")
    everything = _by_category(set(), {"kev", "epss", "nvd", "osv", "endoflife", "distro-info", "security-support",
                                      "msrc"})
    assert all(c.measured and not c.missing for c in everything.values())
    assert everything["patches"].intel == ("msrc", "nvd", "osv", "kev", "epss")
    half = _by_category(set(), {"osv"})["patches"]
    assert half.describe() == ("measured with distribution security advisories (OSV); without Microsoft security "
                               "update documents, NVD vulnerability database")


def test_an_estate_never_scanned_is_measured_in_nothing() -> None:
    [never, scanned] = coverage.estates([("schools", None, None), ("corporate", ["backups"], None)], {"nvd"})
    assert never.estate == "schools" and len(never.unmeasured) == 7
    assert [c.category for c in scanned.unmeasured] == ["backups"]


def test_a_scan_is_credited_only_with_the_intel_it_had() -> None:
    """Issue 30: a scan before a Debian import was shown as measured with Debian release dates."""
    [before_import] = coverage.estates([("corporate", [], ("endoflife", "kev"))],
                                       {"endoflife", "kev", "distro-info", "security-support"})
    unsupported = next(c for c in before_import.categories if c.category == "unsupported")
    assert unsupported.intel == ("endoflife",) and "distro-info" in unsupported.missing
    assert "Debian and Ubuntu release dates" not in unsupported.describe().split("without")[0]
    [old_run] = coverage.estates([("corporate", [], None)], {"endoflife", "distro-info"})
    assert "distro-info" in next(c for c in old_run.categories if c.category == "unsupported").intel


def test_the_store_keeps_the_intel_each_run_had(tmp_path: Path) -> None:
    import datetime as dt

    from warpagent.store.findings import Store
    from warpagent.store.lifecycle import RunReport

    when = dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC)
    with Store(tmp_path / "w.db") as store:
        for intel in (("endoflife",), None):
            run = store.begin_run("corporate", when)
            store.record_run(run, RunReport(findings=(), finished=when, complete=True, observed_assets=frozenset(),
                                            in_scope_assets=frozenset(), hosts_scanned=0, intel=intel))
        assert [r.intel for r in sorted(store.runs(limit=10), key=lambda r: r.id)] == [("endoflife",), None]
