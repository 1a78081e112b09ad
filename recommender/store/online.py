"""The reads of online measurement: the lists that were served, and the events that may answer them."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlite_utils


def served_lists_since(db: sqlite_utils.Database, since: str | None) -> list[tuple[Any, ...]]:
    """``(list_id, customer_id, created_at, endpoint, model_version, arm, product_ids)`` of every decision
    that carries a list id, created at or after ``since`` (ISO UTC; None = all), in serving order.

    Only rows with a list id can be answered by an event, so the report reads
    no others; the order (time, then row id) is the order lists were served in,
    which the attribution's "latest list before the event" relies on.
    """
    return db.execute(
        "SELECT list_id, customer_id, created_at, endpoint, model_version, arm, product_ids FROM decisions "
        "WHERE list_id IS NOT NULL AND created_at >= ? ORDER BY created_at, id",
        [since or ""],
    ).fetchall()


def attributable_events(db: sqlite_utils.Database, since_epoch: int, event_types: Sequence[str]) -> sqlite3.Cursor:
    """``(customer_id, product_id, event_type, quantity, occurred_at, list_id, price, catalogue_price)`` of
    every event of ``event_types`` at or after ``since_epoch`` (Unix s), oldest first, as a cursor.

    ``price`` is the event's own price (None when it carried none) and
    ``catalogue_price`` the product's current one (None when it has none): the
    report decides which one revenue counts (``online.max_price_factor``). Each
    event is its own row (events are a log), so two events in one second are
    two rows here. A cursor, not a list: a report over months of events streams them.
    """
    marks = ", ".join("?" * len(event_types))
    return db.execute(
        "SELECT i.customer_id, i.product_id, i.event_type, i.quantity, i.occurred_at, i.list_id, "
        f"i.price, p.price FROM interactions i LEFT JOIN products p ON p.id = i.product_id "
        f"WHERE i.occurred_at >= ? AND i.event_type IN ({marks}) ORDER BY i.occurred_at, i.id",
        [since_epoch, *event_types],
    )
