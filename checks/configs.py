"""configs (WA5xx): insecure configurations a network scan can see.

Every rule matches a service wherever it runs (by what nmap identified, not by port number),
so an SSH server on 2222 or TLS on 8443 is judged like one on its default port.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

from checks.base import CheckContext, Weakness, check
from checks.configs_rules import (
    CERT_WARNING_DAYS,
    CLEARTEXT_SERVICES,
    LEGACY_TLS,
    MANAGEMENT_SERVICES,
    MIN_KEY_BITS,
    SSH_LEGACY,
    SSH_SHA1,
    WEAK_CIPHER_RULES,
    WEAK_SIGNATURES,
    cert_time,
    certificates,
    listed_names,
    with_script,
)
from warpagent.model.findings import Host, ScriptTable, Service, Severity
from warpagent.numbers import whole_or_none


@check("WA501", "configs", "tls-legacy-protocol", scripts=("ssl-enum-ciphers",))
def tls_legacy_protocol(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """TLS service accepts SSL 3.0, TLS 1.0 or TLS 1.1.

    Why it matters: these protocol versions have known attacks (POODLE, BEAST) and lack modern
    cipher suites; the NCSC advises TLS 1.2 or 1.3 only.
    Fix: allow only TLS 1.2 and 1.3 on the service (nginx: `ssl_protocols TLSv1.2 TLSv1.3;`,
    Apache: `SSLProtocol -all +TLSv1.2 +TLSv1.3`, IIS: disable TLS 1.0/1.1 in SCHANNEL).
    """
    for service, result in with_script(host, "ssl-enum-ciphers"):
        offered = [p for p in LEGACY_TLS if result.data.get(p) is not None]
        if offered:
            yield Weakness.on(
                service, severity=max(LEGACY_TLS[p] for p in offered),
                title=f"Legacy TLS/SSL versions accepted on {service.endpoint}",
                evidence=f"ssl-enum-ciphers on {service.endpoint}: server accepts {', '.join(offered)}",
                remediation="Disable SSL 3.0, TLS 1.0 and TLS 1.1 on this service and allow only "
                            "TLS 1.2 and 1.3; check old clients first with the service owner.")


@check("WA502", "configs", "tls-weak-cipher", scripts=("ssl-enum-ciphers",))
def tls_weak_cipher(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """TLS service offers weak cipher suites (NULL, export, anonymous, RC4, DES/3DES, MD5, static
    RSA key exchange without forward secrecy, CBC-SHA1).

    Why it matters: a weak suite lets an attacker read or alter traffic, or impersonate the server.
    Fix: offer only AEAD suites with forward secrecy (ECDHE with AES-GCM or ChaCha20-Poly1305),
    e.g. Mozilla's "intermediate" profile.
    """
    for service, result in with_script(host, "ssl-enum-ciphers"):
        reasons: dict[str, list[str]] = {}
        worst = Severity.INFO
        for _protocol, table in result.data.keyed:
            if not isinstance(table, ScriptTable):
                continue
            for cipher in table.table("ciphers").items:
                name = cipher.text("name") if isinstance(cipher, ScriptTable) else None
                for pattern, why, severity in WEAK_CIPHER_RULES:
                    if name and pattern.search(name):
                        if name not in reasons.setdefault(why, []):
                            reasons[why].append(name)
                        worst = max(worst, severity)
                        break
        if reasons:
            detail = "; ".join(f"{why}: {listed_names(names, 4)}" for why, names in reasons.items())
            yield Weakness.on(
                service, severity=worst, title=f"Weak TLS cipher suites offered on {service.endpoint}",
                evidence=f"ssl-enum-ciphers on {service.endpoint}: {detail}",
                remediation="Remove the listed suites; offer only ECDHE suites with AES-GCM or "
                            "ChaCha20-Poly1305 (Mozilla 'intermediate' TLS configuration).")


@check("WA503", "configs", "tls-certificate-expired", scripts=("ssl-cert",))
def tls_certificate_expired(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """TLS certificate has expired.

    Why it matters: users learn to click through certificate warnings, which is exactly what an
    attacker impersonating the service needs.
    Fix: renew the certificate now and automate renewal (ACME, or a calendar owner for manual ones).
    """
    for service, cert in certificates(host):
        not_after = cert_time(cert.table("validity").text("notAfter"))
        if not_after and not_after < ctx.now:
            days = (ctx.now - not_after).days
            yield Weakness.on(
                service, severity=Severity.HIGH, title=f"Expired TLS certificate on {service.endpoint}",
                evidence=f"ssl-cert on {service.endpoint}: not valid after {not_after:%Y-%m-%d} "
                         f"({days} days ago)",
                remediation="Renew the certificate and install it on this service; automate renewal.")


@check("WA504", "configs", "tls-certificate-self-signed", scripts=("ssl-cert",))
def tls_certificate_self_signed(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """TLS certificate is self-signed.

    Why it matters: clients cannot tell the real service from an impostor, and staff are trained
    to accept warnings.
    Fix: use a certificate from the council's internal CA or a public CA.
    """
    for service, cert in certificates(host):
        subject, issuer = cert.get("subject"), cert.get("issuer")
        if subject is not None and subject == issuer:
            yield Weakness.on(
                service, severity=Severity.MEDIUM, title=f"Self-signed TLS certificate on {service.endpoint}",
                evidence=f"ssl-cert on {service.endpoint}: issuer is the same as the subject",
                remediation="Replace it with a certificate issued by the council's internal CA or a "
                            "public CA, and distribute the CA to clients.")


@check("WA505", "configs", "tls-certificate-expiring", scripts=("ssl-cert",))
def tls_certificate_expiring(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """TLS certificate expires within 30 days.

    Why it matters: an expired certificate breaks the service or trains users to ignore warnings.
    Fix: renew it before the date shown.
    """
    for service, cert in certificates(host):
        not_after = cert_time(cert.table("validity").text("notAfter"))
        if not_after and ctx.now <= not_after < ctx.now + dt.timedelta(days=CERT_WARNING_DAYS):
            yield Weakness.on(
                service, severity=Severity.LOW,
                title=f"TLS certificate on {service.endpoint} expires within {CERT_WARNING_DAYS} days",
                evidence=f"ssl-cert on {service.endpoint}: not valid after {not_after:%Y-%m-%d}",
                remediation="Renew the certificate before it expires; automate renewal where possible.")


@check("WA506", "configs", "tls-certificate-weak-key", scripts=("ssl-cert",))
def tls_certificate_weak_key(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """TLS certificate has a short key (RSA/DSA under 2048 bits, EC under 256) or a weak signature.

    Why it matters: short keys and MD5/SHA-1 signatures can be broken or forged.
    Fix: reissue with RSA 2048+ (3072 preferred) or ECDSA P-256, signed with SHA-256 or better.
    """
    for service, cert in certificates(host):
        problems = []
        key = cert.table("pubkey")
        key_type, bits = (key.text("type") or "").lower(), key.text("bits") or ""
        size = whole_or_none(bits, "bits", digits=6)
        if size is not None and key_type in MIN_KEY_BITS and size < MIN_KEY_BITS[key_type]:
            problems.append(f"{key_type.upper()} key of {bits} bits (minimum {MIN_KEY_BITS[key_type]})")
        signature = cert.text("sig_algo") or ""
        if any(weak.lower() in signature.lower() for weak in WEAK_SIGNATURES):
            problems.append(f"signature algorithm {signature}")
        if problems:
            yield Weakness.on(
                service, severity=Severity.MEDIUM, title=f"Weak TLS certificate key on {service.endpoint}",
                evidence=f"ssl-cert on {service.endpoint}: {'; '.join(problems)}",
                remediation="Reissue the certificate with an RSA 2048-bit (or larger) or ECDSA P-256 "
                            "key, signed with SHA-256.")


# --- SSH -----------------------------------------------------------------------------------

@check("WA507", "configs", "ssh-password-auth", scripts=("ssh-auth-methods",),
       script_args=("ssh.user=root",))
def ssh_password_auth(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """SSH server offers password logins, asked as the root account.

    Why it matters: password logins over SSH are brute-forced constantly, and a server that offers
    them to root invites attacks on the most powerful account. (Whether `PermitRootLogin` itself is
    on cannot be seen from the network; the host-evidence checks read sshd_config for that.)
    Fix: `PasswordAuthentication no` and `KbdInteractiveAuthentication no` with key-based logins,
    and `PermitRootLogin no` (or `prohibit-password`).
    """
    for service, result in with_script(host, "ssh-auth-methods"):
        methods = result.data.table("Supported authentication methods").strings()
        offered = [m for m in methods if m in ("password", "keyboard-interactive")]
        if offered:
            yield Weakness.on(
                service, severity=Severity.MEDIUM,
                title=f"SSH offers password logins to root on {service.endpoint}",
                evidence=f"ssh-auth-methods as user root on {service.endpoint}: {', '.join(methods)}",
                remediation="Set PasswordAuthentication no and KbdInteractiveAuthentication no in "
                            "sshd_config, use SSH keys, and set PermitRootLogin no (or prohibit-password).")


@check("WA508", "configs", "ssh-legacy-algorithms", scripts=("ssh2-enum-algos",))
def ssh_legacy_algorithms(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """SSH server offers legacy key exchange, host key, cipher or MAC algorithms.

    Why it matters: SHA-1 key exchange, CBC ciphers, DSA keys and MD5 MACs have known weaknesses
    and are kept only for clients that should themselves be upgraded (medium). Apart from them,
    at low: `ssh-rsa` host key signatures use SHA-1, which is practical to collide (OpenSSH
    turned them off by default in 8.8), and `hmac-sha1` MACs are still in OpenSSH's default
    list but have no place beside the SHA-2 and UMAC MACs every current client speaks.
    Fix: remove them from `KexAlgorithms`, `HostKeyAlgorithms`, `Ciphers` and `MACs` in sshd_config
    (the OpenSSH defaults of Debian 12 and later are sound apart from the SHA-1 MACs).
    """
    for service, result in with_script(host, "ssh2-enum-algos"):
        for patterns, severity, subject, what in (
                (SSH_LEGACY, Severity.MEDIUM, service.endpoint, "Legacy SSH algorithms"),
                (SSH_SHA1, Severity.LOW, f"{service.endpoint} sha-1", "SHA-1 SSH algorithms")):
            found = [f"{group.split('_algorithms')[0]}: {name}" for group, group_patterns in patterns.items()
                     for name in result.data.table(group).strings() if any(p.search(name) for p in group_patterns)]
            if found:
                weakness = Weakness.on(
                    service, severity=severity, title=f"{what} offered on {service.endpoint}",
                    evidence=f"ssh2-enum-algos on {service.endpoint}: {listed_names(found, 10)}",
                    remediation="Remove the listed algorithms from KexAlgorithms, HostKeyAlgorithms, "
                                "Ciphers and MACs in sshd_config, then restart sshd.")
                yield dataclasses.replace(weakness, subject=subject)


# --- SMB -----------------------------------------------------------------------------------

@check("WA509", "configs", "smb-v1-enabled", scripts=("smb-protocols",))
def smb_v1_enabled(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """SMB server accepts SMBv1.

    Why it matters: SMBv1 carried WannaCry and NotPetya (EternalBlue) and has no modern protections.
    Fix: disable SMBv1 (Windows: `Set-SmbServerConfiguration -EnableSMB1Protocol $false`;
    Samba: `server min protocol = SMB2_10`).
    """
    for result in host.host_scripts:
        if result.id != "smb-protocols":
            continue
        dialects = result.data.table("dialects").strings()
        if any("SMBv1" in d or d.startswith("NT LM 0.12") for d in dialects):
            yield Weakness(subject="smb", severity=Severity.HIGH, title="SMBv1 enabled",
                           evidence=f"smb-protocols: dialects {', '.join(dialects)}",
                           remediation="Disable SMBv1 on this host (Windows: Set-SmbServerConfiguration "
                                       "-EnableSMB1Protocol $false; Samba: server min protocol = SMB2_10).",
                           port=_smb_port(host), protocol="tcp")


@check("WA510", "configs", "smb-signing-not-required", scripts=("smb2-security-mode", "smb-security-mode"))
def smb_signing_not_required(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """SMB server does not require message signing.

    Why it matters: without required signing, an attacker on the network can relay captured
    logins to this server (NTLM relay) and act as the user.
    Fix: require signing (Group Policy "Microsoft network server: Digitally sign communications
    (always)"; Samba: `server signing = mandatory`).
    """
    evidence = []
    for result in host.host_scripts:
        if result.id == "smb2-security-mode":
            for dialect, value in result.data.keyed:
                modes = value.strings() if isinstance(value, ScriptTable) else (value,)
                evidence += [f"SMB {dialect}: {m}" for m in modes if "not required" in m or "disabled" in m]
        elif result.id == "smb-security-mode":
            signing = result.data.text("message_signing")
            if signing and signing != "required":
                evidence.append(f"SMBv1 message_signing: {signing}")
    if evidence:
        yield Weakness(subject="smb", severity=Severity.MEDIUM, title="SMB signing not required",
                       evidence=f"smb2-security-mode/smb-security-mode: {'; '.join(evidence)}",
                       remediation="Require SMB signing on this server (GPO 'Digitally sign "
                                   "communications (always)'; Samba: server signing = mandatory).",
                       port=_smb_port(host), protocol="tcp")


def _smb_port(host: Host) -> int | None:
    for service in host.open_services():
        if service.name in ("microsoft-ds", "netbios-ssn") and service.protocol == "tcp":
            return service.port
    return None


# --- cleartext and anonymous access --------------------------------------------------------

@check("WA511", "configs", "ftp-anonymous", scripts=("ftp-anon",))
def ftp_anonymous(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """FTP server allows anonymous login.

    Why it matters: anyone on the network can read (and, if writable, plant) files.
    Fix: disable anonymous access (vsftpd: `anonymous_enable=NO`) or move public files to HTTPS.
    """
    for service, result in with_script(host, "ftp-anon"):
        if "Anonymous FTP login allowed" not in result.output:
            continue
        writable = "writeable" in result.output.lower() or "writable" in result.output.lower()
        yield Weakness.on(
            service, severity=Severity.HIGH if writable else Severity.MEDIUM,
            title=f"Anonymous FTP login allowed on {service.endpoint}" + (" (writable)" if writable else ""),
            evidence=f"ftp-anon on {service.endpoint}: {result.output.splitlines()[0]}"
                     + ("; a writable directory was listed" if writable else ""),
            remediation="Disable anonymous FTP (vsftpd: anonymous_enable=NO; IIS: disable anonymous "
                        "authentication) or publish the files over HTTPS instead.")


@check("WA512", "configs", "cleartext-login-service")
def cleartext_login_service(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A login or file-transfer service that sends passwords in clear text (Telnet, FTP, rlogin, rsh).

    Why it matters: anyone on the path can read the credentials and the session.
    Fix: switch off the service and use SSH/SFTP (or FTPS with TLS required) instead.
    """
    for service in host.open_services():
        known = CLEARTEXT_SERVICES.get(service.name)
        if known is None or service.tunnel == "ssl":
            continue
        label, severity = known
        product = " ".join(p for p in (service.product, service.version) if p)
        yield Weakness.on(
            service, severity=severity, title=f"Cleartext {label} service on {service.endpoint}",
            evidence=f"nmap -sV on {service.endpoint}: {service.name}" + (f" ({product})" if product else ""),
            remediation=f"Turn off {label} on this host and use SSH/SFTP instead; if it must stay, "
                        "require TLS and restrict it to a management network.")


@check("WA513", "configs", "snmp-default-community", scripts=("snmp-info",))
def snmp_default_community(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """SNMP answers the default community string "public".

    Why it matters: the community is a shared password everyone knows; SNMP data maps the
    network, and a writable community can reconfigure devices.
    Fix: disable SNMPv1/v2c, or set a long random community with a source ACL; prefer SNMPv3
    with authPriv.
    """
    for service in host.open_services():
        if service.name != "snmp":
            continue
        result = service.script("snmp-info")
        answered = bool(result and result.data.keyed) or "public" in service.extrainfo.split()
        if answered:
            yield Weakness.on(
                service, severity=Severity.HIGH,
                title=f"SNMP answers the default community 'public' on {service.endpoint}",
                evidence=f"snmp-info/-sV on {service.endpoint}: agent answered with community 'public'"
                         + (f" ({service.product})" if service.product else ""),
                remediation="Remove the 'public' community; use SNMPv3 (authPriv) or a long random "
                            "community restricted to the monitoring server's address.")


def _datastore_without_auth(service: Service) -> str | None:
    """Which datastore answered unauthenticated, or None."""
    redis = service.script("redis-info")
    if redis is not None and redis.data.text("Version"):
        return "Redis"
    mongo = service.script("mongodb-databases")
    if mongo is not None and mongo.data.get("databases") is not None:
        return "MongoDB"
    memcached = service.script("memcached-info")
    if memcached is not None and (memcached.data.text("Authentication") == "no"
                                  or memcached.data.text("Process ID")):
        return "Memcached"
    if (service.product.startswith("Elasticsearch REST API") and service.version
            and "Shield" not in service.extrainfo):
        return "Elasticsearch"
    return None


@check("WA514", "configs", "datastore-no-auth", scripts=("redis-info", "mongodb-databases", "memcached-info"),
       ports=(6379, 9200, 11211, 27017))
def datastore_no_auth(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A database or cache answers without authentication (Redis, MongoDB, Elasticsearch, Memcached).

    Why it matters: anyone who can reach it can read or wipe the data; unauthenticated Redis is a
    common route to running code on the server.
    Fix: require authentication (Redis `requirepass`/ACLs, MongoDB `security.authorization`,
    Elasticsearch security, Memcached SASL) and bind it to localhost or an application network.
    """
    for service in host.open_services():
        product = _datastore_without_auth(service)
        if product is None:
            continue
        severity = Severity.HIGH if product == "Memcached" else Severity.CRITICAL
        yield Weakness.on(
            service, severity=severity, title=f"{product} answers without authentication on {service.endpoint}",
            evidence=f"nmap on {service.endpoint}: {product} returned its data to an unauthenticated request",
            remediation=f"Turn on authentication for {product} and bind it to localhost or a private "
                        "application network; firewall the port from user networks.")


@check("WA515", "configs", "management-interface-exposed", scripts=("rdp-enum-encryption", "vnc-info"),
       ports=(3389, 5900, 5985, 5986))
def management_interface_exposed(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A remote management interface (RDP, VNC, WinRM) is reachable: flagged for review.

    Why it matters: remote management is the first thing ransomware operators try; it should be
    reachable only from a management network or through a VPN with MFA.
    Fix: confirm it is needed; restrict it by firewall to the management network; require MFA or
    Network Level Authentication.
    """
    for service in host.open_services():
        label = MANAGEMENT_SERVICES.get(service.name)
        if label is None and "HTTPAPI" in service.product and service.port in (5985, 5986):
            label = MANAGEMENT_SERVICES["wsman"]
        if label is None:
            continue
        yield Weakness.on(
            service, severity=Severity.LOW, title=f"{label} reachable on {service.endpoint}",
            evidence=f"nmap -sV on {service.endpoint}: {service.name} "
                     f"{' '.join(p for p in (service.product, service.version) if p)}".rstrip(),
            remediation=f"Confirm {label} is needed here; allow it only from the management network "
                        "or a VPN with MFA.")

