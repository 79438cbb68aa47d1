"""What DNS says of one of the council's domains, as the mail checks see it.

Each record is kept as the text the domain publishes (a TXT record's strings joined, as RFC 7208
and RFC 7489 read them), so a finding can quote it, beside what the evidence stage parsed of it
(the checks judge the parsed facts and never parse a record themselves). Nothing here is
shared: a WARP bundle carries only the check ids and counts of the findings.
"""

from __future__ import annotations

from dataclasses import dataclass

DMARC_POLICIES = ("none", "quarantine", "reject")  # weakest first
NOT_FIRST = "v=DMARC1 is not the first tag"  # the DMARC syntax problem that makes receivers ignore a record


def policy_rank(value: str) -> int:
    """none < quarantine < reject; -1 for anything else."""
    lowered = value.lower()
    return DMARC_POLICIES.index(lowered) if lowered in DMARC_POLICIES else -1


@dataclass(frozen=True)
class SpfFacts:
    """What one SPF record says, as the checks judge it."""

    all_qualifier: str | None  # of its `all` term: "+", "-", "~", "?"; None when it has none
    redirects: bool  # a redirect= modifier hands the verdict to another domain
    has_ptr: bool  # the deprecated ptr mechanism


@dataclass(frozen=True)
class Dmarc:
    tags: dict[str, str]
    problems: tuple[str, ...]  # syntax errors, in the words of the tag at fault

    def uris(self, tag: str) -> list[str]:
        return [u.strip() for u in self.tags.get(tag, "").split(",") if u.strip()]


@dataclass(frozen=True)
class DkimKeyFacts:
    revoked: bool  # p= is empty: the key was withdrawn
    key_type: str
    bits: int | None  # RSA modulus size; None when not RSA or unreadable
    problem: str = ""


@dataclass(frozen=True)
class DkimKey:
    selector: str
    records: tuple[str, ...]  # TXT at <selector>._domainkey.<domain>; () when there is none
    facts: DkimKeyFacts | None = None  # of the first record; None when there is none


@dataclass(frozen=True)
class MtaStsPolicy:
    """The policy at https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 3.2)."""

    mode: str  # enforce, testing or none
    max_age: int | None  # seconds
    mx: tuple[str, ...]  # patterns: "mail.example.gov.uk", "*.example.gov.uk"
    problems: tuple[str, ...] = ()  # what makes it invalid

    def covers(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for pattern in (p.lower().rstrip(".") for p in self.mx):
            if pattern == host or (pattern.startswith("*.") and host.count(".") == pattern.count(".")
                                   and host.endswith(pattern[1:])):
                return True
        return False


@dataclass(frozen=True)
class MxTls:
    """What an in-scope MX host said to STARTTLS."""

    host: str
    offered: bool
    problem: str = ""  # the certificate or handshake problem, if any


@dataclass(frozen=True)
class DomainRecords:
    domain: str
    spf: tuple[str, ...]  # the domain's TXT records that start "v=spf1"
    spf_lookups: int  # DNS-querying terms, includes and redirects followed (RFC 7208 4.6.4 caps them at 10)
    spf_unresolved: tuple[str, ...]  # include/redirect targets that publish no SPF record
    dmarc: tuple[str, ...]  # TXT at _dmarc.<domain> that start "v=DMARC1" (or claim to, badly)
    dkim: tuple[DkimKey, ...]
    mta_sts: tuple[str, ...]  # TXT at _mta-sts.<domain> starting "v=STSv1"
    tls_rpt: tuple[str, ...]  # TXT at _smtp._tls.<domain> starting "v=TLSRPTv1"
    mx: tuple[tuple[int, str], ...]  # (preference, host), lowest first
    spf_facts: tuple[SpfFacts, ...] = ()  # one per record in `spf`
    dmarc_parsed: tuple[Dmarc, ...] = ()  # one per record in `dmarc`
    policy: MtaStsPolicy | None = None  # fetched only from an in-scope address
    policy_problem: str = ""  # why the policy could not be fetched or read
    mx_tls: tuple[MxTls, ...] = ()  # the MX hosts in scope, probed
    notes: tuple[str, ...] = ()  # what was not contacted (outside scope), for the run summary
    problems: tuple[str, ...] = ()  # a policy or MX host in scope that could not be reached: the domain is partial

    def where(self, label: str = "") -> str:
        """The DNS name a finding points at: "_dmarc.example.gov.uk"."""
        return f"{label}.{self.domain}" if label else self.domain
