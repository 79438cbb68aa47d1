"""The board report's opening: the position in plain words, what changed, the few things the
board should know, the decisions it is asked for, and whether Cyber Essentials would be met."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from checks.frameworks import Frameworks
from warpagent.model.findings import Severity, TrackedFinding
from warpagent.text import counted


@dataclass(frozen=True)
class Summary:
    position: str
    changes: str
    points: tuple[str, ...]  # two or three things the board should know
    decisions: tuple[str, ...]  # what the board is asked to decide
    cyber_essentials_failing: tuple[str, ...]  # area names that today's open findings would fail


def _position(rags: Sequence[str]) -> str:
    """The opening sentence, weighed by coverage: where most of the seven areas are not measured,
    that is said first, so green in two areas never reads as good hygiene overall."""
    red, amber, green, grey = (sum(1 for r in rags if r == c) for c in ("red", "amber", "green", "grey"))
    parts = [f"{n} {word}" for n, word in ((red, "red"), (amber, "amber"), (green, "green")) if n]
    parts += [f"{grey} not yet measured"] if grey else []
    areas = f"of the seven areas, {', '.join(parts)}"
    measured = len(rags) - grey
    if measured == 0:
        return f"Our cyber hygiene is not yet measured: {areas}."
    if grey * 2 > len(rags):
        found = ("needs action now" if red else "needs attention" if amber else "shows no significant weakness")
        verb = "is" if measured == 1 else "are"
        return (f"Most of our cyber hygiene is not yet measured: only {measured} of the {len(rags)} areas {verb}, "
                f"so the picture is incomplete. What was measured {found}: {areas}.")
    overall = ("needs action now" if red else "needs attention" if amber else
               "is good where measured" if green else "is not yet measured")
    return f"Our cyber hygiene {overall}: {areas}."


def _sentence_case(text: str) -> str:
    """The first letter lowered for use mid-sentence, unless the first word is an acronym (TLS, SSH)."""
    first = text.split(" ", 1)[0]
    return text if len(first) > 1 and first[:2].isupper() else text[:1].lower() + text[1:]


def _changes(new: int, fixed: int, open_now: int, open_before: int | None) -> str:
    were = "was" if new == 1 else "were"
    text = f"This month {counted(new, 'weakness', 'weaknesses')} {were} found and {fixed} fixed"
    if open_before is None:
        return text + f"; {open_now} {'is' if open_now == 1 else 'are'} open."
    direction = "down" if open_now < open_before else "up" if open_now > open_before else "unchanged"
    return text + (f"; open weaknesses are {direction} from {open_before} to {open_now}." if direction != "unchanged"
                   else f"; {open_now} open, as at the end of last month.")


def _unsupported(open_now: Sequence[TrackedFinding]) -> list[str]:
    products = sorted({t.finding.product or "an operating system" for t in open_now
                       if t.finding.category == "unsupported" and t.finding.severity >= Severity.MEDIUM})
    return products


def build(*, rags: Sequence[str], open_now: Sequence[TrackedFinding], new: int, fixed: int,
          open_before: int | None, past_deadline: int, kev_past_due: int, top_risks: Sequence[tuple[str, int]],
          expiring: int, frameworks: Frameworks, measured: set[str]) -> Summary:
    points = [f"The biggest risk: {_sentence_case(what)} ({counted(assets, 'system')})."
              for what, assets in top_risks[:2]]
    if kev_past_due:
        points.insert(0, f"{counted(kev_past_due, 'weakness', 'weaknesses')} that criminals are known to exploit "
                         "(CISA KEV) are past their fix-by date.")
    decisions = []
    if past_deadline:
        decisions.append(f"{counted(past_deadline, 'critical or high weakness', 'critical or high weaknesses')} "
                         "are past their 14-day deadline: fund their fix now, or accept each risk with an owner "
                         "and a date.")
    products = _unsupported(open_now)
    if products:
        shown = ", ".join(products[:3]) + (f" and {len(products) - 3} more" if len(products) > 3 else "")
        decisions.append(f"Fund the upgrade or replacement of software its maker no longer supports: {shown}.")
    if expiring:
        decisions.append(f"Renew or end {counted(expiring, 'accepted risk')} that lapse{'s' if expiring == 1 else ''} "
                         "within 30 days.")
    failing = []
    for area_id, name in frameworks.cyber_essentials.items():
        if any(t.finding.severity >= Severity.HIGH and t.finding.category in measured
               and area_id in frameworks.checks[t.finding.check_id][0] for t in open_now):
            failing.append(name)
    return Summary(position=_position(rags), changes=_changes(new, fixed, len(open_now), open_before),
                   points=tuple(points[:3]), decisions=tuple(decisions), cyber_essentials_failing=tuple(failing))
