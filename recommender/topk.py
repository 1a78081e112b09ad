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

    def search(self, query: np.ndarray, k: int, banned: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items for ``query`` (item indices, best first) and their scores.

        ``banned`` are item indices never returned (repeats allowed). Fewer
        than ``k`` come back only when fewer than ``k`` items are allowed.
        """
        total = len(self.order)
        k = min(int(k), total)
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        blocked = None
        if banned is not None and len(banned):
            blocked = np.zeros(total, dtype=bool)
            blocked[self.position[np.asarray(banned, dtype=np.int64)]] = True
        u = np.asarray(query, dtype=np.float32).ravel()
        bound = float(np.linalg.norm(u.astype(np.float64))) * (1.0 + SLACK)
        best_pos = np.zeros(0, np.int64)
        best = np.zeros(0, np.float32)
        start, block = 0, self.first_block
        while start < total:
            stop = min(total, start + block)
            scores = self.factors[start:stop] @ u
            positions = np.arange(start, stop)
            if blocked is not None:
                allowed = ~blocked[start:stop]
                scores, positions = scores[allowed], positions[allowed]
            best = np.concatenate([best, scores])
            best_pos = np.concatenate([best_pos, positions])
            if len(best) > k:
                keep = np.argpartition(-best, k - 1)[:k]
                best, best_pos = best[keep], best_pos[keep]
            start = stop
            if start < total and len(best) == k and float(best.min()) >= bound * self.norms[start]:
                break
            block *= 2
        self.scanned = start
        ranked = np.argsort(-best, kind="stable")
        return self.order[best_pos[ranked]].astype(np.int64), best[ranked]
