"""What each check is evidence for: the Cyber Essentials areas and NCSC CAF contributing outcomes
it measures, from the one table in frameworks.yaml (its sources cited there)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import yaml


@dataclass(frozen=True)
class Frameworks:
    cyber_essentials: dict[str, str]  # area id -> name
    caf: dict[str, str]  # contributing outcome id -> name
    checks: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]  # check id -> (CE area ids, CAF outcome ids)

    def areas_of(self, check_id: str) -> tuple[str, ...]:
        """Cyber Essentials area names, as a finding's JSON carries them."""
        return tuple(self.cyber_essentials[a] for a in self.checks[check_id][0])

    def outcomes_of(self, check_id: str) -> tuple[str, ...]:
        return self.checks[check_id][1]


@functools.cache
def table() -> Frameworks:
    loaded = yaml.safe_load(resources.files("checks").joinpath("frameworks.yaml").read_text(encoding="utf-8"))
    return Frameworks(
        cyber_essentials=dict(loaded["cyber_essentials"]), caf=dict(loaded["caf"]),
        checks={check_id: (tuple(row["cyber_essentials"]), tuple(row["caf"]))
                for check_id, row in loaded["checks"].items()})
