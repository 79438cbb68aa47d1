"""The check registry: every check warpagent runs, listed explicitly, one module per category."""

from __future__ import annotations

from checks import backups, configs, passwords, patches, privileges, supply_chain, unsupported
from checks.base import Check, CheckContext, Weakness

ALL_CHECKS: tuple[Check, ...] = (patches.CHECKS + unsupported.CHECKS + privileges.CHECKS + passwords.CHECKS
                                  + configs.CHECKS + supply_chain.CHECKS + backups.CHECKS)


def by_id(check_id: str) -> Check:
    for item in ALL_CHECKS:
        if item.id == check_id:
            return item
    raise KeyError(check_id)


__all__ = ["ALL_CHECKS", "Check", "CheckContext", "Weakness", "by_id"]
