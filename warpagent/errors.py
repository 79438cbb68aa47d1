"""One error base per stage boundary, so the CLI can map each to an exit code and a clear line."""

from __future__ import annotations


class WarpagentError(Exception):
    """Base of every error warpagent reports to its user as one line."""


class ConfigError(WarpagentError):
    """The configuration is missing, unreadable or invalid (exit 2)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ScopeError(WarpagentError):
    """A target or exclusion cannot be turned into an explicit address list (exit 2)."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key  # the estate key at fault, such as "targets[2]" ("" when it is the estate as a whole)


class CollectError(WarpagentError):
    """Collection (nmap) could not run or returned output that cannot be read (exit 3)."""


class StoreError(WarpagentError):
    """The findings store cannot be opened or written (exit 3)."""


class DecisionError(WarpagentError):
    """A decision on a finding that cannot be taken: an unknown id, a date in the past (exit 2)."""
