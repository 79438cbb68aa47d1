"""Serve fixed banners of old products on loopback, for nmap's version detection to fingerprint.

    python -m tests.banner_server 127.0.0.21:2121=ftp-vsftpd-2.3.4 127.0.0.21:8080=http-apache-2.2.34 ...

Each is the first bytes the real product sends (an FTP greeting, an SSH identification string,
an HTTP Server header); nothing behind them. Prints "ready" once every socket listens.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BANNERS = {
    "ftp-vsftpd-2.3.4": b"220 (vsFTPd 2.3.4)\r\n",
    "ssh-openssh-5.5p1-squeeze": b"SSH-2.0-OpenSSH_5.5p1 Debian-6+squeeze5\r\n",
    "ssh-openssh-9.2p1-deb12u3": b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
    "ssh-openssh-5.3": b"SSH-2.0-OpenSSH_5.3\r\n",
    "ssh-openssh-9.2p1": b"SSH-2.0-OpenSSH_9.2p1\r\n",
    "http-nginx-1.22.1": (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 25 Nov 2026 09:00:00 GMT\r\n"
                          b"Content-Type: text/html\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"),
    # hostile hosts (issue 28): banners that carry host names and addresses into nmap's fields
    "ssh-openssh-hostile": b"SSH-2.0-OpenSSH_5.5p1 Debian-6+squeeze5 srv-fin01.fenwickvale.local 10.20.0.77\r\n",
    "smtp-postfix-hostile": b"220 mail01.fenwickvale.gov.uk ESMTP Postfix (Debian/GNU) 10.20.0.78\r\n",
    "ftp-vsftpd-hostile": b"220 (vsFTPd 3.0.3 ftp01.fenwickvale.local 10.20.0.79)\r\n",
    "http-apache-hostile": (b"HTTP/1.1 200 OK\r\nDate: Wed, 25 Nov 2026 09:00:00 GMT\r\n"
                            b"Server: Apache/2.4.57 (Debian) srv-web01.fenwickvale.local 10.20.0.80\r\n"
                            b"X-Powered-By: PHP/7.4.3 srv-fin01.fenwickvale.local\r\n"
                            b"Content-Type: text/html\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"),
    # a printer's web page: nmap copies its Server header into the product (p/$1/ in nmap's database)
    "http-printer-hostile": (b"HTTP/1.1 200 OK\r\nServer: EWS-NICfenwickvale/2.1\r\nContent-Type: text/html\r\n"
                             b"Content-Length: 5\r\nConnection: close\r\n\r\nhello"),
    "http-apache-2.2.34": (b"HTTP/1.1 200 OK\r\nDate: Wed, 25 Nov 2026 09:00:00 GMT\r\nServer: Apache/2.2.34 (Unix)\r\n"
                           b"Content-Type: text/html\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"),
}


def serve(listener: socket.socket, banner: bytes, waits_for_request: bool) -> None:
    while True:
        conn, _peer = listener.accept()
        conn.settimeout(5)
        try:
            if waits_for_request:
                conn.recv(4096)
            conn.sendall(banner)
            if not waits_for_request:
                conn.recv(1024)  # hold the line as the real daemon would until the client speaks
        except OSError:
            pass
        finally:
            conn.close()


def main(specs: list[str]) -> None:
    for spec in specs:
        where, kind = spec.split("=")
        host, port = where.rsplit(":", 1)
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, int(port)))
        listener.listen(32)
        threading.Thread(target=serve, args=(listener, BANNERS[kind], kind.startswith("http")), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


@contextmanager
def running(*specs: str) -> Iterator[None]:
    """The banner server in a child process for the duration (stopped by its PID)."""
    process = subprocess.Popen([sys.executable, "-m", "tests.banner_server", *specs],
                               cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


if __name__ == "__main__":
    main(sys.argv[1:])
