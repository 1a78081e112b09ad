"""Bulk reads of the event log: the training reader's child process (ADBC) and the Parquet export's cursors.

Training and exports read every event of the customers who granted
personalization: millions of rows. Both shapes of the read live here so the
consent rule they apply is the one of :mod:`.consents`.

The ADBC functions take a database *path*, not a connection, and import the
driver only when called: they run in the child process of
:func:`recommender.data.bulk.interaction_arrays` only, because ADBC links its
own copy of SQLite and two SQLite libraries in one process break each other's
POSIX file locks. Each opens its own autocommit connection, so each SELECT is
its own read snapshot and takes no write lock: the API keeps writing events
while a retrain reads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlite_utils

from recommender.store.connection import _json_ids
from recommender.store.consents import consenting_sql, granted_join

if TYPE_CHECKING:
    import pyarrow as pa


# --- the training reader's child process (ADBC into Arrow) ------------------------------------------------


def _adbc_table(path: str, sql: str, params: tuple[Any, ...] = ()) -> pa.Table:
    """Run one SELECT through the ADBC SQLite driver on its own autocommit connection; an Arrow table."""
    import adbc_driver_sqlite.dbapi as adbc

    with adbc.connect(path, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetch_arrow_table()


def bulk_consenting_customers(path: str, purpose: str) -> pa.Table:
    """A one-column table (``customer_id``) of the customers who granted ``purpose``, in no order."""
    return _adbc_table(path, consenting_sql(), (purpose,))


def bulk_product_ids(path: str) -> pa.Table:
    """A one-column table (``id``) of every product, by id (BINARY collation: Python's ``str`` order)."""
    return _adbc_table(path, "SELECT id FROM products ORDER BY id")


def bulk_interaction_id_range(path: str) -> tuple[int, int]:
    """``(lowest, highest)`` interaction id; ``(0, -1)`` without events, an empty range.

    Two subqueries: SQLite answers a lone min() or max() of the rowid from the
    b-tree's ends, but scans the whole table when both share one SELECT.
    """
    row = _adbc_table(
        path,
        "SELECT coalesce((SELECT min(id) FROM interactions), 0) AS lo, "
        "coalesce((SELECT max(id) FROM interactions), -1) AS hi",
    ).to_pylist()[0]
    return row["lo"], row["hi"]


def bulk_interactions_between(path: str, lo: int, hi: int) -> pa.Table:
    """Events with ids from ``lo`` to ``hi`` (inclusive), every customer's: columns ``customer_id``,
    ``product_id``, ``event_type``, ``quantity`` (REAL), ``occurred_at`` (INTEGER Unix s).

    Not consent-filtered: the caller keeps the rows of :func:`bulk_consenting_customers`
    (one hash lookup per row in Arrow beats a join in SQLite at this size), and
    splits the id range over threads.
    """
    return _adbc_table(
        path,
        "SELECT customer_id, product_id, event_type, CAST(quantity AS REAL) AS quantity, "
        "CAST(occurred_at AS INTEGER) AS occurred_at FROM interactions WHERE id BETWEEN ? AND ?",
        (lo, hi),
    )


# --- the Parquet export (in process, streamed from a cursor) ----------------------------------------------
# Rows ``(id, customer_id, product_id, event_type, quantity REAL, occurred_at INTEGER)`` of the events of the
# customers who granted ``purpose``, of the given event types, in id order. A cursor: the caller fetches
# a few hundred thousand rows at a time.

_EXPORT_SELECT = (
    "SELECT i.id, i.customer_id, i.product_id, i.event_type, CAST(i.quantity AS REAL), "
    "CAST(i.occurred_at AS INTEGER) FROM interactions i "
)


def _export_rows(
    db: sqlite_utils.Database, purpose: str, types: Sequence[str], where: str, params: Sequence[Any]
) -> sqlite3.Cursor:
    sql = (
        _EXPORT_SELECT
        + granted_join("i.customer_id")
        + f"WHERE i.event_type IN ({','.join('?' * len(types))}) AND {where} ORDER BY i.id"
    )
    return db.execute(sql, [purpose, *types, *params])


def export_rows_between(
    db: sqlite_utils.Database, purpose: str, types: Sequence[str], after_id: int, through_id: int
) -> sqlite3.Cursor:
    """Consenting customers' events with ``after_id < id <= through_id``: what an export appends."""
    return _export_rows(db, purpose, types, "i.id > ? AND i.id <= ?", [after_id, through_id])


def export_rows_of_customers(
    db: sqlite_utils.Database, purpose: str, types: Sequence[str], through_id: int, customers: Sequence[str]
) -> sqlite3.Cursor:
    """The events up to ``through_id`` of ``customers`` (who granted again): their history an export left out."""
    return _export_rows(
        db,
        purpose,
        types,
        "i.id <= ? AND i.customer_id IN (SELECT value FROM json_each(?))",
        [through_id, _json_ids(customers)],
    )


def export_rows_by_id(
    db: sqlite_utils.Database, purpose: str, types: Sequence[str], ids: Sequence[int], excluding: Sequence[str]
) -> sqlite3.Cursor:
    """The events ``ids`` (their quantity changed since exported), except those of ``excluding`` customers
    (whose whole history is read again anyway)."""
    return _export_rows(
        db,
        purpose,
        types,
        "i.id IN (SELECT value FROM json_each(?)) AND i.customer_id NOT IN (SELECT value FROM json_each(?))",
        [_json_ids(ids), _json_ids(excluding)],
    )


def export_watermarks(db: sqlite_utils.Database) -> tuple[int, int]:
    """``(newest interaction id, newest interaction_updates seq)``, 0 when empty: how far an export reads."""
    high = int(db.execute("SELECT coalesce(max(id), 0) FROM interactions").fetchone()[0])
    update_high = int(db.execute("SELECT coalesce(max(seq), 0) FROM interaction_updates").fetchone()[0])
    return high, update_high


def updated_interactions(db: sqlite_utils.Database, after_seq: int, through_seq: int, through_id: int) -> list[int]:
    """Ids (up to ``through_id``) of events whose quantity changed between two ``interaction_updates``
    sequence numbers, sorted: the rows an export already holds in an older version."""
    return sorted(
        {
            r[0]
            for r in db.execute(
                "SELECT interaction_id FROM interaction_updates WHERE seq > ? AND seq <= ? AND interaction_id <= ?",
                [after_seq, through_seq, through_id],
            )
        }
    )


def prune_interaction_updates(db: sqlite_utils.Database, through_seq: int) -> None:
    """Forget the quantity changes up to ``through_seq`` (every registered export has applied them)."""
    db.execute("DELETE FROM interaction_updates WHERE seq <= ?", [through_seq])
