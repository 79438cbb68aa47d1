"""Security descriptors as AD returns them, read by warpagent and judged against Samba's own
reading of the same bytes (Samba's NDR, run by Debian's python3, which has its bindings)."""

from __future__ import annotations

import contextlib
import json
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warpagent.evidence.formats import EvidenceError
from warpagent.evidence.parsers.descriptor import parse

SYSTEM_PYTHON = "/usr/bin/python3"
DOMAIN = "S-1-5-21-1-2-3"
SDDLS = [
    "O:DAG:DAD:(A;;GA;;;DU)(OA;;CR;1131f6ad-9c07-11d1-f79f-00c04fc2dcd2;;S-1-5-21-1-2-3-1105)(A;CI;WD;;;AU)",
    "O:BAG:BAD:P(A;;RPLCLORC;;;AU)(D;;WP;;;WD)(A;CIIO;GA;;;CO)(A;ID;FA;;;SY)",
    "O:S-1-5-21-1-2-3-1105D:(OA;CI;WP;bf9679c0-0de6-11d0-a285-00aa003049e2;bf967aba-0de6-11d0-a285-00aa003049e2;DU)"
    "(OD;;CR;00299570-246d-11d0-a768-00aa006e0529;;WD)(A;;0x100;;;AN)",
    "O:SYD:",  # an empty DACL
    "O:SY",  # no DACL at all
]
SAMBA = r"""
import json, sys
from samba.dcerpc import security
from samba.ndr import ndr_pack
out = []
for sddl in json.load(sys.stdin):
    sd = security.descriptor.from_sddl(sddl, security.dom_sid(sys.argv[1]))
    aces = []
    if sd.dacl is not None:
        for ace in sd.dacl.aces:
            guid = ""
            if ace.type in (5, 6) and ace.object.flags & 1:
                guid = str(ace.object.type)
            aces.append([ace.type in (0, 5), str(ace.trustee), ace.access_mask, guid, bool(ace.flags & 8),
                         bool(ace.flags & 0x10)])
    out.append([ndr_pack(sd).hex(), str(sd.owner_sid), aces])
print(json.dumps(out))
"""


def samba_reading() -> list[tuple[bytes, str, list[list[object]]]]:
    done = subprocess.run([SYSTEM_PYTHON, "-c", SAMBA, DOMAIN], input=json.dumps(SDDLS), capture_output=True,
                          text=True, timeout=60, check=True)
    return [(bytes.fromhex(raw), owner, aces) for raw, owner, aces in json.loads(done.stdout)]


def test_warpagent_reads_every_entry_as_samba_does() -> None:
    for raw, owner, aces in samba_reading():
        read = parse(raw, "test")
        assert read.owner == owner
        assert [[a.allow, a.trustee, a.mask, a.object_type, a.inherit_only, a.inherited] for a in read.aces] == aces


def test_a_truncated_descriptor_is_named_never_misread() -> None:
    raw = samba_reading()[2][0]
    for end in range(len(raw)):
        try:
            parse(raw[:end], "CN=x")
        except EvidenceError as exc:
            assert str(exc).startswith("CN=x: ")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_a_descriptor_or_an_evidence_error(data: bytes) -> None:
    with contextlib.suppress(EvidenceError):  # anything else (IndexError, struct.error) fails the test
        parse(data, "CN=x")


@pytest.mark.parametrize("raw", [bytes.fromhex("0100048014000000000000000000000000000000")])
def test_a_descriptor_with_a_missing_owner_sid_is_refused(raw: bytes) -> None:
    with pytest.raises(EvidenceError, match="SID"):
        parse(raw, "CN=x")


def test_gpo_files_give_sids_not_names_and_read_utf16() -> None:
    from warpagent.evidence.parsers import directory as parse
    from warpagent.evidence.parsers.gpo import security_template
    template = ("[Unicode]\r\nUnicode=yes\r\n[Privilege Rights]\r\nSeInteractiveLogonRight = *S-1-5-11,Guest\r\n"
                "[Group Membership]\r\n*S-1-5-32-544__Members = *S-1-1-0\r\n[Registry Values]\r\n"
                "MACHINE\\System\\CurrentControlSet\\Control\\Lsa\\LmCompatibilityLevel=4,2\r\n").encode("utf-16")
    assert security_template(template) == ((("SeInteractiveLogonRight", "S-1-5-11"),), ("S-1-1-0",), 2)
    assert security_template(b"\xff\xfe[broken") == ((), (), None)
    assert parse.gp_links("[LDAP://cn={31b2f340-016d-11d2-945f-00c04fb984f9},cn=policies;0]"
                          "[LDAP://cn={6AC1786C-016F-11D2-945F-00C04FB984F9},cn=policies;1]") == (
        "{31B2F340-016D-11D2-945F-00C04FB984F9}",)
