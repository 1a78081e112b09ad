"""The offers ledger and the campaign queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlite_utils

from recommender.store.connection import _changes, _json_ids, transaction

# --- offers and campaigns ---------------------------------------------------------
# Customer id lists go in as one JSON array bound to json_each(): one statement
# for any number of ids, instead of hundreds of IN (...) chunks.

OCCASION_DATE_COLUMNS = ("birth_date", "anniversary_date")


def customer_contacts(db: sqlite_utils.Database, ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
    """``{id: (email, name)}`` for these customers."""
    return {
        r[0]: (r[1], r[2])
        for r in db.execute(
            "SELECT id, email, name FROM customers WHERE id IN (SELECT value FROM json_each(?))", [_json_ids(ids)]
        )
    }


def offered_keys(db: sqlite_utils.Database, ids: Sequence[str]) -> set[tuple[str, str, int]]:
    """``(customer_id, occasion, occasion_year)`` already in the offers ledger for these customers."""
    return {
        (r[0], r[1], int(r[2]))
        for r in db.execute(
            "SELECT customer_id, occasion, occasion_year FROM offers "
            "WHERE customer_id IN (SELECT value FROM json_each(?))",
            [_json_ids(ids)],
        )
    }


def purchased_pairs(
    db: sqlite_utils.Database, ids: Sequence[str], event_types: Sequence[str] = ("purchase",)
) -> list[tuple[str, str]]:
    """Distinct ``(customer_id, product_id)`` purchases of these customers (``event_types`` mean "bought")."""
    return db.execute(
        "SELECT DISTINCT customer_id, product_id FROM interactions WHERE event_type IN "
        "(SELECT value FROM json_each(?)) AND customer_id IN (SELECT value FROM json_each(?))",
        [_json_ids(event_types), _json_ids(ids)],
    ).fetchall()


def events_of(db: sqlite_utils.Database, ids: Sequence[str]) -> dict[str, list[tuple[str, str, float, int]]]:
    """:func:`customer_events` for many customers in one statement (customers without events absent)."""
    out: dict[str, list[tuple[str, str, float, int]]] = {}
    for cid, pid, kind, qty, when in db.execute(
        "SELECT i.customer_id, i.product_id, i.event_type, i.quantity, i.occurred_at FROM json_each(?) AS j "
        "CROSS JOIN interactions AS i ON i.customer_id = j.value ORDER BY i.customer_id, i.occurred_at",
        [_json_ids(ids)],
    ):
        out.setdefault(cid, []).append((pid, kind, qty, when))
    return out


def outstanding_offer_units(db: sqlite_utils.Database, on: str) -> dict[str, int]:
    """``{product_id: offers}`` over ledger offers still valid on ``on`` (``YYYY-MM-DD``): stock already promised."""
    return {
        r[0]: int(r[1])
        for r in db.execute(
            "SELECT p.value, count(*) FROM offers AS o, json_each(o.products) AS p WHERE o.valid_until >= ? "
            "GROUP BY p.value",
            [on],
        )
    }


OFFER_COLUMNS = (
    "customer_id",
    "occasion",
    "occasion_year",
    "code",
    "products",
    "discount",
    "valid_from",
    "valid_until",
    "campaign_id",
    "created_at",
    "list_id",
    "held_out",
    "offered_on",
)


def insert_offers(db: sqlite_utils.Database, rows: Sequence[Sequence[Any]]) -> int:
    """Add offers given as tuples in ``OFFER_COLUMNS`` order; a repeated (customer, occasion, year) fails the whole batch.

    A row without the last columns gets NULL for ``list_id`` and ``offered_on`` (the UTC date of
    ``created_at`` then) and 0 for ``held_out``.
    """
    defaults = (None, 0, None)  # list_id, held_out, offered_on
    rows = [tuple(r) + defaults[len(r) - len(OFFER_COLUMNS) + len(defaults) :] for r in rows]
    rows = [r[:-1] + (r[-1] or str(r[9])[:10],) for r in rows]
    with transaction(db):
        before = _changes(db)
        db.conn.executemany(
            f"INSERT INTO offers ({', '.join(OFFER_COLUMNS)}) VALUES ({', '.join('?' * len(OFFER_COLUMNS))})", rows
        )
        return _changes(db) - before


def active_offers(db: sqlite_utils.Database, customer_id: str, on: str) -> list[dict[str, Any]]:
    """Offers of one customer valid on date ``on`` (``YYYY-MM-DD``), soonest-ending first."""
    return list(
        db.query(
            "SELECT occasion, occasion_year, code, products, discount, valid_from, valid_until, campaign_id, created_at, "
            "list_id FROM offers WHERE customer_id = ? AND held_out = 0 AND valid_from <= ? AND valid_until >= ? "
            "ORDER BY valid_until, id",
            [customer_id, on, on],
        )
    )


def customer_timezone(db: sqlite_utils.Database, customer_id: str) -> tuple[bool, str | None]:
    """``(customer exists, their time zone)``."""
    row = db.execute("SELECT timezone FROM customers WHERE id = ?", [customer_id]).fetchone()
    return (False, None) if row is None else (True, row[0])


def product_names(db: sqlite_utils.Database, ids: Sequence[str]) -> dict[str, str]:
    """``{id: name}`` for these products (ids that no longer exist are absent)."""
    return {
        r[0]: r[1]
        for r in db.execute(
            "SELECT id, name FROM products WHERE id IN (SELECT value FROM json_each(?))", [_json_ids(ids)]
        )
    }


def occasion_candidates(
    db: sqlite_utils.Database, column: str, month_days: Sequence[str] | None
) -> tuple[list[str], list[str | None], list[str]]:
    """``(ids, timezones, dates)`` of customers whose ``column`` falls on one of ``month_days`` (``MM-DD``).

    The month-day test runs inside SQLite's scan, so a week's window reads a
    few percent of a million customers instead of all of them. ``None`` = every
    customer with a date.
    """
    if column not in OCCASION_DATE_COLUMNS:
        raise ValueError(f"not an occasion date column: {column!r}")
    sql = f"SELECT id, timezone, {column} FROM customers WHERE {column} IS NOT NULL"
    params: list[Any] = []
    if month_days is not None:
        sql += f" AND substr({column}, 6) IN (SELECT value FROM json_each(?))"
        params.append(_json_ids(month_days))
    rows = db.execute(sql, params).fetchall()
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def occasion_date_quality(db: sqlite_utils.Database, column: str) -> tuple[int, int]:
    """``(missing, malformed)`` counts of ``column`` over all customers.

    Malformed = not a calendar date (13th month, 31 April, 29 February of a
    non-leap year): SQLite's ``date(x, '+0 days')`` normalises those, so they
    differ from the stored text.
    """
    if column not in OCCASION_DATE_COLUMNS:
        raise ValueError(f"not an occasion date column: {column!r}")
    row = db.execute(
        f"SELECT count(*) - count({column}), coalesce(sum({column} IS NOT NULL AND "
        f"(date({column}, '+0 days') IS NOT {column} OR {column} < '0001')), 0) FROM customers"
    ).fetchone()
    return int(row[0]), int(row[1])


# --- lifecycle campaigns and their report (recommender/campaigns/lifecycle.py, measure.py) ----------


def live_offers_until(db: sqlite_utils.Database, ids: Sequence[str]) -> dict[str, str]:
    """``{customer_id: latest valid_until}`` over every ledger row of these customers, held-out rows included.

    The caller compares it with each customer's local date: a row whose ``valid_until`` is on or
    after it is a live offer (or a held-out customer's slot), and the customer gets no other.
    """
    return {
        r[0]: r[1]
        for r in db.execute(
            "SELECT customer_id, max(valid_until) FROM offers WHERE customer_id IN (SELECT value FROM json_each(?)) "
            "GROUP BY customer_id",
            [_json_ids(ids)],
        )
    }


def last_offered_on(db: sqlite_utils.Database, ids: Sequence[str]) -> dict[tuple[str, str], str]:
    """``{(customer_id, kind): latest offered_on}`` of these customers' ledger rows (held-out included)."""
    return {
        (r[0], r[1]): r[2]
        for r in db.execute(
            "SELECT customer_id, occasion, max(coalesce(offered_on, substr(created_at, 1, 10))) FROM offers "
            "WHERE customer_id IN (SELECT value FROM json_each(?)) GROUP BY customer_id, occasion",
            [_json_ids(ids)],
        )
    }


# The UTC day number of an event (floor division, right before 1970 too).
_EVENT_DAY = "((occurred_at - (((occurred_at % 86400) + 86400) % 86400)) / 86400)"


def one_time_buyers(
    db: sqlite_utils.Database, event_types: Sequence[str], before: int, first_from: int, first_to: int
) -> list[tuple[str, int]]:
    """``(customer_id, day)`` of customers with exactly one purchase day before Unix time ``before``, that
    day a UTC day number in ``[first_from, first_to]``; sorted by day, then id.

    Purchase history only (the shop's own order record, as for a receipt): no consent is read
    here; the campaign checks marketing consent for contact.
    """
    return [
        (r[0], int(r[1]))
        for r in db.execute(
            f"SELECT customer_id, min({_EVENT_DAY}) AS first FROM interactions "
            "WHERE event_type IN (SELECT value FROM json_each(?)) AND occurred_at < ? GROUP BY customer_id "
            f"HAVING count(DISTINCT {_EVENT_DAY}) = 1 AND first BETWEEN ? AND ? ORDER BY first, customer_id",
            [_json_ids(event_types), before, first_from, first_to],
        )
    ]


def offers_for_report(
    db: sqlite_utils.Database, since: str | None, kind: str | None
) -> list[tuple[str, str, str, int]]:
    """``(customer_id, kind, offered_on, held_out)`` of every ledger row offered on or after ``since``
    (``YYYY-MM-DD``; None = all), of ``kind`` (None = every kind), oldest first."""
    sql = (
        "SELECT customer_id, occasion, coalesce(offered_on, substr(created_at, 1, 10)) AS day, held_out "
        "FROM offers WHERE day >= ?"
    )
    params: list[Any] = [since or ""]
    if kind is not None:
        sql += " AND occasion = ?"
        params.append(kind)
    return [(r[0], r[1], r[2], int(r[3])) for r in db.execute(sql + " ORDER BY day, id", params)]


def purchases_of(
    db: sqlite_utils.Database, ids: Sequence[str], event_types: Sequence[str], start: int, end: int
) -> list[tuple[str, int, float, float | None, float | None]]:
    """``(customer_id, occurred_at, quantity, price, catalogue_price)`` of these customers' purchase events
    in Unix time ``[start, end)``, oldest first (the caller applies the revenue rule)."""
    return db.execute(
        "SELECT i.customer_id, i.occurred_at, i.quantity, i.price, p.price FROM json_each(?) AS j "
        "CROSS JOIN interactions AS i ON i.customer_id = j.value LEFT JOIN products p ON p.id = i.product_id "
        "WHERE i.event_type IN (SELECT value FROM json_each(?)) AND i.occurred_at >= ? AND i.occurred_at < ? "
        "ORDER BY i.occurred_at, i.id",
        [_json_ids(ids), _json_ids(event_types), start, end],
    ).fetchall()


def latest_event_time(db: sqlite_utils.Database) -> int | None:
    """Unix time of the newest event in the store (None when there is none)."""
    row = db.execute("SELECT max(occurred_at) FROM interactions").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def customer_timezones(db: sqlite_utils.Database, ids: Sequence[str]) -> dict[str, str | None]:
    """``{id: time zone}`` of these customers (unknown ids absent)."""
    return {
        r[0]: r[1]
        for r in db.execute(
            "SELECT id, timezone FROM customers WHERE id IN (SELECT value FROM json_each(?))", [_json_ids(ids)]
        )
    }
