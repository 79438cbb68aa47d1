"""A check's documentation in the words a board reads: no commands, file paths or settings
(those are the technical report's). A check may give its board sentence itself, in a `Board:`
paragraph of its docstring; otherwise its first sentence is used, asides in brackets left out.
What is being done is said per category, in plain words."""

from __future__ import annotations

import re

from checks import by_id
from warpagent.model.evidence import EvidenceKind
from warpagent.model.findings import Finding

_ASIDE = re.compile(r"\s*\([^()]*\)")
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)])[.:;]\s")

ACTIONS = {
    "patches": "Apply the vendor's security updates to the affected systems.",
    "unsupported": "Upgrade or replace the software its maker no longer supports; this may need funding.",
    "privileges": "Take away the administrator rights that are not needed, and remove leavers' accounts.",
    "passwords": "Enforce strong passwords, remove default and empty ones, and stop password logins as root.",
    "configs": "Change the service's settings to the secure ones, or switch off what is not needed.",
    "supply_chain": "Bring suppliers' assurances and the software sources under control.",
    "backups": "Make the backups run, test that they restore, and keep one copy offline.",
}


def _part(doc: str, label: str) -> str:
    _before, found, after = doc.partition(f"{label}:")
    return " ".join(after.split("\n\n")[0].split("Fix:")[0].split()) if found else ""


def _first_sentence(text: str) -> str:
    text = " ".join(_ASIDE.sub("", text).split())
    match = _SENTENCE_END.search(text + " ")
    sentence = text[:match.start() + 1] if match else text
    return sentence.rstrip(".:; ")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def what(check_id: str) -> str:
    doc = by_id(check_id).doc.replace("`", "")
    return _capital(_part(doc, "Board").rstrip(".") or _first_sentence(doc.split("\n\n")[0]))


def risk_key(finding: Finding) -> str:
    """What the board counts as one risk: a check, or for a tenant's controls each control (one
    check stands for dozens of ScubaGear's controls, each its own risk in the board's eyes)."""
    return f"{finding.check_id}:{finding.subject}" if finding.evidence_kind is EvidenceKind.TENANT else finding.check_id


def what_of(finding: Finding) -> str:
    """The risk in board words: a tenant control's own (its title, with ScubaGear's figure where
    it gives one), else the check's."""
    return finding.title if finding.evidence_kind is EvidenceKind.TENANT else what(finding.check_id)


def why(check_id: str) -> str:
    return _capital(_first_sentence(_part(by_id(check_id).doc.replace("`", ""), "Why it matters"))) + "."


def action(category: str) -> str:
    return ACTIONS[category]
