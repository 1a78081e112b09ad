"""Consent: the one door that records decisions, ordered by the time the customer decided."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlite_utils

from recommender.config import Settings
from recommender.errors import NotFoundError, ValidationError
from recommender.store.connection import _json_ids, transaction, utcnow
from recommender.store.privacy import consent_history, customer_consents, get_customer
from recommender.store.rows import ConsentDecision
from recommender.store.schema import MARKETING, PERSONALIZATION  # noqa: F401  (their public home is store.consents)


def set_consents(db: sqlite_utils.Database, rows: Iterable[ConsentDecision | Sequence[Any]]) -> int:
    """Record consent decisions; returns the number of changes (see :func:`apply_consents`)."""
    return apply_consents(db, rows)["changed"]


def apply_consents(db: sqlite_utils.Database, rows: Iterable[ConsentDecision | Sequence[Any]]) -> dict[str, int]:
    """The one door of consent: records :class:`ConsentDecision` rows (customer, purpose, granted, decided_at, ...).

    A plain tuple in the same order, ``(customer_id, purpose, granted,
    decided_at, source[, actor])``, is taken as a decision too (tests and
    benchmarks write them by hand).

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
    rows = [r if isinstance(r, ConsentDecision) else ConsentDecision(*r) for r in rows]
    now = utcnow()
    stale = 0
    with transaction(db):
        if len(rows) > 64:
            current = {
                (c, p): (g, t)
                for c, p, g, t in db.execute("SELECT customer_id, purpose, granted, updated_at FROM consents")
            }
        else:
            current = {}
            for decision in rows:
                row = db.execute(
                    "SELECT granted, updated_at FROM consents WHERE customer_id = ? AND purpose = ?",
                    [decision.customer_id, decision.purpose],
                ).fetchone()
                if row is not None:
                    current[decision.customer_id, decision.purpose] = (row[0], row[1])
        changes, confirmed, withdrawals = [], [], []
        for decision in rows:
            customer_id, purpose, decided_at, source = (
                decision.customer_id,
                decision.purpose,
                decision.decided_at,
                decision.source,
            )
            new = int(bool(decision.granted))
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
            changes.append((customer_id, purpose, old, new, source, now, decided_at, decision.actor))
            if old == 1 and new == 0:
                withdrawals.append((customer_id, purpose, now))
        db.conn.executemany(
            "INSERT INTO consents (customer_id, purpose, granted, updated_at, source) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (customer_id, purpose) DO UPDATE SET granted = excluded.granted, "
            "updated_at = excluded.updated_at, source = excluded.source",
            [(c, p, n, t, s) for c, p, _, n, s, _, t, _ in changes],
        )
        db.conn.executemany(
            "UPDATE consents SET updated_at = ?, source = ? WHERE customer_id = ? AND purpose = ?", confirmed
        )
        db.conn.executemany(
            "INSERT INTO consent_log (customer_id, purpose, old_granted, new_granted, source, changed_at, "
            "decided_at, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            changes,
        )
        db.conn.executemany(
            "INSERT INTO privacy_events (kind, customer_id, purpose, recorded_at) VALUES ('withdrawal', ?, ?, ?)",
            withdrawals,
        )
    return {"changed": len(changes), "stale": stale, "withdrawals": len(withdrawals)}


def check_customer_and_purposes(
    db: sqlite_utils.Database, settings: Settings, customer_id: str, purposes: Iterable[str]
) -> None:
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
        out[purpose] = {
            "granted": bool(row and row["granted"]),
            "recorded": row is not None,
            "updated_at": row["updated_at"] if row else None,
            "source": row["source"] if row else None,
        }
    return {"customer_id": customer_id, "consents": out}


def consent_timeline(db: sqlite_utils.Database, settings: Settings, customer_id: str) -> dict[str, Any]:
    """Every consent change, in the order recorded: when decided, when recorded, source and actor."""
    check_customer_and_purposes(db, settings, customer_id, ())
    rows = [
        {
            "purpose": r["purpose"],
            "old": None if r["old_granted"] is None else bool(r["old_granted"]),
            "new": bool(r["new_granted"]),
            "source": r["source"],
            "changed_at": r["changed_at"],
            "decided_at": r["decided_at"],
            "actor": r["actor"],
        }
        for r in consent_history(db, customer_id)
    ]
    return {"customer_id": customer_id, "history": rows}


# --- the one rule: "this customer granted purpose P" -------------------------------------------------
# A customer granted P when their ``consents`` row for P says ``granted = 1``; no row = not granted.
# Every query that needs the rule takes its SQL from here, in one of two shapes of the same text
# (the primary key (customer_id, purpose) makes the join's match unique, so the two never disagree):
# a JOIN where the planner should be free to walk the consents by purpose (a whole shop's events),
# an EXISTS test where the outer rows are already few (one customer, a campaign's list). Each shape
# takes one ``?`` parameter, the purpose, where the fragment sits in the statement.


def _granted(alias: str) -> str:
    """The condition on a ``consents`` row (named ``alias``) that grants the purpose bound to ``?``."""
    return f"{alias}.purpose = ? AND {alias}.granted = 1"


def granted_sql(column: str) -> str:
    """``EXISTS (...)``: true when the customer in ``column`` granted the purpose bound to its ``?``.

    For a WHERE clause over rows that name a customer (``i.customer_id``,
    ``j.value``, a bound ``?``); one indexed lookup per outer row.
    """
    return f"EXISTS (SELECT 1 FROM consents c WHERE c.customer_id = {column} AND {_granted('c')})"


def granted_join(column: str, alias: str = "c") -> str:
    """``JOIN consents <alias> ON ...``: keeps the rows whose customer in ``column`` granted the purpose (``?``).

    The join shape lets SQLite start from the consents of the purpose (index
    ``consents_purpose``) when that is cheaper, which :func:`granted_sql` would
    not: reading every consenting customer's events goes three times faster.
    """
    return f"JOIN consents {alias} ON {alias}.customer_id = {column} AND {_granted(alias)} "


def consenting_sql() -> str:
    """``SELECT customer_id ...``: every customer who granted the purpose bound to its ``?``, in no order.

    Read from the consents of the purpose (index ``consents_purpose``), not by
    testing every customer: the training matrix and the exports ask for all of
    them. The bulk reader's child process runs it too (see :mod:`.bulk`).
    """
    return f"SELECT c.customer_id AS customer_id FROM consents c WHERE {_granted('c')}"


def consenting_customers(db: sqlite_utils.Database, purpose: str) -> list[str]:
    """Ids of customers whose consent for ``purpose`` is granted (absent = not granted), sorted."""
    return [r[0] for r in db.execute(consenting_sql() + " ORDER BY c.customer_id", [purpose])]


def has_consent(db: sqlite_utils.Database, customer_id: str, purpose: str) -> bool:
    """Whether this customer granted ``purpose`` (an unknown customer has not)."""
    return bool(db.execute(f"SELECT {granted_sql('?')}", [customer_id, purpose]).fetchone()[0])


def customer_consent(db: sqlite_utils.Database, customer_id: str, purpose: str) -> tuple[bool, bool]:
    """``(customer exists, purpose granted)`` in one query: serving asks both on every request."""
    row = db.execute(
        f"SELECT k.id, {granted_sql('k.id')} FROM customers k WHERE k.id = ?", [purpose, customer_id]
    ).fetchone()
    if row is None:
        return False, False
    return True, bool(row[1])


def consented_among(db: sqlite_utils.Database, ids: Sequence[str], purpose: str) -> set[str]:
    """Which of these customers have ``purpose`` granted now (absent = not granted).

    Walks the given ids (one JSON array bound to ``json_each``) and looks each one
    up by the primary key, instead of scanning every consent of the purpose: a
    campaign asks about a few thousand customers of a shop of millions.
    """
    return {
        r[0]
        for r in db.execute(
            f"SELECT j.value FROM json_each(?) AS j WHERE {granted_sql('j.value')}", [_json_ids(ids), purpose]
        )
    }
