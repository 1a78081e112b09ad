"""Customers, products and events: the writes behind the doors, and the reads that serve them."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import sqlite_utils

from recommender.store.connection import _changes, transaction, utcnow

# --- writes ------------------------------------------------------------------

CUSTOMER_COLUMNS = ("id", "email", "name", "birth_date", "anniversary_date", "timezone", "created_at")
PRODUCT_COLUMNS = ("id", "name", "category", "price", "in_stock", "hidden", "available_until")
INTERACTION_COLUMNS = ("customer_id", "product_id", "event_type", "quantity", "occurred_at")


def _upsert_sql(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    cols = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return (
        f"INSERT INTO {table} ({cols}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


def upsert_customers(db: sqlite_utils.Database, rows: Iterable[Sequence[Any]]) -> None:
    """Insert or update customers given as tuples in ``CUSTOMER_COLUMNS`` order."""
    with transaction(db):
        db.conn.executemany(_upsert_sql("customers", CUSTOMER_COLUMNS, ("id",)), rows)


def upsert_products(db: sqlite_utils.Database, rows: Iterable[Sequence[Any]]) -> None:
    """Insert or update products given as tuples in ``PRODUCT_COLUMNS`` order."""
    with transaction(db):
        db.conn.executemany(_upsert_sql("products", PRODUCT_COLUMNS, ("id",)), rows)


def compact_product_changes(db: sqlite_utils.Database) -> int:
    """Keep only the newest ``product_changes`` row per product; returns how many rows went.

    Lossless for every reader: one that last saw sequence ``s`` asks for the
    products changed after ``s``, and a product's newest row is after ``s``
    whenever any of its rows was. The newest row overall always stays, so the
    sequence never goes back.
    """
    with transaction(db):
        before = _changes(db)
        db.execute("DELETE FROM product_changes WHERE seq NOT IN "
                   "(SELECT max(seq) FROM product_changes GROUP BY product_id)")
        return _changes(db) - before


def insert_missing(db: sqlite_utils.Database, table: str, rows: Sequence[Sequence[Any]]) -> int:
    """Insert rows whose id is new, leaving existing ones untouched; returns how many were new."""
    columns = {"customers": CUSTOMER_COLUMNS, "products": PRODUCT_COLUMNS}[table]
    sql = f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    with transaction(db):
        # The statement's own row count: total_changes would also count the rows that triggers
        # write (a new product is logged in product_changes).
        return max(db.conn.executemany(sql, rows).rowcount, 0)


def upsert_interactions(db: sqlite_utils.Database, rows: Iterable[Sequence[Any]]) -> int:
    """Store events keyed by (customer, product, type, time); a repeated key replaces the quantity.

    Replacing (not adding) is what makes re-importing a file a no-op. Returns the
    number of rows that were new.
    """
    with transaction(db):
        before = db.execute("SELECT count(*) FROM interactions").fetchone()[0]
        db.conn.executemany(
            _upsert_sql("interactions", INTERACTION_COLUMNS, ("customer_id", "product_id", "event_type", "occurred_at")),
            rows,
        )
        return db.execute("SELECT count(*) FROM interactions").fetchone()[0] - before


# Live events: ``(customer, product, type, quantity, occurred_at[, list_id, price])``. A repeat of the same
# key within one second adds to the quantity; a list id or price it brings replaces the stored one.
LIVE_INSERT = (
    "INSERT INTO interactions (customer_id, product_id, event_type, quantity, occurred_at, list_id, price) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id, product_id, event_type, occurred_at) "
    "DO UPDATE SET quantity = quantity + excluded.quantity, list_id = coalesce(excluded.list_id, list_id), "
    "price = coalesce(excluded.price, price) RETURNING id"
)


def _live_row(row: Sequence[Any]) -> list[Any]:
    return list(row) + [None] * (7 - len(row))


def add_interactions(db: sqlite_utils.Database, rows: Sequence[Sequence[Any]]) -> list[int]:
    """Store live events; a repeat of the same key within one second adds to its quantity."""
    sql = LIVE_INSERT
    with transaction(db):
        return [db.execute(sql, _live_row(r)).fetchone()[0] for r in rows]


def add_keyed_interactions(db: sqlite_utils.Database, rows: Sequence[Sequence[Any]],
                           event_ids: Sequence[str | None]) -> int:
    """Store live events that may carry a client ``event_id``; returns how many were stored.

    An id already in ``event_keys``, or seen earlier in ``rows``, is skipped
    (the client is retrying). The check and the inserts share one
    ``BEGIN IMMEDIATE`` transaction, so two workers given the same retry
    cannot both store it, and a failure leaves neither the event nor its id.
    """
    sql = LIVE_INSERT
    wanted = [e for e in dict.fromkeys(event_ids) if e is not None]
    stored = 0
    with transaction(db):
        known: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            known.update(r[0] for r in db.execute(
                f"SELECT event_id FROM event_keys WHERE event_id IN ({','.join('?' * len(chunk))})", chunk))
        received = utcnow()
        for row, event_id in zip(rows, event_ids):
            if event_id is not None and event_id in known:
                continue
            interaction_id = db.execute(sql, _live_row(row)).fetchone()[0]
            if event_id is not None:
                db.execute("INSERT INTO event_keys (event_id, interaction_id, received_at) VALUES (?, ?, ?)",
                           [event_id, interaction_id, received])
                known.add(event_id)
            stored += 1
    return stored


# --- reads -------------------------------------------------------------------


def consenting_customers(db: sqlite_utils.Database, purpose: str) -> list[str]:
    """Ids of customers whose consent for ``purpose`` is granted (absent = not granted)."""
    return [
        r[0]
        for r in db.execute(
            "SELECT customer_id FROM consents WHERE purpose = ? AND granted = 1 ORDER BY customer_id", [purpose]
        )
    ]


def has_consent(db: sqlite_utils.Database, customer_id: str, purpose: str) -> bool:
    row = db.execute(
        "SELECT granted FROM consents WHERE customer_id = ? AND purpose = ?", [customer_id, purpose]
    ).fetchone()
    return bool(row and row[0])


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


def customer_consent(db: sqlite_utils.Database, customer_id: str, purpose: str) -> tuple[bool, bool]:
    """``(customer exists, purpose granted)`` in one query."""
    row = db.execute(
        "SELECT c.id, k.granted FROM customers c LEFT JOIN consents k "
        "ON k.customer_id = c.id AND k.purpose = ? WHERE c.id = ?",
        [purpose, customer_id],
    ).fetchone()
    if row is None:
        return False, False
    return True, bool(row[1])


def existing_of(db: sqlite_utils.Database, table: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` exist in ``customers`` or ``products``."""
    if table not in ("customers", "products"):
        raise ValueError(table)
    found: set[str] = set()
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        found.update(r[0] for r in db.execute(f"SELECT id FROM {table} WHERE id IN ({marks})", chunk))
    return found


def popular_since(db: sqlite_utils.Database, since: int, limit: int, purpose: str = "personalization") -> list[tuple[str, int]]:
    """Products by distinct consenting customers with an event at or after ``since`` (Unix seconds)."""
    return db.execute(
        "SELECT i.product_id, count(DISTINCT i.customer_id) AS n FROM interactions i "
        "JOIN consents c ON c.customer_id = i.customer_id AND c.purpose = ? AND c.granted = 1 "
        "WHERE i.occurred_at >= ? GROUP BY i.product_id ORDER BY n DESC, i.product_id LIMIT ?",
        [purpose, since, limit],
    ).fetchall()
