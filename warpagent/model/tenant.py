"""A Microsoft 365 tenant's assessment as the checks see it: ScubaGear's result for each control
of CISA's secure configuration baselines, with the council's own decisions on them."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class ControlResult(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - a control's result, not a password
    FAIL = "fail"
    WARNING = "warning"
    NOT_MEASURED = "not measured"  # N/A (manual, not implemented, 3rd party) and Error: never green
    OMITTED = "omitted"  # the council left it out in ScubaGear's config, with a rationale
    INCORRECT = "incorrect"  # the council marked ScubaGear's result as incorrect


@dataclass(frozen=True)
class TenantControl:
    control_id: str  # as ScubaGear wrote it: "MS.AAD.7.1v1"
    product: str  # ScubaGear's product key: AAD, EXO, Defender, SharePoint, Teams, PowerPlatform
    result: ControlResult
    shall: bool  # Criticality "Shall" (a requirement) rather than "Should"
    requirement: str  # plain text, no HTML
    details: str  # plain text, no HTML
    would_be: ControlResult | None = None  # an omitted or incorrect control: what ScubaGear found
    comment: str = ""  # the council's rationale or comment
    until: dt.date | None = None  # its expiration or remediation date

    @property
    def policy(self) -> str:
        """The control without its version suffix: "MS.AAD.7.1v1" -> "MS.AAD.7.1"."""
        head, _v, version = self.control_id.rpartition("v")
        return head if head and version.isdigit() else self.control_id


@dataclass(frozen=True)
class TenantResults:
    tenant_id: str
    domain: str  # the tenant's initial domain, "council.onmicrosoft.com"
    display_name: str
    assessed: dt.datetime  # MetaData.TimestampZulu
    tool_version: str
    controls: tuple[TenantControl, ...]
    source: str  # the file read
    unknown: tuple[str, ...] = ()  # control ids warpagent has no mapping for (counted and named)
