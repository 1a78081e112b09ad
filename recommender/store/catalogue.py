"""The reads behind a serving worker's catalogue: all products as columns, and the ``product_changes`` log."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlite_utils

# The product columns a catalogue keeps, in the order its rows hold them.
CATALOGUE_COLUMNS = "id, name, category, price, in_stock, hidden, available_until"


def latest_product_change(db: sqlite_utils.Database) -> int | None:
    """The newest ``product_changes`` sequence number (0 when empty); None on a schema without the table.

    None lets a worker still serve a database from before the change log: it
    then reloads every product each time instead of failing.
    """
    try:
        return int(db.execute("SELECT coalesce(max(seq), 0) FROM product_changes").fetchone()[0])
    except sqlite3.OperationalError:
        return None


def product_changes_after(db: sqlite_utils.Database, seq: int, limit: int) -> int:
    """How many change rows follow ``seq``, counted up to ``limit`` only.

    A worker asks whether a refresh is big enough for a thread of its own;
    counting a million changed rows would itself take a second.
    """
    return int(
        db.execute(
            "SELECT count(*) FROM (SELECT 1 FROM product_changes WHERE seq > ? LIMIT ?)", [seq, limit]
        ).fetchone()[0]
    )


def products_changed_after(db: sqlite_utils.Database, seq: int) -> list[str]:
    """Ids of the products changed (updated, added or deleted) after change number ``seq``."""
    return [r[0] for r in db.execute("SELECT DISTINCT product_id FROM product_changes WHERE seq > ?", [seq])]


def catalogue_rows(db: sqlite_utils.Database) -> list[tuple[Any, ...]]:
    """Every product as a tuple in :data:`CATALOGUE_COLUMNS` order, by id.

    Ordered by id under SQLite's BINARY collation, which is Python's ``str``
    order: the catalogue's arrays are searched by it. Tuples, not a dict per
    row: a million products load in seconds.
    """
    return db.execute(f"SELECT {CATALOGUE_COLUMNS} FROM products ORDER BY id").fetchall()


def catalogue_rows_of(db: sqlite_utils.Database, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """The products among ``ids`` that still exist, as tuples in :data:`CATALOGUE_COLUMNS` order.

    Read 500 ids per statement, under SQLite's limit on bound parameters.
    """
    rows: list[tuple[Any, ...]] = []
    for i in range(0, len(ids), 500):
        part = list(ids[i : i + 500])
        rows.extend(
            db.execute(f"SELECT {CATALOGUE_COLUMNS} FROM products WHERE id IN ({','.join('?' * len(part))})", part)
        )
    return rows
