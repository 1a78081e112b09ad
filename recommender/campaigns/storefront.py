"""What a storefront shows: the offers a customer holds now, read from the ledger."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from typing import Any

import sqlite_utils

from recommender import store
from recommender.errors import ValidationError
from recommender.store.consents import MARKETING
from recommender.values import parse_date


def active_offers(db: sqlite_utils.Database, customer_id: str, on: str | None = None) -> dict[str, Any]:
    """The offers a storefront may show this customer: valid on their local today (or on ``on``).

    Only with marketing consent: a withdrawal hides every offer at once, even
    one already sent. An unknown customer simply has none, like one without
    offers, so a storefront never has to handle an error for a banner.
    """
    if on is not None:
        try:
            on = parse_date(on).isoformat()
        except ValueError as exc:
            raise ValidationError(f"date: {exc}") from None
    exists, tz = store.customer_timezone(db, customer_id)
    if not exists or not store.consented_among(db, [customer_id], MARKETING):
        return {"customer_id": customer_id, "on": on, "offers": []}
    if on is None:
        try:
            zone = zoneinfo.ZoneInfo(tz or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = zoneinfo.ZoneInfo("UTC")
        on = dt.datetime.now(zone).date().isoformat()
    rows = store.active_offers(db, customer_id, on)
    ids = [json.loads(r["products"]) for r in rows]
    names = store.product_names(db, sorted({p for group in ids for p in group}))
    offers = [
        {
            "occasion": r["occasion"],
            "occasion_year": r["occasion_year"],
            "code": r["code"],
            "discount": r["discount"],
            "valid_from": r["valid_from"],
            "valid_until": r["valid_until"],
            "products": [{"product_id": p, "name": names.get(p)} for p in group],
            "list_id": r["list_id"],
        }
        for r, group in zip(rows, ids)
    ]
    return {"customer_id": customer_id, "on": on, "offers": offers}
