"""CPE names: nmap's CPE 2.2 URIs and NVD's CPE 2.3 formatted strings, in one shape.

nmap writes `cpe:/a:openbsd:openssh:9.2p1`; NVD writes `cpe:2.3:a:openbsd:openssh:9.2:p1:*:...`.
Both become a `Cpe` with the same eleven attributes, where "*" is ANY and "-" is NA.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

ANY = "*"
NA = "-"
_FIELDS_23 = 11  # part vendor product version update edition language sw_edition target_sw target_hw other
_SPLIT_23 = re.compile(r"(?<!\\):")
_OPENSSH_UPDATE = re.compile(r"^(?P<base>\d+(?:\.\d+)*)(?P<update>p\d+)$")


@dataclass(frozen=True)
class Cpe:
    part: str  # a application, o operating system, h hardware
    vendor: str
    product: str
    version: str = ANY
    update: str = ANY
    edition: str = ANY
    language: str = ANY
    sw_edition: str = ANY
    target_sw: str = ANY
    target_hw: str = ANY
    other: str = ANY

    @property
    def key(self) -> tuple[str, str]:
        return self.vendor, self.product

    @property
    def full_version(self) -> str:
        """The version as a banner shows it: NVD's '9.2' + update 'p1' is OpenSSH's '9.2p1'."""
        if self.update not in (ANY, NA, "") and re.fullmatch(r"p\d+", self.update):
            return self.version + self.update
        return self.version

    def with_version(self, version: str) -> Cpe:
        return Cpe(self.part, self.vendor, self.product, version or ANY, self.update, self.edition,
                   self.language, self.sw_edition, self.target_sw, self.target_hw, self.other)

    def uri23(self) -> str:
        return ":".join(["cpe", "2.3", self.part, self.vendor, self.product, self.version, self.update,
                         self.edition, self.language, self.sw_edition, self.target_sw, self.target_hw,
                         self.other])


def _unescape23(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse(text: str) -> Cpe:
    """A CPE 2.3 formatted string or a CPE 2.2 URI; ValueError names what is wrong."""
    text = text.strip()
    if text.startswith("cpe:2.3:"):
        fields = _SPLIT_23.split(text[len("cpe:2.3:"):])
        if len(fields) != _FIELDS_23 or fields[0] not in ("a", "o", "h", ANY):
            raise ValueError(f"not a CPE 2.3 name: {text!r}")
        values = [_unescape23(f).lower() if f not in (ANY, NA) else f for f in fields]
        return Cpe(*values)
    if text.startswith("cpe:/"):
        fields = text[len("cpe:/"):].split(":")
        if not fields or fields[0] not in ("a", "o", "h") or len(fields) > 7:
            raise ValueError(f"not a CPE 2.2 URI: {text!r}")
        values = [urllib.parse.unquote(f).lower() for f in fields]
        values += [""] * (7 - len(values))
        part, vendor, product, version, update, edition, language = values
        # 2.2 packs the extended attributes into edition as ~ed~sw_ed~target_sw~target_hw~other
        extended = [ANY] * 4
        if edition.startswith("~"):
            packed = edition.split("~")[1:]
            edition = packed[0] if packed else ""
            extended = [p or ANY for p in (packed[1:] + [""] * 4)[:4]]
        return Cpe(part, vendor or ANY, product or ANY, version or ANY, update or ANY, edition or ANY,
                   language or ANY, *extended)
    raise ValueError(f"not a CPE name: {text!r}")


def split_openssh_update(cpe: Cpe) -> Cpe:
    """nmap's '9.2p1' as NVD spells it: version '9.2', update 'p1'."""
    match = _OPENSSH_UPDATE.match(cpe.version)
    if match and cpe.update in (ANY, ""):
        return Cpe(cpe.part, cpe.vendor, cpe.product, match["base"], match["update"], cpe.edition,
                   cpe.language, cpe.sw_edition, cpe.target_sw, cpe.target_hw, cpe.other)
    return cpe
