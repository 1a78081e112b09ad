"""Exact top-k by inner product that stops reading the catalogue once no unread product can win.

Scoring every product for every request is memory-bound: 100,000 products × 64
float32 factors is 25.6 MB read per list. Most of it is wasted on shop data.
By Cauchy–Schwarz a product's score ``y·u`` is at most ``‖y‖·‖u‖``, and ALS
shrinks the factors of rarely bought products towards zero (their few
observations cannot outweigh the regularisation). So with the products sorted
by factor norm, largest first, the scan can stop as soon as the k-th best score
found so far is at least ``‖u‖`` times the norm of the next unread product:
nothing after it can enter the top k.

The answer is exact (the same items and scores as scoring everything; equal
scores may come in another order). How much is skipped depends on the data
and is counted in :attr:`NormIndex.scanned`. On the Online Retail model the
bound is met after a median 28 % of the catalogue (p90 37 %; with 3,665
products the first block already holds them all); on the 100,000-product shop
of ``scripts/bench_serve.py`` within the first block of 4,096. Blocks double
in size, so a scan that does not stop early costs what a full scan costs.
Negative k-th scores disable the stop.
"""

from __future__ import annotations

import numpy as np

# Relative slack on the bound, so float32 rounding of a computed score can never
# make the scan stop before an item whose exact score ties the k-th.
SLACK = 1e-4
FIRST_BLOCK = 4096
# Banned lists up to this long are dropped from an over-fetched top k rather than masked.
SHORT_BANNED = 1024


class NormIndex:
    """Item factors sorted by norm (a private, contiguous copy) with the permutation back to item indices."""

    def __init__(self, item_factors: np.ndarray, first_block: int = FIRST_BLOCK) -> None:
        factors = np.asarray(item_factors, dtype=np.float32)
        norms = np.linalg.norm(factors.astype(np.float64), axis=1)
        self.order = np.argsort(-norms, kind="stable")
        self.position = np.empty_like(self.order)
        self.position[self.order] = np.arange(len(self.order))
        self.factors = np.ascontiguousarray(factors[self.order])
        self.norms = norms[self.order]
        self.first_block = max(1, int(first_block))
        self.scanned = 0  # products scored by the last search

    def __len__(self) -> int:
        return len(self.order)

    def search(
        self, query: np.ndarray, k: int, banned: np.ndarray | None = None, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items for ``query`` (item indices, best first) and their scores.

        ``banned`` are item indices never returned (repeats allowed); ``allow``
        a boolean mask over item indices (False = never). Fewer than ``k`` come
        back only when fewer than ``k`` items are allowed.

        Nothing here touches every product: ``allow`` is read only for the
        products scanned, and a short ``banned`` list (a customer's purchases,
        a few ids to leave out) is honoured by finding ``k + len(banned)``
        allowed items and dropping the banned ones from those, which leaves
        the exact top ``k``. Only a long list is turned into a mask.
        """
        total = len(self.order)
        k = min(int(k), total)
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        blocked = None
        dropped = np.zeros(0, np.int64)
        if banned is not None and len(banned):
            banned = np.asarray(banned, dtype=np.int64)
            if len(banned) <= max(SHORT_BANNED, k):
                dropped = np.unique(banned)
            else:
                blocked = np.zeros(total, dtype=bool)
                blocked[self.position[banned]] = True
        want = min(total, k + len(dropped))
        u = np.asarray(query, dtype=np.float32).ravel()
        bound = float(np.linalg.norm(u.astype(np.float64))) * (1.0 + SLACK)
        best_pos = np.zeros(0, np.int64)
        best = np.zeros(0, np.float32)
        start, block = 0, self.first_block
        while start < total:
            stop = min(total, start + block)
            scores = self.factors[start:stop] @ u
            positions = np.arange(start, stop)
            keep = None
            if blocked is not None:
                keep = ~blocked[start:stop]
            if allow is not None:
                allowed = allow[self.order[start:stop]]
                keep = allowed if keep is None else keep & allowed
            if keep is not None:
                scores, positions = scores[keep], positions[keep]
            best = np.concatenate([best, scores])
            best_pos = np.concatenate([best_pos, positions])
            if len(best) > want:
                top = np.argpartition(-best, want - 1)[:want]
                best, best_pos = best[top], best_pos[top]
            start = stop
            if start < total and len(best) == want and float(best.min()) >= bound * self.norms[start]:
                break
            block *= 2
        self.scanned = start
        ranked = np.argsort(-best, kind="stable")
        items, scores = self.order[best_pos[ranked]].astype(np.int64), best[ranked]
        if len(dropped):
            keep = ~np.isin(items, dropped)
            items, scores = items[keep], scores[keep]
        return items[:k], scores[:k]
