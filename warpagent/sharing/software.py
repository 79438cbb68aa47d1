"""What of a product name and version may be shared: a strict shape, or nothing.

Product and version strings come from banners and evidence, which the host controls: nmap's
version detection copies banner text into them (`nginx 1.18.0 (10.20.0.77)`, `PHP 7.4.3
srv-fin01.fenwickvale.local`). Nothing is quoted from them. A product is shared as a CPE-like
token (lower case words joined by `_`, an optional `/` part: `apache_httpd`,
`apache_tomcat/coyote_jsp_engine`), a version as digits and dots with a short suffix (`9.2p1`,
`1.1.1w`), reduced from the leading version of the text (epoch and distribution revision cut off).
Whatever does not fit is dropped and counted, never sent.

A shape alone admits a host's bare name (`srv-fin01`) where nmap copied a banner into the product
(`p/$1/` in 608 of nmap's 11,721 match lines). So a product from the network scan is shared only
if nmap's probe database names it literally, or it is a CMS the web check names: a name nobody
chose for their own council. Pure functions; no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_WORD = r"[a-z][a-z0-9+-]{0,23}"
_PRODUCT = re.compile(rf"{_WORD}(?:_{_WORD}){{0,4}}(?:/{_WORD}(?:_{_WORD}){{0,4}})?")
_VERSION = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6}){0,4}(?:[a-z]{1,5}[0-9]{0,3})?")
_EPOCH = re.compile(r"^[0-9]{1,3}:")
_REVISION = re.compile(r"[-~+]")
MAX_PRODUCT = 48


@dataclass(frozen=True)
class Shareable:
    product: str  # "" when the product name does not fit the shape: nothing of it is shared
    version: str  # "" when there was none, or none that fits
    dropped: bool  # some of the text was not shared (a product, a version, or words around a version)


def product_token(name: str) -> str:
    """`Apache httpd` -> `apache_httpd`; "" for anything that is not plain words."""
    token = "_".join(name.casefold().split())
    token = token.replace("_/_", "/").replace("/_", "/").replace("_/", "/")
    return token if len(token) <= MAX_PRODUCT and _PRODUCT.fullmatch(token) else ""


def version_token(text: str) -> tuple[str, bool]:
    """(the leading version in shape, whether anything but a distribution revision was cut)."""
    words = text.strip().split()
    if not words:
        return "", False
    head = _EPOCH.sub("", words[0].casefold(), count=1)
    version = _REVISION.split(head, maxsplit=1)[0]
    if not _VERSION.fullmatch(version) or _is_address(version):
        return "", True
    return version, len(words) > 1 and not _distribution_words(words[1:])


def _is_address(version: str) -> bool:
    """A version that reads as an IPv4 address is not shared: it may be one (`10.20.0.77`)."""
    try:
        ipaddress.IPv4Address(version)
    except ValueError:
        return False
    return True


# What nmap appends to a version for a distribution's build ("9.2p1 Debian 2+deb12u3"): dropped
# quietly, since every Debian host says it and it names nobody.
_DISTRIBUTIONS = frozenset({"debian", "ubuntu", "raspbian", "centos", "redhat", "freebsd", "rocky", "alma"})
_REVISION_WORD = re.compile(r"[0-9a-z.+~-]{1,24}")


def _distribution_words(words: list[str]) -> bool:
    return (len(words) <= 2 and words[0].casefold() in _DISTRIBUTIONS
            and all(_REVISION_WORD.fullmatch(w.casefold()) for w in words[1:]))


_MATCH = re.compile(r"^(?:soft)?match \S+ m(.)")


def nmap_products(probes: str) -> frozenset[str]:
    """The product tokens nmap-service-probes names literally (`p/nginx/`), never one nmap fills
    in from the banner (`p/$1/`, `p/HP LaserJet $2 printer http config/`)."""
    tokens = set()
    for line in probes.splitlines():
        head = _MATCH.match(line)
        end = line.find(head.group(1), head.end()) if head else -1
        if head is None or end < 0:
            continue
        for name, value in _fields(line[end + 1:].lstrip("si")):
            if name == "p" and "$" not in value and (token := product_token(value)):
                tokens.add(token)
    return frozenset(tokens)


def _fields(text: str) -> list[tuple[str, str]]:
    """A match line's version fields after its pattern: `p/x/ v/y/ cpe:/a:z/a` -> [(p, x), ...]."""
    fields = []
    while text := text.lstrip():
        name = "cpe" if text.startswith("cpe:") else text[0]
        start = len(name) + (1 if name == "cpe" else 0)
        if len(text) <= start:
            break
        close = text.find(text[start], start + 1)
        if close < 0:
            break
        fields.append((name, text[start + 1:close]))
        text = text[close + 1:].removeprefix("a")
    return fields


def shareable(product: str, version: str, known: frozenset[str] | None = None) -> Shareable:
    """The product and version as they may leave the council; with `known`, a product outside it
    is dropped too (a network service's product: see the module's note)."""
    token = product_token(product)
    if known is not None and token not in known:
        token = ""
    if not token:
        return Shareable("", "", dropped=bool(product.strip()))
    shaped, cut = version_token(version)
    return Shareable(token, shaped, dropped=cut)
