"""What DNS says of one of the council's domains, as the mail checks see it.

Each record is kept as the text the domain publishes (a TXT record's strings joined, as RFC 7208
and RFC 7489 read them), so a finding can quote it. Nothing here is shared: a WARP bundle
carries only the check ids and counts of the findings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DkimKey:
    selector: str
    records: tuple[str, ...]  # TXT at <selector>._domainkey.<domain>; () when there is none


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

    def where(self, label: str = "") -> str:
        """The DNS name a finding points at: "_dmarc.example.gov.uk"."""
        return f"{label}.{self.domain}" if label else self.domain
