"""Consent per customer and purpose: what may be used, changed only through here.

No consent recorded means not granted. Every change is appended to
``consent_log`` with its source, so a shop can show who changed what and when.
The purposes are configuration (``consent_purposes``), so a shop can add one.
"""

from __future__ import annotations

from typing import Any, Mapping

import sqlite_utils

from . import store
from .config import Settings
from .errors import NotFoundError, ValidationError

PERSONALIZATION = "personalization"
MARKETING = "marketing"


def _check(db: sqlite_utils.Database, settings: Settings, customer_id: str, purposes) -> None:
    if store.get_customer(db, customer_id) is None:
        raise NotFoundError(f"unknown customer {customer_id!r}")
    for purpose in purposes:
        if purpose not in settings.consent_purposes:
            raise ValidationError(f"unknown purpose {purpose!r} (known: {', '.join(settings.consent_purposes)})")


def set_consents(db: sqlite_utils.Database, settings: Settings, customer_id: str, changes: Mapping[str, bool],
                 source: str) -> dict[str, Any]:
    """Grant or withdraw purposes for one customer; returns the resulting state."""
    if not source.strip():
        raise ValidationError("a consent change needs a source (e.g. preference_centre, support, api)")
    _check(db, settings, customer_id, changes)
    now = store.utcnow()
    store.set_consents(db, [(customer_id, purpose, bool(granted), now, source) for purpose, granted in changes.items()])
    _derived().follow(db, settings)  # privacy2: derived data
    return current(db, settings, customer_id)


def _derived():  # privacy2: derived data (lazy: the privacy package reads consent)
    from .privacy import derived

    return derived


def current(db: sqlite_utils.Database, settings: Settings, customer_id: str) -> dict[str, Any]:
    """Every configured purpose with its state; unrecorded purposes show as not granted."""
    _check(db, settings, customer_id, ())
    recorded = {r["purpose"]: r for r in store.customer_consents(db, customer_id)}
    out = {}
    for purpose in settings.consent_purposes:
        row = recorded.get(purpose)
        out[purpose] = {"granted": bool(row and row["granted"]), "recorded": row is not None,
                        "updated_at": row["updated_at"] if row else None, "source": row["source"] if row else None}
    return {"customer_id": customer_id, "consents": out}


def history(db: sqlite_utils.Database, settings: Settings, customer_id: str) -> dict[str, Any]:
    _check(db, settings, customer_id, ())
    rows = [{"purpose": r["purpose"],
             "old": None if r["old_granted"] is None else bool(r["old_granted"]),
             "new": bool(r["new_granted"]), "source": r["source"], "changed_at": r["changed_at"]}
            for r in store.consent_history(db, customer_id)]
    return {"customer_id": customer_id, "history": rows}
