"""Load, validate and type the YAML configuration.

Every problem is reported as one line naming the file and key path and saying what to do;
all problems are collected before anything runs, so one fix-up pass is enough. The schema
(schema.yaml) is the single source of keys, descriptions, examples and defaults:
`defaults` reads it, `validate` checks a document against it, `load` builds `settings` from it.
"""

from warpagent.config.defaults import duration_seconds, schema
from warpagent.config.load import DEFAULT_PATH, EMBEDDED, ENV_VAR, example_text, load, locate, parse_text
from warpagent.config.settings import (
    MAKE_KEY,
    MIN_KEY_HEX,
    AlertSettings,
    BackupPolicy,
    CelerySettings,
    CredentialProbes,
    DirectorySettings,
    EmailSettings,
    EstateConfig,
    HubSettings,
    HubTls,
    HubUser,
    MailSettings,
    Organisation,
    PeerConfig,
    RagRules,
    ReportSettings,
    ResticRepository,
    ScanSettings,
    ScheduleSettings,
    Settings,
    SharingSettings,
    SshSource,
)
from warpagent.config.validate import MAX_DURATION_S, cron_problem, validate

__all__ = [
    "DEFAULT_PATH", "EMBEDDED", "ENV_VAR", "MAKE_KEY", "MAX_DURATION_S", "MIN_KEY_HEX", "AlertSettings", "BackupPolicy",
    "CelerySettings", "CredentialProbes", "DirectorySettings", "EmailSettings", "EstateConfig", "HubSettings",
    "HubTls", "HubUser", "MailSettings",
    "Organisation", "PeerConfig", "RagRules", "ReportSettings", "ResticRepository", "ScanSettings",
    "ScheduleSettings", "Settings", "SharingSettings", "SshSource", "cron_problem", "duration_seconds",
    "example_text", "load", "locate", "parse_text", "schema", "validate",
]
