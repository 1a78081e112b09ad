"""Customer value's SQL (:mod:`recommender.value`): purchase days with their spend, consent-filtered, and
the stored scores of the nightly refresh (``customer_values``, ``value_runs``, ``value_snapshots``).

The stored scores are profiling, so every read of them names the purpose and
keeps only customers who grant it now; the triggers of the schema delete a row
in the same transaction as the withdrawal of its purpose, and an erasure deletes
it with the customer.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlite_utils

from recommender.store.connection import _json_ids, transaction
from recommender.store.consents import granted_join, granted_sql

__all__ = [
    "VALUE_COLUMNS",
    "customer_value_row",
    "latest_value_run",
    "purchase_days",
    "purchases_not_profiled",
    "replace_customer_values",
    "stored_customer_values",
    "stored_value_count",
    "value_segments_of",
    "value_snapshots",
]

# The UTC day of an event (floor division, right for times before 1970 too).
_DAY = "((i.occurred_at - (((i.occurred_at % 86400) + 86400) % 86400)) / 86400)"
# What a purchase event spent: its own unit price when it carried one, else the product's catalogue price.
_SPEND = "i.quantity * coalesce(i.price, p.price, 0)"


def purchase_days(db: sqlite_utils.Database, purpose: str, purchase_types: Sequence[str]) -> sqlite3.Cursor:
    """``(customer_id, day, spend)`` of every customer-day with a purchase, for customers who granted ``purpose``.

    ``day`` is the UTC day number (days since 1970-01-01); ``spend`` sums quantity x
    price over the day's purchase events (the event's own price, else the product's
    catalogue price, else 0). Ordered by customer, then day. A cursor: the caller streams it.
    """
    marks = ", ".join("?" * len(purchase_types))
    return db.execute(
        f"SELECT i.customer_id, {_DAY} AS day, sum({_SPEND}) FROM interactions i "
        + granted_join("i.customer_id")
        + f"LEFT JOIN products p ON p.id = i.product_id WHERE i.event_type IN ({marks}) "
        "GROUP BY i.customer_id, day ORDER BY i.customer_id, day",
        [purpose, *purchase_types],
    )


def purchases_not_profiled(db: sqlite_utils.Database, purpose: str, purchase_types: Sequence[str]) -> int:
    """How many customers bought something but did not grant ``purpose``: counted, never scored."""
    marks = ", ".join("?" * len(purchase_types))
    return int(
        db.execute(
            f"SELECT count(DISTINCT i.customer_id) FROM interactions i WHERE i.event_type IN ({marks}) "
            f"AND NOT {granted_sql('i.customer_id')}",
            [*purchase_types, purpose],
        ).fetchone()[0]
    )


# --- stored scores (the nightly refresh) --------------------------------------------------------------------

# One stored row, in column order: ``purchases`` and ``spend`` are JSON objects ``{"90": x, ...}`` by horizon.
VALUE_COLUMNS = (
    "customer_id",
    "segment",
    "p_active",
    "purchases",
    "spend",
    "recency_days",
    "purchase_days",
    "spend_to_date",
)
_INSERT_VALUE = (
    "INSERT INTO customer_values (customer_id, run_id, purpose, segment, p_active, purchases, spend, recency_days, "
    "purchase_days, spend_to_date) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE " + granted_sql("?")
)


def replace_customer_values(
    db: sqlite_utils.Database, run: dict[str, Any], rows: Iterable[Sequence[Any]], month: str, snapshot: dict[str, Any]
) -> dict[str, int]:
    """Replace every stored score by ``rows`` (:data:`VALUE_COLUMNS` order) in one transaction.

    ``run``: ``{computed_at, as_of, purpose, estimator, horizons, summary, seconds}`` (``horizons`` and
    ``summary`` JSON-ready). A row is stored only if its customer grants ``run["purpose"]`` when the
    transaction writes (someone who withdrew or was erased while the scores were computed is left out).
    Older runs are deleted; ``snapshot`` (aggregates only) becomes the snapshot of ``month`` (YYYY-MM).
    Returns ``{run_id, stored, offered}``.
    """
    purpose = run["purpose"]
    with transaction(db):
        run_id = db.execute(
            "INSERT INTO value_runs (computed_at, as_of, purpose, estimator, horizons, summary, seconds) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                run["computed_at"],
                run.get("as_of"),
                purpose,
                run["estimator"],
                json.dumps(run["horizons"]),
                json.dumps(run["summary"], sort_keys=True),
                float(run.get("seconds", 0.0)),
            ],
        ).lastrowid
        db.execute("DELETE FROM customer_values")
        offered = 0

        def bound() -> Iterator[tuple]:
            nonlocal offered
            for r in rows:
                offered += 1
                yield (r[0], run_id, purpose, *r[1:], r[0], purpose)

        db.conn.executemany(_INSERT_VALUE, bound())
        stored = int(db.execute("SELECT count(*) FROM customer_values").fetchone()[0])
        db.execute("DELETE FROM value_runs WHERE id <> ?", [run_id])
        db.execute(
            "INSERT INTO value_snapshots (month, taken_at, summary) VALUES (?, ?, ?) "
            "ON CONFLICT (month) DO UPDATE SET taken_at = excluded.taken_at, summary = excluded.summary",
            [month, run["computed_at"], json.dumps(snapshot, sort_keys=True)],
        )
    return {"run_id": int(run_id), "stored": stored, "offered": offered}


def _run_dict(row: sqlite3.Row | tuple | None) -> dict[str, Any] | None:
    if row is None:
        return None
    rid, computed_at, as_of, purpose, estimator, horizons, summary, seconds = row
    return {
        "id": rid,
        "computed_at": computed_at,
        "as_of": as_of,
        "purpose": purpose,
        "estimator": estimator,
        "horizons": json.loads(horizons),
        "summary": json.loads(summary),
        "seconds": seconds,
    }


_RUN = "SELECT id, computed_at, as_of, purpose, estimator, horizons, summary, seconds FROM value_runs"


def latest_value_run(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The refresh behind the stored scores (estimator, when, aggregates), or None before the first."""
    return _run_dict(db.execute(_RUN + " ORDER BY id DESC LIMIT 1").fetchone())


def customer_value_row(db: sqlite_utils.Database, customer_id: str, purpose: str) -> dict[str, Any] | None:
    """One customer's stored score with its run's estimator and times; None when none is held for ``purpose``
    (never scored, not granting it now, or scored under another purpose)."""
    row = db.execute(
        "SELECT v.customer_id, v.segment, v.p_active, v.purchases, v.spend, v.recency_days, v.purchase_days, "
        "v.spend_to_date, r.computed_at, r.as_of, r.estimator FROM customer_values v "
        "JOIN value_runs r ON r.id = v.run_id WHERE v.customer_id = ? AND v.purpose = ? AND "
        + granted_sql("v.customer_id"),
        [customer_id, purpose, purpose],
    ).fetchone()
    if row is None:
        return None
    out = dict(zip((*VALUE_COLUMNS, "computed_at", "as_of", "estimator"), row))
    out["purchases"], out["spend"] = json.loads(out["purchases"]), json.loads(out["spend"])
    return out


def stored_customer_values(db: sqlite_utils.Database, purpose: str) -> sqlite3.Cursor:
    """Every stored score of customers granting ``purpose`` now (:data:`VALUE_COLUMNS`), by customer id."""
    return db.execute(
        "SELECT v.customer_id, v.segment, v.p_active, v.purchases, v.spend, v.recency_days, v.purchase_days, "
        "v.spend_to_date FROM customer_values v "
        + granted_join("v.customer_id")
        + "WHERE v.purpose = ? ORDER BY v.customer_id",
        [purpose, purpose],
    )


def stored_value_count(db: sqlite_utils.Database, purpose: str) -> int:
    """How many customers have a stored score for ``purpose`` (and grant it now)."""
    return int(
        db.execute(
            "SELECT count(*) FROM customer_values v " + granted_join("v.customer_id") + "WHERE v.purpose = ?",
            [purpose, purpose],
        ).fetchone()[0]
    )


def value_segments_of(db: sqlite_utils.Database, ids: Sequence[str], purpose: str) -> dict[str, str]:
    """``{customer_id: segment}`` for those of ``ids`` with a stored score who grant ``purpose`` now."""
    return {
        r[0]: r[1]
        for r in db.execute(
            "SELECT v.customer_id, v.segment FROM json_each(?) AS j JOIN customer_values v ON v.customer_id = j.value "
            "WHERE v.purpose = ? AND " + granted_sql("v.customer_id"),
            [_json_ids(ids), purpose, purpose],
        )
    }


def value_snapshots(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every monthly snapshot ``{month, taken_at, summary}``, oldest first (aggregates only)."""
    return [
        {"month": m, "taken_at": t, "summary": json.loads(s)}
        for m, t, s in db.execute("SELECT month, taken_at, summary FROM value_snapshots ORDER BY month")
    ]
