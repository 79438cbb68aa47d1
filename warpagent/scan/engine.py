"""Run every check over every host, each inside an attempt: a check that raises is recorded
on the run as an error and the others go on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from checks import ALL_CHECKS, Check, CheckContext, by_id
from warpagent.model.findings import CheckError, Finding, Inventory


@dataclass(frozen=True)
class Evaluation:
    findings: tuple[Finding, ...]
    errors: tuple[CheckError, ...]
    unmeasured: tuple[str, ...] = ()  # checks that need intel when there is none: not run, not clean

    @property
    def unmeasured_categories(self) -> tuple[str, ...]:
        """Categories none of whose checks could run (supply_chain without intel still judges
        suppliers and package sources: it is measured, and only its SBOM check resolves nothing)."""
        skipped = set(self.unmeasured)
        categories = dict.fromkeys(by_id(c).category for c in self.unmeasured)
        return tuple(c for c in categories if all(k.id in skipped for k in ALL_CHECKS if k.category == c))


def check_ports(checks: Sequence[Check] = ALL_CHECKS) -> tuple[int, ...]:
    """The TCP ports the checks exist for, which a top-N scan adds to nmap's most used ports."""
    return tuple(sorted({p for c in checks for p in c.ports}))


def nse_scripts(checks: Sequence[Check] = ALL_CHECKS) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The NSE scripts and script arguments the checks need, in a stable order."""
    scripts = sorted({s for c in checks for s in c.scripts})
    script_args = sorted({a for c in checks for a in c.script_args})
    return tuple(scripts), tuple(script_args)


def evaluate(inventory: Inventory, ctx: CheckContext, checks: Sequence[Check] = ALL_CHECKS) -> Evaluation:
    findings: dict[str, Finding] = {}
    errors: list[CheckError] = []
    unmeasured = tuple(c.id for c in checks if not c.measurable(ctx.intel))
    runnable = [c for c in checks if c.id not in unmeasured]
    for host in inventory.hosts:
        for item in runnable:
            try:
                weaknesses = list(item.run(host, ctx))
            except Exception as exc:  # noqa: BLE001 - one broken check must not abort the scan
                errors.append(CheckError(check_id=item.id, asset=host.asset,
                                         message=f"{exc.__class__.__name__}: {exc}"))
                continue
            for weakness in weaknesses:
                try:
                    finding = Finding.of(weakness, estate=inventory.estate, asset=host.asset, check_id=item.id,
                                         category=item.category, evidence=item.evidence)
                except ValueError as exc:  # the check broke its own declaration: recorded, not kept
                    errors.append(CheckError(check_id=item.id, asset=host.asset, message=str(exc)))
                    continue
                findings[finding.id] = finding
    return Evaluation(findings=tuple(findings.values()), errors=tuple(errors), unmeasured=unmeasured)
