"""The intel store's endoflife.date tables: products, their release cycles and the CPE keys
that find them; how they are written, and the cycle a version belongs to."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Sequence

from feeds import aliases, cpe
from feeds.model import EolCycle, EolProduct


def _eol_text(value: dt.date | bool) -> str:
    return value.isoformat() if isinstance(value, dt.date) else ("true" if value else "false")


def write(db: sqlite3.Connection, products: Sequence[EolProduct]) -> None:
    """Each product, its cycles, and every CPE key (its own and warpagent's aliases) that names it."""
    for product in products:
        db.execute("INSERT OR REPLACE INTO eol_product VALUES (?, ?, ?, ?, ?)",
                   (product.name, product.title, product.category, json.dumps(product.cpes),
                    json.dumps(product.purls)))
        db.executemany("INSERT INTO eol_cycle VALUES (?, ?, ?, ?, ?, ?, ?)",
                       ((product.name, c.cycle, c.release_date.isoformat() if c.release_date else None,
                         _eol_text(c.eol), c.latest, int(c.lts), c.codename) for c in product.cycles))
        keys = set()
        for text in product.cpes:
            try:
                keys.add(cpe.parse(text).key)
            except ValueError:
                continue
        keys |= {key for key, name in aliases.EOL_PRODUCTS_BY_CPE.items() if name == product.name}
        db.executemany("INSERT INTO eol_key VALUES (?, ?, ?)", ((v, p, product.name) for v, p in keys))


def eol_value(text: str) -> dt.date | bool:
    if text in ("true", "false"):
        return text == "true"
    return dt.date.fromisoformat(text)


def cycle_of(version: str, cycles: Sequence[EolCycle]) -> EolCycle | None:
    """The release cycle a version belongs to: the longest cycle that is a dotted prefix of it."""
    best: EolCycle | None = None
    for cycle in cycles:
        name = cycle.cycle
        if (version == name or version.startswith(name + ".") or version.startswith(name + "p")) and (
                best is None or len(name) > len(best.cycle)):
            best = cycle
    return best
