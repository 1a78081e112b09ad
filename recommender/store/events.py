"""Customers, products and events: the writes behind the doors, and the reads that serve them."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any

import sqlite_utils

from recommender.store.connection import _changes, transaction, utcnow
from recommender.store.consents import PERSONALIZATION, granted_join
from recommender.store.rows import CustomerRow, EventRow, ProductRow

# --- writes ------------------------------------------------------------------

CUSTOMER_COLUMNS = ("id", "email", "name", "birth_date", "anniversary_date", "timezone", "created_at")
PRODUCT_COLUMNS = ("id", "name", "category", "price", "in_stock", "hidden", "available_until", "description")
INTERACTION_COLUMNS = ("customer_id", "product_id", "event_type", "quantity", "occurred_at")


def _upsert_sql(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """An upsert that writes an existing row only when a column differs (an identical row is left alone,
    so the statement's row count is the rows inserted or changed, and nothing is rewritten for nothing)."""
    cols = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    values = [c for c in columns if c not in key]
    updates = ", ".join(f"{c} = excluded.{c}" for c in values)
    differs = " OR ".join(f"{c} IS NOT excluded.{c}" for c in values)
    return (
        f"INSERT INTO {table} ({cols}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates} WHERE {differs}"
    )


def upsert_customers(db: sqlite_utils.Database, rows: Iterable[CustomerRow]) -> int:
    """Insert or update customers (a :class:`CustomerRow` is a tuple in ``CUSTOMER_COLUMNS`` order);
    returns how many rows were inserted or changed (a row equal to the stored one is neither)."""
    with transaction(db):
        return max(db.conn.executemany(_upsert_sql("customers", CUSTOMER_COLUMNS, ("id",)), rows).rowcount, 0)


def upsert_products(db: sqlite_utils.Database, rows: Iterable[ProductRow]) -> int:
    """Insert or update products (a :class:`ProductRow` is a tuple in ``PRODUCT_COLUMNS`` order);
    returns how many rows were inserted or changed (a row equal to the stored one is neither)."""
    with transaction(db):
        return max(
            db.conn.executemany(_upsert_sql("products", PRODUCT_COLUMNS, ("id",)), _full_products(rows)).rowcount, 0
        )


def _full_products(rows: Iterable[Sequence[Any]]) -> Iterable[Sequence[Any]]:
    """Product rows of every width callers write: a row without the later columns (``description``) has them NULL."""
    width = len(PRODUCT_COLUMNS)
    for r in rows:
        yield r if len(r) == width else (*r, *([None] * (width - len(r))))


def compact_product_changes(db: sqlite_utils.Database) -> int:
    """Keep only the newest ``product_changes`` row per product; returns how many rows went.

    Lossless for every reader: one that last saw sequence ``s`` asks for the
    products changed after ``s``, and a product's newest row is after ``s``
    whenever any of its rows was. The newest row overall always stays, so the
    sequence never goes back.
    """
    with transaction(db):
        before = _changes(db)
        db.execute(
            "DELETE FROM product_changes WHERE seq NOT IN (SELECT max(seq) FROM product_changes GROUP BY product_id)"
        )
        return _changes(db) - before


def insert_missing(db: sqlite_utils.Database, table: str, rows: Sequence[CustomerRow] | Sequence[ProductRow]) -> int:
    """Insert rows whose id is new, leaving existing ones untouched; returns how many were new."""
    columns = {"customers": CUSTOMER_COLUMNS, "products": PRODUCT_COLUMNS}[table]
    sql = f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    with transaction(db):
        # The statement's own row count: total_changes would also count the rows that triggers
        # write (a new product is logged in product_changes).
        return max(db.conn.executemany(sql, _full_products(rows) if table == "products" else rows).rowcount, 0)


# An import binds the first five fields of an :class:`EventRow` (``INTERACTION_COLUMNS``) and replaces
# only the quantity.
_IMPORT_FIELDS = operator.itemgetter(slice(0, len(INTERACTION_COLUMNS)))
UPSERT_INTERACTIONS = (
    f"INSERT INTO interactions ({', '.join(INTERACTION_COLUMNS)}) VALUES ({', '.join('?' * len(INTERACTION_COLUMNS))}) "
    "ON CONFLICT (customer_id, product_id, event_type, occurred_at) WHERE natural_key = 1 "
    "DO UPDATE SET quantity = excluded.quantity WHERE quantity IS NOT excluded.quantity"
)
# An import at least this big, and at least as big as the table it goes into, writes its rows with the
# table's secondary indexes set aside and builds them again after (one sort each instead of a random
# b-tree insert per row and index). Only the natural key's unique index, which the upsert needs, stays.
BULK_IMPORT_ROWS = 20_000
# The page cache while an import writes (KiB; SQLite's default is 2 MiB): the indexes of a large import
# stay in memory instead of being read back from the OS page by page.
IMPORT_CACHE_KIB = 256 * 1024


def upsert_interactions(db: sqlite_utils.Database, rows: Iterable[EventRow]) -> int:
    """Store imported events keyed by (customer, product, type, time); a repeated key replaces the quantity.

    The key is the imports' rule: an imported file is a summary, one row per
    key (``natural_key`` = 1, as is every row stored before schema v10). Live
    events (``natural_key`` = 0, see :data:`LIVE_INSERT`) are outside it: an
    import never touches them, nor they it.
    Replacing (not adding) is what makes re-importing a file a no-op; a stored
    list id or price is left as it is. Returns the number of rows that were new.
    """
    return import_interactions(db, rows)[0]


def import_interactions(
    db: sqlite_utils.Database, rows: Iterable[EventRow | tuple], expected: int | None = None
) -> tuple[int, int]:
    """:func:`upsert_interactions`, counted: ``(new rows, rows whose quantity changed)``.

    A row equal to the stored one is not written (nor counted). ``expected``
    (how many rows ``rows`` holds) lets a large import into a smaller table
    set the secondary indexes aside and build them again after
    (:data:`BULK_IMPORT_ROWS`): the same indexes, the same rows, in the same
    transaction (a failure restores both).
    """
    conn = db.conn
    with transaction(db):
        before = db.execute("SELECT count(*) FROM interactions").fetchone()[0]
        cache = conn.execute("PRAGMA cache_size").fetchone()[0]
        conn.execute(f"PRAGMA cache_size = {-IMPORT_CACHE_KIB}")
        try:
            rebuild = []
            if expected is not None and expected >= max(before, BULK_IMPORT_ROWS):
                rebuild = conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'interactions' "
                    "AND sql IS NOT NULL AND name != 'interactions_natural_key' ORDER BY name"
                ).fetchall()
                for name, _ in rebuild:
                    conn.execute(f'DROP INDEX "{name}"')
            # ``row[:5]``: the import columns, as a plain tuple, which sqlite3 binds fastest (a named tuple
            # takes its slow path; half a million rows per import). A list id or price is the live door's
            # (:func:`add_interactions`); imports carry neither, and a row given here keeps none.
            written = max(conn.executemany(UPSERT_INTERACTIONS, map(_IMPORT_FIELDS, rows)).rowcount, 0)
            for _, sql in rebuild:
                conn.execute(sql)
        finally:
            conn.execute(f"PRAGMA cache_size = {int(cache)}")
        new = db.execute("SELECT count(*) FROM interactions").fetchone()[0] - before
        return new, written - new


# Live events: :class:`EventRow` (``(customer, product, type, quantity, occurred_at[, list_id, price])``).
# Events are a log: every event is a row of its own (``natural_key`` 0, outside the
# imports' unique key), never merged with another, whatever the second; nothing rewrites it.
LIVE_INSERT = (
    "INSERT INTO interactions (customer_id, product_id, event_type, quantity, occurred_at, list_id, price, "
    "natural_key) VALUES (?, ?, ?, ?, ?, ?, ?, 0)"
)


def _live_row(row: Sequence[Any]) -> Sequence[Any]:
    return row if len(row) == 7 else list(row) + [None] * (7 - len(row))


def add_interactions(db: sqlite_utils.Database, rows: Sequence[EventRow]) -> list[int]:
    """Store live events, each a row of its own; returns their ids (the row ids), in order."""
    conn = db.conn
    with transaction(db):
        return [conn.execute(LIVE_INSERT, _live_row(r)).lastrowid for r in rows]


def add_keyed_interactions(db: sqlite_utils.Database, rows: Sequence[EventRow], event_ids: Sequence[str | None]) -> int:
    """Store live events that may carry a client ``event_id``; returns how many were stored.

    An id already in ``event_keys``, or seen earlier in ``rows``, is skipped
    (the client is retrying). The check and the inserts share one
    ``BEGIN IMMEDIATE`` transaction, so two workers given the same retry
    cannot both store it, and a failure leaves neither the event nor its id.
    """
    conn = db.conn
    wanted = [e for e in dict.fromkeys(event_ids) if e is not None]
    stored = 0
    with transaction(db):
        known: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            known.update(
                r[0]
                for r in db.execute(
                    f"SELECT event_id FROM event_keys WHERE event_id IN ({','.join('?' * len(chunk))})", chunk
                )
            )
        received = utcnow()
        for row, event_id in zip(rows, event_ids):
            if event_id is not None and event_id in known:
                continue
            interaction_id = conn.execute(LIVE_INSERT, _live_row(row)).lastrowid
            if event_id is not None:
                conn.execute(
                    "INSERT INTO event_keys (event_id, interaction_id, received_at) VALUES (?, ?, ?)",
                    [event_id, interaction_id, received],
                )
                known.add(event_id)
            stored += 1
    return stored


# --- reads -------------------------------------------------------------------


def unrecommendable_products(db: sqlite_utils.Database, today: str) -> set[str]:
    """Products that must never be shown: hidden, or past their ``available_until`` date."""
    return {
        r[0]
        for r in db.execute(
            "SELECT id FROM products WHERE hidden = 1 OR (available_until IS NOT NULL AND available_until < ?)",
            [today],
        )
    }


def customer_events(db: sqlite_utils.Database, customer_id: str) -> list[tuple[str, str, float, int]]:
    """``(product_id, event_type, quantity, occurred_at)`` of one customer, oldest first."""
    return db.execute(
        "SELECT product_id, event_type, quantity, occurred_at FROM interactions "
        "WHERE customer_id = ? ORDER BY occurred_at",
        [customer_id],
    ).fetchall()


def all_products(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT id, name, category, price, in_stock, hidden, available_until FROM products"))


def existing_of(db: sqlite_utils.Database, table: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` exist in ``customers`` or ``products``."""
    if table not in ("customers", "products"):
        raise ValueError(table)
    found: set[str] = set()
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        found.update(r[0] for r in db.execute(f"SELECT id FROM {table} WHERE id IN ({marks})", chunk))
    return found


def popular_since(
    db: sqlite_utils.Database, since: int, limit: int, purpose: str = PERSONALIZATION
) -> list[tuple[str, int]]:
    """Products by distinct consenting customers with an event at or after ``since`` (Unix seconds)."""
    return db.execute(
        "SELECT i.product_id, count(DISTINCT i.customer_id) AS n FROM interactions i "
        + granted_join("i.customer_id")
        + "WHERE i.occurred_at >= ? GROUP BY i.product_id ORDER BY n DESC, i.product_id LIMIT ?",
        [purpose, since, limit],
    ).fetchall()


def consented_event_rows(db: sqlite_utils.Database, purpose: str) -> list[tuple[str, str, str, float, int]]:
    """``(customer_id, product_id, event_type, quantity, occurred_at)`` of every event of a customer
    who granted ``purpose``: the in-process read for shops small enough not to need the bulk reader."""
    return db.execute(
        "SELECT i.customer_id, i.product_id, i.event_type, CAST(i.quantity AS REAL), CAST(i.occurred_at AS INTEGER) "
        "FROM interactions i " + granted_join("i.customer_id"),
        [purpose],
    ).fetchall()


def interaction_count(db: sqlite_utils.Database) -> int:
    """How many events are stored: a reader picks the in-process or the bulk read by it."""
    return int(db.execute("SELECT count(*) FROM interactions").fetchone()[0])
