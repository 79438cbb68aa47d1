"""`warpagent hub serve`: medallion's TAXII 2.1 application on warpagent's SQL backend, with
per-account passwords and roles, served by cheroot (a production WSGI server with TLS).

medallion is the server: its Flask views implement TAXII 2.1. warpagent gives it a backend
(warpagent.hub.backend, loaded by name the way medallion loads its own) and a password check;
it never re-implements the protocol.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import signal
import threading
from collections.abc import Mapping
from types import FrameType
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from warpagent.config import HubSettings, Settings
from warpagent.errors import ConfigError, WarpagentError
from warpagent.sharing.taxii import Secret

log = logging.getLogger(__name__)

HASH_SCHEME = "pbkdf2_sha256"
HASH_ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
_app_lock = threading.Lock()


class HubError(WarpagentError):
    """The hub could not start or serve."""


def hash_password(password: str, iterations: int = HASH_ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    encode = lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")  # noqa: E731
    return f"{HASH_SCHEME}${iterations}${encode(salt)}${encode(digest)}"


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PasswordCheck:
    """Basic-auth passwords, from the environment or as PBKDF2 hashes.

    PBKDF2 is slow on purpose; a member's agent makes hundreds of requests in a pull, so a
    password that verified once is remembered as a keyed digest (never the password) for the
    life of the process.
    """

    def __init__(self, plain: Mapping[str, str], hashed: Mapping[str, str]) -> None:
        self._plain = dict(plain)
        self._hashed = dict(hashed)
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __call__(self, username: str, password: str) -> str | None:
        if not username or password is None:
            return None
        if username in self._plain:
            return username if hmac.compare_digest(password.encode(), self._plain[username].encode()) else None
        stored = self._hashed.get(username)
        if stored is None:
            return None
        fingerprint = hmac.new(self._key, password.encode(), hashlib.sha256).digest()
        with self._lock:
            known = self._verified.get(username)
        if known is not None:
            return username if hmac.compare_digest(known, fingerprint) else None
        _scheme, iterations, salt, digest = stored.split("$")
        computed = hashlib.pbkdf2_hmac("sha256", password.encode(), _decode(salt), int(iterations))
        if not hmac.compare_digest(computed, _decode(digest)):
            return None
        with self._lock:
            self._verified[username] = fingerprint
        return username


def password_check(hub: HubSettings, secret: Secret) -> PasswordCheck:
    plain = {}
    for index, user in enumerate(hub.users):
        if user.password_env:
            plain[user.name] = secret(user.password_env, f"hub.users[{index}].password_env")
    return PasswordCheck(plain, {u.name: u.password_hash for u in hub.users if u.password_hash})


def build_app(settings: Settings) -> Any:
    """medallion's Flask application, configured for this hub (one hub per process)."""
    hub = settings.hub
    if hub is None:
        raise ConfigError([f"{settings.source}: At 'hub': no hub section; add one (see config/README.md) to run "
                           "a WARP hub"])
    check = password_check(hub, settings.secret)
    import medallion  # medallion and Flask are loaded by the hub alone
    from medallion import application_instance as app

    with _app_lock:
        if getattr(app, "warpagent_hub", None) is not None:
            raise HubError("a hub is already configured in this process")
        try:
            backend = medallion.connect_to_backend({"module": "warpagent.hub.backend", "module_class": "HubBackend",
                                                    "settings": hub})
        except (SQLAlchemyError, ImportError, OSError) as exc:
            raise HubError(f"hub.store: cannot open {redacted(hub.database_url)} ({exc.__class__.__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}); check the path or URL") from None
        app.users_backend = {}  # medallion's plain-text user table is replaced by verify_password below
        app.taxii_config = {"max_page_size": hub.page_size}
        app.medallion_backend = backend
        medallion.register_blueprints(app)
        medallion.auth.verify_password(check)
        app.warpagent_hub = hub
    return app


def redacted(url: str) -> str:
    """A database URL fit for a log line (no password)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown without its credentials part at all
        return url.split("@")[-1]


def serve(settings: Settings, ready: threading.Event | None = None) -> None:
    """Serve until SIGTERM or Ctrl-C."""
    from cheroot import wsgi

    app = build_app(settings)
    hub = settings.hub
    assert hub is not None  # noqa: S101 - build_app refused a config without one
    server = wsgi.Server((hub.host, hub.port), app, numthreads=hub.threads, request_queue_size=64,
                         server_name="warpagent-hub")
    server.max_request_body_size = hub.max_request_bytes
    if hub.tls:
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        for path in (hub.tls.cert_file, hub.tls.key_file):
            if not path.is_file():
                raise ConfigError([f"{settings.source}: At 'hub.tls': {path} does not exist; check cert_file and "
                                   "key_file"])
        server.ssl_adapter = BuiltinSSLAdapter(str(hub.tls.cert_file), str(hub.tls.key_file))

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        try:
            server.prepare()
        except OSError as exc:
            raise HubError(f"hub: cannot listen on {hub.host}:{hub.port} ({exc.strerror or exc}); "
                           "change hub.host/hub.port or stop what holds it") from None
        log.info("hub: serving TAXII 2.1 at %s%s/ (%d accounts; store %s)", hub.base_url, hub.api_root,
                    len(hub.users), redacted(hub.database_url))
        if ready is not None:
            ready.set()
        server.serve()
    except KeyboardInterrupt:
        log.info("hub: stopping")
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
