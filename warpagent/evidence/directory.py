"""Read a council's Active Directory over LDAP: read-only, TLS always verified, paged searches
for only the attributes the checks need.

The domain controller is reached at an address the caller has already found inside the
estate's scope; the certificate must carry the name the config's URL gives. Every failure is
one DirectoryError line naming the domain controller and what to do; the password is never in
it (nor in any log line).
"""

from __future__ import annotations

import contextlib
import secrets
import ssl
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.protocol.microsoft import security_descriptor_control
from ldap3.utils.conv import escape_filter_chars

from warpagent.config import DirectorySettings
from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers import descriptor
from warpagent.evidence.parsers import directory as parse
from warpagent.model.directory import CertTemplate, DirectoryAccount, DirectorySnapshot, PrivilegedGroup, Tier0Object
from warpagent.text import capped

IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN: transitive membership, resolved by the DC


class DirectoryError(Exception):
    """Why the directory could not be read, in one line."""


Connect = Callable[[DirectorySettings, str, str], Any]  # (settings, address, password) -> a bound connection


def connect(settings: DirectorySettings, address: str, password: str) -> ldap3.Connection:
    """A bound, read-only connection to the DC at `address` whose certificate names settings.host."""
    if settings.ca_bundle is not None and not settings.ca_bundle.is_file():
        raise DirectoryError(f"{settings.ca_bundle}: CA bundle not found; check directory.ca_bundle")
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT,
                    ca_certs_file=str(settings.ca_bundle) if settings.ca_bundle else None,
                    valid_names=[settings.host])
    server = ldap3.Server(address, port=settings.port, use_ssl=settings.use_ssl, tls=tls, get_info=ldap3.NONE,
                          connect_timeout=settings.timeout_s)
    connection = ldap3.Connection(server, user=settings.bind_dn, password=password, authentication=ldap3.SIMPLE,
                                  read_only=True, auto_referrals=False, raise_exceptions=True,
                                  receive_timeout=settings.timeout_s)
    connection.open()
    if not settings.use_ssl:
        connection.start_tls()  # raises rather than going on in plain text
    connection.bind()
    return connection


def read(settings: DirectorySettings, address: str, password: str, opener: Connect = connect) -> DirectorySnapshot:
    """One night's snapshot of the directory, or DirectoryError."""
    where = f"directory {settings.url} (at {address})"
    connection = None
    try:
        connection = opener(settings, address, password)
        return _snapshot(connection, settings)
    except DirectoryError as exc:
        raise DirectoryError(capped(f"{where}: {exc}")) from None
    except EvidenceError as exc:
        raise DirectoryError(capped(f"{where}: an entry could not be read ({exc})")) from None
    except ldap_errors.LDAPException as exc:
        raise DirectoryError(capped(f"{where}: {_explain(exc, settings)}")) from None
    finally:
        if connection is not None:
            with contextlib.suppress(ldap_errors.LDAPException, OSError):
                connection.unbind()


def _explain(exc: ldap_errors.LDAPException, settings: DirectorySettings) -> str:
    said = str(exc).split(" - ")[-2] if " - " in str(exc) else str(exc)
    if isinstance(exc, ldap_errors.LDAPInvalidCredentialsResult):
        return (f"the bind as {settings.bind_dn} was refused (wrong password, or the account is locked or "
                f"disabled); check {settings.password_env}")
    if isinstance(exc, ldap_errors.LDAPReferralResult):
        return (f"the domain controller referred the search elsewhere ({said}); point directory.url at a domain "
                "controller of this domain, or set directory.base_dn to its own naming context")
    if isinstance(exc, ldap_errors.LDAPSizeLimitExceededResult | ldap_errors.LDAPAdminLimitExceededResult):
        return (f"the domain controller stopped a search at its size limit ({said}), so the read is incomplete; "
                "lower directory.page_size or raise the DC's MaxPageSize/MaxResultSetSize")
    if isinstance(exc, ldap_errors.LDAPTimeLimitExceededResult):
        return f"the domain controller stopped a search at its time limit ({said}); raise directory.timeout"
    if isinstance(exc, ldap_errors.LDAPNoSuchObjectResult):
        return (f"{settings.base_dn or 'the naming context'} does not exist on this domain controller; "
                "check directory.base_dn")
    if isinstance(exc, ldap_errors.LDAPInsufficientAccessRightsResult):
        return f"{settings.bind_dn} may not read what the checks need ({said}); give it read access"
    if isinstance(exc, ldap_errors.LDAPStartTLSError):
        return f"StartTLS failed ({str(exc)[:160]}); nothing was sent in plain text; use ldaps:// or fix the DC's TLS"
    message = str(exc)
    if "certificate" in message.lower() or isinstance(exc, ldap_errors.LDAPSSLConfigurationError):
        return (f"its TLS certificate was not accepted for {settings.host} ({message[:200]}); give the CA that "
                "signed it in directory.ca_bundle, and make sure the certificate names the host in directory.url")
    if isinstance(exc, ldap_errors.LDAPSocketOpenError | ldap_errors.LDAPSocketReceiveError
                  | ldap_errors.LDAPSocketSendError | ldap_errors.LDAPSessionTerminatedByServerError):
        return (f"could not be reached on port {settings.port} ({message[:160]}); check that the DC is up and the "
                "port is open to this machine")
    return f"{exc.__class__.__name__}: {message[:200]}"


def _entries(connection: Any, base: str, search_filter: str, attributes: Sequence[str], page_size: int,
             scope: str = ldap3.SUBTREE, controls: Any = None) -> Iterator[tuple[str, parse.RawAttributes]]:
    """Every entry a paged search returns (continuation references to other partitions skipped)."""
    for entry in connection.extend.standard.paged_search(base, search_filter, search_scope=scope,
                                                         attributes=list(attributes), paged_size=page_size,
                                                         generator=True, controls=controls):
        if entry.get("type") == "searchResEntry":
            yield entry["dn"], entry.get("raw_attributes", {})


def _one(connection: Any, base: str, attributes: Sequence[str]) -> parse.RawAttributes:
    connection.search(base, "(objectClass=*)", search_scope=ldap3.BASE, attributes=list(attributes))
    found = [e for e in connection.response or () if e.get("type") == "searchResEntry"]
    if not found:
        raise DirectoryError(f"{base}: not found; check directory.base_dn")
    return found[0].get("raw_attributes", {})


def _members(connection: Any, base: str, group_dn: str, page_size: int) -> list[str]:
    query = f"(memberOf:{IN_CHAIN}:={escape_filter_chars(group_dn)})"
    return [dn for dn, _ in _entries(connection, base, query, (), page_size)]


SD_FLAGS = security_descriptor_control(sdflags=0x05)  # owner and DACL
PRE2000_SID = "S-1-5-32-554"  # BUILTIN\\Pre-Windows 2000 Compatible Access


def _snapshot(connection: Any, settings: DirectorySettings) -> DirectorySnapshot:
    root = _one(connection, "", ("defaultNamingContext", "schemaNamingContext", "configurationNamingContext"))
    base = settings.base_dn or parse.text(root, "defaultNamingContext")
    if not base:
        raise DirectoryError("the rootDSE names no defaultNamingContext; set directory.base_dn")
    page = settings.page_size
    domain = _one(connection, base, parse.DOMAIN_ATTRIBUTES)
    domain_sid = parse.sid(domain)
    accounts = [parse.account(dn, attrs) for dn, attrs in
                _entries(connection, base, "(objectClass=user)", parse.ACCOUNT_ATTRIBUTES, page)]
    by_dn: dict[str, DirectoryAccount] = {a.dn.casefold(): a for a in accounts}
    groups: list[PrivilegedGroup] = []
    protected: frozenset[str] = frozenset()
    # the groups are listed in full before their members are asked for: a DC allows only a few
    # paged searches open at once on one connection (Samba refuses the next one)
    listed = list(_entries(connection, base, "(objectClass=group)", parse.GROUP_ATTRIBUTES, page))
    # an account's primaryGroupID is the RID of a group of its own domain (never a builtin one)
    sids = {dn: parse.sid(attrs) for dn, attrs in listed}
    rid_of = {dn.casefold(): number for dn, group_sid in sids.items() if group_sid.startswith(f"{domain_sid}-")
              and (number := parse.rid(group_sid)) is not None}
    for dn, attrs in listed:
        group_sid, name = sids[dn], parse.text(attrs, "sAMAccountName")
        role = parse.role_of(group_sid, name, domain_sid)
        if role is not None:
            members = parse.account_members(_members(connection, base, dn, page), by_dn, rid_of.get(dn.casefold()),
                                            rid_of)
            groups.append(PrivilegedGroup(role=role, name=name or dn, members=members))
        elif parse.is_protected_users(group_sid, domain_sid):
            protected = frozenset(m.casefold() for m in parse.account_members(
                _members(connection, base, dn, page), by_dn, rid_of.get(dn.casefold()), rid_of))
    policies = [parse.domain_policy(base, domain)]
    notes = []
    container = f"CN=Password Settings Container,CN=System,{base}"
    try:
        policies += [parse.fine_grained_policy(dn, attrs) for dn, attrs in _entries(
            connection, container, "(objectClass=msDS-PasswordSettings)", parse.PSO_ATTRIBUTES, page,
            scope=ldap3.LEVEL)]
    except ldap_errors.LDAPNoSuchObjectResult:
        # AD lets only admins see it by default; a pre-2008 domain has none
        notes.append(f"directory {settings.url}: fine-grained password policies not judged: {settings.bind_dn} cannot "
                     f"see {container}; delegate it read access there (List Contents, Read Property)")
    schema_base = parse.text(root, "schemaNamingContext") or f"CN=Schema,CN=Configuration,{base}"
    laps_filter = "(|" + "".join(f"(lDAPDisplayName={a})" for a in parse.LAPS_ATTRIBUTES) + ")"
    laps = tuple(sorted(parse.text(attrs, "lDAPDisplayName") for _, attrs in
                        _entries(connection, schema_base, laps_filter, ("lDAPDisplayName",), page,
                                 scope=ldap3.LEVEL)))
    tier0 = [(base, "domain"), (f"CN=AdminSDHolder,CN=System,{base}", "adminsdholder"),
             (f"OU=Domain Controllers,{base}", "domain-controllers-ou"),
             *((dn, "group") for dn, attrs in listed if parse.role_of(sids[dn], parse.text(attrs, "sAMAccountName"),
                                                                       domain_sid) is not None),
             *((a.dn, "domain-controller") for a in accounts if a.domain_controller)]
    names = tuple((a.sid, a.name) for a in accounts if a.sid) + tuple(
        (sids[dn], parse.text(attrs, "sAMAccountName") or dn) for dn, attrs in listed if sids[dn])
    configuration = parse.text(root, "configurationNamingContext") or f"CN=Configuration,{base}"
    pre2000 = next((dn for dn, group_sid in sids.items() if group_sid == PRE2000_SID), "")
    forest = _forest(connection, settings, base, configuration, pre2000, page, notes)
    # the GPOs that apply to the domain controllers: linked at the domain root or at their OU; their
    # containers are Tier-0 too (whoever edits them runs code on every DC)
    forest["dc_gpos"] = tuple(dict.fromkeys(guid for dn in (base, f"OU=Domain Controllers,{base}")
                                            for guid in _gp_links(connection, dn)))
    tier0 += [(f"CN={guid},CN=Policies,CN=System,{base}", "gpo") for guid in forest["dc_gpos"]]
    forest["tier0"] = _tier0(connection, settings, tier0, notes)
    return DirectorySnapshot(base_dn=base, accounts=tuple(accounts), groups=tuple(groups),
                             policies=tuple(policies), protected_users=protected,
                             machine_account_quota=parse.machine_account_quota(base, domain),
                             laps_in_schema=laps, notes=tuple(notes), domain_sid=domain_sid,
                             functional_level=parse.integer(domain, "msDS-Behavior-Version", base, default=-1)
                             if domain.get("msDS-Behavior-Version") else None, names=names, **forest)


def _templates(connection: Any, configuration: str, page: int) -> tuple[CertTemplate, ...]:
    """AD CS's certificate templates, each marked published when an enrollment service whose CA
    certificate is in NTAuthCertificates offers it (what makes its certificates log on to AD)."""
    services = f"CN=Public Key Services,CN=Services,{configuration}"
    try:
        trusted = set(_one(connection, f"CN=NTAuthCertificates,{services}", ("cACertificate",)).get(
            "cACertificate") or ())
    except (DirectoryError, ldap_errors.LDAPNoSuchObjectResult):
        trusted = set()
    try:
        offered = {name.casefold() for _dn, attrs in _entries(
            connection, f"CN=Enrollment Services,{services}", "(objectClass=pKIEnrollmentService)",
            parse.SERVICE_ATTRIBUTES, page, scope=ldap3.LEVEL)
                   if set(attrs.get("cACertificate") or ()) & trusted
                   for name in parse.texts(attrs, "certificateTemplates")}
        return tuple(parse.template(dn, attrs, parse.text(attrs, "cn").casefold() in offered, descriptor.parse)
                     for dn, attrs in _entries(connection, f"CN=Certificate Templates,{services}",
                                               "(objectClass=pKICertificateTemplate)", parse.TEMPLATE_ATTRIBUTES,
                                               page, scope=ldap3.LEVEL, controls=SD_FLAGS))
    except ldap_errors.LDAPNoSuchObjectResult:
        return ()  # no AD CS in this forest


def _gp_links(connection: Any, dn: str) -> tuple[str, ...]:
    try:
        return parse.gp_links(parse.text(_one(connection, dn, ("gPLink",)), "gPLink"))
    except (DirectoryError, ldap_errors.LDAPNoSuchObjectResult):
        return ()


def _tier0(connection: Any, settings: DirectorySettings, objects: Sequence[tuple[str, str]],
           notes: list[str]) -> tuple[Tier0Object, ...]:
    """The Tier-0 objects' owners and DACLs, asked for with the SD-flags control (owner and
    DACL only: a plain user gets nothing without it, and may not read the SACL)."""
    read = []
    for dn, kind in objects:
        connection.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["nTSecurityDescriptor"],
                          controls=SD_FLAGS)
        found = [e for e in connection.response or () if e.get("type") == "searchResEntry"]
        values = found[0].get("raw_attributes", {}).get("nTSecurityDescriptor") if found else None
        if not values:
            notes.append(f"directory {settings.url}: Tier-0 permissions not judged: {settings.bind_dn} cannot read "
                         f"the security descriptor of {dn}")
            return ()
        read.append(Tier0Object(dn=dn, kind=kind, descriptor=descriptor.parse(values[0], dn)))
    return tuple(read)


def _forest(connection: Any, settings: DirectorySettings, base: str, configuration: str, pre2000: str,
            page: int, notes: list[str]) -> dict[str, Any]:
    """What the domain-wide rules read beyond accounts and groups: trusts, the Recycle Bin,
    dSHeuristics, and who is in Pre-Windows 2000 Compatible Access (by objectSid: Anonymous
    Logon is CN=Anonymous Logon under WellKnown Security Principals, not CN=S-1-5-7)."""
    found: dict[str, Any] = {}
    try:
        found["trusts"] = tuple(parse.trust(dn, attrs) for dn, attrs in _entries(
            connection, f"CN=System,{base}", "(objectClass=trustedDomain)", parse.TRUST_ATTRIBUTES, page,
            scope=ldap3.LEVEL))
    except ldap_errors.LDAPNoSuchObjectResult:
        notes.append(f"directory {settings.url}: trusts not judged: CN=System is not visible to {settings.bind_dn}")
    services = f"CN=Directory Service,CN=Windows NT,CN=Services,{configuration}"
    try:
        found["ds_heuristics"] = parse.text(_one(connection, services, ("dSHeuristics",)), "dSHeuristics")
        enabled = parse.texts(_one(connection, f"CN=Partitions,{configuration}", ("msDS-EnabledFeature",)),
                              "msDS-EnabledFeature")
        found["recycle_bin"] = any(dn.casefold().startswith("cn=recycle bin feature,") for dn in enabled)
    except (DirectoryError, ldap_errors.LDAPNoSuchObjectResult):
        notes.append(f"directory {settings.url}: the Recycle Bin and dSHeuristics not judged: the configuration "
                     f"partition is not visible to {settings.bind_dn}")
    found["cert_templates"] = _templates(connection, configuration, page)
    if pre2000:
        sids = []
        for dn in parse.texts(_one(connection, pre2000, ("member",)), "member"):
            try:
                sids.append(parse.sid(_one(connection, dn, ("objectSid",))) or dn)
            except (DirectoryError, ldap_errors.LDAPNoSuchObjectResult):
                sids.append(dn)  # unreadable: kept by DN, never taken as harmless
        found["pre2000_members"] = tuple(sids)
    return found


PLAIN_LDAP = 389
STRONGER_AUTH_REQUIRED, INVALID_CREDENTIALS = 8, 49


def signing_required(address: str, timeout_s: int, port: int = PLAIN_LDAP) -> bool | None:
    """Whether the DC refuses unsigned LDAP: one simple bind, on plain LDAP at its in-scope
    address, with a made-up name and password (nothing of the council's is sent). Result 8
    (strongerAuthRequired) means signing is required, 49 (invalidCredentials) that the DC went on
    to check them; anything else is None, not judged."""
    server = ldap3.Server(address, port=port, use_ssl=False, get_info=ldap3.NONE, connect_timeout=timeout_s)
    probe = ldap3.Connection(server, user=f"cn=warpagent-signing-probe-{secrets.token_hex(4)}",
                             password=secrets.token_urlsafe(16), receive_timeout=timeout_s, raise_exceptions=False)
    try:
        probe.open()
        probe.bind()
        result = probe.result.get("result") if isinstance(probe.result, dict) else None
    except (ldap_errors.LDAPException, OSError):
        return None
    finally:
        with contextlib.suppress(ldap_errors.LDAPException, OSError):
            probe.unbind()
    return {STRONGER_AUTH_REQUIRED: True, INVALID_CREDENTIALS: False}.get(result) if isinstance(result, int) else None


def password_from(settings: DirectorySettings, environ: dict[str, str] | Any) -> str:
    """The bind password from its environment variable (DirectoryError naming the variable if unset)."""
    password = environ.get(settings.password_env, "")
    if not password:
        raise DirectoryError(f"directory {settings.url}: environment variable {settings.password_env} is not set; "
                             "export the read-only account's password in it")
    return password



