"""The directory's pure parts: reading AD's values, the rules' thresholds, Windows releases by
build on endoflife.date's real pages, and the faults a Samba DC cannot be made to give
(a referral, a size limit), injected at the connection."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from ldap3.core import exceptions as ldap_errors

from checks import CheckContext, by_id
from checks.directory_unsupported import windows_release
from feeds import endoflife
from feeds.model import EolProduct
from tests.intel_data import _shared_intel
from warpagent.config import DirectorySettings
from warpagent.evidence import directory
from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers import directory as parse
from warpagent.model.directory import (
    AccountFlag,
    DirectoryAccount,
    DirectorySnapshot,
    PrivilegedGroup,
    PrivilegedRole,
)
from warpagent.model.evidence import HostEvidence
from warpagent.model.findings import RECORD_STATE, Host

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
SETTINGS = DirectorySettings(url="ldaps://dc1.example.test", bind_dn="reader@example.test",
                             password_env="AD_PASSWORD")  # noqa: S106 - a variable name


class Products:
    """endoflife.date's own windows and windows-server pages (../shared/intel), as the checks ask."""

    def __init__(self) -> None:
        folder = _shared_intel() / "endoflife-date" / "products"
        self.products = {name: endoflife.product_from_page(folder / f"{name}.md")
                         for name in ("windows", "windows-server")}

    def eol_product(self, name: str) -> EolProduct | None:
        return self.products.get(name)


@pytest.mark.parametrize(("system", "version", "cycle"), [
    ("Windows 10 Pro", "10.0 (19045)", "10-22h2"),
    ("Windows 10 Enterprise", "10.0 (19044)", "10-21h2-e"),
    ("Windows 10 Enterprise LTSC 2021", "10.0 (19044)", "10-21h2-e-lts"),
    ("Windows 11 Pro", "10.0 (22631)", "11-23h2-w"),
    ("Windows 11 Education", "10.0 (22631)", "11-23h2-e"),
    ("Windows XP Professional", "5.1 (2600)", "5-sp3"),
    ("Windows 7 Professional", "6.1 (7601)", "7-sp1"),
    ("Windows Server 2019 Standard", "10.0 (17763)", "2019"),  # not 1809-sac, the same build
    ("Windows Server 2012 R2 Standard", "6.3 (9600)", "2012-r2"),
    ("Windows Server 2003", "5.2 (3790)", "2003-sp2"),  # the longest support of those sharing the build
    ("Windows Server 2025 Datacenter", "10.0 (26100)", "2025"),
])
def test_a_windows_build_and_edition_pick_the_release(system: str, version: str, cycle: str) -> None:
    found = windows_release(Products(), system, version)  # type: ignore[arg-type]
    assert found is not None and found[1].cycle == cycle


@pytest.mark.parametrize(("system", "version"), [
    ("Windows 10 Pro", ""), ("Windows 10 Pro", "ten"), ("Samba 4.17", "4.17 (1)"), ("Windows 10 Pro", "10.0 (1)"),
])
def test_what_is_not_a_known_windows_build_is_not_judged(system: str, version: str) -> None:
    assert windows_release(Products(), system, version) is None  # type: ignore[arg-type]


def _account(name: str, flags: int = 0x200, computer: bool = False, **kwargs: Any) -> DirectoryAccount:
    return DirectoryAccount(name=name, dn=f"CN={name},CN=Users,DC=example,DC=test", flags=AccountFlag(flags),
                            computer=computer, created=NOW - dt.timedelta(days=400),
                            last_logon=kwargs.pop("last_logon", NOW - dt.timedelta(days=1)), **kwargs)


def _findings(check_id: str, accounts: list[DirectoryAccount], admins: list[str]) -> list[Any]:
    snapshot = DirectorySnapshot(
        base_dn="DC=example,DC=test", accounts=tuple(accounts),
        groups=(PrivilegedGroup(PrivilegedRole.DOMAIN_ADMINS, "Domain Admins",
                                tuple(f"CN={n},CN=Users,DC=example,DC=test" for n in admins)),),
        policies=(), protected_users=frozenset(), machine_account_quota=0, laps_in_schema=("msLAPS-Password",))
    host = Host(address="", asset="Active Directory", state=RECORD_STATE, evidence=HostEvidence(directory=snapshot))
    return list(by_id(check_id).run(host, CheckContext(now=NOW)))


@pytest.mark.parametrize(("users", "admins", "found"), [
    (100, 40, False),  # not judged until over 100 users
    (101, 10, False),  # 10 of 101: under 10%
    (101, 11, True),  # 11 of 101: over 10%
    (1000, 50, False),  # 5%, and not over 50
    (1000, 51, True),  # over 50, though only 5.1%
])
def test_too_many_admins_is_over_10_percent_or_over_50_once_there_are_100_users(
        users: int, admins: int, found: bool) -> None:
    accounts = [_account(f"u{n}") for n in range(users)]
    assert bool(_findings("WA310", accounts, [f"u{n}" for n in range(admins)])) is found


def test_laps_in_the_schema_and_a_zero_quota_are_clean() -> None:
    assert _findings("WA413", [_account("a")], []) == [] and _findings("WA319", [_account("a")], []) == []


def test_stale_and_disabled_users_do_not_count_as_active_and_names_are_quoted_safely() -> None:
    accounts = [_account(f"u{n}") for n in range(101)]
    accounts += [_account(f"gone{n}", last_logon=NOW - dt.timedelta(days=91)) for n in range(30)]
    accounts += [_account("evil\nFAKE LINE", flags=0x10200)]
    (finding,) = _findings("WA310", accounts, [f"u{n}" for n in range(11)])
    assert "(10.8% of 102 active users)" in finding.title  # the 30 idle ones are not active
    (never,) = _findings("WA412", accounts, [])
    assert "evil\\nFAKE LINE" in never.evidence and "\n" not in never.evidence
    (stale,) = _findings("WA414", accounts, [])
    assert stale.title.startswith("30 enabled accounts") and "and 10 more" in stale.evidence


def test_ad_values_are_read_with_their_special_meanings() -> None:
    never = {"pwdLastSet": [b"0"], "lastLogonTimestamp": [b"9223372036854775807"], "userAccountControl": [b"512"],
             "whenCreated": [b"20261202160449.0Z"], "sAMAccountName": [b"alice"]}
    alice = parse.account("CN=alice,DC=example,DC=test", never)
    assert alice.password_set is None and alice.last_logon is None and alice.enabled and not alice.computer
    assert alice.created == dt.datetime(2026, 12, 2, 16, 4, 49, tzinfo=dt.UTC)
    assert parse.interval(parse.NEVER) is None and parse.interval(-36288000000000) == dt.timedelta(days=42)
    dc = parse.account("CN=DC1,DC=x", {"userAccountControl": [b"532480"], "primaryGroupID": [b"516"]})
    assert dc.computer and dc.domain_controller
    with pytest.raises(EvidenceError, match=r"CN=bob,DC=x: userAccountControl is 'lots', not a whole number"):
        parse.account("CN=bob,DC=x", {"userAccountControl": [b"lots"]})


def test_groups_are_known_by_sid_not_by_their_localised_names() -> None:
    domain = "S-1-5-21-1-2-3"
    assert parse.role_of(f"{domain}-512", "Domänen-Admins", domain) is PrivilegedRole.DOMAIN_ADMINS
    assert parse.role_of("S-1-5-32-551", "Sauvegardes", domain) is PrivilegedRole.BACKUP_OPERATORS
    assert parse.role_of("S-1-5-21-9-9-9-512", "Domain Admins", domain) is None  # another domain's
    assert parse.role_of(f"{domain}-1107", "DnsAdmins", domain) is PrivilegedRole.DNS_ADMINS
    assert parse.is_protected_users(f"{domain}-525", domain)


class FaultyConnection:
    """A connection whose nth search raises what a real DC sends for faults Samba does not make:
    a referral to another domain's DC, and a server-side size limit."""

    def __init__(self, fault: ldap_errors.LDAPException, on_search: int) -> None:
        self.fault, self.on_search, self.searches, self.response = fault, on_search, 0, []
        self.extend = self
        self.standard = self

    def search(self, *args: Any, **kwargs: Any) -> None:
        self.searches += 1
        if self.searches == self.on_search:
            raise self.fault
        self.response = [{"type": "searchResEntry", "dn": "DC=example,DC=test",
                          "raw_attributes": {"defaultNamingContext": [b"DC=example,DC=test"]}}]

    def paged_search(self, *args: Any, **kwargs: Any) -> Any:
        self.search()
        return iter(())

    def unbind(self) -> None:
        pass


@pytest.mark.parametrize(("fault", "said"), [
    (ldap_errors.LDAPReferralResult(description="referral", message="ldaps://dc9.other.test/DC=other,DC=test"),
     "referred the search elsewhere"),
    (ldap_errors.LDAPSizeLimitExceededResult(description="sizeLimitExceeded", message="limit 1000"),
     "stopped a search at its size limit"),
    (ldap_errors.LDAPAdminLimitExceededResult(description="adminLimitExceeded", message="MaxPageSize"),
     "stopped a search at its size limit"),
    (ldap_errors.LDAPInsufficientAccessRightsResult(description="insufficientAccessRights", message="no"),
     "may not read what the checks need"),
])
@pytest.mark.parametrize("on_search", [1, 3])
def test_a_fault_mid_read_is_one_line_naming_the_dc(fault: ldap_errors.LDAPException, said: str,
                                                     on_search: int) -> None:
    connection = FaultyConnection(fault, on_search)
    with pytest.raises(directory.DirectoryError) as raised:
        directory.read(SETTINGS, "198.18.0.5", "s3cret-pw", opener=lambda *_: connection)
    message = str(raised.value)
    assert message.startswith("directory ldaps://dc1.example.test (at 198.18.0.5): ") and said in message
    assert "\n" not in message and "s3cret-pw" not in message


def test_a_missing_ca_bundle_is_named_before_anything_is_sent(tmp_path: Path) -> None:
    settings = DirectorySettings(url="ldaps://dc1.example.test", bind_dn="r@example.test",
                                 password_env="P",  # noqa: S106 - a variable name
                                 ca_bundle=tmp_path / "nope.pem")
    with pytest.raises(directory.DirectoryError, match=r"nope.pem: CA bundle not found; check directory.ca_bundle"):
        directory.read(settings, "198.18.0.5", "pw")


def test_policies_the_reader_may_not_see_are_said_so_not_taken_as_none() -> None:
    """AD lets only admins read the Password Settings Container by default: to the reader it
    does not exist, and the run says so rather than judging no fine-grained policy at all."""
    connection = FaultyConnection(ldap_errors.LDAPNoSuchObjectResult(description="noSuchObject"), on_search=99)
    searches: list[str] = []

    def paged_search(base: str, *args: Any, **kwargs: Any) -> Any:
        searches.append(base)
        if base.startswith("CN=Password Settings Container"):
            raise ldap_errors.LDAPNoSuchObjectResult(description="noSuchObject")
        return iter(())

    connection.paged_search = paged_search  # type: ignore[method-assign]
    snapshot = directory.read(SETTINGS, "198.18.0.5", "pw", opener=lambda *_: connection)
    assert [p.name for p in snapshot.policies] == ["domain policy"]
    # (the fake DC answers nothing else either: the Tier-0 permissions are said to be unjudged too)
    assert any("fine-grained password policies not judged: reader@example.test cannot see" in note
               for note in snapshot.notes)


def test_primary_group_members_count_through_nesting() -> None:
    """Issue 29: an account whose primary group is Domain Admins, or a group nested in a
    privileged one, is a member though no member list names it."""
    from warpagent.evidence.parsers import directory as parse
    from warpagent.model.directory import DirectoryAccount

    def account(name: str, primary: int) -> DirectoryAccount:
        return DirectoryAccount(name=name, dn=f"CN={name},CN=Users,DC=x", flags=parse.AccountFlag(0x200),
                                computer=False, created=None, password_set=None, last_logon=None, spns=(),
                                primary_group=primary)

    accounts = {a.dn.casefold(): a for a in (account("plain", 513), account("da", 512), account("nested", 1105),
                                              account("listed", 513))}
    rid_of = {"cn=it-admins,cn=users,dc=x": 1105, "cn=domain admins,cn=users,dc=x": 512}
    # Administrators' in-chain members: one listed account and the nested group it-admins
    chain = ["CN=listed,CN=Users,DC=x", "CN=it-admins,CN=Users,DC=x"]
    assert parse.account_members(chain, accounts, 544, rid_of) == ("CN=listed,CN=Users,DC=x",
                                                                   "CN=nested,CN=Users,DC=x")
    assert parse.account_members([], accounts, 512, rid_of) == ("CN=da,CN=Users,DC=x",)
    assert parse.account_members(chain, accounts) == ("CN=listed,CN=Users,DC=x",)  # by member lists alone


def _bind_answer(code: int) -> tuple[str, int, Any]:
    """A listener on loopback that answers any LDAP bind with `code` (what a DC requiring
    signing says, 8, without a second Samba DC): its address, port and the thread."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.53", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            request = conn.recv(4096)
            message_id = request[4] if len(request) > 4 and request[2] == 0x02 else 1
            conn.sendall(bytes([0x30, 0x0C, 0x02, 0x01, message_id, 0x61, 0x07, 0x0A, 0x01, code, 0x04, 0x00, 0x04,
                                0x00]))
            conn.recv(4096)
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return "127.0.0.53", listener.getsockname()[1], thread


@pytest.mark.parametrize(("code", "required"), [(8, True), (49, False), (1, None)])
def test_the_signing_probe_reads_the_dcs_answer(code: int, required: bool | None) -> None:
    address, port, thread = _bind_answer(code)
    assert directory.signing_required(address, 5, port=port) is required
    thread.join(5)


def test_a_dc_that_does_not_answer_is_not_judged() -> None:
    import socket
    with socket.socket() as closed:
        closed.bind(("127.0.0.53", 0))
        port = closed.getsockname()[1]
    assert directory.signing_required("127.0.0.53", 2, port=port) is None


def _template_findings(**changes: Any) -> list[tuple[str, str]]:
    """WA328 on one published template Domain Users may enrol in, changed as given."""
    from checks.directory_adcs import ENROLL, adcs_templates
    from warpagent.model.directory import Ace, CertTemplate, Descriptor, DirectorySnapshot
    domain = "S-1-5-21-1-2-3"
    enrol = Ace(allow=True, trustee=f"{domain}-513", mask=0x100, object_type=ENROLL)
    fields: dict[str, Any] = {"name": "T", "name_flag": 0, "enrollment_flag": 0, "ra_signatures": 0,
                              "ekus": ("1.3.6.1.5.5.7.3.1",), "descriptor": Descriptor(owner=f"{domain}-512",
                                                                                    aces=(enrol,)),
                              "published": True}
    fields.update(changes)
    snapshot = DirectorySnapshot(base_dn="DC=x", accounts=(), groups=(), policies=(), protected_users=frozenset(),
                                 machine_account_quota=None, laps_in_schema=(), domain_sid=domain,
                                 cert_templates=(CertTemplate(**fields),))
    host = Host(address="", asset="Active Directory", state=RECORD_STATE, evidence=HostEvidence(directory=snapshot))
    ctx = CheckContext(now=dt.datetime(2026, 12, 5, tzinfo=dt.UTC))
    return [(w.subject.rpartition(":")[2], w.severity.name) for w in adcs_templates.run(host, ctx)]


def test_each_certificate_template_escalation_needs_all_its_conditions() -> None:
    client = ("1.3.6.1.5.5.7.3.2",)
    assert _template_findings() == []  # a server-auth template Domain Users enrol in: fine
    assert _template_findings(name_flag=1, ekus=client) == [("esc1", "CRITICAL")]
    assert _template_findings(ekus=()) == [("esc2", "CRITICAL")]  # no EKU: any purpose
    assert _template_findings(ekus=("2.5.29.37.0",), name_flag=1) == [("esc1", "CRITICAL"), ("esc2", "CRITICAL")]
    assert _template_findings(ekus=("1.3.6.1.4.1.311.20.2.1",)) == [("esc3", "CRITICAL")]
    assert _template_findings(ekus=client, enrollment_flag=0x80000) == [("esc9", "CRITICAL")]
    # manager approval, an authorised signature, or not published: none of ESC1-3, 9
    assert _template_findings(name_flag=1, ekus=client, enrollment_flag=0x2) == []
    assert _template_findings(name_flag=1, ekus=client, ra_signatures=1) == []
    assert _template_findings(name_flag=1, ekus=client, published=False) == []
