"""API keys: random bearer tokens, stored only as SHA-256 hashes, with a role each.

Roles nest: ``read`` (recommendation endpoints) < ``write`` (also events) <
``admin`` (also consent, erasure, model reload). ``marketer`` stands outside
that chain: a person who previews and runs campaigns and reads reports in the
console (and may read lists, to see what shoppers see), but may not erase or
export customers, change consent or post events. ``admin`` may do everything a
marketer may.
Tokens carry 256 bits of
randomness, so a plain SHA-256 is enough to make a stolen database useless
for calling the API; no slow password hash is needed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import sqlite_utils

from recommender import store
from recommender.errors import NotFoundError, ValidationError

ROLES = ("read", "write", "admin", "marketer")
# What each role may do: a view declares the one permission it needs.
GRANTS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "write": frozenset({"read", "write"}),
    "admin": frozenset({"read", "write", "admin", "marketer"}),
    "marketer": frozenset({"read", "marketer"}),
}
PREFIX = "rk_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(db: sqlite_utils.Database, role: str, name: str) -> tuple[int, str]:
    """Make a key; the token is returned once and never stored."""
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    token = PREFIX + secrets.token_urlsafe(32)
    key_id = store.insert_api_key(db, name, _hash(token), role)
    return key_id, token


def lookup(db: sqlite_utils.Database, token: str) -> dict[str, Any] | None:
    """``{id, name, role}`` of a live key, or None; the stored hash is compared in constant time."""
    digest = _hash(token)
    row = store.api_key_by_hash(db, digest)
    if row is None or not hmac.compare_digest(row["key_hash"], digest):
        return None
    return {"id": row["id"], "name": row["name"], "role": row["role"]}


def role_of(db: sqlite_utils.Database, token: str) -> str | None:
    """The role of a live key, or None."""
    key = lookup(db, token)
    return key["role"] if key else None


def allows(role: str | None, needed: str) -> bool:
    """Whether a key of ``role`` may use a view that needs ``needed`` (see :data:`GRANTS`)."""
    return role is not None and needed in GRANTS.get(role, frozenset())


def live_by_id(db: sqlite_utils.Database, key_id: int) -> dict[str, Any] | None:
    """``{id, name, role, key_hash}`` of a live key by id (a console session re-checks it on every request)."""
    return store.api_key_by_id(db, key_id)


def revoke(db: sqlite_utils.Database, key_id: int) -> None:
    if not store.revoke_api_key(db, key_id):
        raise NotFoundError(f"no live API key with id {key_id}")


def listing(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return store.list_api_keys(db)
