"""400 council domains checked from DNS: every record the mail checks read, and the checks.

Serves 400 domains from a real dnsmasq on loopback (tests/dns_server.py; a mix of clean and
weak SPF, DMARC, DKIM with 2048-bit keys, MTA-STS and TLS-RPT records, an MX each), then
alternates:
- the reference: a plain dnspython loop asking the same questions one after another;
- warpagent: `evidence.domains.read_all` (16 domains at once) and the domain checks.

    .venv/bin/python bench/domains.py [--domains 400 --rounds 3]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from checks import ALL_CHECKS, CheckContext  # noqa: E402
from tests.dns_server import serving  # noqa: E402
from warpagent.evidence import domains  # noqa: E402
from warpagent.model.evidence import EvidenceKind, HostEvidence  # noqa: E402
from warpagent.model.findings import RECORD_STATE, Host, Inventory  # noqa: E402
from warpagent.scan import engine  # noqa: E402

SELECTORS = ("selector1", "selector2")


def zone(count: int) -> tuple[list[tuple[str, str]], list[tuple[str, str, int]], list[str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    dkim = "v=DKIM1; k=rsa; p=" + base64.b64encode(key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    txt, mx, names = [], [], []
    for n in range(count):
        name = f"council{n:03d}.test"
        names.append(name)
        weak = n % 3 == 0
        txt += [(name, "v=spf1 include:_spf.shared.test ~all" if not weak else "v=spf1 +all"),
                (f"_dmarc.{name}", "v=DMARC1; p=reject; rua=mailto:dmarc-rua@dmarc.service.gov.uk" if not weak
                 else "v=DMARC1; p=none"),
                (f"selector1._domainkey.{name}", dkim)]
        if not weak:
            txt += [(f"_mta-sts.{name}", "v=STSv1; id=1"), (f"_smtp._tls.{name}", "v=TLSRPTv1; rua=mailto:t@x.test")]
        mx.append((name, f"mx.{name}", 10))
    txt.append(("_spf.shared.test", "v=spf1 ip4:198.18.0.0/16 -all"))
    return txt, mx, names


def plain_loop(names: list[str], resolver: object) -> int:
    """The same questions, one after another, answers read and dropped."""
    import dns.resolver
    answers = 0
    assert isinstance(resolver, dns.resolver.Resolver)
    for name in names:
        for qname, kind in ((name, "TXT"), ("_spf.shared.test", "TXT"), (f"_dmarc.{name}", "TXT"),
                            *((f"{s}._domainkey.{name}", "TXT") for s in SELECTORS),
                            (f"_mta-sts.{name}", "TXT"), (f"_smtp._tls.{name}", "TXT"), (name, "MX")):
            try:
                answers += len(resolver.resolve(qname, kind))
            except dns.resolver.NoAnswer:
                pass
            except dns.resolver.NXDOMAIN:
                pass
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    txt, mx, names = zone(args.domains)
    checks = [c for c in ALL_CHECKS if EvidenceKind.DOMAIN in c.evidence]
    with serving(txt, mx) as server:
        resolver = domains.resolver_for([server.server], 5)
        references, ours = [], []
        for round_ in range(args.rounds):
            started = time.perf_counter()
            plain_loop(names, resolver)
            references.append(time.perf_counter() - started)
            started = time.perf_counter()
            results = domains.read_all(names, SELECTORS, resolver)
            hosts = tuple(Host(address="", asset=f"domain {n}", state=RECORD_STATE, evidence=HostEvidence(
                domain=r, read=frozenset({EvidenceKind.DOMAIN}))) for n, r in results if not isinstance(r, str))
            evaluation = engine.evaluate(Inventory(estate="bench", hosts=hosts, scanned=(), unscanned=()),
                                         CheckContext(now=dt.datetime.now(dt.UTC)), checks)
            ours.append(time.perf_counter() - started)
            failed = sum(1 for _, r in results if isinstance(r, str))
            print(f"round {round_ + 1}: plain dnspython loop {references[-1]:.2f} s; warpagent {ours[-1]:.2f} s "
                  f"({len(hosts)} domains read, {failed} failed, {len(evaluation.findings)} findings, "
                  f"{len(evaluation.errors)} check errors)", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"best of {args.rounds}: warpagent {min(ours):.2f} s for {args.domains} domains (target < 60 s); plain loop "
          f"{min(references):.2f} s; ratio {min(ours) / min(references):.2f}; peak {peak:.0f} MiB")


if __name__ == "__main__":
    main()
