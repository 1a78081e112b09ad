"""Item graphs: a sparse products × products matrix ``W`` with the top-K neighbours of each product.

Two ways to weigh an edge ``j → i`` from the customers × products confidence
matrix ``X`` (the one every family gets; see :mod:`recommender.data.interactions`):

* **RP3beta** (Paudel et al. 2017, after Cooper et al.'s P³α): a three-step
  random walk customer → product → customer → product. ``P_ui`` is ``X`` with
  each customer row divided by its sum, ``P_iu`` is ``Xᵀ`` with each product row
  divided by its sum; each transition probability is raised to ``alpha`` (as in
  P³α) before the product ``W = P_iu^α · P_ui^α``, and column ``i`` is divided by
  ``popularity(i)^beta`` (popularity = customers who touched it) so that the
  walk does not always end on the best sellers. A customer's weight for their
  own product ``j`` is their step ``P_ui[u, j]^α``.
* **item-kNN**: cosine of the two products' confidence columns with shrinkage,
  ``xⱼ·xᵢ / (‖xⱼ‖‖xᵢ‖ + shrink)``; a customer's weight for product ``j`` is ``cⱼ``.

Scale: the fit never builds an items × items dense matrix; ``W`` is computed
block of rows by block of rows and each row is cut to its ``neighbours`` best
before the next block. Serving reads only the rows of the customer's own
products: ``O(history × K)`` plus a top-k over the products those rows touch,
whatever the size of the catalogue.

Fill rule: when the products reached are fewer than asked for (after the
exclusions and the ``allow`` mask), the list is completed with the most popular
products of the training data (a per-product count stored in the artifact,
ties by index), skipping banned ones, at score 0; every reached product has a
positive score, so the fill always comes after them. ``similar_items`` does not
fill: it returns at most the product's own neighbours.

Saved as CSR arrays (``graph_indptr``, ``graph_indices``, ``graph_data``), with
each row's neighbours sorted by product index, plus ``graph_popularity``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.config import ItemGraphSettings
from recommender.errors import ConfigError, ModelError
from recommender.models.base import Recommender, as_index_array

METHODS = ("rp3beta", "itemknn")
BLOCK_ENTRIES = 20_000_000  # bound on a block of the sparse product (rows × products reached)


def _row_normalised(m: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(m.sum(axis=1)).ravel()
    sums[sums == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / sums) @ m)


def _top_per_row(block: sp.csr_matrix, first_row: int, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each row's ``k`` largest positive entries (its own column dropped), sorted by column."""
    cols, vals = [], []
    for r in range(block.shape[0]):
        lo, hi = block.indptr[r], block.indptr[r + 1]
        idx, data = block.indices[lo:hi], block.data[lo:hi]
        keep = (idx != first_row + r) & (data > 0)
        idx, data = idx[keep], data[keep]
        if len(idx) > k:
            best = np.lexsort((idx, -data))[:k]  # ties by index, so a fit is reproducible
            idx, data = idx[best], data[best]
        order = np.argsort(idx)
        cols.append(idx[order].astype(np.int32))
        vals.append(data[order].astype(np.float32))
    return cols, vals


def build_graph(matrix: sp.csr_matrix, settings: ItemGraphSettings, method: str) -> tuple[sp.csr_matrix, np.ndarray]:
    """``W`` (CSR, float32, top-``neighbours`` per row) and the popularity of each product."""
    x = sp.csr_matrix(matrix, dtype=np.float64)
    x.eliminate_zeros()
    n_items = x.shape[1]
    popularity = np.diff(x.tocsc().indptr).astype(np.float32)
    if method == "rp3beta":
        step_ui = _row_normalised(x)
        step_ui.data **= settings.alpha
        step_iu = _row_normalised(x.T.tocsr())
        step_iu.data **= settings.alpha
        left, right = step_iu, step_ui
        pop = popularity.astype(np.float64)
        pop[pop == 0] = 1.0
        column_scale = pop**-settings.beta
        norms = None
    elif method == "itemknn":
        left, right = x.T.tocsr(), x
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        column_scale = None
    else:
        raise ConfigError(f"itemgraph.method must be one of {', '.join(METHODS)}, not {method!r}")
    k = int(settings.neighbours)
    rows_per_block = max(1, min(n_items, BLOCK_ENTRIES // max(n_items, 1)))
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for start in range(0, n_items, rows_per_block):
        stop = min(start + rows_per_block, n_items)
        block = sp.csr_matrix(left[start:stop] @ right)
        if column_scale is not None:
            block = sp.csr_matrix(block @ sp.diags(column_scale))
        else:
            block = block.tocoo()
            denom = norms[start + block.row] * norms[block.col] + settings.shrink
            denom[denom == 0] = 1.0
            block = sp.csr_matrix((block.data / denom, (block.row, block.col)), shape=block.shape)
        block.sort_indices()
        c, v = _top_per_row(block, start, k)
        cols.extend(c)
        vals.extend(v)
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(c) for c in cols])
    indices = np.concatenate(cols) if cols else np.zeros(0, np.int32)
    data = np.concatenate(vals) if vals else np.zeros(0, np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(n_items, n_items)), popularity


class ItemGraph(Recommender):
    """The sparse neighbour matrix ``W``, the per-product popularity that fills short lists, and the method."""

    family = "itemgraph"

    def __init__(
        self,
        indptr: np.ndarray,
        indices: np.ndarray,
        data: np.ndarray,
        popularity: np.ndarray,
        user_ids: list[str],
        item_ids: list[str],
        method: str,
        alpha: float,
        manifest: dict[str, Any] | None = None,
        signals: dict[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__(user_ids, item_ids, manifest, signals)
        n = len(self.item_ids)
        if len(indptr) != n + 1 or len(popularity) != n or len(indices) != len(data) or indptr[-1] != len(data):
            raise ModelError("item graph arrays do not match the item map")
        if method not in METHODS:
            raise ModelError(f"unknown item graph method {method!r}")
        self.indptr, self.indices, self.data = indptr, indices, data
        self.popularity = popularity
        self.method = method
        self.alpha = float(alpha)
        self._order: np.ndarray | None = None

    @classmethod
    def fit(
        cls,
        matrix: sp.csr_matrix,
        user_ids: list[str],
        item_ids: list[str],
        settings: ItemGraphSettings,
        *,
        method: str | None = None,
    ) -> ItemGraph:
        method = method or settings.method
        graph, popularity = build_graph(matrix, settings, method)
        model = cls(graph.indptr, graph.indices, graph.data, popularity, user_ids, item_ids, method, settings.alpha)
        model.manifest["itemgraph"] = {
            "method": method,
            "neighbours": settings.neighbours,
            "alpha": settings.alpha,
            "beta": settings.beta,
            "shrink": settings.shrink,
            "edges": int(graph.nnz),
        }
        return model

    @property
    def popular_order(self) -> np.ndarray:
        """Products by training popularity, best first (ties by index): the fill order."""
        if self._order is None:
            self._order = np.argsort(-np.asarray(self.popularity), kind="stable")
        return self._order

    def warm_up(self) -> None:
        _ = self.popular_order  # built on first use; warming builds it now

    # --- a customer's state ----------------------------------------------------------

    def _weights(self, conf: np.ndarray) -> np.ndarray:
        if self.method == "rp3beta":
            total = conf.sum()
            return (conf / total) ** self.alpha if total > 0 else conf
        return conf

    def fold_in(self, items: np.ndarray, confidences: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The history (sorted by product) with each product's walk weight; None when it has no neighbours."""
        items = as_index_array(items)
        conf = np.asarray(confidences, dtype=np.float64)
        if len(items) == 0:
            return None
        order = np.argsort(items, kind="stable")
        items, conf = items[order], conf[order]
        weights = self._weights(conf)
        if not np.any(self.indptr[items + 1] > self.indptr[items]):
            return None
        return items, weights

    def _reached(self, state: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Products reached from the history and their summed scores: O(history × K)."""
        items, weights = state
        starts = self.indptr[items]
        lengths = (self.indptr[items + 1] - starts).astype(np.int64)
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        # positions of every neighbour of every history item, without a Python loop
        offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        positions = offsets + np.arange(total)
        cols = np.asarray(self.indices[positions], dtype=np.int64)
        vals = np.asarray(self.data[positions], dtype=np.float64) * np.repeat(weights, lengths)
        reached, inverse = np.unique(cols, return_inverse=True)
        return reached, np.bincount(inverse, weights=vals, minlength=len(reached))

    def score(self, state: Any, items: np.ndarray | None = None) -> np.ndarray:
        reached, sums = self._reached(state)
        if items is None:
            full = np.zeros(len(self.item_ids), dtype=np.float32)
            full[reached] = sums
            return full
        items = as_index_array(items)
        out = np.zeros(len(items), dtype=np.float32)
        if len(reached):
            at = np.minimum(np.searchsorted(reached, items), len(reached) - 1)
            hit = reached[at] == items
            out[hit] = sums[at[hit]]
        return out

    def recommend(
        self, state: Any, n: int = 10, *, exclude=(), allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` of the products reached, then the fill rule (popular products, score 0)."""
        banned = np.zeros(len(self.item_ids), dtype=bool)
        banned[as_index_array(exclude)] = True
        if allow is not None:
            banned |= ~np.asarray(allow, dtype=bool)
        reached, sums = self._reached(state)
        return self._rank(reached, sums, n, banned)

    def _rank(self, reached: np.ndarray, sums: np.ndarray, n: int, banned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = ~banned[reached]
        reached, sums = reached[keep], sums[keep]
        if len(reached) > n:  # keep the n best and everything tied with the n-th, then order by (score, index)
            threshold = -np.partition(-sums, n - 1)[n - 1]
            best = sums >= threshold
            reached, sums = reached[best], sums[best]
        order = np.lexsort((reached, -sums))[:n]
        chosen, scores = reached[order], sums[order].astype(np.float32)
        if len(chosen) < n:
            taken = banned.copy()
            taken[chosen] = True
            fill = [chosen]
            missing = n - len(chosen)
            pop = self.popular_order
            for start in range(0, len(pop), max(4 * n, 256)):
                head = pop[start : start + max(4 * n, 256)]
                head = head[~taken[head]][:missing]
                fill.append(head)
                missing -= len(head)
                if missing == 0:
                    break
            chosen = np.concatenate(fill)
            scores = np.concatenate([scores, np.zeros(len(chosen) - len(scores), np.float32)])
        return chosen.astype(np.int64), scores

    def similar_items(
        self, item_index: int, n: int = 10, *, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The product's own neighbours (row of ``W``), best first; never itself, never filled."""
        lo, hi = self.indptr[item_index], self.indptr[item_index + 1]
        idx = np.asarray(self.indices[lo:hi], dtype=np.int64)
        vals = np.asarray(self.data[lo:hi], dtype=np.float64)
        keep = idx != item_index
        if allow is not None:
            keep &= np.asarray(allow, dtype=bool)[idx]
        idx, vals = idx[keep], vals[keep]
        order = np.lexsort((idx, -vals))[:n]
        return idx[order], vals[order].astype(np.float32)

    def explain(
        self, items: np.ndarray, confidences: np.ndarray, item_index: int, n: int = 3
    ) -> list[tuple[int, float]]:
        """The customer's products j with the largest contribution ``weightⱼ · W[j, i]``."""
        state = self.fold_in(items, confidences)
        if state is None:
            return []
        items, weights = state
        contrib = np.zeros(len(items))
        for pos, (j, w) in enumerate(zip(items, weights)):
            lo, hi = self.indptr[j], self.indptr[j + 1]
            row = self.indices[lo:hi]
            at = int(np.searchsorted(row, item_index))
            if at < len(row) and row[at] == item_index:
                contrib[pos] = w * float(self.data[lo + at])
        order = np.lexsort((items, -contrib))[:n]
        return [(int(items[j]), float(contrib[j])) for j in order if contrib[j] > 0]

    # --- evaluation ------------------------------------------------------------------

    def _history_states(self, history: sp.csr_matrix):
        history = sp.csr_matrix(history)
        for r in range(history.shape[0]):
            lo, hi = history.indptr[r], history.indptr[r + 1]
            items = history.indices[lo:hi].astype(np.int64)
            yield items, (self.fold_in(items, history.data[lo:hi]) if hi > lo else None)

    def batch_scores(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        out = np.zeros((history.shape[0], len(self.item_ids)), dtype=np.float32)
        for r, (_, state) in enumerate(self._history_states(history)):
            if state is not None:
                reached, sums = self._reached(state)
                out[r, reached] = sums
        return out

    def batch_recommend(self, users: np.ndarray, history: sp.csr_matrix, k: int, block: int = 2048) -> np.ndarray:
        """The serving path per customer (history excluded, fill rule included), so both agree exactly."""
        k = min(k, self.n_items)
        out = np.full((history.shape[0], k), -1, dtype=np.int64)
        banned = np.zeros(len(self.item_ids), dtype=bool)
        for r, (items, state) in enumerate(self._history_states(history)):
            banned[items] = True
            if state is None:
                reached, sums = np.zeros(0, np.int64), np.zeros(0)
            else:
                reached, sums = self._reached(state)
            top, _ = self._rank(reached, sums, k, banned)
            out[r, : len(top)] = top
            banned[items] = False
        return out

    def health(self, trained_users: np.ndarray, trained_items: np.ndarray) -> dict[str, float]:
        if len(trained_items) == 0:
            return {"users": 1.0, "items": 1.0}
        degree = np.diff(np.asarray(self.indptr))[trained_items]
        return {"users": 1.0, "items": float((degree > 0).mean())}

    # --- persistence -------------------------------------------------------------------

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "graph_indptr": np.ascontiguousarray(self.indptr, dtype=np.int64),
            "graph_indices": np.ascontiguousarray(self.indices, dtype=np.int32),
            "graph_data": np.ascontiguousarray(self.data, dtype=np.float32),
            "graph_popularity": np.ascontiguousarray(self.popularity, dtype=np.float32),
        }

    def manifest_fields(self) -> dict[str, Any]:
        return {"method": self.method, "alpha": self.alpha}

    @classmethod
    def array_names(cls, manifest: dict[str, Any]) -> list[str]:
        return ["graph_indptr", "graph_indices", "graph_data", "graph_popularity"]

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        user_ids: list[str],
        item_ids: list[str],
        manifest: dict[str, Any],
        signals: dict[str, np.ndarray],
    ) -> ItemGraph:
        # Plain ndarray views of the memory maps (a memmap's own indexing is slow per request).
        return cls(
            np.asarray(arrays["graph_indptr"]),
            np.asarray(arrays["graph_indices"]),
            np.asarray(arrays["graph_data"]),
            np.asarray(arrays["graph_popularity"]),
            user_ids,
            item_ids,
            str(manifest["method"]),
            float(manifest["alpha"]),
            manifest,
            signals,
        )
