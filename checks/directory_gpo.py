"""What Group Policy grants, from the GPOs' files in SYSVOL: broad principals made local
administrators or given logon rights on the domain controllers (WA327), and LM / NTLMv1 left
allowed on the domain controllers (WA418).
"""

from __future__ import annotations

from collections.abc import Iterator

from checks import directory_rules as rules
from checks.base import CheckContext, Weakness, check
from checks.directory_acl import broad_name
from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import Host, Severity

SYSVOL = (EvidenceKind.SYSVOL,)
NTLMV2_ONLY = 3  # LmCompatibilityLevel 3 and up: clients send NTLMv2 only; 5: DCs refuse LM and NTLMv1


@check("WA327", "privileges", "directory-gpo-grants-to-everyone", evidence=SYSVOL)
def gpo_broad_grants(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A GPO that makes Everyone, Authenticated Users, Users, Domain Users or Domain Computers
    members of the computers' local Administrators (Group Policy Preferences Groups.xml or the
    security template's Group Membership) (high; critical when it applies to the domain
    controllers), or gives them a logon right in a GPO linked to the domain or the DC OU (high).

    Board: a Group Policy makes every member of staff an administrator of council computers.

    Why it matters: local administrator everywhere lets one phished account take any PC and
    the passwords cached on it; a logon right on a DC puts every user one step from it.
    Fix: remove the broad group from the GPO's Administrators membership or the user right."""
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    on_dcs = {g.upper() for g in snapshot.dc_gpos}
    for grants in snapshot.gpo_grants:
        dcs = grants.gpo.upper() in on_dcs
        for sid in grants.local_admins:
            name = broad_name(sid, snapshot)
            if name:
                yield Weakness(subject=f"ad-gpo:{grants.gpo.casefold()}:local-admin:{sid}",
                               severity=Severity.CRITICAL if dcs else Severity.HIGH,
                               title=f"GPO {rules.shown(grants.gpo, 40)} makes {name} local administrators",
                               evidence=f"SYSVOL Policies/{rules.shown(grants.gpo, 40)}: adds {name} ({sid}) to "
                                        "Administrators (S-1-5-32-544)" + (", and applies to the domain controllers"
                                                                          if dcs else ""),
                               remediation=f"Remove {name} from the Administrators membership in GPO "
                                           f"{rules.shown(grants.gpo, 40)}.", evidence_kind=EvidenceKind.SYSVOL)
        if not dcs:
            continue
        for right, sid in grants.logon_rights:
            name = broad_name(sid, snapshot)
            if name and right != "SeNetworkLogonRight":  # network logon to a DC is every user's by design
                yield Weakness(subject=f"ad-gpo:{grants.gpo.casefold()}:{right.casefold()}:{sid}",
                               severity=Severity.HIGH,
                               title=f"GPO {rules.shown(grants.gpo, 40)} gives {name} {right} on the domain "
                                     "controllers",
                               evidence=f"SYSVOL Policies/{rules.shown(grants.gpo, 40)}/Machine/Microsoft/Windows NT/"
                                        f"SecEdit/GptTmpl.inf: {right} = *{sid}; linked at the domain or the DC OU",
                               remediation=f"Remove {name} from {right} in GPO {rules.shown(grants.gpo, 40)}.",
                               evidence_kind=EvidenceKind.SYSVOL)


@check("WA418", "passwords", "directory-ntlmv1-allowed-on-dcs", evidence=SYSVOL)
def ntlmv1_on_dcs(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A GPO linked to the domain or the Domain Controllers OU that sets LmCompatibilityLevel
    below 3, so the domain controllers accept LM or NTLMv1 (high).

    Board: the domain controllers accept an old sign-in method whose passwords can be cracked.

    Why it matters: NTLMv1 and LM responses are cracked or relayed easily; a captured one gives
    the account, often a DC's own.
    Fix: set "Network security: LAN Manager authentication level" to "Send NTLMv2 response only.
    Refuse LM & NTLM" (5) in that GPO, after checking no old device still needs it."""
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    on_dcs = {g.upper() for g in snapshot.dc_gpos}
    for grants in snapshot.gpo_grants:
        level = grants.lm_compatibility
        if grants.gpo.upper() in on_dcs and level is not None and level < NTLMV2_ONLY:
            yield Weakness(subject=f"ad-gpo:{grants.gpo.casefold()}:lmcompatibilitylevel",
                           severity=Severity.HIGH,
                           title=f"GPO {rules.shown(grants.gpo, 40)} lets the domain controllers accept LM or NTLMv1",
                           evidence=f"SYSVOL Policies/{rules.shown(grants.gpo, 40)}/Machine/Microsoft/Windows NT/"
                                    f"SecEdit/GptTmpl.inf: LmCompatibilityLevel={level} (below {NTLMV2_ONLY}); linked "
                                    "at the domain or the DC OU",
                           remediation=f"Set LmCompatibilityLevel to 5 in GPO {rules.shown(grants.gpo, 40)}.",
                           evidence_kind=EvidenceKind.SYSVOL)
