"""The check registry: a check is registered by its `@check` decorator in checks/<category>.py.

Importing the category modules below is what registers them; ALL_CHECKS is every registered
check in id order (WA1xx patches first, WA7xx backups last).
"""

from __future__ import annotations

from checks import (
    backups,
    configs,
    directory_acl,
    directory_adcs,
    directory_gpo,
    directory_passwords,
    directory_paths,
    directory_privileges,
    directory_unsupported,
    domains,
    passwords,
    patches,
    privileges,
    supply_chain,
    tenant,
    unsupported,
    web,
    windows_updates,
)
from checks.base import REGISTERED, Check, CheckContext, Weakness

CATEGORY_MODULES = (patches, unsupported, privileges, passwords, configs, supply_chain, backups,
                    directory_unsupported, directory_privileges, directory_passwords, directory_paths, directory_acl,
                    directory_gpo, directory_adcs, domains, web, windows_updates, tenant)

ALL_CHECKS: tuple[Check, ...] = tuple(REGISTERED[check_id] for check_id in sorted(REGISTERED))


def by_id(check_id: str) -> Check:
    """The registered check with this id (LookupError if there is none)."""
    return REGISTERED[check_id]


__all__ = ["ALL_CHECKS", "CATEGORY_MODULES", "Check", "CheckContext", "Weakness", "by_id"]
