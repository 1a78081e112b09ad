"""Reads behind a shop's first week: what a customer import keeps, and the counts of the first-week checklist."""

from __future__ import annotations

from collections.abc import Sequence

import sqlite_utils

from recommender.store.consents import granted_sql
from recommender.store.rows import CustomerRow

_COLUMNS = "id, email, name, birth_date, anniversary_date, timezone, created_at"


def stored_customers(db: sqlite_utils.Database, ids: Sequence[str]) -> dict[str, CustomerRow]:
    """The stored :class:`CustomerRow` of each of ``ids`` that is a customer."""
    out: dict[str, CustomerRow] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for row in db.execute(f"SELECT {_COLUMNS} FROM customers WHERE id IN ({marks})", chunk):
            out[row[0]] = CustomerRow(*row)
    return out


def first_week_counts(db: sqlite_utils.Database, purposes: Sequence[str], marketing: str) -> dict[str, int]:
    """Counts the first-week checklist reads: events, customers and their contact data, consent, offers.

    ``reachable`` is customers with a birthday or anniversary who granted ``marketing``:
    the audience of an occasion campaign. ``granted:<purpose>`` per purpose.
    """
    one = db.execute(
        "SELECT count(*), count(email), "
        "sum(birth_date IS NOT NULL OR anniversary_date IS NOT NULL), "
        f"sum((birth_date IS NOT NULL OR anniversary_date IS NOT NULL) AND {granted_sql('customers.id')}) "
        "FROM customers",
        [marketing],
    ).fetchone()
    out = {
        "customers": int(one[0] or 0),
        "with_email": int(one[1] or 0),
        "with_occasion": int(one[2] or 0),
        "reachable": int(one[3] or 0),
        "events": int(db.execute("SELECT count(*) FROM interactions").fetchone()[0]),
        "offers": int(db.execute("SELECT count(*) FROM offers").fetchone()[0]),
    }
    for purpose in purposes:
        out[f"granted:{purpose}"] = int(
            db.execute(f"SELECT count(*) FROM customers WHERE {granted_sql('customers.id')}", [purpose]).fetchone()[0]
        )
    return out


def undecided_among(db: sqlite_utils.Database, ids: Sequence[str], purpose: str) -> list[str]:
    """Which of ``ids`` are customers with no decision recorded for ``purpose`` (neither granted nor refused)."""
    out: list[str] = []
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        decided = {
            r[0]
            for r in db.execute(
                f"SELECT customer_id FROM consents WHERE purpose = ? AND customer_id IN ({marks})", [purpose, *chunk]
            )
        }
        known = {r[0] for r in db.execute(f"SELECT id FROM customers WHERE id IN ({marks})", chunk)}
        out.extend(c for c in chunk if c in known and c not in decided)
    return out
