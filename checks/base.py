"""What a check is: a pure function from one inventory host (plus intel) to weaknesses.

Checks do no I/O. Each carries a stable id (WA1xx patches .. WA7xx backups), its category,
the NSE scripts it needs from the collector, and a docstring that is its user documentation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from feeds.model import Intel
from warpagent.model.evidence import EvidenceKind, Supplier
from warpagent.model.findings import CATEGORIES, Host, Weakness

# the NCSC's DMARC aggregate-report address (estates[].mail.dmarc_report_to's default)
NCSC_DMARC_RUA = "mailto:dmarc-rua@dmarc.service.gov.uk"

REGISTERED: dict[str, Check] = {}  # filled by @check as the category modules are imported

CATEGORY_DIGIT = {category: str(i + 1) for i, category in enumerate(CATEGORIES)}


@dataclass(frozen=True)
class EstatePolicy:
    """The estate's own rules the evidence checks hold it to (from its config)."""

    backup_max_age: dt.timedelta = dt.timedelta(hours=26)
    # per job, tool or tool:job, for jobs that run less often than nightly (weekly tape)
    backup_max_age_by_job: tuple[tuple[str, dt.timedelta], ...] = ()
    restore_test_within: dt.timedelta = dt.timedelta(days=90)
    supplier_review: dt.timedelta = dt.timedelta(days=365)
    dmarc_report_to: str = NCSC_DMARC_RUA  # every DMARC rua must include it ("": none)
    patch_deadline: dt.timedelta = dt.timedelta(days=14)  # Cyber Essentials: high and critical fixes in 14 days
    has_domains: bool = False  # the estate's domains are checked from DNS (tenant mail controls defer to that)

    def backup_max_age_for(self, tool: str, job: str) -> dt.timedelta:
        """The job's own max age: tool:job, then the job, then the tool, then the estate's."""
        given = dict(self.backup_max_age_by_job)
        for key in (f"{tool}:{job}", job, tool):
            if key in given:
                return given[key]
        return self.backup_max_age


@dataclass(frozen=True)
class CheckContext:
    """What a check may know besides the host: the time of the run (checks never read a clock),
    the intel store through its interface (None when no feed data has been fetched), the
    estate's policy, and its supplier register (to link remote-access tools to suppliers)."""

    now: dt.datetime
    intel: Intel | None = None
    policy: EstatePolicy = EstatePolicy()
    suppliers: tuple[Supplier, ...] = ()

    def require_intel(self) -> Intel:
        """For checks declared needs_intel: the engine never runs them without the intel they need."""
        if self.intel is None:
            raise RuntimeError("this check needs intel; run 'warpagent feeds update'")
        return self.intel


CheckFunction = Callable[[Host, CheckContext], Iterable[Weakness]]


@dataclass(frozen=True)
class Check:
    id: str
    category: str
    name: str
    scripts: tuple[str, ...]
    script_args: tuple[str, ...]
    run: CheckFunction
    # the intel sources any one of which lets the check judge; without them it is not measured
    # (rather than clean): KEV alone matches no version to a CVE
    needs_intel: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()  # TCP ports the check exists for: every top-N scan includes them
    evidence: tuple[EvidenceKind, ...] = ()  # host evidence read; () for a network check

    def measurable(self, intel: Intel | None) -> bool:
        return not self.needs_intel or (intel is not None and any(intel.has(s) for s in self.needs_intel))

    @property
    def doc(self) -> str:
        return (self.run.__doc__ or "").strip()


def check(check_id: str, category: str, name: str, scripts: tuple[str, ...] = (),
          script_args: tuple[str, ...] = (), needs_intel: tuple[str, ...] = (),
          ports: tuple[int, ...] = (), evidence: tuple[EvidenceKind, ...] = ()) -> Callable[[CheckFunction], Check]:
    """Declare and register a check. The id's first digit must match the category (WA5xx is configs).

    `scripts` are the NSE scripts the collector must run for it; `evidence` the kinds of host
    evidence it reads (its findings are resolved only on a night that kind was read again).
    """
    if category not in CATEGORIES:
        raise ValueError(f"{check_id}: unknown category {category!r}")
    if not (check_id.startswith("WA") and check_id[2] == CATEGORY_DIGIT[category] and len(check_id) == 5):
        raise ValueError(f"{check_id}: id must be WA{CATEGORY_DIGIT[category]}xx for category {category}")

    def wrap(function: CheckFunction) -> Check:
        if check_id in REGISTERED:
            raise ValueError(f"{check_id}: already registered by {REGISTERED[check_id].run.__qualname__}")
        made = Check(id=check_id, category=category, name=name, scripts=scripts, script_args=script_args,
                     run=function, needs_intel=needs_intel, ports=ports, evidence=evidence)
        REGISTERED[check_id] = made
        return made

    return wrap
