"""Windows security descriptors (the binary nTSecurityDescriptor AD returns, [MS-DTYP] 2.4.6):
the owner and the DACL's access-control entries, for the directory's Tier-0 rules.

Self-relative form only (what LDAP returns). Every offset and length is checked against the
buffer: a descriptor that does not add up is an EvidenceError naming the object, never a
guess. Allow and deny entries are both kept; SACLs are not read.
"""

from __future__ import annotations

import struct
import uuid

from warpagent.evidence.formats import EvidenceError
from warpagent.model.directory import Ace, Descriptor

SE_DACL_PRESENT = 0x0004
SE_SELF_RELATIVE = 0x8000
ALLOW, DENY, ALLOW_OBJECT, DENY_OBJECT = 0x00, 0x01, 0x05, 0x06
OBJECT_TYPE_PRESENT, INHERITED_OBJECT_TYPE_PRESENT = 0x1, 0x2
INHERIT_ONLY, INHERITED = 0x08, 0x10
MAX_ACES = 10_000


def sid_at(data: bytes, offset: int, where: str) -> tuple[str, int]:
    """The SID starting at `offset` ("S-1-5-21-...") and its length."""
    if offset + 8 > len(data):
        raise EvidenceError(f"{where}: a SID runs past the end of the descriptor")
    revision, count = data[offset], data[offset + 1]
    end = offset + 8 + 4 * count
    if revision != 1 or count > 15 or end > len(data):
        raise EvidenceError(f"{where}: not a SID at offset {offset}")
    authority = int.from_bytes(data[offset + 2:offset + 8], "big")
    subs = struct.unpack_from(f"<{count}I", data, offset + 8)
    return "-".join(["S", str(revision), str(authority), *map(str, subs)]), end - offset


def _ace(data: bytes, offset: int, where: str) -> tuple[Ace | None, int]:
    if offset + 8 > len(data):
        raise EvidenceError(f"{where}: an ACE runs past the end of the descriptor")
    kind, flags, size = struct.unpack_from("<BBH", data, offset)
    if size < 8 or offset + size > len(data):
        raise EvidenceError(f"{where}: an ACE of size {size} at offset {offset} does not fit")
    if kind not in (ALLOW, DENY, ALLOW_OBJECT, DENY_OBJECT):
        return None, size  # audit, callback and other entries grant nothing here
    (mask,) = struct.unpack_from("<I", data, offset + 4)
    cursor, object_type = offset + 8, ""
    if kind in (ALLOW_OBJECT, DENY_OBJECT):
        (present,) = struct.unpack_from("<I", data, cursor)
        cursor += 4
        if present & OBJECT_TYPE_PRESENT:
            object_type = str(uuid.UUID(bytes_le=data[cursor:cursor + 16]))
            cursor += 16
        if present & INHERITED_OBJECT_TYPE_PRESENT:
            cursor += 16
    if cursor > offset + size:
        raise EvidenceError(f"{where}: an object ACE at offset {offset} is shorter than its parts")
    trustee, length = sid_at(data, cursor, where)
    if cursor + length > offset + size:
        raise EvidenceError(f"{where}: an ACE's SID runs past the ACE at offset {offset}")
    return Ace(allow=kind in (ALLOW, ALLOW_OBJECT), trustee=trustee, mask=mask, object_type=object_type,
               inherit_only=bool(flags & INHERIT_ONLY), inherited=bool(flags & INHERITED)), size


def parse(data: bytes, where: str) -> Descriptor:
    """A self-relative security descriptor's owner and DACL."""
    if len(data) < 20:
        raise EvidenceError(f"{where}: nTSecurityDescriptor is {len(data)} bytes, too short to be one")
    revision, _sbz, control, owner_at, _group_at, _sacl_at, dacl_at = struct.unpack_from("<BBHIIII", data, 0)
    if revision != 1 or not control & SE_SELF_RELATIVE:
        raise EvidenceError(f"{where}: nTSecurityDescriptor is not a self-relative descriptor")
    owner = sid_at(data, owner_at, where)[0] if owner_at else ""
    aces: list[Ace] = []
    if control & SE_DACL_PRESENT and dacl_at:
        if dacl_at + 8 > len(data):
            raise EvidenceError(f"{where}: the DACL runs past the end of the descriptor")
        _revision, _sbz1, acl_size, count, _sbz2 = struct.unpack_from("<BBHHH", data, dacl_at)
        if dacl_at + acl_size > len(data) or count > MAX_ACES:
            raise EvidenceError(f"{where}: the DACL's size or entry count does not fit the descriptor")
        cursor = dacl_at + 8
        for _ in range(count):
            ace, size = _ace(data, cursor, where)
            if ace is not None:
                aces.append(ace)
            cursor += size
            if cursor > dacl_at + acl_size:
                raise EvidenceError(f"{where}: the DACL's entries run past its size")
    return Descriptor(owner=owner, aces=tuple(aces))
