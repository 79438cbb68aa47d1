"""The configs checks' rules as data, and how they read nmap's script output (pure, no I/O)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator

from warpagent.model.findings import Host, ScriptResult, ScriptTable, Service, Severity

# --- rules as data -------------------------------------------------------------------------

LEGACY_TLS = {"SSLv2": Severity.HIGH, "SSLv3": Severity.HIGH,
              "TLSv1.0": Severity.MEDIUM, "TLSv1.1": Severity.MEDIUM}

# (pattern over the IANA cipher suite name, why it is weak, severity)
WEAK_CIPHER_RULES: tuple[tuple[re.Pattern[str], str, Severity], ...] = (
    (re.compile(r"_WITH_NULL_|_NULL_WITH_"), "no encryption (NULL)", Severity.HIGH),
    (re.compile(r"EXPORT"), "export-grade", Severity.HIGH),
    (re.compile(r"_anon_"), "anonymous key exchange (no server authentication)", Severity.HIGH),
    (re.compile(r"_RC4_"), "RC4", Severity.HIGH),
    (re.compile(r"_WITH_DES_|_DES40_"), "single DES", Severity.HIGH),
    (re.compile(r"_MD5$"), "MD5 message authentication", Severity.HIGH),
    (re.compile(r"3DES_EDE"), "3DES (Sweet32)", Severity.MEDIUM),
    # the server's RSA key carries the session key: one stolen key decrypts every recorded session
    (re.compile(r"^TLS_RSA_WITH_"), "static RSA key exchange (no forward secrecy)", Severity.LOW),
    (re.compile(r"_CBC_SHA$"), "CBC mode with SHA-1", Severity.LOW),
)

MIN_KEY_BITS = {"rsa": 2048, "dsa": 2048, "dh": 2048, "ec": 256}
WEAK_SIGNATURES = ("md5", "sha1WithRSA", "dsaWithSHA1", "ecdsa-with-SHA1")
CERT_WARNING_DAYS = 30

SSH_LEGACY: dict[str, tuple[re.Pattern[str], ...]] = {
    "kex_algorithms": (re.compile(r"^diffie-hellman-group(1|14)-sha1$"),
                       re.compile(r"^diffie-hellman-group-exchange-sha1$"),
                       re.compile(r"^gss-.*sha1"), re.compile(r"^rsa1024-sha1$")),
    "server_host_key_algorithms": (re.compile(r"^ssh-dss"),),
    "encryption_algorithms": (re.compile(r"-cbc(@|$)"), re.compile(r"^arcfour"), re.compile(r"^none$")),
    "mac_algorithms": (re.compile(r"^hmac-md5"), re.compile(r"^hmac-sha1-96"),
                       re.compile(r"^hmac-ripemd160"), re.compile(r"^umac-32"), re.compile(r"^none$")),
}
# Legacy but still common: SHA-1 signatures on RSA host keys (ssh-rsa; off by default since
# OpenSSH 8.8) and SHA-1 MACs (still in OpenSSH's default list). Reported apart, at low.
SSH_SHA1: dict[str, tuple[re.Pattern[str], ...]] = {
    "server_host_key_algorithms": (re.compile(r"^ssh-rsa$"),),
    "mac_algorithms": (re.compile(r"^hmac-sha1$"), re.compile(r"^hmac-sha1-etm@openssh\.com$")),
}

# nmap service name -> (plain-language name, severity)
CLEARTEXT_SERVICES = {
    "telnet": ("Telnet", Severity.HIGH),
    "login": ("rlogin", Severity.HIGH),
    "shell": ("rsh", Severity.HIGH),
    "exec": ("rexec", Severity.HIGH),
    "ftp": ("FTP", Severity.MEDIUM),
    "tftp": ("TFTP", Severity.MEDIUM),
}

MANAGEMENT_SERVICES = {
    "ms-wbt-server": "Remote Desktop (RDP)",
    "vnc": "VNC remote desktop",
    "vnc-http": "VNC remote desktop (web)",
    "wsman": "Windows Remote Management (WinRM)",
    "wsmans": "Windows Remote Management (WinRM over TLS)",
}


# --- helpers -------------------------------------------------------------------------------

def listed_names(items: Iterable[str], limit: int = 8) -> str:
    listed = list(items)
    more = f" and {len(listed) - limit} more" if len(listed) > limit else ""
    return ", ".join(listed[:limit]) + more


def cert_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def with_script(host: Host, script_id: str) -> Iterator[tuple[Service, ScriptResult]]:
    """Each open service on the host where nmap ran `script_id`, with its result."""
    for service in host.open_services():
        result = service.script(script_id)
        if result is not None:
            yield service, result


def certificates(host: Host) -> Iterator[tuple[Service, ScriptTable]]:
    """Each open TLS service with the certificate ssl-cert read from it."""
    for service, result in with_script(host, "ssl-cert"):
        if result.data.get("validity") is not None:
            yield service, result.data


# --- TLS -----------------------------------------------------------------------------------
