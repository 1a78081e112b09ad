"""Read-only queries behind the console's pages: activity per day, consent rates, the ledger, recent lists.

Kept out of the flat ``store`` names on purpose: nothing but the console reads
these, and none of them writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlite_utils

from recommender.store.connection import _json_ids

DAY = 86400


def events_per_day(db: sqlite_utils.Database, until: int, days: int) -> list[tuple[int, str, int]]:
    """``(day number, event type, events)`` for the ``days`` days ending with the day of ``until`` (Unix s)."""
    last = until // DAY
    return [
        (int(r[0]), r[1], int(r[2]))
        for r in db.execute(
            "SELECT occurred_at / 86400 AS day, event_type, count(*) FROM interactions "
            "WHERE occurred_at >= ? AND occurred_at < ? GROUP BY day, event_type ORDER BY day",
            [(last - days + 1) * DAY, (last + 1) * DAY],
        )
    ]


# Buckets for events over time: a day while the events span at most MAX_BARS days, then a week (from Monday),
# then a month, so every event is shown by its own date in at most MAX_BARS bars.
MAX_BARS = 60
_BUCKET_SQL = {
    "day": "date(occurred_at, 'unixepoch')",
    "week": "date(occurred_at, 'unixepoch', '-6 days', 'weekday 1')",
    "month": "strftime('%Y-%m-01', occurred_at, 'unixepoch')",
}


def event_span(db: sqlite_utils.Database) -> tuple[int, int] | None:
    """The oldest and newest ``occurred_at`` (Unix s; read from the time index), or None without events."""
    row = db.execute("SELECT min(occurred_at), max(occurred_at) FROM interactions").fetchone()
    return None if row[0] is None else (int(row[0]), int(row[1]))


def bucket_for(first: int, last: int) -> str:
    """``day``, ``week`` or ``month``: the finest bucket that shows ``first`` .. ``last`` in at most MAX_BARS bars."""
    span_days = last // DAY - first // DAY + 1
    if span_days <= MAX_BARS:
        return "day"
    if span_days <= MAX_BARS * 7 - 6:
        return "week"
    return "month"


def events_over_time(db: sqlite_utils.Database, bucket: str) -> list[tuple[str, str, int]]:
    """``(bucket start date (ISO), event type, events)`` over every event, by the event's own date (UTC).

    ``bucket`` is ``day``, ``week`` (starting Monday) or ``month`` (see :func:`bucket_for`). A
    live event sent today and a history imported from last year are each counted on their own date.
    """
    expr = _BUCKET_SQL[bucket]
    return [
        (r[0], r[1], int(r[2]))
        for r in db.execute(
            f"SELECT {expr} AS bucket, event_type, count(*) FROM interactions GROUP BY bucket, event_type "
            "ORDER BY bucket"
        )
    ]


def newest_event(db: sqlite_utils.Database) -> int | None:
    """The newest ``occurred_at`` (Unix s), or None without events."""
    row = db.execute("SELECT max(occurred_at) FROM interactions").fetchone()
    return None if row[0] is None else int(row[0])


def consent_rates(db: sqlite_utils.Database, purposes: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per purpose: customers, how many granted it, how many withdrew or refused it, how many never answered."""
    customers = int(db.execute("SELECT count(*) FROM customers").fetchone()[0])
    out = {p: {"customers": customers, "granted": 0, "refused": 0, "unrecorded": customers} for p in purposes}
    for purpose, granted, n in db.execute(
        "SELECT purpose, granted, count(*) FROM consents WHERE purpose IN (SELECT value FROM json_each(?)) "
        "GROUP BY purpose, granted",
        [_json_ids(purposes)],
    ):
        row = out[purpose]
        row["granted" if granted else "refused"] += int(n)
        row["unrecorded"] -= int(n)
    return out


LEDGER_COLUMNS = (
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
)


def search_ledger(db: sqlite_utils.Database, text: str, limit: int = 100) -> list[dict[str, Any]]:
    """Offers whose customer id, code or campaign id is ``text`` (codes also by prefix); newest first.

    Empty ``text`` lists the newest offers.
    """
    cols = ", ".join(LEDGER_COLUMNS)
    if not text:
        return list(db.query(f"SELECT {cols} FROM offers ORDER BY id DESC LIMIT ?", [limit]))
    prefix = text.upper().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return list(
        db.query(
            f"SELECT {cols} FROM offers WHERE customer_id = ? OR campaign_id = ? OR code LIKE ? ESCAPE '\\' "
            "ORDER BY id DESC LIMIT ?",
            [text, text, prefix, limit],
        )
    )


def recent_decisions(db: sqlite_utils.Database, customer_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The customer's most recent served lists and offers from the decision log, newest first."""
    return list(
        db.query(
            "SELECT created_at, endpoint, model_version, mode, reason, product_ids FROM decisions "
            "WHERE customer_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            [customer_id, limit],
        )
    )


def stock_of(db: sqlite_utils.Database, ids: Sequence[str]) -> dict[str, tuple[str, int | None]]:
    """``{product id: (name, units in stock or None when untracked)}``."""
    return {
        r[0]: (r[1], None if r[2] is None else int(r[2]))
        for r in db.execute(
            "SELECT id, name, in_stock FROM products WHERE id IN (SELECT value FROM json_each(?))", [_json_ids(ids)]
        )
    }


def campaign_runs(db: sqlite_utils.Database, limit: int = 20) -> list[dict[str, Any]]:
    """The latest campaign runs in the ledger: id, when, offers made."""
    return list(
        db.query(
            "SELECT campaign_id, min(created_at) AS created_at, count(*) AS offers FROM offers "
            "GROUP BY campaign_id ORDER BY created_at DESC LIMIT ?",
            [limit],
        )
    )
