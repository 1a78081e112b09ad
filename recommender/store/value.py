"""Reads of customer value (:mod:`recommender.value`): purchase days with their spend, consent-filtered."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlite_utils

from recommender.store.consents import granted_join, granted_sql

__all__ = ["purchase_days", "purchases_not_profiled"]

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
        [purpose, *purchase_types])


def purchases_not_profiled(db: sqlite_utils.Database, purpose: str, purchase_types: Sequence[str]) -> int:
    """How many customers bought something but did not grant ``purpose``: counted, never scored."""
    marks = ", ".join("?" * len(purchase_types))
    return int(db.execute(
        f"SELECT count(DISTINCT i.customer_id) FROM interactions i WHERE i.event_type IN ({marks}) "
        f"AND NOT {granted_sql('i.customer_id')}", [*purchase_types, purpose]).fetchone()[0])
