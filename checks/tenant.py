"""The council's Microsoft 365 / Entra ID tenant, from ScubaGear's results (WA320 privileges,
WA420 passwords, WA540 configs, WA620 supply chain).

ScubaGear (CISA) assesses a tenant against CISA's secure configuration baselines; warpagent reads
its results and judges each control in the unlucky seven's terms through checks/m365_controls.yaml:
a Fail (on a Shall) is a finding, higher for privileges and passwords; a Warning (a Should) a
lower one; N/A and Error are not measured, never green. A control the council omitted in
ScubaGear's config, or marked as an incorrect result, is its decision: the finding is recorded
with it (accepted, or a false positive) and its rationale and date.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from checks.base import CheckContext, Weakness, check
from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import Host, Severity, SourceDecision
from warpagent.model.tenant import ControlResult, TenantControl, TenantResults

MAPPING_FILE = Path(__file__).with_name("m365_controls.yaml")
_SERIOUS = ("privileges", "passwords")
_GLOBAL_ADMINS = re.compile(r"^(\d{1,6}) global admin")


@dataclass(frozen=True)
class Policy:
    prefix: str
    category: str
    board: str
    drop: str = ""  # "always", or "unless_no_domains"


@functools.cache
def policies() -> dict[str, Policy]:
    data = yaml.safe_load(MAPPING_FILE.read_text(encoding="utf-8"))
    return {prefix: Policy(prefix=prefix, category=row["category"], board=row["board"], drop=row.get("drop", ""))
            for prefix, row in data["policies"].items()}


def policy_for(control: TenantControl) -> Policy | None:
    """The longest prefix of the control's policy id that the table names."""
    parts = control.policy.split(".")
    for end in range(len(parts), 1, -1):
        found = policies().get(".".join(parts[:end]))
        if found is not None:
            return found
    return None


def applies(policy: Policy, ctx: CheckContext) -> bool:
    return not (policy.drop == "always" or (policy.drop == "unless_no_domains" and ctx.policy.has_domains))


def _severity(category: str, result: ControlResult) -> Severity:
    if result is ControlResult.FAIL:
        return Severity.HIGH if category in _SERIOUS else Severity.MEDIUM
    return Severity.MEDIUM if category in _SERIOUS else Severity.LOW


def board_words(control: TenantControl, policy: Policy) -> str:
    """The finding's title: the board's words, with the figure ScubaGear gives where it gives one."""
    counted = _GLOBAL_ADMINS.match(control.details)
    if control.policy == "MS.AAD.7.1" and counted:
        return f"{counted[1]} accounts can administer the whole Microsoft 365 tenant (the safe range is 2 to 8)"
    return policy.board


def _decision(control: TenantControl, tenant: TenantResults) -> SourceDecision | None:
    if control.result is ControlResult.OMITTED:
        return SourceDecision(accepted=True, reason=control.comment or "omitted in ScubaGear's configuration",
                              until=control.until, by="ScubaGear configuration")
    if control.result is ControlResult.INCORRECT:
        return SourceDecision(accepted=False, reason=control.comment or "marked an incorrect result in ScubaGear",
                              until=control.until, by="ScubaGear configuration")
    return None


def tenant_weaknesses(host: Host, ctx: CheckContext, category: str) -> Iterator[Weakness]:
    tenant = host.evidence.tenant
    if tenant is None:
        return
    for control in tenant.controls:
        policy = policy_for(control)
        if policy is None or policy.category != category or not applies(policy, ctx):
            continue
        found = control.would_be if control.result in (ControlResult.OMITTED, ControlResult.INCORRECT) \
            else control.result
        if found not in (ControlResult.FAIL, ControlResult.WARNING):
            continue
        said = "Fail" if found is ControlResult.FAIL else "Warning"
        yield Weakness(
            subject=f"m365:{control.policy}", severity=_severity(category, found),
            title=board_words(control, policy),
            evidence=f"{control.control_id} ({'Shall' if control.shall else 'Should'}): {control.requirement} "
                     f"ScubaGear {tenant.tool_version or ''} on {tenant.assessed:%Y-%m-%d}: {said}: "
                     f"{control.details}".replace("  ", " "),
            remediation=f"Follow CISA's instructions for {control.control_id} (ScubaGear's baseline, "
                        f"{control.product}) in the tenant's admin centre, then run ScubaGear again.",
            product="Microsoft 365", version=control.control_id, source_decision=_decision(control, tenant))


@check("WA320", "privileges", "Microsoft 365 tenant: privileged access (ScubaGear)", evidence=(EvidenceKind.TENANT,))
def tenant_privileges(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A Microsoft 365 / Entra ID control on privileged access that ScubaGear found failing: the
    number of Global Administrators, permanent or unmanaged admin role assignments, admins
    without phishing-resistant MFA, who may register applications, guest access. High for a
    failed requirement (Shall), medium for a recommendation (Should).

    Board: the council's Microsoft 365 administrator accounts are not controlled as they should be.

    Why it matters: whoever holds the tenant's admin roles holds every mailbox, file and
    account of the council; attackers who phish one admin own the tenant.
    Fix: follow the control's instructions in CISA's baseline (the finding names it)."""
    yield from tenant_weaknesses(host, ctx, "privileges")


@check("WA420", "passwords", "Microsoft 365 tenant: sign-in and MFA (ScubaGear)", evidence=(EvidenceKind.TENANT,))
def tenant_passwords(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A Microsoft 365 / Entra ID sign-in control that ScubaGear found failing: legacy
    authentication, MFA and phishing-resistant MFA, password expiry, SMTP AUTH. High for a
    failed requirement (Shall), medium for a recommendation (Should).

    Board: staff sign-in to Microsoft 365 is weaker than it should be.

    Why it matters: stolen and guessed passwords are how most cloud accounts are taken over;
    MFA stops almost all of it.
    Fix: follow the control's instructions in CISA's baseline (the finding names it)."""
    yield from tenant_weaknesses(host, ctx, "passwords")


@check("WA540", "configs", "Microsoft 365 tenant: secure configuration (ScubaGear)", evidence=(EvidenceKind.TENANT,))
def tenant_configs(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A Microsoft 365 setting that ScubaGear found failing: external sharing in SharePoint and
    OneDrive, automatic forwarding, Teams external access, Defender / security suite protection,
    audit logging, Power Platform. Medium for a failed requirement (Shall), low for a
    recommendation (Should). ScubaGear's SPF, DKIM and DMARC controls are left to warpagent's
    own DNS checks where the estate lists its domains, and MS.EXO.4.3 (reports to the US DHS)
    does not apply in the UK.

    Board: some Microsoft 365 settings are less secure than CISA's baseline.

    Why it matters: one setting left open (anyone links, forwarding to outside mailboxes) can
    leak a council's data without anyone being hacked.
    Fix: follow the control's instructions in CISA's baseline (the finding names it)."""
    yield from tenant_weaknesses(host, ctx, "configs")


@check("WA620", "supply_chain", "Microsoft 365 tenant: third-party apps and guests (ScubaGear)",
       evidence=(EvidenceKind.TENANT,))
def tenant_supply_chain(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A Microsoft 365 control on third parties that ScubaGear found failing: user consent to
    applications, the admin consent workflow, guest invitations from any domain, Teams apps,
    Power Platform connectors. Medium for a failed requirement (Shall), low for a
    recommendation (Should).

    Board: outside applications and organisations can reach council data in Microsoft 365 too easily.

    Why it matters: a consented third-party app keeps access to mail and files after the
    password is changed; illicit consent grants are a common way in.
    Fix: follow the control's instructions in CISA's baseline (the finding names it)."""
    yield from tenant_weaknesses(host, ctx, "supply_chain")
