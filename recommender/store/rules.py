"""Merchandising rules: the ``rules`` table, its append-only ``rule_audit``, the rule-set version, the
``rule_sets`` that logged lists name their rules by, and the reads a rule needs at serve time (product
arrivals, a customer's recent impressions).

Every change to a rule is one transaction that writes the rule, appends its audit row (who, when,
what, the rule before and after as JSON) and bumps ``meta.rules_version``: a serving worker reads
that one value per request (:func:`rules_version`) and reloads the rules when it moved, so a change
reaches every worker on its next request. The rules themselves are validated and interpreted in
:mod:`recommender.serving.rules`; here they are JSON text.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlite_utils

from recommender.store.connection import transaction, utcnow
from recommender.store.consents import consenting_sql

RULES_VERSION = "rules_version"


_VERSION = "SELECT value FROM meta WHERE key = ?"  # with [RULES_VERSION]
_LISTS = "FROM decisions WHERE customer_id = ? AND created_at >= ?"  # a customer's logged lists since a time


def rules_version(db: sqlite_utils.Database) -> int:
    """The rule-set version (bumped by every change); 0 on a database from before rules existed."""
    try:
        row = db.execute(_VERSION, [RULES_VERSION]).fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0]) if row else 0


def rules_version_and_lists(db: sqlite_utils.Database, customer_id: str, since: str) -> tuple[int, int]:
    """The rule-set version and how many lists were served to ``customer_id`` since ``since``, in one read: a worker
    whose rules rotate asks both on every list for a customer (most have too few lists for a rotation to act)."""
    try:
        row = db.execute(
            f"SELECT ({_VERSION}), (SELECT count(*) {_LISTS})", [RULES_VERSION, customer_id, since]
        ).fetchone()
    except sqlite3.OperationalError:
        return 0, 0
    return (int(row[0]) if row[0] is not None else 0), int(row[1])


def rule_rows(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every rule: ``{name, body, status, created_at, updated_at}`` (``body`` JSON text), by name."""
    try:
        return list(db.query("SELECT name, body, status, created_at, updated_at FROM rules ORDER BY name"))
    except sqlite3.OperationalError:
        return []


def rule_row(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT name, body, status, created_at, updated_at FROM rules WHERE name = ?", [name]))
    return rows[0] if rows else None


def _bump(db: sqlite_utils.Database) -> int:
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, '0')", [RULES_VERSION])
    db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ?", [RULES_VERSION])
    return rules_version(db)


def write_rule(
    db: sqlite_utils.Database,
    name: str,
    body: str | None,
    status: str | None,
    *,
    actor: str,
    action: str,
    before: str | None,
    after: str | None,
) -> int:
    """Create, change or (``body`` None) delete one rule, audit it and bump the version; returns the new version.

    One transaction: the rule, its audit row and the version move together.
    """
    now = utcnow()
    with transaction(db):
        if body is None:
            db.execute("DELETE FROM rules WHERE name = ?", [name])
        else:
            db.execute(
                "INSERT INTO rules (name, body, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET body = excluded.body, status = excluded.status, "
                "updated_at = excluded.updated_at",
                [name, body, status, now, now],
            )
        db.execute(
            "INSERT INTO rule_audit (rule, actor, at, action, before, after) VALUES (?, ?, ?, ?, ?, ?)",
            [name, actor, now, action, before, after],
        )
        return _bump(db)


def rule_audit(db: sqlite_utils.Database, name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The newest audit rows first (of one rule, or of all): ``{id, rule, actor, at, action, before, after}``."""
    where, args = ("WHERE rule = ?", [name]) if name is not None else ("", [])
    return list(
        db.query(
            f"SELECT id, rule, actor, at, action, before, after FROM rule_audit {where} ORDER BY id DESC LIMIT ?",
            [*args, limit],
        )
    )


def arrivals_since(db: sqlite_utils.Database, since: str) -> list[str]:
    """Ids of the products the engine first saw at or after ``since`` (ISO UTC text)."""
    try:
        return [r[0] for r in db.execute("SELECT product_id FROM product_arrivals WHERE first_seen >= ?", [since])]
    except sqlite3.OperationalError:
        return []


def recent_impressions(
    db: sqlite_utils.Database, customer_id: str, since: str, at_least: int = 0
) -> list[tuple[str, str]]:
    """``(created_at, product_ids JSON)`` of every list served to this customer since ``since`` (the decision log);
    none when there are fewer than ``at_least`` (counted on the index first: most customers see few lists)."""
    if at_least > 1 and db.execute(f"SELECT count(*) {_LISTS}", [customer_id, since]).fetchone()[0] < at_least:
        return []
    return db.execute(f"SELECT created_at, product_ids {_LISTS}", [customer_id, since]).fetchall()


def rule_set_id(db: sqlite_utils.Database, names: Sequence[str]) -> int:
    """The id of the rule set holding ``names`` in this order (written the first time it is seen)."""
    text = json.dumps(list(names), separators=(",", ":"), ensure_ascii=False)
    row = db.execute("SELECT id FROM rule_sets WHERE names = ?", [text]).fetchone()
    if row is None:  # a new set: the only case that writes
        with transaction(db):
            db.execute("INSERT OR IGNORE INTO rule_sets (names) VALUES (?)", [text])
        row = db.execute("SELECT id FROM rule_sets WHERE names = ?", [text]).fetchone()
    return int(row[0])


def rule_set_names(db: sqlite_utils.Database, set_id: int) -> list[str] | None:
    """The rule names of rule set ``set_id`` (rule ``r`` at index ``r``); None when there is no such set."""
    row = db.execute("SELECT names FROM rule_sets WHERE id = ?", [set_id]).fetchone()
    return json.loads(row[0]) if row else None


def preview_customers(db: sqlite_utils.Database, purpose: str, limit: int) -> list[str]:
    """Up to ``limit`` customers who granted ``purpose`` and have events, the most recently active first."""
    return [
        r[0]
        for r in db.execute(
            f"SELECT i.customer_id FROM interactions i WHERE i.customer_id IN ({consenting_sql()}) "
            "GROUP BY i.customer_id ORDER BY max(i.occurred_at) DESC, i.customer_id LIMIT ?",
            [purpose, limit],
        )
    ]


def rule_effect_rows(db: sqlite_utils.Database, since: str | None = None) -> list[tuple[Any, ...]]:
    """``(list_id, customer_id, created_at, endpoint, arm, rules JSON)`` of logged lists that a rule changed
    (for per-rule reports); none on a database from before rules existed."""
    try:
        return db.execute(
            "SELECT list_id, customer_id, created_at, endpoint, arm, rules FROM decisions "
            "WHERE created_at >= ? AND rules IS NOT NULL ORDER BY id",
            [since or ""],
        ).fetchall()
    except sqlite3.OperationalError:
        return []


__all__ = [
    "RULES_VERSION",
    "arrivals_since",
    "preview_customers",
    "recent_impressions",
    "rule_audit",
    "rule_effect_rows",
    "rule_row",
    "rule_rows",
    "rule_set_id",
    "rule_set_names",
    "rules_version",
    "rules_version_and_lists",
    "write_rule",
]
