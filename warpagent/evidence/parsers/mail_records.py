"""SPF (RFC 7208), DMARC (RFC 7489) and DKIM key (RFC 6376) records, read as their RFCs say.

Pure functions from a record's text to what the checks judge. The DKIM public key is read by
the cryptography library (the same that reads certificates); tag lists are split as the RFCs
define them (`tag=value` separated by `;`, whitespace around both ignored).
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from warpagent.model.domains import DMARC_POLICIES, NOT_FIRST, DkimKeyFacts, Dmarc, MtaStsPolicy, SpfFacts
from warpagent.numbers import whole_or_none

# mechanisms and modifiers that cost a DNS lookup (RFC 7208 4.6.4)
SPF_LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")
DMARC_TAGS = frozenset({"v", "p", "sp", "pct", "rua", "ruf", "adkim", "aspf", "fo", "rf", "ri",
                        "np", "psd", "t"})  # RFC 7489, and DMARCbis's np, psd and t
MAX_URIS = 2  # the NCSC's Mail Check: more than two report addresses in a tag is an error


def is_spf(record: str) -> bool:
    return record.lower() == "v=spf1" or record.lower().startswith("v=spf1 ")


def spf_terms(record: str) -> list[str]:
    return record.split()[1:]


def _name(term: str) -> str:
    """A term's mechanism or modifier name, without its qualifier: "-include:x" -> "include"."""
    bare = term.lstrip("+-~?")
    for separator in (":", "=", "/"):
        bare = bare.split(separator, 1)[0]
    return bare.lower()


def spf_lookups(record: str) -> tuple[int, list[str]]:
    """(DNS-querying terms in this record, the include/redirect targets to follow)."""
    count, follow = 0, []
    for term in spf_terms(record):
        name = _name(term)
        if name in SPF_LOOKUP_TERMS:
            count += 1
            if name in ("include", "redirect"):
                target = term.lstrip("+-~?").split(":" if name == "include" else "=", 1)[-1]
                if target and "%" not in target:  # a macro expands per message: not followed
                    follow.append(target.rstrip(".").lower())
    return count, follow


def spf_all(record: str) -> str | None:
    """The qualifier of the record's `all` ("+", "-", "~", "?"), None when it has none."""
    for term in spf_terms(record):
        if _name(term) == "all":
            return term[0] if term[0] in "+-~?" else "+"
    return None


def spf_has_ptr(record: str) -> bool:
    return any(_name(term) == "ptr" for term in spf_terms(record))


def spf_redirects(record: str) -> bool:
    return any(_name(term) == "redirect" for term in spf_terms(record))


def spf_facts(record: str) -> SpfFacts:
    return SpfFacts(all_qualifier=spf_all(record), redirects=spf_redirects(record), has_ptr=spf_has_ptr(record))


def _version_tag(part: str) -> str:
    return part.replace(" ", "").lower()


def claims_dmarc(record: str) -> bool:
    """A record meant as DMARC, even one written wrongly (its v= tag not first)."""
    return any(_version_tag(p) == "v=dmarc1" for p in record.split(";"))


def starts_with_version(record: str, version: str) -> bool:
    """An MTA-STS or TLS-RPT record: it starts `v=<version>` (spaces and case ignored)."""
    return _version_tag(record).startswith(f"v={version}".lower())


def dmarc(record: str) -> Dmarc:
    tags: dict[str, str] = {}
    problems: list[str] = []
    parts = [p.strip() for p in record.split(";") if p.strip()]
    for index, part in enumerate(parts):
        name, equals, value = part.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not equals:
            problems.append(f"'{part[:40]}' is not tag=value")
            continue
        if index == 0 and (name != "v" or value.upper() != "DMARC1"):
            problems.append(NOT_FIRST)
        if name in tags:
            problems.append(f"tag '{name}' appears twice")
        elif name not in DMARC_TAGS:
            problems.append(f"unknown tag '{name[:20]}'")
        tags.setdefault(name, value)
    for tag in ("p", "sp", "np"):
        if tag in tags and tags[tag].lower() not in DMARC_POLICIES:
            problems.append(f"{tag}={tags[tag][:20]} is not none, quarantine or reject")
    if "p" not in tags:
        problems.append("no p= tag (the policy)")
    if "pct" in tags and whole_or_none(tags["pct"], "pct", digits=3, maximum=100) is None:
        problems.append(f"pct={tags['pct'][:10]} is not 0-100")
    for tag in ("rua", "ruf"):
        uris = [u.strip() for u in tags.get(tag, "").split(",") if u.strip()]
        if len(uris) > MAX_URIS:
            problems.append(f"{tag} has {len(uris)} addresses (at most {MAX_URIS})")
        if any(not u.lower().startswith(("mailto:", "https:")) for u in uris):
            problems.append(f"{tag} holds an address that is not a mailto: URI")
    return Dmarc(tags=tags, problems=tuple(dict.fromkeys(problems)))


def mta_sts_policy(text: str) -> MtaStsPolicy:
    """An MTA-STS policy file: `key: value` lines, `mx` repeatable (RFC 8461 3.2)."""
    values: dict[str, str] = {}
    mx: list[str] = []
    problems: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        if not colon:
            problems.append(f"line '{line[:40]}' is not key: value")
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "mx":
            mx.append(value)
        else:
            values.setdefault(key, value)
    if values.get("version") != "STSv1":
        problems.append("version is not STSv1")
    mode = values.get("mode", "").lower()
    if mode not in ("enforce", "testing", "none"):
        problems.append(f"mode '{mode[:20]}' is not enforce, testing or none")
    age = values.get("max_age", "")
    max_age = whole_or_none(age, "max_age", digits=10)
    if max_age is None:
        problems.append("max_age is missing or not a number of seconds")
    if mode in ("enforce", "testing") and not mx:
        problems.append("no mx lines")
    return MtaStsPolicy(mode=mode, max_age=max_age, mx=tuple(mx), problems=tuple(problems))


def dkim_key(record: str) -> DkimKeyFacts:
    tags = {}
    for part in record.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            tags[name.strip().lower()] = "".join(value.split())
    key_type = tags.get("k", "rsa").lower()
    if "p" not in tags:
        return DkimKeyFacts(revoked=False, key_type=key_type, bits=None, problem="no p= tag (the public key)")
    if not tags["p"]:
        return DkimKeyFacts(revoked=True, key_type=key_type, bits=None)
    if key_type != "rsa":
        return DkimKeyFacts(revoked=False, key_type=key_type, bits=None)
    try:
        key = load_der_public_key(base64.b64decode(tags["p"], validate=True))
    except (binascii.Error, ValueError) as exc:
        return DkimKeyFacts(revoked=False, key_type=key_type, bits=None,
                            problem=f"the public key is not readable ({str(exc)[:60]})")
    bits = key.key_size if isinstance(key, rsa.RSAPublicKey) else None
    return DkimKeyFacts(revoked=False, key_type=key_type, bits=bits)
