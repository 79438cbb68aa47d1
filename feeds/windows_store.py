"""The intel store's table of Windows updates (MSRC): how it is written and read back."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable

from feeds.model import WindowsUpdate

SCHEMA = """
CREATE TABLE windows_update (month TEXT NOT NULL, released TEXT NOT NULL, build INTEGER NOT NULL,
                             server INTEGER NOT NULL, ubr INTEGER NOT NULL, kb TEXT NOT NULL, kind TEXT NOT NULL,
                             esu INTEGER NOT NULL, product TEXT NOT NULL, cves TEXT NOT NULL, exploited TEXT NOT NULL);
CREATE INDEX windows_update_line ON windows_update (build, server);
"""


def insert(db: sqlite3.Connection, updates: Iterable[WindowsUpdate]) -> None:
    # a month's document loaded twice (a raw cache and an import) keeps one copy of each fix
    db.executemany("INSERT INTO windows_update VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   ((u.month, u.released.isoformat(), u.build, int(u.server), u.ubr, u.kb, u.kind, int(u.esu),
                     u.product, json.dumps(u.cves), json.dumps(u.exploited)) for u in dict.fromkeys(updates)))


def line(db: sqlite3.Connection, build: int, server: bool) -> tuple[WindowsUpdate, ...]:
    """Every fix for one Windows line (build, client or server), by month."""
    rows = db.execute("SELECT * FROM windows_update WHERE build = ? AND server = ? ORDER BY month, ubr",
                      (build, int(server))).fetchall()
    return tuple(WindowsUpdate(month=r["month"], released=dt.date.fromisoformat(r["released"]), build=r["build"],
                               server=bool(r["server"]), ubr=r["ubr"], kb=r["kb"], kind=r["kind"], esu=bool(r["esu"]),
                               product=r["product"], cves=tuple(json.loads(r["cves"])),
                               exploited=tuple(json.loads(r["exploited"]))) for r in rows)


def months(db: sqlite3.Connection) -> tuple[str, ...]:
    return tuple(r[0] for r in db.execute("SELECT DISTINCT month FROM windows_update ORDER BY month"))
