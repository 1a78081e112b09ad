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
from collections.abc import Mapping
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.errors import ErasedCustomerError, ValidationError
from recommender.privacy import derived
from recommender.store import tombstones
from recommender.store.consents import check_customer_and_purposes, consent_state
from recommender.store.rows import ConsentDecision
from recommender.values import iso_utc, normalise_id, parse_datetime


def decision_time(settings: Settings, decided_at: str | dt.datetime | None, *, field: str = "decided_at") -> str:
    """The customer's decision time as ISO UTC text; now when not given, refused beyond the allowed future skew."""
    now = dt.datetime.now(dt.UTC)
    if decided_at is None or decided_at == "":
        return iso_utc(now)
    try:
        when = decided_at if isinstance(decided_at, dt.datetime) else parse_datetime(decided_at)
    except ValueError as exc:
        raise ValidationError(f"{field}: {exc}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if (when - now).total_seconds() > settings.time.max_future_seconds:
        raise ValidationError(
            f"{field}: {iso_utc(when)} is in the future (more than "
            f"{settings.time.max_future_seconds} s ahead of this server's clock)"
        )
    return iso_utc(when)


def refuse_if_erased(
    db: sqlite_utils.Database, settings: Settings, customer_id: str, field: str = "customer_id"
) -> None:
    """Raise :class:`ErasedCustomerError` when ``customer_id`` is not a customer because they were erased."""
    when = tombstones.erased_on(db, settings, [customer_id]).get(customer_id)
    if when is not None:
        raise ErasedCustomerError(
            f"{field}: customer {customer_id!r} was erased on {when}; only "
            "`recommender resignup` (a new sign-up with new consent) brings them back"
        )


def set_consents(
    db: sqlite_utils.Database,
    settings: Settings,
    customer_id: str,
    changes: Mapping[str, bool],
    source: str,
    *,
    decided_at: str | dt.datetime | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Record one customer's decision on some purposes; returns the resulting state.

    ``decided_at`` is when the customer decided (default now); a change older
    than the current state's decision is not applied and is listed under
    ``stale`` in the result. ``actor`` is who recorded it (an API key, ``cli:<source>``).
    """
    if not source.strip():
        raise ValidationError("a consent change needs a source (e.g. preference_centre, support, api)")
    decided = decision_time(settings, decided_at)
    customer_id = normalise_id(customer_id)
    if store.get_customer(db, customer_id) is None:
        refuse_if_erased(db, settings, customer_id)
    check_customer_and_purposes(db, settings, customer_id, changes)
    outcome = store.apply_consents(
        db,
        [
            ConsentDecision(
                customer_id,
                purpose,
                granted=bool(granted),
                decided_at=decided,
                source=source,
                actor=actor or f"source:{source}",
            )
            for purpose, granted in changes.items()
        ],
    )
    derived.follow(db, settings)  # derived data (popularity, bought-together) follows at once
    state = consent_state(db, settings, customer_id)
    state["decided_at"] = decided
    state["changed"] = outcome["changed"]
    state["stale"] = sorted(p for p, granted in changes.items() if state["consents"][p]["granted"] != bool(granted))
    return state
