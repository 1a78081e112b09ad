"""The last model search: one JSON record in ``meta`` (see :mod:`recommender.training.schedule`).

What it holds is no customer's data: the recipe chosen (family and settings),
when and why the search ran, its validation and test NDCG per family. It is
replaced by each search (and amended when the release gate refuses its choice);
a database without one has never searched.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from recommender.store.connection import transaction

LAST_SEARCH = "selection_last_search"

__all__ = ["last_search", "record_search"]


def last_search(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The record written by :func:`record_search`, or None when no search has been recorded."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", [LAST_SEARCH]).fetchone()
    if not row:
        return None
    try:
        record = json.loads(row[0])
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def record_search(db: sqlite_utils.Database, record: dict[str, Any]) -> None:
    """Replace the last search's record (one transaction)."""
    text = json.dumps(record, sort_keys=True)
    with transaction(db):
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [LAST_SEARCH, text],
        )
