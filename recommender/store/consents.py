"""Consent: the one door that records decisions, ordered by the time the customer decided."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import sqlite_utils

from recommender.config import Settings
from recommender.errors import NotFoundError, ValidationError
from recommender.store.connection import transaction, utcnow
from recommender.store.privacy import consent_history, customer_consents, get_customer

# The consent purposes the engine itself acts on, named once (a shop may configure more: ``consent_purposes``).
PERSONALIZATION = "personalization"
MARKETING = "marketing"


def set_consents(db: sqlite_utils.Database, rows: Iterable[Sequence[Any]]) -> int:
    """Record consent decisions; returns the number of changes (see :func:`apply_consents`)."""
    return apply_consents(db, rows)["changed"]


def apply_consents(db: sqlite_utils.Database, rows: Iterable[Sequence[Any]]) -> dict[str, int]:
    """The one door of consent: decisions ``(customer_id, purpose, granted, decided_at, source[, actor])``.

    Last writer wins by the time the customer *decided* (``decided_at``, ISO UTC
    text), not by the order rows arrive: a decision older than the current
    state's (``consents.updated_at``) is skipped, and counted as ``stale`` when
    it disagrees with that state. A tie goes to the later arrival, so two
    changes made within one second apply in order. A decision that repeats the
    current state changes nothing and logs nothing (re-importing a file is
    harmless). Repeats are asymmetric on purpose, so that doubt always falls on
    the side that uses less data: a newer repeat of "not granted" moves the
    state's decided time forward (an older grant arriving late stays stale),
    while a repeat of "granted" does not (an older withdrawal arriving late
    still applies). Every real change is appended to
    ``consent_log`` with both clocks (``decided_at``; ``changed_at`` = now, when
    it was recorded) and its actor; every withdrawal (granted -> not granted)
    also adds a ``privacy_events`` row in the same transaction, for the long
    jobs that reconcile with withdrawals. Returns ``{changed, stale, withdrawals}``.
    """
    rows = list(rows)
    now = utcnow()
    stale = 0
    with transaction(db):
        if len(rows) > 64:
            current = {(c, p): (g, t) for c, p, g, t in
                       db.execute("SELECT customer_id, purpose, granted, updated_at FROM consents")}
        else:
            current = {}
            for customer_id, purpose, *_ in rows:
                row = db.execute("SELECT granted, updated_at FROM consents WHERE customer_id = ? AND purpose = ?",
                                 [customer_id, purpose]).fetchone()
                if row is not None:
                    current[customer_id, purpose] = (row[0], row[1])
        changes, confirmed, withdrawals = [], [], []
        for row in rows:
            customer_id, purpose, granted, decided_at, source = row[:5]
            actor = row[5] if len(row) > 5 else None
            new = int(bool(granted))
            state = current.get((customer_id, purpose))
            if state is not None and decided_at < state[1]:
                stale += state[0] != new
                continue
            if state is not None and state[0] == new:
                if new == 0 and decided_at > state[1]:
                    current[customer_id, purpose] = (new, decided_at)
                    confirmed.append((decided_at, source, customer_id, purpose))
                continue
            old = None if state is None else state[0]
            current[customer_id, purpose] = (new, decided_at)
            changes.append((customer_id, purpose, old, new, source, now, decided_at, actor))
            if old == 1 and new == 0:
                withdrawals.append((customer_id, purpose, now))
        db.conn.executemany(
            "INSERT INTO consents (customer_id, purpose, granted, updated_at, source) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (customer_id, purpose) DO UPDATE SET granted = excluded.granted, "
            "updated_at = excluded.updated_at, source = excluded.source",
            [(c, p, n, t, s) for c, p, _, n, s, _, t, _ in changes],
        )
        db.conn.executemany("UPDATE consents SET updated_at = ?, source = ? WHERE customer_id = ? AND purpose = ?",
                            confirmed)
        db.conn.executemany(
            "INSERT INTO consent_log (customer_id, purpose, old_granted, new_granted, source, changed_at, "
            "decided_at, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            changes,
        )
        db.conn.executemany(
            "INSERT INTO privacy_events (kind, customer_id, purpose, recorded_at) VALUES ('withdrawal', ?, ?, ?)",
            withdrawals)
    return {"changed": len(changes), "stale": stale, "withdrawals": len(withdrawals)}


def check_customer_and_purposes(db: sqlite_utils.Database, settings: Settings, customer_id: str, purposes: Iterable[str]) -> None:
    """Refuse an unknown customer or an unconfigured purpose (one message for every door)."""
    if get_customer(db, customer_id) is None:
        raise NotFoundError(f"unknown customer {customer_id!r}")
    for purpose in purposes:
        if purpose not in settings.consent_purposes:
            raise ValidationError(f"unknown purpose {purpose!r} (known: {', '.join(settings.consent_purposes)})")


def consent_state(db: sqlite_utils.Database, settings: Settings, customer_id: str) -> dict[str, Any]:
    """Every configured purpose with its state; unrecorded purposes show as not granted."""
    check_customer_and_purposes(db, settings, customer_id, ())
    recorded = {r["purpose"]: r for r in customer_consents(db, customer_id)}
    out = {}
    for purpose in settings.consent_purposes:
        row = recorded.get(purpose)
        out[purpose] = {"granted": bool(row and row["granted"]), "recorded": row is not None,
                        "updated_at": row["updated_at"] if row else None, "source": row["source"] if row else None}
    return {"customer_id": customer_id, "consents": out}


def consent_timeline(db: sqlite_utils.Database, settings: Settings, customer_id: str) -> dict[str, Any]:
    """Every consent change, in the order recorded: when decided, when recorded, source and actor."""
    check_customer_and_purposes(db, settings, customer_id, ())
    rows = [{"purpose": r["purpose"],
             "old": None if r["old_granted"] is None else bool(r["old_granted"]),
             "new": bool(r["new_granted"]), "source": r["source"], "changed_at": r["changed_at"],
             "decided_at": r["decided_at"], "actor": r["actor"]}
            for r in consent_history(db, customer_id)]
    return {"customer_id": customer_id, "history": rows}
