"""Ask DNS about the council's domains with dnspython: the configured servers (or the system
resolver's), a bounded time per question, retries and the TCP fallback for truncated answers
as dnspython does them.

Only the estate's own domains are asked about (and the SPF includes they name); nothing is
contacted but the DNS servers. A domain whose questions fail (NXDOMAIN for the domain itself,
SERVFAIL, no answer in time) is a DomainError line and is partial; its findings stay as they
were.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from warpagent.collect.scope import server_address
from warpagent.evidence import mail_transport
from warpagent.evidence.parsers import mail_records as records
from warpagent.model.domains import DkimKey, DomainRecords
from warpagent.text import shown

CONCURRENCY = 16  # domains asked about at once
MAX_SPF_QUERIES = 20  # past the RFC's 10 the record is already broken; no need to chase more


class DomainError(Exception):
    """Why a domain could not be read tonight, in one line."""


def resolver_for(servers: Sequence[str], timeout_s: float) -> dns.resolver.Resolver:
    """A resolver asking `servers` ("10.20.0.53", "10.20.0.53:5353", "[fd00::53]:53"), or the system's."""
    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*server_address(s, 53)) for s in servers]
    resolver.lifetime = timeout_s
    resolver.timeout = max(0.5, timeout_s / 3)  # each try; the lifetime bounds the retries
    return resolver


def _txt(resolver: dns.resolver.Resolver, name: str, *, apex: bool = False) -> tuple[str, ...]:
    """The TXT records at `name`, each one's strings joined; () when it has none."""
    try:
        answer = resolver.resolve(name, "TXT", raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        if apex:
            raise DomainError(f"domain {name}: does not exist (NXDOMAIN); check estates[].domains") from None
        return ()
    except dns.resolver.NoNameservers as exc:
        said = re.search(r"answered (SERVFAIL|REFUSED|NOTIMP|FORMERR)", str(exc))
        raise DomainError(f"domain {name}: the DNS server answered {said[1] if said else 'with an error'}; "
                          "try again, or check the domain's delegation and scan.dns_servers") from None
    except dns.exception.Timeout:
        raise DomainError(f"domain {name}: no DNS answer within {resolver.lifetime:g}s; check scan.dns_servers "
                          "and scan.dns_timeout") from None
    except dns.exception.DNSException as exc:
        raise DomainError(f"domain {name}: DNS answer not usable ({shown(str(exc), 120)})") from None
    if answer.rrset is None:
        return ()
    return tuple(b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer.rrset)


def _mx(resolver: dns.resolver.Resolver, name: str) -> tuple[tuple[int, str], ...]:
    try:
        answer = resolver.resolve(name, "MX", raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return ()
    except dns.exception.DNSException as exc:
        raise DomainError(f"domain {name}: the MX question failed ({shown(str(exc), 120)})") from None
    if answer.rrset is None:
        return ()
    return tuple(sorted((r.preference, r.exchange.to_text(omit_final_dot=True).lower()) for r in answer.rrset))


def _spf_lookups(resolver: dns.resolver.Resolver, record: str) -> tuple[int, tuple[str, ...]]:
    """DNS-querying terms of an SPF record, includes and redirects followed; and the targets
    that publish no SPF record (a permanent error for an include)."""
    total, queue, seen, unresolved = 0, [record], set(), []
    while queue and total <= MAX_SPF_QUERIES:
        count, follow = records.spf_lookups(queue.pop(0))
        total += count
        for target in follow:
            if target in seen:
                continue
            seen.add(target)
            try:
                found = [r for r in _txt(resolver, target) if records.is_spf(r)]
            except DomainError:
                found = []
            if found:
                queue.append(found[0])
            else:
                unresolved.append(target)
    return total, tuple(unresolved)


@dataclass(frozen=True)
class Transport:
    """What the connection checks may do: which addresses are in scope, and the CA to trust."""

    in_scope: Callable[[str], bool] = lambda address: False
    ca_bundle: Path | None = None
    timeout_s: float = 10.0


def read_all(domains: Sequence[str], selectors: Sequence[str], resolver: dns.resolver.Resolver,
             concurrency: int = CONCURRENCY,
             transport: Transport = Transport()) -> list[tuple[str, DomainRecords | str]]:
    """Each domain's records, or the line saying why it could not be read, in config order; at
    most `concurrency` domains asked about at once (a council's resolver is not a load test)."""
    if not domains:
        return []

    def one(domain: str) -> DomainRecords | str:
        try:
            return connected(read(domain, selectors, resolver), resolver, transport)
        except DomainError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(domains))),
                            thread_name_prefix="warpagent-dns") as pool:
        return list(zip(domains, pool.map(one, domains), strict=True))


def read(domain: str, selectors: Sequence[str], resolver: dns.resolver.Resolver) -> DomainRecords:
    """Everything the mail checks read of one domain, or DomainError."""
    try:
        dns.name.from_text(domain)
    except dns.exception.DNSException as exc:
        raise DomainError(f"domain {shown(domain)}: not a DNS name ({exc})") from None
    spf = tuple(r for r in _txt(resolver, domain, apex=True) if records.is_spf(r))
    lookups, unresolved = _spf_lookups(resolver, spf[0]) if len(spf) == 1 else (0, ())
    dmarc = tuple(r for r in _txt(resolver, f"_dmarc.{domain}") if records.claims_dmarc(r))
    dkim = tuple(DkimKey(selector=s, records=keys, facts=records.dkim_key(keys[0]) if keys else None)
                 for s in selectors for keys in [_txt(resolver, f"{s}._domainkey.{domain}")])
    mta_sts = tuple(r for r in _txt(resolver, f"_mta-sts.{domain}") if records.starts_with_version(r, "STSv1"))
    tls_rpt = tuple(r for r in _txt(resolver, f"_smtp._tls.{domain}") if records.starts_with_version(r, "TLSRPTv1"))
    return DomainRecords(domain=domain, spf=spf, spf_lookups=lookups, spf_unresolved=unresolved, dmarc=dmarc,
                         dkim=dkim, mta_sts=mta_sts, tls_rpt=tls_rpt, mx=_mx(resolver, domain),
                         spf_facts=tuple(records.spf_facts(r) for r in spf),
                         dmarc_parsed=tuple(records.dmarc(r) for r in dmarc))


def connected(found: DomainRecords, resolver: dns.resolver.Resolver, transport: Transport) -> DomainRecords:
    """The MTA-STS policy and STARTTLS on the MX hosts, from in-scope addresses only."""
    notes: list[str] = []
    problems: list[str] = []  # what could not be reached: the domain is partial tonight
    policy, problem = None, ""
    if found.mta_sts:
        host = f"mta-sts.{found.domain}"
        inside = [a for a in mail_transport.addresses(resolver, host) if transport.in_scope(a)]
        if inside:
            fetched = mail_transport.fetch_policy(found.domain, inside[0], transport.ca_bundle, transport.timeout_s)
            if isinstance(fetched, mail_transport.Unreachable):
                problems.append(f"domain {found.domain}: {host} at {inside[0]}: {fetched.reason}")
            else:
                policy, problem = (None, fetched) if isinstance(fetched, str) else (fetched, "")
        else:
            notes.append(f"domain {found.domain}: {host} is not in the estate's scope: its MTA-STS policy was not "
                         "fetched (add its address to targets to judge it)")
    probed = []
    for _preference, mx_host in found.mx:
        inside = [a for a in mail_transport.addresses(resolver, mx_host) if transport.in_scope(a)]
        if not inside:
            continue  # judged from DNS alone: never contacted
        result = mail_transport.probe_starttls(mx_host, inside[0], transport.ca_bundle, transport.timeout_s)
        if not result.offered and result.problem:
            problems.append(f"domain {found.domain}: MX {mx_host} at {inside[0]}: {result.problem}")
            continue
        probed.append(result)
    return dataclasses.replace(found, policy=policy, policy_problem=problem, mx_tls=tuple(probed), notes=tuple(notes),
                               problems=tuple(problems))
