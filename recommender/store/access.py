"""API keys and the decision log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlite_utils

from recommender.store.connection import transaction, utcnow
from recommender.store.rows import DecisionLogRow

# --- API keys ----------------------------------------------------------------------


def insert_api_key(db: sqlite_utils.Database, name: str, key_hash: str, role: str) -> int:
    with transaction(db):
        cur = db.execute(
            "INSERT INTO api_keys (name, key_hash, role, created_at) VALUES (?, ?, ?, ?)",
            [name, key_hash, role, utcnow()],
        )
        return int(cur.lastrowid)


# Read on every request: a plain execute, not ``db.query`` (whose savepoint guard adds two
# statements, three times the cost of this indexed lookup).
_LIVE_KEY = "SELECT id, name, key_hash, role FROM api_keys WHERE {} = ? AND revoked_at IS NULL"


def _live_key(db: sqlite_utils.Database, column: str, value: Any) -> dict[str, Any] | None:
    row = db.execute(_LIVE_KEY.format(column), [value]).fetchone()
    return None if row is None else {"id": row[0], "name": row[1], "key_hash": row[2], "role": row[3]}


def api_key_by_hash(db: sqlite_utils.Database, key_hash: str) -> dict[str, Any] | None:
    return _live_key(db, "key_hash", key_hash)


def api_key_by_id(db: sqlite_utils.Database, key_id: int) -> dict[str, Any] | None:
    return _live_key(db, "id", key_id)


def live_api_keys(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()[0]


def revoke_api_key(db: sqlite_utils.Database, key_id: int) -> bool:
    with transaction(db):
        cur = db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [utcnow(), key_id])
        return cur.rowcount > 0


def list_api_keys(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT id, name, role, created_at, revoked_at FROM api_keys ORDER BY id"))


# --- decision log ------------------------------------------------------------------


def insert_decisions(db: sqlite_utils.Database, rows: Sequence[DecisionLogRow | tuple]) -> None:
    """Append decision-log rows: :class:`DecisionLogRow`, or a tuple in its order.

    A tuple without the last fields, ``list_id``, ``arm``, ``rules`` and ``why`` (as
    written before lists had ids, or rules existed), gets NULL for them.
    """
    full = [tuple(r) + (None,) * (11 - len(r)) for r in rows]
    with transaction(db):
        db.conn.executemany(
            "INSERT INTO decisions (customer_id, created_at, endpoint, model_version, mode, reason, product_ids, "
            "list_id, arm, rules, why) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            full,
        )
