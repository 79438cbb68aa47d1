"""The parts of a domain's mail posture that need a connection: its MTA-STS policy over HTTPS
and STARTTLS on its MX hosts.

Only addresses inside the estate's scope are contacted: the host name is resolved with the
domain checks' own resolver, and a name whose addresses are all outside scope is judged from
DNS alone. The connection goes to the in-scope address while the certificate is verified
against the name (the policy host, the MX host), never skipped.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.resolver
import urllib3

from warpagent.evidence.parsers import mail_records
from warpagent.model.domains import MtaStsPolicy, MxTls
from warpagent.text import shown

POLICY_PATH = "/.well-known/mta-sts.txt"
MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 policies are a few lines; more is not a policy
InScope = Callable[[str], bool]


def addresses(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    found: list[str] = []
    for kind in ("A", "AAAA"):
        try:
            answer = resolver.resolve(name, kind, raise_on_no_answer=False)
        except dns.exception.DNSException:
            continue
        found += [r.to_text() for r in answer.rrset or ()]
    return found


def _context(ca_bundle: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass(frozen=True)
class Unreachable:
    """The policy host did not answer (down, or a timeout): not a finding, a partial domain."""

    reason: str


def fetch_policy(domain: str, address: str, ca_bundle: Path | None,
                 timeout_s: float) -> MtaStsPolicy | str | Unreachable:
    """The policy from https://mta-sts.<domain>/.well-known/mta-sts.txt at `address`; or why it
    is not usable (a finding); or Unreachable."""
    host = f"mta-sts.{domain}"
    pool = urllib3.HTTPSConnectionPool(address, 443, server_hostname=host, assert_hostname=host,
                                       ssl_context=_context(ca_bundle), timeout=timeout_s, retries=False)
    try:
        response = pool.request("GET", POLICY_PATH, headers={"Host": host}, preload_content=False, redirect=False)
        try:
            body = response.read(MAX_POLICY_BYTES + 1)
        finally:
            response.release_conn()
    except urllib3.exceptions.SSLError as exc:
        return f"the certificate of {host} was not accepted ({shown(str(exc.args[-1] if exc.args else exc), 120)})"
    except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
            urllib3.exceptions.ReadTimeoutError) as exc:
        return Unreachable(f"the MTA-STS policy host did not answer on port 443 ({shown(str(exc), 120)})")
    except urllib3.exceptions.HTTPError as exc:
        return f"https://{host}{POLICY_PATH} could not be fetched ({shown(str(exc), 120)})"
    finally:
        pool.close()
    if response.status != 200:
        return f"https://{host}{POLICY_PATH} answered HTTP {response.status}"
    if len(body) > MAX_POLICY_BYTES:
        return f"https://{host}{POLICY_PATH} is over {MAX_POLICY_BYTES // 1024} KiB: not a policy"
    return mail_records.mta_sts_policy(body.decode("utf-8", "replace"))


class _ToAddress(smtplib.SMTP):
    """SMTP to a fixed address, speaking to it (and checking its certificate) as `host`."""

    def __init__(self, address: str, timeout_s: float) -> None:
        self._address = address
        super().__init__(timeout=timeout_s, local_hostname="warpagent.invalid")

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        self._host = host  # starttls() verifies the certificate against it
        return socket.create_connection((self._address, port), timeout)


def probe_starttls(host: str, address: str, ca_bundle: Path | None, timeout_s: float) -> MxTls:
    """EHLO, then STARTTLS with the certificate verified for `host`; QUIT. Nothing is sent."""
    client = _ToAddress(address, timeout_s)
    try:
        client.connect(host, 25)
        client.ehlo()
        if not client.has_extn("starttls"):
            return MxTls(host=host, offered=False)
        try:
            client.starttls(context=_context(ca_bundle))
        except ssl.SSLCertVerificationError as exc:
            return MxTls(host=host, offered=True, problem=f"certificate not valid for {host} ({exc.verify_message})")
        except (ssl.SSLError, smtplib.SMTPException) as exc:
            return MxTls(host=host, offered=True, problem=f"TLS handshake failed ({shown(str(exc), 100)})")
        return MxTls(host=host, offered=True)
    except (OSError, smtplib.SMTPException) as exc:
        return MxTls(host=host, offered=False, problem=f"could not talk SMTP on port 25 ({shown(str(exc), 100)})")
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
