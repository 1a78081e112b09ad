"""Customer value for the customers a caller asks about: the one place campaigns read value from.

:func:`for_customers` answers, for each asked-for customer with a score, their segment,
chance of being active, expected spend per horizon, spend so far and where that spend
ranks in the shop (``spend_top``: the share of profiled customers who spent at least as
much, so 0.05 = "in the top 5 %"). Customers without the profiling consent
(``value.purpose``) have no score and are simply absent.

Today the scores are computed here from the store (``transactions.load`` then
``model.score`` as of the day asked for); when the nightly refresh's stored table is the
source, only this function changes.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import sqlite_utils
from scipy.stats import rankdata

from recommender import store
from recommender.config import Settings
from recommender.value import model, transactions


@dataclass(frozen=True)
class CustomerValue:
    customer_id: str
    segment: str
    p_active: float
    spend: dict[float, float]  # expected spend per horizon (value.horizons)
    spend_to_date: float
    purchase_days: int
    recency_days: int
    spend_top: float  # share of profiled customers with spend so far >= this one's (0..1]


@dataclass(frozen=True)
class Values:
    as_of: str | None
    by_customer: dict[str, CustomerValue]
    profiled: int  # customers with a score (the base of spend_top)
    not_profiled: int


def for_customers(
    db: sqlite_utils.Database, settings: Settings, ids: Iterable[str] | None = None, as_of: int | None = None
) -> Values:
    """Scores of ``ids`` (None = every profiled customer) as of day number ``as_of`` (None = last purchase day)."""
    tx = transactions.load(db, settings)
    if not len(tx.day) or (as_of is not None and as_of < tx.first_day):
        return Values(None, {}, 0, tx.not_profiled)
    scores = model.score(tx, settings, as_of=as_of)
    n = len(scores.customer_ids)
    # share of customers who spent at least as much: rank from the top, ties take the worst (largest) rank
    top = (n - rankdata(scores.spend_to_date, method="min") + 1) / max(n, 1)
    wanted = None if ids is None else set(ids)
    out: dict[str, CustomerValue] = {}
    for i, cid in enumerate(scores.customer_ids.tolist()):
        if wanted is not None and cid not in wanted:
            continue
        out[cid] = CustomerValue(
            customer_id=cid,
            segment=str(scores.segment[i]),
            p_active=float(scores.p_active[i]),
            spend={h: float(scores.spend[h][i]) for h in scores.horizons},
            spend_to_date=float(scores.spend_to_date[i]),
            purchase_days=int(scores.purchase_days[i]),
            recency_days=int(scores.recency_days[i]),
            spend_top=float(np.asarray(top)[i]),
        )
    return Values(scores.as_of, out, n, scores.not_profiled)


class SegmentSource:
    """A customer's stored RFM segment for merchandising audiences: the one place rules read segments from.

    Reads the nightly refresh's ``customer_values`` through the store's consent rule for
    ``value.purpose``: a customer who does not grant it has no segment, whatever a stale row
    says. When that purpose is ``personalization`` (the default) each answer is kept ``ttl``
    seconds per process, since the ranking path checks that consent on every request anyway
    (a customer who withdrew it is anonymous to the rules and never asked about); for another
    purpose every call reads the table (one indexed query). ``source(db, customer_id)`` ->
    segment name or None.
    """

    def __init__(self, settings: Settings, ttl: float = 60.0, size: int = 50_000) -> None:
        self.purpose, self.ttl, self.size = settings.value.purpose, ttl, size
        self.cached = self.purpose == "personalization"
        self._cache: dict[str, tuple[float, str | None]] = {}

    def __call__(self, db: sqlite_utils.Database, customer_id: str) -> str | None:
        now = time.monotonic()
        hit = self._cache.get(customer_id) if self.cached else None
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            segment = store.value_segments_of(db, [customer_id], self.purpose).get(customer_id)
        except sqlite3.OperationalError:  # a database from before customer value: nobody has a segment
            segment = None
        if self.cached:
            if len(self._cache) >= self.size:
                self._cache.clear()
            self._cache[customer_id] = (now, segment)
        return segment
