"""The models table: the registry's memory."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from recommender.store.connection import _changes, transaction, utcnow

# --- the models table --------------------------------------------------------------


def insert_model(db: sqlite_utils.Database, row: dict[str, Any]) -> None:
    """Add a model's row (``gate`` optional); a row that exists already is left as it is."""
    with transaction(db):
        db.execute(
            "INSERT OR IGNORE INTO models (version, created_at, path, engine, params, metrics, consent_snapshot, "
            "status, gate) VALUES (:version, :created_at, :path, :engine, :params, :metrics, :consent_snapshot, "
            ":status, :gate)",
            {"gate": "{}", **row},
        )


def mark_pruned(db: sqlite_utils.Database, version: str) -> None:
    """The artifact of ``version`` was deleted; its row stays as history."""
    with transaction(db):
        db.execute("UPDATE models SET status = 'pruned', removed_at = ? WHERE version = ?", [utcnow(), version])


def reconcile_model_statuses(db: sqlite_utils.Database, current: str | None) -> int:
    """Make ``published`` mean "what CURRENT names": the current one published, earlier ones retired.

    Returns how many rows changed. A kill between moving the pointer and
    updating the table leaves exactly this to repair.
    """
    with transaction(db):
        before = _changes(db)
        if current is not None:
            db.execute("UPDATE models SET status = 'retired' WHERE status = 'published' AND version != ?", [current])
            db.execute("UPDATE models SET status = 'published', removed_at = NULL WHERE version = ?", [current])
        else:
            db.execute("UPDATE models SET status = 'retired' WHERE status = 'published'")
        return _changes(db) - before


def set_model_status(db: sqlite_utils.Database, version: str, status: str) -> None:
    """Change a model's status; publishing one retires the previously published one."""
    with transaction(db):
        if status == "published":
            db.execute("UPDATE models SET status = 'retired' WHERE status = 'published' AND version != ?", [version])
        db.execute("UPDATE models SET status = ? WHERE version = ?", [status, version])


def model_rows(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    # rowid breaks ties: versions made within one second are named with a random suffix, not in order
    return list(db.query("SELECT * FROM models ORDER BY created_at DESC, rowid DESC"))
