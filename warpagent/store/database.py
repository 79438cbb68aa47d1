"""Where the findings store lives: a SQLite file (the embedded default) or a PostgreSQL database
named by URL, behind one SQLAlchemy code path.

SQLite writes begin with BEGIN IMMEDIATE (one writer at a time, WAL for readers beside it);
PostgreSQL writes take a transaction-scoped advisory lock, so two agents or workers writing one
store serialise the same way. Passwords never come from the config: libpq reads PGPASSWORD or
~/.pgpass.
"""

from __future__ import annotations

import hashlib
import os
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

_engines: OrderedDict[str, sa.Engine] = OrderedDict()
_prepared: set[tuple[str, str]] = set()  # (database, schema) already created or migrated by this process
_engines_lock = threading.Lock()
KEPT_ENGINES = 8  # a process uses one or two stores; tests open hundreds, so the oldest are closed


@dataclass(frozen=True)
class StoreLocation:
    """The store as the config names it: a SQLite path, or a database URL."""

    url: str  # a SQLAlchemy URL
    path: Path | None  # the SQLite file, when it is one
    state_dir: Path  # where files that belong with the store live (daemon lock, report copies)

    @staticmethod
    def parse(value: str | Path, base_dir: Path) -> StoreLocation:
        text = str(value)
        if "://" in text:
            url = "postgresql+psycopg://" + text.split("://", 1)[1] if text.split("://", 1)[0] in (
                "postgresql", "postgres") else text
            return StoreLocation(url=url, path=None, state_dir=base_dir)
        path = Path(os.path.expanduser(text))
        path = path if path.is_absolute() else base_dir / path
        return StoreLocation(url=f"sqlite:///{path}", path=path, state_dir=path.parent)

    @staticmethod
    def of(value: StoreLocation | str | Path) -> StoreLocation:
        return value if isinstance(value, StoreLocation) else StoreLocation.parse(value, Path.cwd())

    @property
    def is_sqlite(self) -> bool:
        return self.path is not None

    def exists(self) -> bool:
        """Whether there is a store to read (a database server is assumed to hold one)."""
        return self.path.exists() if self.path is not None else True

    def creatable(self) -> str:
        """Why a SQLite store that does not exist yet could not be created there ("" when it could)."""
        if self.path is None or self.path.exists():
            return ""
        ancestor = self.path.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            return f"{ancestor} is a file, not a folder"
        if not os.access(ancestor, os.W_OK | os.X_OK):
            return f"{ancestor} cannot be written by this user"
        return ""

    def __str__(self) -> str:
        if self.path is not None:
            return str(self.path)
        return make_url(self.url).render_as_string(hide_password=True)


def url_has_credentials(url: str) -> bool:
    """Whether an http(s) URL carries a user name or password (userinfo before the host)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return parts.username is not None or parts.password is not None


def url_password(url: str) -> bool:
    """Whether a database URL carries a password (secrets never go in the config)."""
    try:
        return bool(make_url(url).password)
    except sa.exc.ArgumentError:
        return False


def engine(location: StoreLocation) -> sa.Engine:
    """One engine, with a small pool of open connections, per database for the process."""
    with _engines_lock:
        found = _engines.get(location.url)
        if found is not None:
            _engines.move_to_end(location.url)
            return found
        if location.is_sqlite:
            made = sa.create_engine(location.url, pool_size=1, max_overflow=8,
                                    connect_args={"timeout": 30, "check_same_thread": False})

            @sa.event.listens_for(made, "connect")
            def _connect(dbapi: Any, _record: Any) -> None:
                dbapi.isolation_level = None  # transactions are begun below, so writes can be IMMEDIATE
                dbapi.execute("PRAGMA journal_mode=WAL")
                dbapi.execute("PRAGMA synchronous=FULL")
                dbapi.execute("PRAGMA foreign_keys=ON")

            @sa.event.listens_for(made, "begin")
            def _begin(connection: sa.Connection) -> None:
                # Writes take the write lock up front; a read-then-write transaction would otherwise fail
                # at once with "database is locked" when it upgrades while another writer is busy.
                # Reads run in autocommit: each statement its own snapshot, never an upgrade.
                if connection.info.pop("write", False):
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            made = sa.create_engine(location.url, pool_pre_ping=True, pool_size=5, max_overflow=15)
        _engines[location.url] = made
        while len(_engines) > KEPT_ENGINES:
            _engines.popitem(last=False)[1].dispose()
        return made


def prepare_once(location: StoreLocation, schema: str, prepare: Callable[[sa.Connection], None]) -> None:
    """Create or migrate a schema once per process: opening a store every few seconds (a report, a
    poll) must not take the write lock each time."""
    if (_identity(location), schema) in _prepared:
        return
    with writing(engine(location)) as connection:
        prepare(connection)
    _prepared.add((_identity(location), schema))


def _identity(location: StoreLocation) -> str:
    """The database as this process last saw it: a SQLite file replaced under the same name is new."""
    if location.path is None:
        return location.url
    try:
        stat = location.path.stat()
    except FileNotFoundError:
        return ""
    return f"{location.url}#{stat.st_dev}:{stat.st_ino}"


def forget(location: StoreLocation) -> None:
    """Drop the cached engine (tests that delete a database; the daemon's shutdown)."""
    with _engines_lock:
        made = _engines.pop(location.url, None)
        for key in [k for k in _prepared if k[0].split("#")[0] == location.url]:
            _prepared.discard(key)
    if made is not None:
        made.dispose()


@contextmanager
def reading(made: sa.Engine) -> Iterator[sa.Connection]:
    """A short read transaction (nothing held open between operations)."""
    with made.connect() as connection:
        yield connection


@contextmanager
def writing(made: sa.Engine, lock: str = "store") -> Iterator[sa.Connection]:
    """One write transaction, serialised with every other writer holding the same `lock`; rolled back on
    error. SQLite has one writer per file anyway; PostgreSQL takes an advisory lock named after `lock`."""
    with made.connect() as connection:
        connection.info["write"] = True
        with connection.begin():
            if connection.dialect.name == "postgresql":
                key = int.from_bytes(hashlib.sha256(f"warpagent/{lock}".encode()).digest()[:8], "big", signed=True)
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            yield connection
