"""Non-personalized signals computed at training time: popularity and bought-together.

Both come from the same consent-filtered events as the model, so a customer
without ``personalization`` consent is not used even in aggregate. Both are
stored in the model artifact, so every worker serves them from memory and an
engine (implicit or Spark) never has to know about them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommender.data.interactions import SECONDS_PER_DAY, Interactions

TOGETHER_DEPTH = 20


def popularity(data: Interactions) -> np.ndarray:
    """Distinct customers per product, over all events."""
    pairs = sp.csr_matrix((np.ones(len(data), np.float32), (data.user, data.item)), shape=data.shape)
    pairs.sum_duplicates()
    return np.diff(pairs.tocsc().indptr).astype(np.float32)


def baskets(data: Interactions, event_types: tuple[str, ...] = ("purchase",)) -> sp.csr_matrix:
    """Baskets × products, binary: one basket = one customer's chosen events on one UTC day."""
    codes = [i for i, t in enumerate(data.event_types) if t in event_types]
    mask = np.isin(data.event, codes) if codes else np.zeros(len(data), bool)
    day = (data.time[mask] // int(SECONDS_PER_DAY)).astype(np.int64)
    key = data.user[mask].astype(np.int64) * (int(day.max()) + 1 if len(day) else 1) + day
    _, basket = np.unique(key, return_inverse=True)
    b = sp.csr_matrix(
        (np.ones(len(basket), np.float32), (basket, data.item[mask])),
        shape=(int(basket.max()) + 1 if len(basket) else 0, data.shape[1]),
    )
    b.sum_duplicates()
    b.data[:] = 1.0
    return b


def bought_together(
    b: sp.csr_matrix, depth: int = TOGETHER_DEPTH, min_support: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """For each product, the products most often in the same basket, ranked by lift.

    lift(a, b) = n(a, b) · N / (n(a) · n(b)): how much more often the pair
    shares a basket than chance would have it, so bestsellers do not top every
    list. Pairs seen in fewer than ``min_support`` baskets are too thin to
    trust. Returns (item indices, lifts), -1 / 0 where a list is shorter.
    """
    n_items = b.shape[1]
    items = np.full((n_items, depth), -1, dtype=np.int32)
    lifts = np.zeros((n_items, depth), dtype=np.float32)
    if b.shape[0] == 0:
        return items, lifts
    per_item = np.asarray(b.sum(axis=0)).ravel()
    co = (b.T @ b).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    co.data[co.data < min_support] = 0
    co.eliminate_zeros()
    total = float(b.shape[0])
    for a in np.flatnonzero(np.diff(co.indptr)):
        lo, hi = co.indptr[a], co.indptr[a + 1]
        others, counts = co.indices[lo:hi], co.data[lo:hi]
        lift = counts * total / (per_item[a] * per_item[others])
        order = np.lexsort((-counts, -lift))[:depth]
        items[a, : len(order)] = others[order]
        lifts[a, : len(order)] = lift[order]
    return items, lifts


def compute(data: Interactions, purchase_events: tuple[str, ...] = ("purchase",)) -> dict[str, np.ndarray]:
    """Popularity over all events; bought-together over the baskets of the event types that mean "bought"."""
    together, lift = bought_together(baskets(data, tuple(purchase_events)))
    return {"popularity": popularity(data), "together_items": together, "together_lift": lift}
