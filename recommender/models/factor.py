"""Matrix factorisation: what the ALS engines (implicit, Spark) produce and every server can load.

The math lives here, in numpy, on the factors alone. That is what lets a model
trained by Spark be served exactly like one trained by ``implicit``: the server
never needs the engine that made the factors. It implements the one model
interface of :mod:`recommender.models.base`.

Fold-in and explanations solve the same regularised least-squares problem as
implicit ALS for one user, with the item factors fixed:
``(YᵀY + Yᵀ(Cᵤ − I)Y + λI) xᵤ = YᵀCᵤpᵤ``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.errors import ModelError
from recommender.models import ann as _ann
from recommender.models.base import (  # noqa: F401
    FORMAT_VERSION,
    IDS_FILE,
    MANIFEST_FILE,
    Recommender,
    as_index_array,
    load_model,
    read_manifest,
    sha256 as _sha256,
    top_k as _top_k,
)
from recommender.models.topk import NormIndex

FACTOR_FILES = ("user_factors.npy", "item_factors.npy")


class FactorModel(Recommender):
    """User and item factors with the id maps of both axes and the settings that made them."""

    family = "factors"

    def __init__(
        self,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        user_ids: list[str],
        item_ids: list[str],
        regularization: float,
        manifest: dict[str, Any] | None = None,
        signals: dict[str, np.ndarray] | None = None,
        ann_index: np.ndarray | None = None,
        ann_similar_index: np.ndarray | None = None,
    ) -> None:
        super().__init__(user_ids, item_ids, manifest, signals)
        self.user_factors = user_factors
        self.item_factors = item_factors
        self.regularization = float(regularization)
        if self.user_factors.shape[0] != len(self.user_ids) or self.item_factors.shape[0] != len(self.item_ids):
            raise ModelError("factor rows do not match the id maps")
        if self.user_factors.shape[1] != self.item_factors.shape[1]:
            raise ModelError("user and item factors have different widths")
        self._yty: np.ndarray | None = None
        self._yty_regularized: np.ndarray | None = None
        self._item_norms: np.ndarray | None = None
        self._norm_index: NormIndex | None = None
        # The serialised faiss index built at publish (see recommender.models.ann), opened on load.
        self.ann_data = ann_index
        self.ann_params: dict[str, Any] = dict(self.manifest.get("ann") or {})
        self._ann: _ann.AnnIndex | None = None
        # Its cosine twin for similar_items (built with it; absent from artifacts made before it).
        self.ann_similar_data = ann_similar_index
        self.ann_similar_params: dict[str, Any] = dict(self.manifest.get("ann_similar") or {})
        self._ann_similar: _ann.AnnIndex | None = None
        self.ann_enabled = True
        self.ann_min_allowed_share = 0.05
        self.ann_probes: int | None = None
        self._masks = _ann.MaskMemo()
        self.last_search = "exact"  # which path answered the last recommend (exact, subset, ann)
        self.last_similar = "exact"  # and the last similar_items

    # --- shape ---------------------------------------------------------------

    @property
    def factors(self) -> int:
        return int(self.item_factors.shape[1])

    @property
    def yty_regularized(self) -> np.ndarray:
        """``YᵀY + λI``, the part of every fold-in's normal equations that no customer changes."""
        if self._yty_regularized is None:
            self._yty_regularized = self.yty + self.regularization * np.eye(self.factors)
        return self._yty_regularized

    @property
    def yty(self) -> np.ndarray:
        if self._yty is None:
            y = np.asarray(self.item_factors, dtype=np.float64)
            self._yty = y.T @ y
        return self._yty

    # --- scoring -------------------------------------------------------------

    def user_vector(self, user_id: str) -> np.ndarray | None:
        idx = self.user_index.get(user_id)
        return None if idx is None else np.asarray(self.user_factors[idx])

    def scores(self, user_vector: np.ndarray) -> np.ndarray:
        return self.item_factors @ user_vector.astype(self.item_factors.dtype, copy=False)

    def recommend(
        self,
        user_vector: np.ndarray,
        n: int = 10,
        *,
        exclude: Iterable[int] = (),
        allow: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-n item indices and scores for a user vector.

        ``exclude`` are item indices never returned (already seen, hidden, asked
        to leave out; repeats allowed); ``allow`` is a boolean mask over items,
        False = never (pass the catalogue's cached, read-only mask: what is
        derived from it is then computed once per filter set, not per request).

        Three paths, all returning only allowed, non-excluded items with exact
        scores: a filter that lets few products through scores just those
        (cost ∝ what it selects); with an ANN index (large catalogues, see
        :mod:`recommender.models.ann`) candidates are proposed by the index, re-checked
        and re-scored (a request it cannot answer scores every product);
        otherwise :class:`~recommender.models.topk.NormIndex` scans exactly, skipping
        the products that cannot reach the top n.
        """
        banned = as_index_array(exclude)
        info = self._masks.get(allow) if allow is not None else None
        total = self.n_items
        if info is not None and info.count <= self.ann_min_allowed_share * total:
            self.last_search = "subset"
            return self._subset_top(user_vector, n, info.indices, banned)
        if self._ann is not None and self.ann_enabled:
            found = self._ann_top(user_vector, n, banned, allow, info)
            if found is not None:
                self.last_search = "ann"
                return found
            self.last_search = "exact"
            return self._scan_top(user_vector, n, banned, allow)
        self.last_search = "exact"
        return self.norm_index.search(user_vector, n, banned, allow=allow)

    def _scan_top(
        self, user_vector: np.ndarray, n: int, banned: np.ndarray, allow: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-n by scoring every product: the rare request the ANN index cannot answer.

        A catalogue large enough for the index is one where the norm-sorted
        copy of :class:`~recommender.models.topk.NormIndex` would cost each worker a
        second copy of the factors and seconds to build mid-request (2.2 s at
        1,000,000 × 64), while one full product of the factors costs tens of
        milliseconds and allocates only the scores.
        """
        scores = np.asarray(self.item_factors) @ np.asarray(user_vector, dtype=np.float32)
        if allow is not None:
            np.copyto(scores, -np.inf, where=~allow)
        if len(banned):
            scores[banned] = -np.inf
        top = _top_k(scores, n)
        return top.astype(np.int64), scores[top]

    def _subset_top(
        self, user_vector: np.ndarray, n: int, allowed: np.ndarray, banned: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-n among ``allowed`` item indices only (a selective filter)."""
        if len(banned):
            allowed = allowed[~np.isin(allowed, banned)]
        u = np.asarray(user_vector, dtype=np.float32)
        scores = np.asarray(self.item_factors[allowed], dtype=np.float32) @ u
        top = _top_k(scores, n)
        return allowed[top].astype(np.int64), scores[top]

    def _ann_top(
        self,
        user_vector: np.ndarray,
        n: int,
        banned: np.ndarray,
        allow: np.ndarray | None,
        info: _ann.FilterInfo | None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-n from the index's candidates, re-scored by dot product (:func:`recommender.models.ann.overfetch`)."""
        u = np.asarray(user_vector, dtype=np.float32)
        # a customer's few purchases and ids: a set beats numpy's per-call cost
        return _ann.overfetch(
            self._ann,
            u,
            n,
            set(banned.tolist()),
            allow,
            info,
            self.n_items,
            lambda found: np.asarray(self.item_factors[found], dtype=np.float32) @ u,
            self.ann_probes,
        )

    def attach_ann(self, settings: Any, log: Any = lambda _: None) -> bool:
        """Build the ANN index into this model when settings ask for it and the catalogue is large enough.

        Called once when a model is published (the engines' shared path), so an
        index is in every artifact of that size whichever engine fitted it.
        """
        if not settings.enabled or self.n_items < settings.min_products or not _ann.available():
            return False
        data, params = _ann.build(
            self.item_factors,
            np.asarray(self.user_factors),
            lists=settings.lists,
            target_recall=settings.target_recall,
            candidates=settings.candidates,
            log=log,
        )
        similar, similar_params = _ann.build_similar(
            self.item_factors,
            lists=settings.lists,
            target_recall=settings.target_recall,
            candidates=settings.candidates,
            log=log,
        )
        self.ann_data, self.ann_params, self._ann = data, params, None
        self.ann_similar_data, self.ann_similar_params, self._ann_similar = similar, similar_params, None
        self._open_ann()
        return True

    def configure_ann(self, settings: Any) -> None:
        """Serve-time switches (``[ann]`` settings): on/off, probes override, the selective-filter share."""
        self.ann_enabled = bool(settings.enabled)
        self.ann_probes = int(settings.probes) or None
        self.ann_min_allowed_share = float(settings.min_allowed_share)

    def _open_ann(self) -> None:
        if self.ann_data is not None and self._ann is None:
            self._ann = _ann.AnnIndex(self.ann_data, self.ann_params, self.n_items, self.factors)
        if self.ann_similar_data is not None and self._ann_similar is None:
            self._ann_similar = _ann.AnnIndex(
                self.ann_similar_data, self.ann_similar_params, self.n_items, self.factors
            )

    @property
    def norm_index(self) -> NormIndex:
        """The items sorted by factor norm for :meth:`recommend`; built on first use (a worker builds it on load)."""
        if self._norm_index is None:
            self._norm_index = NormIndex(self.item_factors)
        return self._norm_index

    def similar_items(
        self, item_index: int, n: int = 10, *, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Items nearest by cosine of their factors, excluding the item itself.

        With the cosine index of a large catalogue (:func:`recommender.models.ann.build_similar`)
        the index proposes candidates, which are re-checked against ``allow``
        and re-scored exactly, as in :meth:`recommend`; a selective filter
        scores just the products it lets through; otherwise, or when too few
        candidates survive, every product is scored.
        """
        info = self._masks.get(allow) if allow is not None else None
        if info is not None and info.count <= self.ann_min_allowed_share * self.n_items:
            self.last_similar = "subset"
            return self._similar_among(item_index, n, info.indices)
        if self._ann_similar is not None and self.ann_enabled:
            found = self._ann_similar_top(item_index, n, allow, info)
            if found is not None:
                self.last_similar = "ann"
                return found
        self.last_similar = "exact"
        if self._item_norms is None:
            norms = np.linalg.norm(self.item_factors, axis=1)
            norms[norms == 0] = 1.0
            self._item_norms = norms.astype(np.float32)
        target = self.item_factors[item_index] / self._item_norms[item_index]
        scores = (self.item_factors @ target) / self._item_norms
        scores = scores.astype(np.float32, copy=True)
        scores[item_index] = -np.inf
        if allow is not None:
            scores[~allow] = -np.inf
        top = _top_k(scores, n)
        return top, scores[top]

    def _cosines(self, item_index: int, candidates: np.ndarray) -> np.ndarray:
        """Exact cosine of ``item_index``'s factors with each candidate's (0 for a zero vector)."""
        y = np.asarray(self.item_factors)
        target = np.asarray(y[item_index], dtype=np.float32)
        rows = np.asarray(y[candidates], dtype=np.float32)
        norms = np.linalg.norm(rows, axis=1) * max(float(np.linalg.norm(target)), 1e-30)
        norms[norms == 0] = 1.0
        return (rows @ target / norms).astype(np.float32)

    def _similar_among(self, item_index: int, n: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        allowed = allowed[allowed != item_index]
        scores = self._cosines(item_index, allowed)
        top = _top_k(scores, n)
        return allowed[top].astype(np.int64), scores[top]

    def _ann_similar_top(
        self, item_index: int, n: int, allow: np.ndarray | None, info: _ann.FilterInfo | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-n by cosine from the cosine index's candidates; None when every product must be scored."""
        y = np.asarray(self.item_factors)
        length = float(np.linalg.norm(y[item_index]))
        if length == 0:
            return None  # no direction to be near: the scan answers (every cosine is 0)
        query = np.asarray(y[item_index], dtype=np.float32) / length
        return _ann.overfetch(
            self._ann_similar,
            query,
            n,
            {item_index},
            allow,
            info,
            self.n_items,
            lambda found: self._cosines(item_index, found),
        )

    # --- fold-in and explanations ------------------------------------------

    def _system(self, items: np.ndarray, confidences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = np.asarray(self.item_factors[items], dtype=np.float64)
        c = np.asarray(confidences, dtype=np.float64)
        a = self.yty_regularized + (y.T * (c - 1.0)) @ y
        b = (y.T * c).sum(axis=1)
        return a, b

    def recalculate_user(self, items: np.ndarray, confidences: np.ndarray) -> np.ndarray:
        """The factors a user with these (item, confidence) pairs would get, without retraining."""
        if len(items) == 0:
            return np.zeros(self.factors, dtype=np.float32)
        a, b = self._system(items, confidences)
        return np.linalg.solve(a, b).astype(np.float32)

    def explain(
        self, items: np.ndarray, confidences: np.ndarray, item_index: int, n: int = 3
    ) -> list[tuple[int, float]]:
        """Which of the user's own items contributed most to ``item_index``'s score.

        The score decomposes exactly as ``Σⱼ cⱼ · yᵢᵀ A⁻¹ yⱼ`` over the user's items.
        """
        if len(items) == 0:
            return []
        a, _ = self._system(items, confidences)
        weights = np.linalg.solve(a, np.asarray(self.item_factors[item_index], dtype=np.float64))
        contrib = np.asarray(confidences, dtype=np.float64) * (
            np.asarray(self.item_factors[items], dtype=np.float64) @ weights
        )
        order = np.argsort(-contrib)[:n]
        return [(int(items[j]), float(contrib[j])) for j in order if contrib[j] > 0]

    # --- the model interface ---------------------------------------------------

    def fold_in(self, items: np.ndarray, confidences: np.ndarray) -> np.ndarray | None:
        """The customer's factor vector (a least-squares solve); None when it is zero."""
        if len(items) == 0:
            return None
        vector = self.recalculate_user(np.asarray(items), np.asarray(confidences))
        return vector if np.any(vector) else None

    def score(self, state: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        u = np.asarray(state, dtype=self.item_factors.dtype)
        return self.item_factors @ u if items is None else self.item_factors[np.asarray(items)] @ u

    def batch_scores(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return np.asarray(self.user_factors)[users] @ np.asarray(self.item_factors).T

    def batch_recommend(self, users: np.ndarray, history: sp.csr_matrix, k: int, block: int = 2048) -> np.ndarray:
        """implicit's threaded top-k on the trained user factors (no score matrix materialised)."""
        return batch_top_k(np.asarray(self.user_factors)[users], np.asarray(self.item_factors), history, k)

    def health(self, trained_users: np.ndarray, trained_items: np.ndarray) -> dict[str, float]:
        def share(factors: np.ndarray, rows: np.ndarray) -> float:
            if len(rows) == 0:
                return 1.0
            return float((np.abs(np.asarray(factors)[rows]).sum(axis=1) > 0).mean())

        return {"users": share(self.user_factors, trained_users), "items": share(self.item_factors, trained_items)}

    def drop_users(self, keep: np.ndarray) -> None:
        self.user_factors = np.ascontiguousarray(np.asarray(self.user_factors)[keep])
        super().drop_users(keep)

    def warm_up(self) -> None:
        # With a serving ANN index the exact fallback scans (see _scan_top): no sorted copy per worker.
        if self._ann is None or not self.ann_enabled:
            _ = self.norm_index  # built on first use; warming builds it now
        # The fold-in's Gram matrix YᵀY reads every item factor: at 1,000,000 products about a second,
        # paid here at load rather than by the first customer after a hot swap.
        _ = self.yty_regularized

    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            "user_factors": np.ascontiguousarray(self.user_factors, dtype=np.float32),
            "item_factors": np.ascontiguousarray(self.item_factors, dtype=np.float32),
        }
        if self.ann_data is not None:
            out[_ann.ARRAY] = np.asarray(self.ann_data, dtype=np.uint8)
        if self.ann_similar_data is not None:
            out[_ann.SIMILAR_ARRAY] = np.asarray(self.ann_similar_data, dtype=np.uint8)
        return out

    def manifest_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"factors": self.factors, "regularization": self.regularization}
        if self.ann_data is not None:
            fields["ann"] = self.ann_params
        if self.ann_similar_data is not None:
            fields["ann_similar"] = self.ann_similar_params
        return fields

    @classmethod
    def array_names(cls, manifest: dict[str, Any]) -> list[str]:
        extra = [name for name in (_ann.ARRAY, _ann.SIMILAR_ARRAY) if name in manifest.get("arrays", [])]
        return ["user_factors", "item_factors", *extra]

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        user_ids: list[str],
        item_ids: list[str],
        manifest: dict[str, Any],
        signals: dict[str, np.ndarray],
    ) -> FactorModel:
        # Plain ndarray views of the memory maps (same shared pages; a memmap's own indexing is slow
        # per request).
        model = cls(
            np.asarray(arrays["user_factors"]),
            np.asarray(arrays["item_factors"]),
            user_ids,
            item_ids,
            float(manifest["regularization"]),
            manifest,
            signals,
            ann_index=arrays.get(_ann.ARRAY),
            ann_similar_index=arrays.get(_ann.SIMILAR_ARRAY),
        )
        if model.ann_data is not None and _ann.available():
            model._open_ann()  # an index that cannot be read refuses the artifact
        return model

    # Kept for callers that know they hold a factor model.
    read_manifest = staticmethod(read_manifest)

    @classmethod
    def load(cls, directory: str | Path, *, verify: bool = True, mmap: bool = True) -> Recommender:
        """Load an artifact of any family (see :func:`recommender.models.base.load_model`)."""
        return load_model(directory, verify=verify, mmap=mmap)


def batch_top_k(
    user_factors: np.ndarray, item_factors: np.ndarray, seen, k: int, allow: np.ndarray | None = None
) -> np.ndarray:
    """Top-k item indices for many users at once, seen items (a CSR matrix) excluded; -1 pads.

    Uses implicit's threaded C++ top-k, which scores and selects in blocks
    without materialising a users × items score matrix.
    """
    from implicit.cpu.topk import topk
    from threadpoolctl import threadpool_limits

    k = min(k, item_factors.shape[0])
    filter_items = None if allow is None else np.flatnonzero(~allow).astype(np.int32)
    with threadpool_limits(limits=1, user_api="blas"):
        ids, scores = topk(
            np.ascontiguousarray(item_factors, dtype=np.float32),
            np.ascontiguousarray(user_factors, dtype=np.float32),
            k,
            filter_query_items=seen,
            filter_items=filter_items,
        )
    ids = ids.astype(np.int64)
    ids[scores <= np.finfo(np.float32).min] = -1
    return ids


def rank_items(items: Sequence[str], model: Recommender, state: Any) -> list[str]:
    """Order the caller's items for one customer state; items the model does not know keep their order at the end."""
    known = [(p, model.item_index[p]) for p in items if p in model.item_index]
    unknown = [p for p in items if p not in model.item_index]
    if known:
        idx = np.array([i for _, i in known])
        scores = np.asarray(model.score(state, idx))
        known = [known[j] for j in np.argsort(-scores, kind="stable")]
    return [p for p, _ in known] + unknown
