"""Erasure tombstones: proof that a customer was erased, without keeping their id."""

from __future__ import annotations

import hashlib

import sqlite_utils

from .. import store


def subject_hash(db: sqlite_utils.Database, customer_id: str, *, salt: str | None = None) -> str:
    """The tombstone of ``customer_id``: SHA-256 of the database's random salt and the id."""
    if salt is None:
        salt = store.meta_value(db, "erasure_salt") or ""
    return hashlib.sha256(f"{salt}:{customer_id}".encode()).hexdigest()
