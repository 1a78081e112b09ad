"""Privacy records: profiles for access, erasure and tombstones, privacy events, copies, retention."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from recommender.store.connection import transaction, utcnow
from recommender.store.schema import PERSONALIZATION

# --- privacy: access, erasure, retention -------------------------------------------


def get_customer(db: sqlite_utils.Database, customer_id: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM customers WHERE id = ?", [customer_id]))
    return rows[0] if rows else None


def customer_consents(db: sqlite_utils.Database, customer_id: str) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT purpose, granted, updated_at, source FROM consents WHERE customer_id = ? ORDER BY purpose",
            [customer_id],
        )
    )


def consent_history(db: sqlite_utils.Database, customer_id: str) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT purpose, old_granted, new_granted, source, changed_at, "
            "coalesce(decided_at, changed_at) AS decided_at, actor FROM consent_log "
            "WHERE customer_id = ? ORDER BY id",
            [customer_id],
        )
    )


def customer_rows(db: sqlite_utils.Database, table: str, customer_id: str) -> list[dict[str, Any]]:
    """Every row of ``interactions``, ``offers`` or ``decisions`` about one customer."""
    if table not in ("interactions", "offers", "decisions"):
        raise ValueError(table)
    return list(db.query(f"SELECT * FROM {table} WHERE customer_id = ? ORDER BY id", [customer_id]))


def meta_value(db: sqlite_utils.Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def erase_customer(
    db: sqlite_utils.Database, customer_id: str, subject_hash: str, erased_at: str, also: Sequence[str] = ()
) -> dict[str, int]:
    """Delete everything about a customer and leave only the tombstone; one transaction.

    ``also``: the tombstones of the person's e-mail addresses, stored in ``erased_emails``.
    """
    deleted = {}
    with transaction(db):
        db.conn.executemany(
            "INSERT OR REPLACE INTO erased_emails (subject_hash, erased_at) VALUES (?, ?)",
            [(h, erased_at) for h in also],
        )
        for table in ("decisions", "offers", "interactions", "customer_values", "consent_log", "consents"):
            deleted[table] = db.execute(f"DELETE FROM {table} WHERE customer_id = ?", [customer_id]).rowcount
        deleted["customers"] = db.execute("DELETE FROM customers WHERE id = ?", [customer_id]).rowcount
        db.execute("INSERT OR REPLACE INTO erasures (subject_hash, erased_at) VALUES (?, ?)", [subject_hash, erased_at])
        # The erasure supersedes the person's withdrawal events (which name them) and
        # is itself the event every long job reconciles with.
        db.execute("DELETE FROM privacy_events WHERE customer_id = ?", [customer_id])
        db.execute(
            "INSERT INTO privacy_events (kind, subject_hash, recorded_at) VALUES ('erasure', ?, ?)",
            [subject_hash, utcnow()],
        )
    return deleted


def erasure_count(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT count(*) FROM erasures").fetchone()[0]


def privacy_epoch(db: sqlite_utils.Database) -> int:
    """The id of the newest privacy event (erasure or withdrawal); 0 when there is none.

    A long job reads this before it reads data, and reconciles with every
    event after it before it publishes anything.
    """
    return int(db.execute("SELECT coalesce(max(id), 0) FROM privacy_events").fetchone()[0])


def privacy_events_since(db: sqlite_utils.Database, epoch: int) -> list[dict[str, Any]]:
    """Every privacy event with ``id > epoch``, oldest first (an indexed range scan)."""
    return list(
        db.query(
            "SELECT id, kind, subject_hash, customer_id, purpose, recorded_at FROM privacy_events "
            "WHERE id > ? ORDER BY id",
            [epoch],
        )
    )


def erasure_dates(db: sqlite_utils.Database, hashes: Sequence[str]) -> dict[str, str]:
    """``{tombstone: erased_at}`` for those of ``hashes`` that are tombstones."""
    found: dict[str, str] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        found.update(
            (r[0], r[1])
            for r in db.execute(
                f"SELECT subject_hash, erased_at FROM erasures WHERE subject_hash IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
        )
    return found


def erased_email_count(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT count(*) FROM erased_emails").fetchone()[0]


def erased_email_dates(db: sqlite_utils.Database, hashes: Sequence[str]) -> dict[str, str]:
    """``{tombstone: erased_at}`` for those of ``hashes`` that are e-mail tombstones."""
    found: dict[str, str] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        found.update(
            (r[0], r[1])
            for r in db.execute(
                f"SELECT subject_hash, erased_at FROM erased_emails WHERE subject_hash IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
        )
    return found


def delete_email_tombstone(db: sqlite_utils.Database, subject_hash: str) -> bool:
    with transaction(db):
        return db.execute("DELETE FROM erased_emails WHERE subject_hash = ?", [subject_hash]).rowcount > 0


def rekey_tombstones(db: sqlite_utils.Database, rekey: Any) -> int:
    """Replace every stored tombstone ``h`` (erasures and erasure events) by ``rekey(h)``; one transaction."""
    with transaction(db):
        old = [r[0] for r in db.execute("SELECT subject_hash FROM erasures")]
        db.conn.executemany("UPDATE erasures SET subject_hash = ? WHERE subject_hash = ?", [(rekey(h), h) for h in old])
        emails = [r[0] for r in db.execute("SELECT subject_hash FROM erased_emails")]
        db.conn.executemany(
            "UPDATE erased_emails SET subject_hash = ? WHERE subject_hash = ?", [(rekey(h), h) for h in emails]
        )
        events = db.execute("SELECT id, subject_hash FROM privacy_events WHERE kind = 'erasure'").fetchall()
        db.conn.executemany(
            "UPDATE privacy_events SET subject_hash = ? WHERE id = ?", [(rekey(h), i) for i, h in events]
        )
    return len(old)


def keyed_hashes(db: sqlite_utils.Database) -> int:
    """How many stored values were made with the tombstone key (erasures and erasure events)."""
    return int(
        db.execute(
            "SELECT (SELECT count(*) FROM erasures) + (SELECT count(*) FROM erased_emails) + "
            "(SELECT count(*) FROM privacy_events WHERE kind = 'erasure')"
        ).fetchone()[0]
    )


def delete_tombstone(db: sqlite_utils.Database, subject_hash: str) -> bool:
    with transaction(db):
        return db.execute("DELETE FROM erasures WHERE subject_hash = ?", [subject_hash]).rowcount > 0


def set_meta(db: sqlite_utils.Database, key: str, value: str) -> None:
    with transaction(db):
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )


def ensure_random_meta(db: sqlite_utils.Database, key: str) -> None:
    """Give ``key`` a random 128-bit hex value unless it has one (a secret made once per database).

    ``INSERT OR IGNORE``: when two processes race, the first value stays and
    both read it back with :func:`meta_value`. Committed at once, so the value
    is durable before anyone derives anything from it.
    """
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, lower(hex(randomblob(16))))", [key])
    db.conn.commit()


def newest_erasure_event(db: sqlite_utils.Database) -> int:
    """The id of the newest erasure in ``privacy_events`` (0 when none): whether a VACUUM is due."""
    return int(db.execute("SELECT coalesce(max(id), 0) FROM privacy_events WHERE kind = 'erasure'").fetchone()[0])


def delete_meta(db: sqlite_utils.Database, key: str) -> None:
    with transaction(db):
        db.execute("DELETE FROM meta WHERE key = ?", [key])


def register_copy(db: sqlite_utils.Database, path: str | Path, kind: str) -> None:
    """Remember a file the engine wrote that holds customer data, so erasure can reach it."""
    with transaction(db):
        db.execute(
            "INSERT INTO copies (path, kind, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET kind = excluded.kind, created_at = excluded.created_at",
            [str(Path(path).absolute()), kind, utcnow()],
        )


def registered_copies(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every tracked copy ``{path, kind, created_at}``, oldest first."""
    return list(db.query("SELECT path, kind, created_at FROM copies ORDER BY created_at, path"))


def forget_copy(db: sqlite_utils.Database, path: str | Path) -> None:
    with transaction(db):
        db.execute("DELETE FROM copies WHERE path = ?", [str(Path(path).absolute())])


# Read through the partial index of the few events that carry a list id: by the time index
# the planner prefers, it would visit every event older than the cutoff (nearly all of a
# shop's history) while holding the write lock, in every worker, every hour: 1.0 s at
# 400,000 events, against 0.2 ms this way.
CLEAR_OLD_LIST_IDS = (
    "UPDATE interactions INDEXED BY interactions_list SET list_id = NULL WHERE list_id IS NOT NULL AND occurred_at < ?"
)


def prune_decisions(db: sqlite_utils.Database, before: str) -> int:
    """Delete decision-log rows older than ``before`` (ISO UTC), and the list ids events older than it carry.

    An event's ``list_id`` is measurement data: it lives as long as the lists it points to.
    """
    import datetime as _dt

    epoch = int(_dt.datetime.strptime(before, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC).timestamp())
    with transaction(db):
        deleted = db.execute("DELETE FROM decisions WHERE created_at < ?", [before]).rowcount
        db.execute(CLEAR_OLD_LIST_IDS, [epoch])
        return deleted


@dataclass
class Pending:
    """The erasures (tombstones) and personalization withdrawals (ids) recorded after an epoch."""

    since: int
    epoch: int
    erased: set[str] = field(default_factory=set)
    withdrawn: set[str] = field(default_factory=set)


def pending(db: sqlite_utils.Database, epoch: int) -> Pending:
    rows = privacy_events_since(db, epoch)
    out = Pending(since=epoch, epoch=max([epoch, *(r["id"] for r in rows)]))
    for r in rows:
        if r["kind"] == "erasure":
            out.erased.add(r["subject_hash"])
        elif r["purpose"] == PERSONALIZATION:
            out.withdrawn.add(r["customer_id"])
    return out
