"""Lifecycles endoflife.date does not list, from the vendor's own published policy where it is
simple enough to apply without guessing.

OpenSSH is the one that matters most on a council network and is absent from endoflife.date:
its developers support only the latest release (security fixes ship as a new release, never as
a patch to an old one). So any release older than the newest one known here is unsupported
upstream; a release at or after it may be current, or already superseded by a release this
table does not know yet, and is left alone. Distribution builds (OpenSSH 9.2p1 Debian
2+deb12u3) are the distribution's to support and are judged by it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from feeds import cpe
from feeds.versions import upstream_compare


@dataclass(frozen=True)
class VendorPolicy:
    name: str  # the product's key, as endoflife.date would name it
    title: str
    vendor_product: tuple[str, str]  # the CPE vendor and product nmap writes
    policy: str  # the policy in the vendor's sense, in plain words
    source: str  # where the vendor says so
    newest_known: str  # the newest release this table knows of
    newest_known_on: dt.date

    def unsupported(self, version: str) -> bool:
        """True when a newer release than `version` is known: under a latest-only policy, unsupported."""
        return upstream_compare(version, self.newest_known) < 0


POLICIES = (
    VendorPolicy(name="openssh", title="OpenSSH", vendor_product=("openbsd", "openssh"),
                 policy="only the latest release is supported; fixes ship as new releases",
                 source="https://www.openssh.com/security.html", newest_known="10.2",
                 newest_known_on=dt.date(2025, 10, 10)),
)
_BY_KEY = {p.vendor_product: p for p in POLICIES}


def for_cpe(text: str) -> VendorPolicy | None:
    try:
        parsed = cpe.parse(text)
    except ValueError:
        return None
    return _BY_KEY.get((parsed.vendor, parsed.product))
