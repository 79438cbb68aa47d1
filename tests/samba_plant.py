"""Plant the test domain's weaknesses beside a hardened baseline, in a provisioned Samba AD DC's
own database (run by Debian's python3, which has Samba's bindings; the venv does not).

    /usr/bin/python3 tests/samba_plant.py SMB_CONF SAM_LDB plant|harden REALM READER_PASSWORD LOGON_FILETIME

`plant` runs once, offline, before the DC starts; `harden` while it runs, as an administrator
fixing the domain-wide findings would. Every object is what Samba's own tools would make
(SamDB is what samba-tool uses).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import ldb
from samba.auth import system_session
from samba.dcerpc import security
from samba.ndr import ndr_pack
from samba.param import LoadParm
from samba.samdb import SamDB
from samba.sd_utils import SDUtils

STAFF = 110  # over 100 active users, so the "too many admins" rule is judged
PASSWORD = "Planted-Passw0rd-Long!"  # noqa: S105 - a test domain's planted users
# a GPP cpassword as Windows writes one (AES-256 of a made-up password under Microsoft's published
# key): warpagent must name the file and never show this value anywhere
GPP_CPASSWORD = "j1Uyj3Vx8TY9LtLZil2uAuZkFQA/4latT76ZwgdHdhw"


def _uac(db: SamDB, base: str, name: str, add: int = 0, remove: int = 0, folder: str = "CN=Users") -> None:
    dn = f"CN={name},{folder},{base}"
    current = int(db.search(dn, scope=ldb.SCOPE_BASE, attrs=["userAccountControl"])[0]["userAccountControl"][0])
    db.modify_ldif(f"dn: {dn}\nchangetype: modify\nreplace: userAccountControl\n"
                   f"userAccountControl: {(current | add) & ~remove}\n")


def _replace(db: SamDB, dn: str, attribute: str, value: str, controls: list[str] | None = None) -> None:
    db.modify_ldif(f"dn: {dn}\nchangetype: modify\nreplace: {attribute}\n{attribute}: {value}\n", controls or [])


def plant(db: SamDB, base: str, realm: str, reader_password: str, logon: str, policies: Path) -> None:
    db.newuser("warpagent-read", reader_password)  # the read-only account warpagent binds as
    # the hardened baseline: an admin done right, a clerk, a current server
    db.newuser("hardy.admin", PASSWORD)
    db.add_remove_group_members("Domain Admins", ["hardy.admin"])
    db.add_remove_group_members("Protected Users", ["hardy.admin"])
    _uac(db, base, "hardy.admin", add=0x100000)  # NOT_DELEGATED
    db.newuser("carol.clerk", PASSWORD)
    for n in range(1, STAFF + 1):
        db.newuser(f"staff{n:03d}", PASSWORD)
    db.newcomputer("srv-2025")
    # privileged weaknesses
    db.newuser("svc-sql", PASSWORD)
    db.add_remove_group_members("Domain Admins", ["svc-sql"])
    _replace(db, f"CN=svc-sql,CN=Users,{base}", "servicePrincipalName", f"MSSQLSvc/sql01.{realm}:1433")
    _uac(db, base, "svc-sql", add=0x10000)  # DONT_EXPIRE_PASSWORD
    db.newgroup("it-admins")
    db.add_remove_group_members("Administrators", ["it-admins"])
    db.newuser("nest.ed", PASSWORD)
    db.add_remove_group_members("it-admins", ["nest.ed"])
    # an admin by primary group alone (issue 29): AD keeps that membership in the account's
    # primaryGroupID, so the in-chain search of Domain Admins never returns it
    db.newuser("prim.admin", PASSWORD)
    db.add_remove_group_members("Domain Admins", ["prim.admin"])
    _replace(db, f"CN=prim.admin,CN=Users,{base}", "primaryGroupID", "512")
    with contextlib.suppress(ldb.LdbError):  # as in AD, the member list no longer holds it (Samba may drop it itself)
        db.add_remove_group_members("Domain Admins", ["prim.admin"], add_members_operation=False)
    assert not db.search(f"CN=Domain Admins,CN=Users,{base}", scope=ldb.SCOPE_BASE,
                         expression=f"(member=CN=prim.admin,CN=Users,{base})")
    db.newuser("old.admin", PASSWORD)
    db.add_remove_group_members("Backup Operators", ["old.admin"])
    db.disable_account("(sAMAccountName=old.admin)")
    db.newuser("stale.admin", PASSWORD)
    db.add_remove_group_members("Server Operators", ["stale.admin"])
    # password weaknesses
    for name, flag in (("nopw.user", 0x20), ("asrep.user", 0x400000), ("rev.user", 0x80), ("never.user", 0x10000)):
        db.newuser(name, PASSWORD)
        _uac(db, base, name, add=flag)
    db.newcomputer("app01")
    _uac(db, base, "app01", add=0x80000, folder="CN=Computers")  # TRUSTED_FOR_DELEGATION
    for name, system, version in (("xp-kiosk", "Windows XP Professional", "5.1 (2600)"),
                                  ("srv-2012", "Windows Server 2012 R2 Standard", "6.3 (9600)"),
                                  ("old-pc", "Windows 7 Professional", "6.1 (7601)"),
                                  ("srv-2025", "Windows Server 2025 Datacenter", "10.0 (26100)")):
        if name != "srv-2025":
            db.newcomputer(name)
        dn = f"CN={name},CN=Computers,{base}"
        _replace(db, dn, "operatingSystem", system)
        _replace(db, dn, "operatingSystemVersion", version)
    db.modify_ldif(f"dn: CN=old-pc,CN=Computers,{base}\nchangetype: modify\nreplace: userAccountControl\n"
                   "userAccountControl: 4098\n")  # disabled workstation
    db.add_ldif(f"dn: CN=weak-pso,CN=Password Settings Container,CN=System,{base}\n"
                "objectClass: msDS-PasswordSettings\nmsDS-PasswordSettingsPrecedence: 10\n"
                "msDS-PasswordReversibleEncryptionEnabled: TRUE\nmsDS-PasswordHistoryLength: 0\n"
                "msDS-PasswordComplexityEnabled: FALSE\nmsDS-MinimumPasswordLength: 6\n"
                "msDS-MinimumPasswordAge: 0\nmsDS-MaximumPasswordAge: -37108517437440\n"
                "msDS-LockoutThreshold: 0\nmsDS-LockoutObservationWindow: -18000000000\n"
                "msDS-LockoutDuration: -18000000000\n"
                f"msDS-PSOAppliesTo: CN=carol.clerk,CN=Users,{base}\n")
    _plant_paths(db, base, realm, policies)
    # as in AD, only admins may read fine-grained policies: the council delegates read to the reader
    reader = db.search(base, expression="(sAMAccountName=warpagent-read)", attrs=["objectSid"])[0]
    reader_sid = str(db.schema_format_value("objectSid", reader["objectSid"][0]), "utf-8")
    SDUtils(db).dacl_add_ace(f"CN=Password Settings Container,CN=System,{base}", f"(A;CI;RPLCLORC;;;{reader_sid})")
    # the accounts in use when the tests' clock runs a year on: they logged on then
    for name in ("hardy.admin", "carol.clerk", "svc-sql", "nest.ed", "prim.admin", "warpagent-read", "deleg.svc",
                 "hist.user", "ex.admin", "sync.svc", "MSOL_1a2b3c4d5e6f", "svc-web",
                 *(f"staff{n:03d}" for n in range(1, STAFF + 1))):
        _replace(db, f"CN={name},CN=Users,{base}", "lastLogonTimestamp", logon, ["relax:0"])
    # joined and in use (newcomputer makes them disabled)
    for name in ("app01", "xp-kiosk", "srv-2012", "srv-2025", "web01"):
        _uac(db, base, name, remove=0x2, folder="CN=Computers")
        _replace(db, f"CN={name},CN=Computers,{base}", "lastLogonTimestamp", logon, ["relax:0"])


def _preference(gpo: Path, kind: str, xml: str) -> None:
    """A Group Policy Preferences file (Machine side) in a GPO's SYSVOL folder."""
    folder = gpo / "Machine" / "Preferences" / kind
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{kind}.xml").write_text(xml)


def _template(gpo: Path, sections: str) -> None:
    """A GPO's security template (GptTmpl.inf) as the Group Policy editor writes it."""
    folder = gpo / "Machine" / "Microsoft" / "Windows NT" / "SecEdit"
    folder.mkdir(parents=True, exist_ok=True)
    text = '[Unicode]\r\nUnicode=yes\r\n' + sections + '[Version]\r\nsignature="$CHICAGO$"\r\nRevision=1\r\n'
    (folder / "GptTmpl.inf").write_bytes(text.encode("utf-16"))


def _anonymous_access(db: SamDB, base: str, allowed: bool) -> None:
    """Anonymous Logon in (or out of) Pre-Windows 2000 Compatible Access, and dSHeuristics' anonymous
    LDAP bit set (or cleared)."""
    anonymous = f"CN=Anonymous Logon,CN=WellKnown Security Principals,{db.get_config_basedn()}"
    db.modify_ldif(f"dn: CN=Pre-Windows 2000 Compatible Access,CN=Builtin,{base}\nchangetype: modify\n"
                   f"{'add' if allowed else 'delete'}: member\nmember: {anonymous}\n")
    _replace(db, f"CN=Directory Service,CN=Windows NT,CN=Services,{db.get_config_basedn()}", "dSHeuristics",
             "0000002" if allowed else "0000000")


def _plant_adcs(db: SamDB, sd: SDUtils) -> None:
    """AD CS, as LDIF (Samba has the schema, not a CA): a CA trusted for logon publishing ESC1,
    ESC3 and ESC4 templates; a template with manager approval and an unpublished one stay clean."""
    pks = f"CN=Public Key Services,CN=Services,{db.get_config_basedn()}"
    ca = b"0\x82warpagent-test-ca-certificate"  # compared byte for byte: any DER would do
    client, server, agent = "1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.1", "1.3.6.1.4.1.311.20.2.1"
    for name, name_flag, enrollment_flag, eku, enrol, extra in (
            ("WarpUser-ESC1", 1, 0, client, "DU", ""), ("WarpAgent-ESC3", 0, 0, agent, "AU", ""),
            ("WarpWeb-ESC4", 0, 0, server, "", "(A;;WP;;;DU)"), ("WarpSafe", 1, 2, client, "DU", ""),
            ("WarpUnpublished", 1, 0, client, "DU", "")):
        dn = f"CN={name},CN=Certificate Templates,{pks}"
        db.add({"dn": dn, "objectClass": "pKICertificateTemplate", "displayName": name, "flags": "131642",
                "revision": "100", "pKIDefaultKeySpec": "1", "msPKI-Certificate-Name-Flag": str(name_flag),
                "msPKI-Enrollment-Flag": str(enrollment_flag), "msPKI-RA-Signature": "0",
                "msPKI-Template-Schema-Version": "2", "pKIExtendedKeyUsage": [eku]})
        aces = (f"(OA;;CR;0e10c968-78fb-11d2-90d4-00c04f79dc55;;{enrol})" if enrol else "") + extra
        if aces:
            sd.dacl_add_ace(dn, aces)
    db.add({"dn": f"CN=Warp-CA,CN=Enrollment Services,{pks}", "objectClass": "pKIEnrollmentService",
            "cACertificate": ca, "dNSHostName": "ca.warp-council.test",
            "certificateTemplates": ["WarpUser-ESC1", "WarpAgent-ESC3", "WarpWeb-ESC4", "WarpSafe"]})
    db.add({"dn": f"CN=NTAuthCertificates,{pks}", "objectClass": "certificationAuthority", "cACertificate": ca,
            "authorityRevocationList": b"\x00", "certificateRevocationList": b"\x00"})


def _plant_paths(db: SamDB, base: str, realm: str, policies: Path) -> None:
    """The paths PingCastle finds (issue 33), each beside a control that must stay clean."""
    domain_sid = str(db.get_domain_sid())
    # constrained delegation to the DC with protocol transition; to an ordinary service (low)
    db.newuser("deleg.svc", PASSWORD)
    _replace(db, f"CN=deleg.svc,CN=Users,{base}", "msDS-AllowedToDelegateTo", f"ldap/dc1.{realm}")
    _uac(db, base, "deleg.svc", add=0x1000000)  # TRUSTED_TO_AUTH_FOR_DELEGATION
    db.newcomputer("web01")
    _replace(db, f"CN=web01,CN=Computers,{base}", "msDS-AllowedToDelegateTo", f"http/intranet.{realm}")
    # resource-based delegation set on the domain controller itself
    dc = db.search(base, expression="(userAccountControl:1.2.840.113556.1.4.803:=8192)", attrs=["dn"])[0].dn
    rbcd = security.descriptor.from_sddl(f"O:BAD:(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;{domain_sid}-1105)",
                                         security.dom_sid(domain_sid))
    db.modify(ldb.Message.from_dict(db, {"dn": str(dc), "msDS-AllowedToActOnBehalfOfOtherIdentity": ldb.MessageElement(
        ndr_pack(rbcd), ldb.FLAG_MOD_REPLACE, "msDS-AllowedToActOnBehalfOfOtherIdentity")}))
    # a Domain Admins SID in an ordinary account's history
    db.newuser("hist.user", PASSWORD)
    db.modify_ldif(f"dn: CN=hist.user,CN=Users,{base}\nchangetype: modify\nadd: sIDHistory\n"
                   f"sIDHistory: {domain_sid}-512\n", ["relax:0"])
    # an external trust without SID filtering; a quarantined one stays clean
    for name, attributes, number in (("partner-open.test", 0, 7001), ("partner-safe.test", 4, 7002)):
        db.add({"dn": f"CN={name},CN=System,{base}", "objectClass": "trustedDomain", "trustPartner": name,
                "flatName": name.split(".")[0].replace("-", "").upper()[:15], "trustDirection": "3",
                "trustType": "2", "trustAttributes": str(attributes),
                "securityIdentifier": ndr_pack(security.dom_sid(f"S-1-5-21-1-2-{number}"))}, ["relax:0"])
    # a former admin that kept adminCount
    db.newuser("ex.admin", PASSWORD)
    _replace(db, f"CN=ex.admin,CN=Users,{base}", "adminCount", "1", ["relax:0"])
    # Guest enabled; Anonymous Logon in Pre-Windows 2000 Compatible Access; anonymous LDAP in dSHeuristics
    _uac(db, base, "Guest", remove=0x2)
    _anonymous_access(db, base, allowed=True)
    # DCSync rights for an ordinary service account, and for Entra Connect's (expected, info)
    sd = SDUtils(db)
    for name in ("sync.svc", "MSOL_1a2b3c4d5e6f"):
        db.newuser(name, PASSWORD)
        account_sid = str(db.schema_format_value("objectSid", db.search(
            base, expression=f"(sAMAccountName={name})", attrs=["objectSid"])[0]["objectSid"][0]), "utf-8")
        sd.dacl_add_ace(base, f"(OA;;CR;1131f6aa-9c07-11d1-f79f-00c04fc2dcd2;;{account_sid})"
                              f"(OA;;CR;1131f6ad-9c07-11d1-f79f-00c04fc2dcd2;;{account_sid})")
    # Tier-0 write for broad principals: Authenticated Users may rewrite AdminSDHolder's permissions,
    # Domain Users may write Backup Operators' members
    sd.dacl_add_ace(f"CN=AdminSDHolder,CN=System,{base}", "(A;;WD;;;AU)")
    sd.dacl_add_ace(f"CN=Backup Operators,CN=Builtin,{base}", "(OA;;WP;bf9679c0-0de6-11d0-a285-00aa003049e2;;DU)")
    # and Domain Computers may edit the Default Domain Controllers Policy's container
    sd.dacl_add_ace(f"CN={{6AC1786C-016F-11D2-945F-00C04fB984F9}},CN=Policies,CN=System,{base}", "(A;;WP;;;DC)")
    # a password in Group Policy Preferences (Default Domain Policy's local groups); the DC policy's
    # Services.xml has an empty cpassword and stays clean
    gpo = {p.name.casefold(): p for p in policies.iterdir()}  # provision's folders, in their own case
    gpp = '<?xml version="1.0" encoding="utf-8"?>\n'
    domain_sid = str(db.get_domain_sid())
    _preference(gpo["{31b2f340-016d-11d2-945f-00c04fb984f9}"], "Groups", gpp + (
        '<Groups clsid="{3125E937-EB16-4b4c-9934-544FC6D24D26}"><User clsid="{DF5F1855-51E5-4d24-8B1A-D9BDE98BA1D1}" '
        'name="Administrator (built-in)" uid="{A1B2C3D4-0000-0000-0000-000000000001}"><Properties action="U" '
        f'newName="" fullName="" description="" cpassword="{GPP_CPASSWORD}" changeLogon="0" noChange="0" '
        'neverExpires="1" acctDisabled="0" subAuthority="RID_ADMIN" userName="Administrator (built-in)"/></User>'
        # Domain Users made local administrators, by a GPO linked at the domain root (so on the DCs too)
        '<Group clsid="{6D4A79E4-529C-4481-ABD0-F5BD7EA93BA7}" name="Administrators (built-in)" '
        'uid="{A1B2C3D4-0000-0000-0000-000000000002}"><Properties action="U" groupSid="S-1-5-32-544" '
        'groupName="Administrators (built-in)"><Members><Member name="WARPCOUNCIL\\Domain Users" action="ADD" '
        f'sid="{domain_sid}-513"/></Members></Properties></Group></Groups>\n'))
    # security templates as Windows writes them (UTF-16 with a BOM): LM/NTLMv1 accepted domain-wide;
    # Authenticated Users may log on locally to the DCs (network logon for Everyone is the default: clean)
    _template(gpo["{31b2f340-016d-11d2-945f-00c04fb984f9}"],
              "[Registry Values]\r\nMACHINE\\System\\CurrentControlSet\\Control\\Lsa\\LmCompatibilityLevel=4,1\r\n")
    _template(gpo["{6ac1786c-016f-11d2-945f-00c04fb984f9}"],
              "[Privilege Rights]\r\nSeInteractiveLogonRight = *S-1-5-32-544,*S-1-5-11\r\n"
              "SeNetworkLogonRight = *S-1-1-0,*S-1-5-32-544\r\n")
    _preference(gpo["{6ac1786c-016f-11d2-945f-00c04fb984f9}"], "Services", gpp + (
        '<NTServices clsid="{2CFB484A-4E96-4b5d-A0B6-093D2F91E6AE}"><NTService '
        'clsid="{AB6F0B67-341F-4e51-92F9-005FBFBA1A43}" name="Spooler"><Properties startupType="DISABLED" '
        'serviceName="Spooler" serviceAction="STOP" accountName="" cpassword=""/></NTService></NTServices>\n'))
    _plant_adcs(db, sd)
    # a service account with RC4 keys only; one with AES stays clean
    _replace(db, f"CN=svc-sql,CN=Users,{base}", "msDS-SupportedEncryptionTypes", "4")
    db.newuser("svc-web", PASSWORD)
    _replace(db, f"CN=svc-web,CN=Users,{base}", "servicePrincipalName", f"HTTP/web.{realm}")
    _replace(db, f"CN=svc-web,CN=Users,{base}", "msDS-SupportedEncryptionTypes", "24")


def harden(db: SamDB, base: str) -> None:
    """Fix the domain-wide findings: policy, quota, the weak PSO, AS-REP roasting, Guest and
    anonymous access."""
    _replace(db, base, "minPwdLength", "14")
    _replace(db, base, "lockoutThreshold", "5")
    _replace(db, base, "ms-DS-MachineAccountQuota", "0")
    db.delete(f"CN=weak-pso,CN=Password Settings Container,CN=System,{base}")
    _uac(db, base, "asrep.user", remove=0x400000)
    _uac(db, base, "Guest", add=0x2)
    _anonymous_access(db, base, allowed=False)


def bulk(db: SamDB, base: str, users: int, computers: int, groups: int) -> None:
    """A council-sized directory for the benchmark, in one transaction: users (a tenth idle),
    computers across Windows releases, groups of 25 with one in ten nested in a privileged group."""
    systems = (("Windows 10 Enterprise", "10.0 (19045)"), ("Windows 11 Enterprise", "10.0 (26100)"),
               ("Windows 7 Professional", "6.1 (7601)"), ("Windows Server 2016 Standard", "10.0 (14393)"))
    def batches(ldifs: Iterator[str]) -> None:
        """In transactions of 500: one transaction of tens of thousands slows every add after it."""
        pending: list[str] = []
        for ldif in [*ldifs, ""]:
            if ldif:
                pending.append(ldif)
            if len(pending) >= 500 or (not ldif and pending):
                db.transaction_start()
                try:
                    for item in pending:
                        db.add_ldif(item, controls=["relax:0"])
                except BaseException:
                    db.transaction_cancel()
                    raise
                db.transaction_commit()
                pending = []

    def users_ldif() -> Iterator[str]:
        yield f"dn: OU=Bulk,{base}\nobjectClass: organizationalUnit\n"
        for n in range(users):
            flags = 512 | (0x10000 if n % 7 == 0 else 0) | (0x400000 if n % 997 == 0 else 0)
            yield (f"dn: CN=bulk-user-{n:05d},OU=Bulk,{base}\nobjectClass: user\n"
                   f"sAMAccountName: bulk-user-{n:05d}\nuserAccountControl: {flags}\n")
        for n in range(computers):
            system, version = systems[n % len(systems)]
            yield (f"dn: CN=BULK-PC-{n:05d},OU=Bulk,{base}\nobjectClass: computer\n"
                   f"sAMAccountName: BULK-PC-{n:05d}$\nuserAccountControl: 4096\n"
                   f"operatingSystem: {system}\noperatingSystemVersion: {version}\n")
        for n in range(groups):
            members = "".join(f"member: CN=bulk-user-{(n * 25 + m) % users:05d},OU=Bulk,{base}\n" for m in range(25))
            yield (f"dn: CN=bulk-group-{n:04d},OU=Bulk,{base}\nobjectClass: group\n"
                   f"sAMAccountName: bulk-group-{n:04d}\n{members}")

    batches(users_ldif())
    for n in range(0, groups, 10):
        db.add_remove_group_members("Administrators" if n % 20 else "Domain Admins", [f"bulk-group-{n:04d}"])


def bulk_gpos(policies: Path, count: int) -> None:
    """GPO folders in SYSVOL as a council's would look: each a security template, a third with
    Preferences local groups (no passwords), for the benchmark's SYSVOL read."""
    for n in range(count):
        gpo = policies / f"{{B0000000-0000-0000-0000-{n:012d}}}"
        (gpo / "Machine").mkdir(parents=True, exist_ok=True)
        (gpo / "GPT.INI").write_text("[General]\r\nVersion=1\r\n")
        _template(gpo, "[Privilege Rights]\r\nSeInteractiveLogonRight = *S-1-5-32-544\r\n")
        if n % 3 == 0:
            _preference(gpo, "Groups", '<?xml version="1.0" encoding="utf-8"?>\n<Groups clsid="{3125E937-EB16-4b4c-'
                                       '9934-544FC6D24D26}"><Group name="Administrators (built-in)"><Properties '
                                       'groupSid="S-1-5-32-544"><Members/></Properties></Group></Groups>\n')


def main() -> None:
    conf, sam, action, realm, reader_password, logon = sys.argv[1:7]
    settings = LoadParm()
    settings.load(conf)
    policies = Path(settings.get("path", "sysvol")) / realm.lower() / "Policies"  # the sysvol share's GPOs
    db = SamDB(url=sam, session_info=system_session(), lp=settings)
    base = str(db.domain_dn())
    if action == "plant":
        plant(db, base, realm, reader_password, logon, policies)
    elif action.startswith("bulk:"):  # bulk:USERS:COMPUTERS:GROUPS:GPOS
        users, computers, groups, gpos = (int(n) for n in action.split(":")[1:])
        bulk(db, base, users, computers, groups)
        bulk_gpos(policies, gpos)
    else:
        harden(db, base)


if __name__ == "__main__":
    main()
