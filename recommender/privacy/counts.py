"""Popularity and bought-together recounted from today's consent-filtered events.

The one computation behind every derived answer that must follow consent and
erasure at once (see :mod:`.derived`), kept below both the reconciliation of
artifacts and the refresh that calls it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.data import interactions, signals
from recommender.store.consents import PERSONALIZATION

# Up to this many events, the signals' events are read in-process (a fraction of a second);
# beyond, through the bulk reader's child process (seconds to start, fast per row).
IN_PROCESS_ROWS = 200_000


def consented_events(db: sqlite_utils.Database, settings: Settings) -> interactions.Interactions:
    """The consent-filtered, weighted events the signals are counted from (what training reads).

    Small shops are read in-process: starting the bulk reader's child process
    costs more than the whole read, and an erasure or withdrawal waits on it.
    """
    if store.interaction_count(db) > IN_PROCESS_ROWS:
        return interactions.load(db, settings)
    rows = store.consented_event_rows(db, PERSONALIZATION)
    products = np.array(sorted(p["id"] for p in store.all_products(db)), dtype=object)
    if not rows:
        empty = np.zeros(0, np.int32)
        return interactions.Interactions(
            np.zeros(0, object),
            products,
            empty,
            empty,
            empty.astype(np.int16),
            np.zeros(0, np.float32),
            np.zeros(0, object),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
            np.ones(len(products), bool),
        )
    customer, product, event, quantity, when = zip(*rows)
    # Fixed-width strings sort several times faster than Python objects.
    types, event_code = np.unique(np.array(event, dtype=str), return_inverse=True)
    types = types.astype(object)
    by_type = np.array([settings.event_weights.get(t, 0.0) for t in types], dtype=np.float32)
    weight = (by_type[event_code] * np.array(quantity, dtype=np.float32)).astype(np.float32)
    # as in interactions.load: unweighted types carry nothing, and no time beyond the skew is true
    keep = (weight > 0) & (np.array(when, dtype=np.int64) <= time.time() + settings.time.max_future_seconds)
    user_ids, user = np.unique(np.array(customer, dtype=str)[keep], return_inverse=True)
    user_ids = user_ids.astype(object)
    item = np.searchsorted(products.astype(str), np.array(product, dtype=str)[keep])
    return interactions.Interactions(
        user_ids=user_ids,
        item_ids=products,
        user=user.astype(np.int32),
        item=item.astype(np.int32),
        event=event_code[keep].astype(np.int16),
        quantity=np.array(quantity, dtype=np.float32)[keep],
        event_types=types,
        weight=weight[keep],
        time=np.array(when, dtype=np.int64)[keep],
        recommendable=np.ones(len(products), bool),
    )


def signals_for(
    db: sqlite_utils.Database,
    settings: Settings,
    item_ids: Sequence[str],
    data: interactions.Interactions | None = None,
) -> dict[str, np.ndarray]:
    """The signals of an artifact whose items are ``item_ids``, from today's consent-filtered events."""
    data = data if data is not None else consented_events(db, settings)
    position = {p: i for i, p in enumerate(item_ids)}
    code = np.array([position.get(p, -1) for p in data.item_ids], dtype=np.int64)
    mapped = code[data.item] if len(data) else np.zeros(0, np.int64)
    keep = mapped >= 0
    sub = dataclasses.replace(
        data,
        item_ids=np.array(list(item_ids), dtype=object),
        item=mapped[keep].astype(np.int32),
        user=data.user[keep],
        event=data.event[keep],
        quantity=data.quantity[keep],
        weight=data.weight[keep],
        time=data.time[keep],
        recommendable=np.ones(len(item_ids), dtype=bool),
    )
    return signals.compute(sub, settings.purchase_events)
