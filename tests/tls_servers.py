"""TLS services on loopback addresses the test owns: ordinary HTTPS servers, and the odd one
that completes the TLS handshake and then never says a word (nmap's version detection waits
out every probe on it). Shared by tests/test_staged_scan.py and bench/stalled_service.py."""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def self_signed_context(folder: Path, name: str = "stalled.test", ciphers: str = "") -> ssl.SSLContext:
    """A server context with a self-signed certificate for `name` (what WA504 reports); with
    `ciphers` (OpenSSL's names), an RSA key, TLS 1.2 at most and only those suites."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if ciphers else ec.generate_private_key(
        ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(7).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=800))
            .sign(key, hashes.SHA256()))
    (folder / "self.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "self.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "self.pem", folder / "self.key")
    if ciphers:  # TLS 1.3's suites all have forward secrecy: a server of these suites alone stops at 1.2
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(ciphers)
    return context


def accept_each(listener: socket.socket, serve: Callable[[socket.socket], None], stop: threading.Event) -> None:
    """Serve each connection on a thread of its own until `stop` is set or the listener closes."""
    while not stop.is_set():
        try:
            conn, _peer = listener.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def _silent(listener: socket.socket, context: ssl.SSLContext, stop: threading.Event) -> None:
    def hold(conn: socket.socket) -> None:
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                while not stop.is_set() and tls.recv(4096):
                    pass  # read every probe, answer none, never close first
        except OSError:
            pass

    accept_each(listener, hold, stop)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    # a real server hangs up on a connection that stops talking; without this a probe that never
    # ends its line would hold a handler, and the "ordinary" host would stall like the silent one
    timeout = 3

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # nmap's probes end in TLS errors by design: not worth a traceback each


@contextmanager
def serving(folder: Path, https: Sequence[tuple[str, int]], silent: Sequence[tuple[str, int]],
            name: str = "stalled.test", ciphers: str = "") -> Iterator[None]:
    """HTTPS at each of `https`, the silent TLS service at each of `silent`, until the block ends;
    the certificate is self-signed for `name`."""
    context = self_signed_context(folder, name, ciphers)
    stop = threading.Event()
    servers: list[_Server] = []
    listeners: list[socket.socket] = []
    threads: list[threading.Thread] = []
    try:
        for address in https:
            server = _Server(address, _Quiet)
            server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
            servers.append(server)
            threads.append(threading.Thread(target=server.serve_forever, daemon=True))
        for address in silent:
            listener = socket.create_server(address)
            listeners.append(listener)
            threads.append(threading.Thread(target=_silent, args=(listener, context, stop), daemon=True))
        for thread in threads:
            thread.start()
        yield
    finally:
        stop.set()
        for server in servers:
            server.shutdown()
            server.server_close()
        for listener in listeners:
            listener.close()
