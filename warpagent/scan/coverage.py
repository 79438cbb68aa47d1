"""What each category was measured with: the one account of coverage that the scan summary,
the board report and the technical report all give.

A category is measured when its estate's latest finished run measured it (the store's rule);
this says with which intelligence, which the checks wanted and did not have, and in words why
a category was not measured, so "no open findings" is never read as "clean" where nothing looked.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from checks import ALL_CHECKS, Check
from warpagent.model.findings import CATEGORIES, CATEGORY_NAMES, ScanRun

INTEL_NAMES = {"kev": "CISA known exploited vulnerabilities", "nvd": "NVD vulnerability database",
               "osv": "distribution security advisories (OSV)", "epss": "FIRST exploit prediction (EPSS)",
               "endoflife": "endoflife.date support dates", "distro-info": "Debian and Ubuntu release dates",
               "security-support": "Debian security support limits",
               "distro-packages": "Debian package indexes (what each release builds)",
               "msrc": "Microsoft security update documents"}
EVIDENCE_HINT = "host evidence (estates[].evidence or SSH collection)"
DIRECTORY_HINT = "host evidence (estates[].evidence or SSH collection) or directory (estates[].directory)"
# Sources that sharpen what a category's checks find (exploited, likely to be; a version the
# distribution itself builds and supports) without deciding whether it is measured.
REFINES = {"patches": ("kev", "epss"), "supply_chain": ("kev", "epss"), "unsupported": ("distro-packages",)}


@dataclass(frozen=True)
class CategoryCoverage:
    category: str
    measured: bool
    intel: tuple[str, ...]  # intel sources the category's checks had
    missing: tuple[str, ...]  # intel sources its checks need that were not there
    needs: tuple[str, ...] = ()  # intel sources its checks need (any one lets them run)
    lifecycle_unknown: tuple[str, ...] = ()  # products seen whose support no source gives ("vsftpd 2.3.4")

    @property
    def name(self) -> str:
        return CATEGORY_NAMES[self.category]

    def describe(self, technical: bool = True) -> str:
        """One plain line: 'measured with NVD vulnerability database; without ...' or why not.
        `technical`: say what to run and configure (the board's copy leaves that out)."""
        had = ", ".join(INTEL_NAMES.get(s, s) for s in self.intel)
        lacked = ", ".join(INTEL_NAMES.get(s, s) for s in self.missing)
        if self.measured:
            unknown = (f"; lifecycle unknown (no published support dates) for {', '.join(self.lifecycle_unknown)}"
                       if self.lifecycle_unknown else "")
            return "measured" + (f" with {had}" if had else " from scan results and host evidence") + (
                f"; without {lacked}" if lacked else "") + unknown
        if self.needs and set(self.needs) <= set(self.missing):
            either = " or ".join(INTEL_NAMES.get(s, s) for s in self.missing)
            return f"not measured: no {either}" + (" (run 'warpagent feeds update')" if technical else " yet")
        directory = self.category in ("privileges", "passwords")
        hint = (DIRECTORY_HINT if directory else EVIDENCE_HINT) if technical else "host evidence"
        return f"not measured: no {hint} for it" + (f"; {lacked} missing too" if lacked else "")


@dataclass(frozen=True)
class EstateCoverage:
    estate: str
    categories: tuple[CategoryCoverage, ...]

    @property
    def unmeasured(self) -> tuple[CategoryCoverage, ...]:
        return tuple(c for c in self.categories if not c.measured)


def categories(unmeasured: Collection[str], present: Collection[str], checks: Sequence[Check] = ALL_CHECKS,
               lifecycle_unknown: Sequence[str] = ()) -> tuple[CategoryCoverage, ...]:
    """Each of the seven, given what a run could not measure and the intel sources there were."""
    out = []
    for category in CATEGORIES:
        wanted = sorted({s for c in checks if c.category == category for s in c.needs_intel})
        used = [*wanted, *(s for s in REFINES.get(category, ()) if s not in wanted)]
        out.append(CategoryCoverage(category=category, measured=category not in unmeasured,
                                    intel=tuple(s for s in used if s in present),
                                    missing=tuple(s for s in wanted if s not in present), needs=tuple(wanted),
                                    lifecycle_unknown=tuple(lifecycle_unknown) if category == "unsupported" else ()))
    return tuple(out)


def measured_checks(latest: Iterable[ScanRun], checks: Sequence[Check] = ALL_CHECKS) -> dict[str, tuple[str, ...]]:
    """Each check some estate's latest finished run measured, with the intel sources it had (empty:
    measured from scan results or evidence alone). A check measured only if its category was and it
    was not left out for want of intel: an outcome or area is never "measured" by checks that could
    not run. Runs from before warpagent kept the checks it left out are judged by category."""
    measured: dict[str, set[str]] = {}
    for run in latest:
        skipped = set(run.unmeasured_checks or ())
        for check in checks:
            if check.category in run.unmeasured or check.id in skipped:
                continue
            had = set(check.needs_intel) & set(run.intel) if run.intel is not None else set()
            measured.setdefault(check.id, set()).update(had)
    return {check_id: tuple(sorted(intel)) for check_id, intel in measured.items()}


def estates(latest: Iterable[tuple[str, Collection[str] | None, Collection[str] | None]],
            present: Collection[str]) -> tuple[EstateCoverage, ...]:
    """Per estate from (estate, its latest finished run's unmeasured categories or None before any,
    the intel that run had or None where the run did not record it); `present` stands in for the
    latter only for runs from before warpagent kept it, so a scan is never credited with intel
    imported after it ran."""
    return tuple(EstateCoverage(estate=name, categories=categories(
        CATEGORIES if unmeasured is None else unmeasured, present if used is None else used))
        for name, unmeasured, used in latest)
