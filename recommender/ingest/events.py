"""The events door: what shoppers do, validated all-or-nothing and stored.

Every live event enters here (``POST /v1/events``; the simulation and tests
too). Rules that must hold for all data are applied once, in this function:
known event types, customers and products, the time range, tombstones.
Customers with personalization consent see the effect on their next request
(their vector is recomputed from history each time); events of customers
without it are stored for order history but never used for them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.errors import ErasedCustomerError, ValidationError
from recommender.online.ids import LIST_ID_RULE, is_list_id
from recommender.store import tombstones
from recommender.store.rows import EventRow
from recommender.values import MAX_PRICE, MAX_QUANTITY, check_not_future, normalise_id, parse_datetime, to_epoch


def ingest(db: sqlite_utils.Database, settings: Settings, events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Validate a batch of events all-or-nothing and store it; returns ``{"accepted": n, "duplicates": m}``.

    An event may carry ``event_id`` (the client's id for it). An id already
    stored, or repeated earlier in the same batch, is acknowledged as a
    duplicate and stored no second time, so a client that did not see the
    answer (timeout, dropped connection, server killed after the commit) can
    simply send the same events again. Events and their ids are stored in one
    transaction: a failure stores neither, and the retry stores both.

    ``list_id`` (optional) names the served list the event came from (see
    :mod:`recommender.online`); ``price`` (optional) is the unit price paid,
    for revenue (the catalogue price is used when it is absent, and by the
    report when it is implausible: ``online.max_price_factor``).

    Events are a log: each one is stored as a row of its own, never merged with
    another (two purchases in one second are two rows, each with its own list
    and price), and stored as sent; the report, not the door, judges a price.
    """
    rows: list[EventRow] = []
    now = int(time.time())
    types = set(settings.event_types)
    for n, event in enumerate(events):
        if event["event_type"] not in types:
            raise ValidationError(
                f"events[{n}].event_type: unknown event type {event['event_type']!r} "
                f"(known: {', '.join(sorted(types))})"
            )
        when = now
        if event.get("occurred_at"):
            try:
                when = to_epoch(parse_datetime(event["occurred_at"]))
            except (ValueError, OverflowError) as exc:  # 9999-12-31T23:59:59-14:00 overflows in UTC
                reason = exc if isinstance(exc, ValueError) else f"timestamp {event['occurred_at']!r} out of range"
                raise ValidationError(f"events[{n}].occurred_at: {reason}") from None
        # DOOR: time (range and future skew of occurred_at)
        try:
            check_not_future(when, now=now, skew_seconds=settings.time.max_future_seconds)
        except ValueError as exc:
            raise ValidationError(f"events[{n}].occurred_at: {exc}") from None
        list_id = event.get("list_id")
        if list_id is not None and not is_list_id(list_id):
            raise ValidationError(f"events[{n}].list_id: {LIST_ID_RULE} (the `list_id` of a served list)")
        # DOOR: bounds (the same constants as CSV imports and the API's schema: recommender.values)
        price = event.get("price")
        if price is not None and not (isinstance(price, (int, float)) and 0 <= price <= MAX_PRICE):
            raise ValidationError(f"events[{n}].price: must be a number from 0 to {MAX_PRICE:g}, got {price!r}")
        quantity = event.get("quantity")
        if quantity is not None and not (isinstance(quantity, (int, float)) and 0 < quantity <= MAX_QUANTITY):
            raise ValidationError(
                f"events[{n}].quantity: must be a number > 0 and <= {MAX_QUANTITY:g}, got {quantity!r}"
            )
        rows.append(
            EventRow(
                customer_id=normalise_id(event["customer_id"]),
                product_id=normalise_id(event["product_id"]),
                event_type=event["event_type"],
                quantity=float(event.get("quantity") or 1),
                occurred_at=when,
                list_id=list_id,
                price=None if price is None else float(price),
            )
        )

    _refuse_erased(db, settings, rows)
    for table, wanted in (("customers", [r.customer_id for r in rows]), ("products", [r.product_id for r in rows])):
        known = store.existing_of(db, table, wanted)
        missing = [x for x in dict.fromkeys(wanted) if x not in known]
        if missing:
            where = wanted.index(missing[0])
            kind = table[:-1]
            raise ValidationError(
                f"events[{where}]: unknown {kind} {missing[0]!r}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )

    # DOOR: idempotency (event_id)
    event_ids = [event.get("event_id") for event in events]
    if not any(event_ids):
        ids = store.add_interactions(db, rows)
        return {"accepted": len(ids), "duplicates": 0}
    stored = store.add_keyed_interactions(db, rows, event_ids)
    return {"accepted": stored, "duplicates": len(rows) - stored}


def _refuse_erased(db: sqlite_utils.Database, settings: Settings, rows: Sequence[EventRow]) -> None:
    """Refuse the batch when an event names an erased customer, naming the first one and counting them all.

    Only ids that are not customers can be erased, so a batch of known
    customers costs one indexed lookup and never reads the key file.
    """
    wanted = [r.customer_id for r in rows]
    known = store.existing_of(db, "customers", wanted)
    gone = tombstones.erased_on(db, settings, [c for c in wanted if c not in known])
    if not gone:
        return
    hits = [n for n, c in enumerate(wanted) if c in gone]
    first = hits[0]
    more = f" (and {len(hits) - 1} more event(s) of erased customers)" if len(hits) > 1 else ""
    raise ErasedCustomerError(
        f"events[{first}].customer_id: customer {wanted[first]!r} was erased on "
        f"{gone[wanted[first]]}{more}; nothing was stored",
        count=len(hits),
    )
