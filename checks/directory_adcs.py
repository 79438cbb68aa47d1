"""AD CS certificate templates that hand out the domain (WA328): the misconfigurations
SpecterOps named ESC1, ESC2, ESC3, ESC4 and ESC9, judged from the templates' attributes and
permissions as the read-only account sees them.

A template matters for ESC1-3 and 9 only when an enrollment service whose CA certificate is in
NTAuthCertificates publishes it (its certificates then log on to AD), when broad principals
(Everyone, Authenticated Users, Domain Users, Domain Computers...) may enrol, and when neither
manager approval nor an authorised signature stands in the way.
"""

from __future__ import annotations

from collections.abc import Iterator

from checks import directory_rules as rules
from checks.base import CheckContext, Weakness, check
from checks.directory_acl import CONTROL_ACCESS, FULL_CONTROL, GENERIC_ALL, broad_name, write_rights
from warpagent.model.directory import CertTemplate, DirectorySnapshot
from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import Host, Severity

ENROLL = "0e10c968-78fb-11d2-90d4-00c04f79dc55"  # Certificate-Enrollment
AUTO_ENROLL = "a05b8cc2-17bc-4802-a710-e7c15ab866a2"  # Certificate-AutoEnrollment
ENROLLEE_SUPPLIES_SUBJECT = 0x1
PEND_ALL_REQUESTS = 0x2  # manager approval
NO_SECURITY_EXTENSION = 0x80000
# client authentication, PKINIT client, smart card logon
CLIENT_AUTH = frozenset({"1.3.6.1.5.5.7.3.2", "1.3.6.1.5.2.3.4", "1.3.6.1.4.1.311.20.2.2"})
ANY_PURPOSE = "2.5.29.37.0"
REQUEST_AGENT = "1.3.6.1.4.1.311.20.2.1"


def _enrollers(template: CertTemplate, snapshot: DirectorySnapshot) -> list[str]:
    """The broad principals allowed to enrol (or auto-enrol) in the template."""
    if template.descriptor is None:
        return []
    found = []
    for ace in template.descriptor.aces:
        if not ace.allow or ace.inherit_only:
            continue
        name = broad_name(ace.trustee, snapshot)
        full = ace.mask & GENERIC_ALL or ace.mask & FULL_CONTROL == FULL_CONTROL
        enrol = ace.mask & CONTROL_ACCESS and ace.object_type in ("", ENROLL, AUTO_ENROLL)
        if name and (full or enrol):
            found.append(name)
    return list(dict.fromkeys(found))


def _escalations(template: CertTemplate) -> list[tuple[str, str]]:
    """(ESC, why) for a published template broad principals may enrol in."""
    if template.enrollment_flag & PEND_ALL_REQUESTS or template.ra_signatures > 0:
        return []
    ekus = set(template.ekus)
    authenticates = not ekus or ANY_PURPOSE in ekus or bool(ekus & CLIENT_AUTH)
    found = []
    if template.name_flag & ENROLLEE_SUPPLIES_SUBJECT and authenticates:
        found.append(("esc1", "the enrollee names the subject, and the certificate authenticates"))
    if not ekus or ANY_PURPOSE in ekus:
        found.append(("esc2", "any purpose or no EKU"))
    if REQUEST_AGENT in ekus:
        found.append(("esc3", "the Certificate Request Agent EKU (enrol on behalf of anyone)"))
    if template.enrollment_flag & NO_SECURITY_EXTENSION and authenticates:
        found.append(("esc9", "no security extension (CT_FLAG_NO_SECURITY_EXTENSION) on an authenticating "
                              "certificate"))
    return found


@check("WA328", "privileges", "directory-adcs-template-escalation", evidence=(EvidenceKind.DIRECTORY,))
def adcs_templates(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An AD CS certificate template through which any user can become anyone: published by a
    CA trusted for logon (NTAuthCertificates), enrollable by broad principals, with no manager
    approval or authorised signature, and an enrollee-supplied subject on an authenticating
    certificate (ESC1), any purpose or no EKU (ESC2), the Certificate Request Agent EKU (ESC3),
    or no security extension (ESC9) (critical); or any template broad principals may change
    (ESC4) (critical when published, high otherwise).

    Board: any member of staff could obtain a certificate that signs in as a domain administrator.

    Why it matters: these templates are the quickest path from an ordinary account to domain
    admin known today, and the certificate outlives password resets.
    Fix: require manager approval, stop the enrollee supplying the subject, narrow the EKUs and
    who may enrol; remove write access for broad groups; unpublish templates nobody needs."""
    snapshot = rules.directory_of(host)
    if snapshot is None:
        return
    for template in snapshot.cert_templates:
        name = rules.shown(template.name, 64)
        enrollers = _enrollers(template, snapshot)
        if template.published and enrollers:
            for esc, why in _escalations(template):
                yield Weakness(subject=f"ad-adcs:{template.name.casefold()}:{esc}", severity=Severity.CRITICAL,
                               title=f"Certificate template '{name}' lets any user become anyone ({esc.upper()})",
                               evidence=f"template {name}: {why}; {', '.join(enrollers)} may enrol; no manager "
                                        f"approval (msPKI-Enrollment-Flag {template.enrollment_flag:#x}), "
                                        f"{template.ra_signatures} authorised signature(s); published by a CA in "
                                        "NTAuthCertificates",
                               remediation=f"In the Certificate Templates console, fix '{name}': require manager "
                                           "approval, supply the subject from AD, narrow EKUs and enrolment rights "
                                           "(or unpublish it).")
        writers: dict[str, list[str]] = {}
        for ace in template.descriptor.aces if template.descriptor else ():
            broad = broad_name(ace.trustee, snapshot)
            if broad and ace.allow and not ace.inherit_only:
                writers.setdefault(broad, []).extend(write_rights(ace, "template"))
        for broad, rights in sorted(writers.items()):
            if rights:
                yield Weakness(subject=f"ad-adcs:{template.name.casefold()}:esc4:{broad.casefold()}",
                               severity=Severity.CRITICAL if template.published else Severity.HIGH,
                               title=f"{broad} can change certificate template '{name}' (ESC4)",
                               evidence=f"template {name}: nTSecurityDescriptor grants {broad} "
                                        f"{', '.join(dict.fromkeys(rights))}"
                                        + ("; published by a CA in NTAuthCertificates" if template.published else ""),
                               remediation=f"Remove {broad}'s write access from template '{name}'.")
