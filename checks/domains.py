"""configs of the council's mail domains (WA516-WA520): SPF, DMARC, DKIM, MTA-STS and TLS-RPT
records, judged as the NCSC's Mail Check judged them. From DNS; findings sit on the asset
"domain NAME" and quote the record behind them."""

from __future__ import annotations

from collections.abc import Iterator

from checks.base import NCSC_DMARC_RUA, CheckContext, Weakness, check
from warpagent.model.domains import NOT_FIRST, Dmarc, DomainRecords, policy_rank
from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import Host, Severity
from warpagent.numbers import whole_or_none
from warpagent.text import shown

DOMAIN = (EvidenceKind.DOMAIN,)
SPF_MAX_LOOKUPS = 10  # RFC 7208 4.6.4: more is a permanent error, and receivers treat it as no SPF


def _records(host: Host) -> DomainRecords | None:
    return host.evidence.domain


def _quote(record: str) -> str:
    return f'"{shown(record, 160)}"'


def _finding(subject: str, severity: Severity, title: str, evidence: str, fix: str) -> Weakness:
    return Weakness(subject=subject, severity=severity, title=title, evidence=evidence, remediation=fix)


@check("WA516", "configs", "spf-weak", evidence=DOMAIN)
def spf_weak(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """The domain's SPF record is missing (medium), published more than once (medium: receivers
    treat two as none), ends in `+all` (high: anyone may send as the domain) or `?all` or no
    `all` (medium), needs more than 10 DNS lookups (medium: a permanent error), or uses `ptr`
    (low: slow, and deprecated by RFC 7208).

    Board: criminals can send e-mail that appears to come from the council.

    Why it matters: SPF is how receiving mail servers tell the council's own mail servers from
    a spoofer's; a missing or permissive record lets phishing in the council's name through.
    Fix: publish one TXT record at the domain listing the services that send its mail, ending
    in `-all` (or `~all` while DMARC reports are reviewed); flatten includes that push it past
    10 lookups; for a domain that sends no mail, `v=spf1 -all`.
    """
    found = _records(host)
    if found is None:
        return
    where = found.where()
    if not found.spf:
        yield _finding("spf:missing", Severity.MEDIUM, f"{shown(where)} has no SPF record",
                       f"no TXT record starting v=spf1 at {shown(where)}",
                       "Publish one SPF record ending in -all, listing every service that sends the domain's mail.")
        return
    if len(found.spf) > 1:
        yield _finding("spf:multiple", Severity.MEDIUM, f"{shown(where)} publishes {len(found.spf)} SPF records",
                       "; ".join(_quote(r) for r in found.spf),
                       "Merge them into one record: with two, receivers treat the domain as having none.")
        return
    record, facts = found.spf[0], found.spf_facts[0]
    qualifier = facts.all_qualifier
    if qualifier == "+":
        yield _finding("spf:all", Severity.HIGH, f"SPF for {shown(where)} lets any server send its mail (+all)",
                       f"{_quote(record)} at {shown(where)}", "End the record in -all (or ~all), never +all.")
    elif qualifier in ("?", None) and not facts.redirects:
        said = "?all (neutral)" if qualifier else "no all term"
        yield _finding("spf:all", Severity.MEDIUM, f"SPF for {shown(where)} does not refuse other senders ({said})",
                       f"{_quote(record)} at {shown(where)}", "End the record in -all (or ~all while reviewing).")
    if found.spf_lookups > SPF_MAX_LOOKUPS or found.spf_unresolved:
        why = (f"{found.spf_lookups} DNS lookups (at most {SPF_MAX_LOOKUPS})" if found.spf_lookups > SPF_MAX_LOOKUPS
               else f"includes that publish no SPF record: {', '.join(shown(u) for u in found.spf_unresolved[:5])}")
        yield _finding("spf:permerror", Severity.MEDIUM, f"SPF for {shown(where)} is a permanent error: {why}",
                       f"{_quote(record)} at {shown(where)}",
                       "Remove or flatten includes so the record resolves in 10 lookups or fewer.")
    if facts.has_ptr:
        yield _finding("spf:ptr", Severity.LOW, f"SPF for {shown(where)} uses the deprecated ptr mechanism",
                       f"{_quote(record)} at {shown(where)}", "Replace ptr with ip4:/ip6: or include: terms.")


def _dmarc_problems(parsed: Dmarc, report_to: str) -> Iterator[tuple[str, Severity, str]]:
    if parsed.problems:  # receivers ignore a record whose v= is not first: as good as none
        severity = Severity.HIGH if NOT_FIRST in parsed.problems else Severity.MEDIUM
        said = "an error" if len(parsed.problems) == 1 else f"{len(parsed.problems)} errors"
        yield "syntax", severity, f"the DMARC record has {said}: {'; '.join(parsed.problems)}"
    policy = parsed.tags.get("p", "").lower()
    if policy == "none":
        yield "policy", Severity.MEDIUM, "DMARC only monitors (p=none): spoofed mail is still delivered"
    sub = parsed.tags.get("sp", "").lower()
    if sub and policy_rank(sub) < policy_rank(policy):
        yield "subdomain-policy", Severity.MEDIUM, f"subdomains get a weaker DMARC policy (sp={sub}) than the domain"
    pct = parsed.tags.get("pct", "100")
    share = whole_or_none(pct, "pct", digits=3)
    if share is not None and share < 100:
        yield "pct", Severity.LOW, f"DMARC applies to only {pct}% of failing mail (pct={pct})"
    rua = [u.lower() for u in parsed.uris("rua")]
    if not rua:
        yield "reporting", Severity.LOW, "DMARC asks for no aggregate reports (no rua), so nobody sees spoofing"
    elif report_to and report_to.lower() not in rua:
        yield "reporting", Severity.LOW, f"DMARC aggregate reports do not go to {shown(report_to)}"


@check("WA517", "configs", "dmarc-weak", evidence=DOMAIN)
def dmarc_weak(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """The domain's DMARC record, by the NCSC's Mail Check rules: missing or more than one
    (high: receivers apply none), `p=none` (medium), `sp` weaker than `p` (medium), `pct` under
    100 (low), no aggregate reporting, or for UK public sector no
    `mailto:dmarc-rua@dmarc.service.gov.uk` in `rua` (low; estates[].mail.dmarc_report_to),
    and syntax errors: `v` not first, unknown or repeated tags, more than two addresses in a tag
    (medium).

    Board: e-mail servers are not told to reject mail that pretends to be from the council.

    Why it matters: DMARC tells receivers what to do with mail that fails SPF and DKIM; without
    an enforcing policy, spoofed mail in the council's name reaches residents and suppliers.
    Fix: publish `v=DMARC1; p=reject; rua=mailto:dmarc-rua@dmarc.service.gov.uk` at
    `_dmarc.<domain>` (start at p=quarantine if unsure, reading the reports), with sp no weaker.
    """
    found = _records(host)
    if found is None:
        return
    where = found.where("_dmarc")
    if len(found.dmarc) != 1:
        said = "has no DMARC record" if not found.dmarc else f"publishes {len(found.dmarc)} DMARC records"
        yield _finding("dmarc:missing", Severity.HIGH, f"{shown(found.domain)} {said}",
                       f"TXT at {shown(where)}: " + ("; ".join(_quote(r) for r in found.dmarc) or "none"),
                       f"Publish one record: v=DMARC1; p=reject; rua={NCSC_DMARC_RUA}")
        return
    report_to = ctx.policy.dmarc_report_to
    for aspect, severity, title in _dmarc_problems(found.dmarc_parsed[0], report_to):
        yield _finding(f"dmarc:{aspect}", severity, f"{shown(found.domain)}: {title}",
                       f"{_quote(found.dmarc[0])} at {shown(where)}",
                       "Move to p=reject (sp no weaker, pct=100) with rua including "
                       f"{shown(report_to or NCSC_DMARC_RUA)}.")


@check("WA518", "configs", "dkim-key-weak", evidence=DOMAIN)
def dkim_key_weak(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """For each configured DKIM selector (estates[].mail.dkim_selectors): no key published, or
    the key revoked (`p=` empty) (medium); an RSA key under 1024 bits (high) or of 1024 bits
    (low); a key record that cannot be read (medium).

    Why it matters: DKIM signs the council's mail so receivers can tell it was not changed or
    forged; a short key can be factored and used to sign mail as the council.
    Fix: publish a 2048-bit RSA key (or Ed25519 beside it) at `<selector>._domainkey.<domain>`
    and rotate the signing key; in Microsoft 365, rotate the DKIM keys to 2048 bits.
    """
    found = _records(host)
    for key in found.dkim if found else ():
        where = f"{key.selector}._domainkey.{found.domain}" if found else ""
        subject = f"dkim:{key.selector.lower()}"
        facts = key.facts
        if facts is None or facts.revoked:
            said = "revoked (p= empty)" if facts else "not published"
            yield _finding(subject, Severity.MEDIUM, f"DKIM key for selector {shown(key.selector)} is {said}",
                           f"TXT at {shown(where)}: " + (_quote(key.records[0]) if key.records else "none"),
                           "Publish the selector's 2048-bit public key, or remove the selector from the config.")
        elif facts.problem:
            yield _finding(subject, Severity.MEDIUM, f"DKIM key for selector {shown(key.selector)} cannot be read",
                           f"{facts.problem} at {shown(where)}", "Republish the key as the signing service gives it.")
        elif facts.bits is not None and facts.bits <= 1024:
            yield _finding(subject, Severity.HIGH if facts.bits < 1024 else Severity.LOW,
                           f"DKIM key for selector {shown(key.selector)} is RSA {facts.bits} bits",
                           f"p= holds a {facts.bits}-bit RSA key at {shown(where)}",
                           "Rotate to a 2048-bit RSA key.")


@check("WA519", "configs", "mta-sts-missing", evidence=DOMAIN)
def mta_sts_missing(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A domain that receives mail (it has MX records) publishes no MTA-STS record at
    `_mta-sts.<domain>`. Low.

    Why it matters: without MTA-STS, mail sent to the council can be downgraded to plain text
    or redirected by anyone on the path, and the sender never knows.
    Fix: publish `v=STSv1; id=<date>` at `_mta-sts.<domain>` and a policy at
    `https://mta-sts.<domain>/.well-known/mta-sts.txt` listing the MX hosts, in mode enforce
    once TLS-RPT reports are clean.
    """
    found = _records(host)
    if found is not None and found.mx and not found.mta_sts:
        yield _finding("mta-sts:missing", Severity.LOW, f"{shown(found.domain)} publishes no MTA-STS policy",
                       f"no TXT record starting v=STSv1 at {shown(found.where('_mta-sts'))}",
                       "Publish an MTA-STS record and policy for the domain's MX hosts.")


@check("WA520", "configs", "tls-rpt-missing", evidence=DOMAIN)
def tls_rpt_missing(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A domain that receives mail publishes no TLS-RPT record at `_smtp._tls.<domain>`. Low.

    Why it matters: TLS-RPT is how senders tell the council that mail to it could not be
    delivered securely; without it, a broken or attacked mail route goes unnoticed.
    Fix: publish `v=TLSRPTv1; rua=mailto:tls-rua@<your domain>` at `_smtp._tls.<domain>`.
    """
    found = _records(host)
    if found is not None and found.mx and not found.tls_rpt:
        yield _finding("tls-rpt:missing", Severity.LOW, f"{shown(found.domain)} publishes no TLS-RPT record",
                       f"no TXT record starting v=TLSRPTv1 at {shown(found.where('_smtp._tls'))}",
                       "Publish a TLS-RPT record with an address that reads the reports.")


MTA_STS_MIN_AGE = {"enforce": 1_209_600, "testing": 86_400}  # two weeks; a day while testing


@check("WA521", "configs", "mta-sts-policy-weak", evidence=DOMAIN)
def mta_sts_policy_weak(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A published MTA-STS policy (fetched over HTTPS from `mta-sts.<domain>`, its certificate
    verified, when that host is in the estate's scope) that cannot be fetched or read (medium),
    is in mode `testing` (low) or `none` (medium), has a `max_age` under two weeks in enforce or
    a day in testing (low), or does not cover an MX host of the domain (medium: mail to it
    would fail or be refused once enforced).

    Why it matters: senders trust a policy for max_age seconds; a testing or short-lived policy
    leaves the downgrade attack MTA-STS exists to stop open.
    Fix: serve `version: STSv1`, `mode: enforce`, an `mx:` line per MX host (or `*.domain`) and
    `max_age: 1209600` or more, over HTTPS with a valid certificate for mta-sts.<domain>.
    """
    found = _records(host)
    if found is None:
        return
    where = f"https://mta-sts.{shown(found.domain)}/.well-known/mta-sts.txt"
    fix = "Serve mode: enforce, max_age: 1209600 or more and an mx: line per MX host, with a valid certificate."
    if found.policy_problem or (found.policy and found.policy.problems):
        said = found.policy_problem or "; ".join(found.policy.problems if found.policy else ())
        yield _finding("mta-sts:policy", Severity.MEDIUM, f"The MTA-STS policy of {shown(found.domain)} is not usable",
                       f"{where}: {said}", fix)
        return
    policy = found.policy
    if policy is None:
        return
    if policy.mode != "enforce":
        yield _finding("mta-sts:mode", Severity.LOW if policy.mode == "testing" else Severity.MEDIUM,
                       f"The MTA-STS policy of {shown(found.domain)} does not enforce (mode {policy.mode})",
                       f"{where}: mode: {policy.mode}", fix)
    floor = MTA_STS_MIN_AGE.get(policy.mode)
    if floor and policy.max_age is not None and policy.max_age < floor:
        yield _finding("mta-sts:max-age", Severity.LOW,
                       f"The MTA-STS policy of {shown(found.domain)} lasts only {policy.max_age} s",
                       f"{where}: max_age: {policy.max_age} (at least {floor} in {policy.mode})", fix)
    uncovered = [mx for _, mx in found.mx if not policy.covers(mx)]
    if uncovered and policy.mode != "none":
        yield _finding("mta-sts:mx", Severity.MEDIUM,
                       f"The MTA-STS policy of {shown(found.domain)} does not cover MX {shown(uncovered[0])}",
                       f"{where}: mx: {', '.join(shown(m) for m in policy.mx) or 'none'}; MX records: "
                       f"{', '.join(shown(m) for m in uncovered)} not covered", fix)


@check("WA522", "configs", "mx-starttls", evidence=DOMAIN)
def mx_starttls(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An MX host of the domain inside the estate's scope that does not offer STARTTLS (high),
    or whose certificate is not valid for its name (medium). MX hosts outside scope are never
    contacted.

    Why it matters: without STARTTLS, mail to the council crosses the internet readable by
    anyone on the path; with a certificate that does not match, MTA-STS senders refuse it.
    Fix: enable STARTTLS on the mail server with a certificate for its MX name from a public CA.
    """
    found = _records(host)
    for result in found.mx_tls if found else ():
        if not result.offered:
            yield _finding(f"mx:{result.host}", Severity.HIGH, f"MX {shown(result.host)} does not offer STARTTLS",
                           f"EHLO to {shown(result.host)} on port 25 lists no STARTTLS",
                           "Enable STARTTLS on the mail server, with a certificate for its MX name.")
        elif result.problem:
            yield _finding(f"mx:{result.host}", Severity.MEDIUM,
                           f"MX {shown(result.host)} offers STARTTLS with a certificate that does not check out",
                           f"STARTTLS to {shown(result.host)}: {shown(result.problem, 200)}",
                           "Install a certificate for the MX name from a public CA.")
