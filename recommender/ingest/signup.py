"""An erased person who really signs up again: the one way back past their tombstone.

Every door refuses data of an erased id, so an old export cannot bring someone
back by accident. A person who comes back on purpose does so through
:func:`resignup`, which in one transaction removes the tombstone, creates the
customer afresh (nothing of the old record survives to restore) and records
their new consent decision for every configured purpose, decided now, with
the actor who recorded it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.errors import NotFoundError, ValidationError
from recommender.store import tombstones
from recommender.store.rows import ConsentDecision, CustomerRow
from recommender.values import check_timezone, normalise_id


def resignup(
    db: sqlite_utils.Database,
    settings: Settings,
    customer_id: str,
    grants: Sequence[str],
    source: str,
    *,
    actor: str,
    email: str | None = None,
    name: str | None = None,
    timezone: str = "UTC",
) -> dict[str, Any]:
    """Bring back an erased customer as a new sign-up; purposes not in ``grants`` are recorded as not granted."""
    cid = normalise_id(customer_id)
    if not cid:
        raise ValidationError("customer: missing id")
    if not source.strip():
        raise ValidationError("--source: a sign-up needs a source (e.g. signup, support)")
    for purpose in grants:
        if purpose not in settings.consent_purposes:
            raise ValidationError(
                f"--grant: unknown purpose {purpose!r} (known: {', '.join(settings.consent_purposes)})"
            )
    if email is not None and ("@" not in email or " " in email):
        raise ValidationError(f"--email: bad email {email!r}")
    try:
        tz = check_timezone(timezone)
    except ValueError as exc:
        raise ValidationError(f"--timezone: {exc}") from None
    with store.transaction(db):
        if store.get_customer(db, cid) is not None:
            raise ValidationError(f"customer {cid!r} exists; change their consent with `recommender consent set`")
        if not tombstones.lift(db, settings, cid):
            raise NotFoundError(f"customer {cid!r} was never erased (no tombstone); import them as usual")
        tombstones.lift_email(db, settings, email)  # signing up again with it frees their e-mail too
        now = store.utcnow()
        store.upsert_customers(db, [CustomerRow(cid, email=email, name=name, timezone=tz, created_at=now)])
        store.apply_consents(
            db,
            [
                ConsentDecision(cid, purpose, granted=purpose in grants, decided_at=now, source=source, actor=actor)
                for purpose in settings.consent_purposes
            ],
        )
    state = store.consent_state(db, settings, cid)
    return {
        "customer_id": cid,
        "tombstone_removed": True,
        "created_at": now,
        "actor": actor,
        "consents": state["consents"],
    }
