"""Consent per customer and purpose: what may be used, changed only through here.

No consent recorded means not granted. Every change is appended to
``consent_log`` with its source, so a shop can show who changed what and when.
The purposes are configuration (``consent_purposes``), so a shop can add one.

Decisions are ordered by when the customer made them (``decided_at``), not by
when they reach us: a change older than the current state's decision is
skipped as stale (see :func:`store.apply_consents`). The log keeps both times
and the actor: the API key, the CLI's ``--source``, or the imported file.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

import sqlite_utils

from . import store
from .config import Settings
from .errors import ErasedCustomerError, NotFoundError, ValidationError
from .privacy import tombstones
from .values import iso_utc, parse_datetime

PERSONALIZATION = "personalization"
MARKETING = "marketing"


def _check(db: sqlite_utils.Database, settings: Settings, customer_id: str, purposes) -> None:
    if store.get_customer(db, customer_id) is None:
        raise NotFoundError(f"unknown customer {customer_id!r}")
    for purpose in purposes:
        if purpose not in settings.consent_purposes:
            raise ValidationError(f"unknown purpose {purpose!r} (known: {', '.join(settings.consent_purposes)})")


def decision_time(settings: Settings, decided_at: str | dt.datetime | None, *, field: str = "decided_at") -> str:
    """The customer's decision time as ISO UTC text; now when not given, refused beyond the allowed future skew."""
    now = dt.datetime.now(dt.timezone.utc)
    if decided_at is None or decided_at == "":
        return iso_utc(now)
    try:
        when = decided_at if isinstance(decided_at, dt.datetime) else parse_datetime(decided_at)
    except ValueError as exc:
        raise ValidationError(f"{field}: {exc}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    if (when - now).total_seconds() > settings.time.max_future_seconds:
        raise ValidationError(f"{field}: {iso_utc(when)} is in the future (more than "
                              f"{settings.time.max_future_seconds} s ahead of this server's clock)")
    return iso_utc(when)


def refuse_if_erased(db: sqlite_utils.Database, settings: Settings, customer_id: str, field: str = "customer_id") -> None:
    """Raise :class:`ErasedCustomerError` when ``customer_id`` is not a customer because they were erased."""
    when = tombstones.erased_on(db, settings, [customer_id]).get(customer_id)
    if when is not None:
        raise ErasedCustomerError(f"{field}: customer {customer_id!r} was erased on {when}; only "
                                  "`recommender resignup` (a new sign-up with new consent) brings them back")


def set_consents(db: sqlite_utils.Database, settings: Settings, customer_id: str, changes: Mapping[str, bool],
                 source: str, *, decided_at: str | dt.datetime | None = None,
                 actor: str | None = None) -> dict[str, Any]:
    """Record one customer's decision on some purposes; returns the resulting state.

    ``decided_at`` is when the customer decided (default now); a change older
    than the current state's decision is not applied and is listed under
    ``stale`` in the result. ``actor`` is who recorded it (an API key, ``cli:<source>``).
    """
    if not source.strip():
        raise ValidationError("a consent change needs a source (e.g. preference_centre, support, api)")
    decided = decision_time(settings, decided_at)
    if store.get_customer(db, customer_id) is None:
        refuse_if_erased(db, settings, customer_id)
    _check(db, settings, customer_id, changes)
    outcome = store.apply_consents(db, [(customer_id, purpose, bool(granted), decided, source, actor or f"source:{source}")
                                        for purpose, granted in changes.items()])
    _derived().follow(db, settings)  # derived data (popularity, bought-together) follows at once
    state = current(db, settings, customer_id)
    state["decided_at"] = decided
    state["changed"] = outcome["changed"]
    state["stale"] = sorted(p for p, granted in changes.items() if state["consents"][p]["granted"] != bool(granted))
    return state


def _derived():  # derived data (lazy: the privacy package reads consent)
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
    """Every consent change, in the order recorded: when decided, when recorded, source and actor."""
    _check(db, settings, customer_id, ())
    rows = [{"purpose": r["purpose"],
             "old": None if r["old_granted"] is None else bool(r["old_granted"]),
             "new": bool(r["new_granted"]), "source": r["source"], "changed_at": r["changed_at"],
             "decided_at": r["decided_at"], "actor": r["actor"]}
            for r in store.consent_history(db, customer_id)]
    return {"customer_id": customer_id, "history": rows}
