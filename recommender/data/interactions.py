"""From stored events to the customers × products confidence matrix ALS learns from.

Consent is applied here, at the only door training data passes through: a
customer without ``personalization`` consent contributes no row at all. All
work is vectorised (one pass over column arrays, one sparse sum), so ten
million events cost seconds, not minutes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import sqlite_utils

from recommender import store
from recommender.config import ALSSettings, Settings
from recommender.data import bulk
from recommender.store.consents import PERSONALIZATION

SECONDS_PER_DAY = 86400.0


def confidence(x: np.ndarray, als: ALSSettings) -> np.ndarray:
    """Map weighted counts to ALS confidence (see ``ALSSettings.alpha``)."""
    x = np.asarray(x, dtype=np.float32)
    if als.log_scaling:
        return (1.0 + als.alpha * np.log1p(x)).astype(np.float32)
    return (als.alpha * x).astype(np.float32)


@dataclass
class Interactions:
    """Consent-filtered events as parallel arrays plus the id maps of both axes.

    ``user_ids`` are the consenting customers that have at least one event;
    ``item_ids`` are all products, so a model can score the whole catalogue.
    ``weight`` is event-type weight × quantity, before time decay.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    user: np.ndarray
    item: np.ndarray
    event: np.ndarray  # codes into event_types
    quantity: np.ndarray
    event_types: np.ndarray
    weight: np.ndarray
    time: np.ndarray
    recommendable: np.ndarray
    # Unix seconds when the data was read; no event counts as newer than this.
    read_at: int = 0
    # Events dated after read_at + the allowed clock skew: left out (their time cannot be
    # true), counted for the release gate.
    future_events: int = 0
    newest_future: int | None = None
    # store.privacy_epoch before the read: privacy events after it are reconciled before publishing.
    epoch: int = 0

    @property
    def reference_time(self) -> int:
        """Where time decay counts from: the newest event, never later than the read itself.

        A row dated in the future cannot move it: such rows are left out at load,
        and the reference is capped at the time of the read.
        """
        if len(self.time) == 0:
            return self.read_at
        newest = int(self.time.max())
        return min(newest, self.read_at) if self.read_at else newest

    def reweighted(self, event_weights: dict[str, float]) -> Interactions:
        """The same events under other event-type weights (used by tuning)."""
        return dataclasses.replace(self, weight=_weights(self.event_types, self.event, self.quantity, event_weights))

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.user_ids), len(self.item_ids)

    def __len__(self) -> int:
        return len(self.user)

    def weighted_counts(
        self, mask: np.ndarray | None = None, *, half_life_days: float = 0.0, reference_time: int | None = None
    ) -> sp.csr_matrix:
        """Sum of (decayed) weights per (customer, product), optionally over a subset of events."""
        user, item, weight, time = self.user, self.item, self.weight, self.time
        if mask is not None:
            user, item, weight, time = user[mask], item[mask], weight[mask], time[mask]
        if half_life_days > 0 and len(time):
            ref = self.reference_time if reference_time is None else reference_time
            age_days = (ref - time).clip(min=0) / SECONDS_PER_DAY
            weight = weight * np.exp2(-age_days / half_life_days).astype(np.float32)
        matrix = sp.csr_matrix((weight, (user, item)), shape=self.shape, dtype=np.float32)
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        return matrix

    def matrix(
        self, als: ALSSettings, mask: np.ndarray | None = None, reference_time: int | None = None
    ) -> sp.csr_matrix:
        """The confidence matrix ALS trains on."""
        counts = self.weighted_counts(mask, half_life_days=als.half_life_days, reference_time=reference_time)
        counts.data = confidence(counts.data, als)
        return counts

    def user_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.user_ids)}


def _weights(
    event_types: np.ndarray, event: np.ndarray, quantity: np.ndarray, event_weights: dict[str, float]
) -> np.ndarray:
    by_type = np.array([event_weights.get(t, 0.0) for t in event_types] or [0.0], dtype=np.float32)
    return (by_type[event] * quantity).astype(np.float32)


def load(
    db: sqlite_utils.Database, settings: Settings, *, as_of: dt.date | None = None, now: float | None = None
) -> Interactions:
    """Read every event of consenting customers and weight it by event type and quantity.

    Products that are hidden or past ``available_until`` (relative to ``as_of``,
    default today) stay in the matrix — what people bought still says something
    about taste — but are marked not recommendable. Events dated more than
    ``time.max_future_seconds`` after now are left out and counted: the doors
    refuse them, so any here bypassed the doors (a data accident the gate reports).
    """
    epoch = store.privacy_epoch(db)  # before the read: anything recorded later is reconciled
    read_at = int(_time.time() if now is None else now)
    raw = bulk.interaction_arrays(db, PERSONALIZATION)
    weight = _weights(raw["event_types"], raw["event"], raw["quantity"], settings.event_weights)
    future = raw["time"] > read_at + settings.time.max_future_seconds
    newest_future = int(raw["time"][future].max()) if future.any() else None
    keep = (weight > 0) & ~future  # event types no longer configured carry no signal
    # Keep only consenting customers that have events; renumber them densely.
    present = np.bincount(raw["user"][keep], minlength=len(raw["customer_ids"])) > 0
    new_code = np.cumsum(present) - 1
    user = new_code[raw["user"][keep]]
    user_ids = raw["customer_ids"][present]
    item_ids = raw["product_ids"]
    as_of = as_of or dt.date.today()
    hidden = store.unrecommendable_products(db, as_of.isoformat())
    recommendable = np.ones(len(item_ids), dtype=bool)
    if hidden:
        recommendable[np.isin(item_ids, np.array(sorted(hidden), dtype=object))] = False
    return Interactions(
        user_ids=user_ids,
        item_ids=item_ids,
        user=user.astype(np.int32),
        item=raw["item"][keep],
        event=raw["event"][keep],
        quantity=raw["quantity"][keep],
        event_types=raw["event_types"],
        weight=weight[keep],
        time=raw["time"][keep],
        recommendable=recommendable,
        read_at=read_at,
        future_events=int(future.sum()),
        newest_future=newest_future,
        epoch=epoch,
    )


def customer_confidences(
    db: sqlite_utils.Database,
    settings: Settings,
    customer_id: str,
    item_index: dict[str, int],
    reference_time: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    return confidences_of(store.customer_events(db, customer_id), settings, item_index, reference_time)


def confidences_of(
    rows: list[tuple[str, str, float, int]],
    settings: Settings,
    item_index: Mapping[str, int | None],
    reference_time: int | None = None,
    now: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One customer's confidence row, by the same rules as the training matrix (for fold-in).

    Time decay counts from ``reference_time`` (the newest event the model was
    trained on) or from this customer's newest event, whichever is later, just
    as the training matrix counts from the newest event overall — but never
    from later than now, and events dated beyond the allowed skew are left out,
    as in training. ``item_index`` maps product ids to model rows (a request
    passes the few of :func:`local_index`).
    """
    weights = settings.event_weights
    now = int(_time.time() if now is None else now)
    latest = now + settings.time.max_future_seconds
    kept = [
        (i, w, t)
        for i, w, t in ((item_index.get(p), weights.get(e, 0.0) * q, t) for p, e, q, t in rows)
        if i is not None and w > 0 and t <= latest
    ]
    if not kept:
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    table = np.array(kept, dtype=np.float64)  # item, weight, time: all exact in float64
    weight = table[:, 1]
    half_life = settings.als.half_life_days
    if half_life > 0:
        ref = min(max(float(table[:, 2].max()), float(reference_time or 0)), float(now))
        weight = weight * np.exp2((table[:, 2] - ref) / (SECONDS_PER_DAY * half_life))  # halves per half-life of age
    items, inverse = np.unique(table[:, 0].astype(np.int64), return_inverse=True)
    summed = np.bincount(inverse, weights=weight, minlength=len(items))
    return items.astype(np.int32), confidence(summed, settings.als)


def local_index(rows: Sequence[tuple], item_index: Mapping[str, int]) -> dict[str, int | None]:
    """The model rows of the products in ``rows`` (None = not in the model), each looked up once.

    At a million products one lookup in the model's id map costs a couple of
    microseconds here (its table is far larger than any cache), and a
    customer's history names the same products again and again; the request
    then reads this small map instead, for the fold-in and the exclusions alike.
    """
    return {p: item_index.get(p) for p in {row[0] for row in rows}}
