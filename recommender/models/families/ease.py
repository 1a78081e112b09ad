"""EASE^R (Steck, WWW 2019): a closed-form item-item model, often the strongest simple baseline.

The model is one dense products × products matrix ``B`` solving

    min ‖X − XB‖² + λ‖B‖²  subject to  diag(B) = 0,

whose solution is ``G = XᵀX + λI``, ``P = G⁻¹``, ``B = I − P·diag(1/diag(P))``
(``B[j, i] = −P[j, i] / P[i, i]`` off the diagonal, 0 on it). A customer's
score for product ``i`` is ``Σⱼ cⱼ · B[j, i]`` over their history, so a new
event changes the next list exactly (no solve at request time) and every score
splits into "because you bought j" contributions.

``X`` is the confidence matrix the training job hands every family (weighted,
decayed, log-scaled counts; see :mod:`recommender.data.interactions`), not a binary
matrix: ``XᵀX`` is a confidence-weighted co-occurrence matrix, so a repeat
buyer's pairs weigh more, recent ones more than old ones, and λ is on the
scale of squared confidences (larger than the λ published for binary data).

Only *active* products (at least one training interaction) enter ``B``: a
product nobody touched has an all-zero column in ``X``, so its row and column
of ``B`` are exactly zero whatever λ is; leaving it out changes no score. It
scores 0 and is never "similar" to anything.

Cost: the fit is dense, ``O(m³)`` time and ``12·m²`` bytes for ``m`` active
products (the float64 Gram matrix, inverted in place by a Cholesky
factorisation, plus the float32 ``B``). That is stated before anything is
allocated, and a catalogue above ``ease.max_items`` is refused with a
:class:`EASETooLarge` error naming the item-graph family, which is sparse and
scales to any catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from recommender.config import EASESettings
from recommender.errors import ConfigError, ModelError
from recommender.models.base import Recommender, as_index_array, top_k

GIB = float(1 << 30)
BLOCK = 1024  # rows per block for the Gram matrix and for turning P into B


class EASETooLarge(ConfigError):
    """More active products than ``ease.max_items``: the dense fit would not fit (use ``itemgraph``)."""

    code = "model_too_large"


def memory_needed(m: int) -> int:
    """Bytes the fit needs for ``m`` active products: float64 G/P (inverted in place) + float32 B + blocks."""
    return 8 * m * m + 4 * m * m + 3 * 8 * m * min(BLOCK, max(m, 1))


class EASE(Recommender):
    """The dense EASE^R weights ``B`` over the active products, and which products those are."""

    family = "ease"

    def __init__(
        self,
        weights: np.ndarray,
        active: np.ndarray,
        user_ids: list[str],
        item_ids: list[str],
        regularization: float,
        manifest: dict[str, Any] | None = None,
        signals: dict[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__(user_ids, item_ids, manifest, signals)
        self.weights = weights
        self.active = np.asarray(active, dtype=np.int64)
        self.regularization = float(regularization)
        if self.weights.shape != (len(self.active), len(self.active)):
            raise ModelError(f"EASE weights {self.weights.shape} do not match {len(self.active)} active products")
        if len(self.active) and (self.active.min() < 0 or self.active.max() >= len(self.item_ids)):
            raise ModelError("EASE active products outside the item map")
        self._position: np.ndarray | None = None

    # --- fitting ---------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        matrix: sp.csr_matrix,
        user_ids: list[str],
        item_ids: list[str],
        settings: EASESettings,
        *,
        log: Callable[[str], None] | None = None,
    ) -> EASE:
        """Fit the closed form on ``matrix`` (customers × products confidences); refuses above ``max_items``."""
        x = sp.csr_matrix(matrix, dtype=np.float64)
        x.eliminate_zeros()
        active = np.flatnonzero(np.diff(x.tocsc().indptr) > 0)
        m = len(active)
        need = memory_needed(m)
        if m > settings.max_items:
            raise EASETooLarge(
                f"EASE^R: {m:,} active products need {need / GIB:.2f} GiB for the dense fit, above "
                f"ease.max_items={settings.max_items:,}; raise ease.max_items or use the sparse "
                f"family itemgraph (rp3beta / itemknn)"
            )
        if log is not None:
            log(f"EASE^R: {m:,} active products, dense fit needs {need / GIB:.2f} GiB")
        lam = float(settings.regularization)
        if lam <= 0:
            raise ConfigError("ease.regularization must be > 0")
        xa = x[:, active].tocsc()
        gram = np.empty((m, m), dtype=np.float64)
        xt = xa.T.tocsr()
        for start in range(0, m, BLOCK):
            stop = min(start + BLOCK, m)
            gram[:, start:stop] = (xt @ xa[:, start:stop]).toarray()
        gram[np.diag_indices(m)] += lam
        weights = _ease_weights(gram)
        model = cls(weights, active, user_ids, item_ids, lam)
        model.manifest["ease"] = {"active_items": m, "memory_gib": round(need / GIB, 4), "regularization": lam}
        return model

    # --- a customer's state -----------------------------------------------------------

    @property
    def position(self) -> np.ndarray:
        """Item index → row of ``B`` (−1 for products that were not active)."""
        if self._position is None:
            pos = np.full(len(self.item_ids), -1, dtype=np.int64)
            pos[self.active] = np.arange(len(self.active))
            self._position = pos
        return self._position

    def fold_in(self, items: np.ndarray, confidences: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The history itself (active products only, sorted by row of ``B``); None when none is active."""
        items = as_index_array(items)
        conf = np.asarray(confidences, dtype=np.float32)
        rows = self.position[items] if len(items) else items
        keep = rows >= 0
        if not keep.any():
            return None
        rows, conf = rows[keep], conf[keep]
        order = np.argsort(rows, kind="stable")
        return rows[order], conf[order]

    def _active_scores(self, state: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        rows, conf = state
        # Row by row in numpy (no BLAS, whose threads may change the order of the sums): serving and
        # batch_scores call this same function, so both give bit-identical scores.
        return (self.weights[rows] * conf[:, None]).sum(axis=0, dtype=np.float32)

    def score(self, state: Any, items: np.ndarray | None = None) -> np.ndarray:
        full = np.zeros(len(self.item_ids), dtype=np.float32)
        full[self.active] = self._active_scores(state)
        return full if items is None else full[np.asarray(items)]

    def similar_items(
        self, item_index: int, n: int = 10, *, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Products with the largest weight ``B[i, k]`` from this one (what buying it recommends)."""
        row = self.position[item_index]
        if row < 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = np.full(len(self.item_ids), -np.inf, dtype=np.float64)
        scores[self.active] = np.asarray(self.weights[row], dtype=np.float64)
        scores[item_index] = -np.inf
        if allow is not None:
            scores[~allow] = -np.inf
        top = top_k(scores, n)
        return top, scores[top].astype(np.float32)

    def explain(
        self, items: np.ndarray, confidences: np.ndarray, item_index: int, n: int = 3
    ) -> list[tuple[int, float]]:
        """The customer's items j with the largest positive contribution ``cⱼ · B[j, i]``."""
        items = as_index_array(items)
        target = self.position[item_index]
        if target < 0 or len(items) == 0:
            return []
        rows = self.position[items]
        known = rows >= 0
        items, rows = items[known], rows[known]
        conf = np.asarray(confidences, dtype=np.float64)[known]
        contrib = conf * np.asarray(self.weights[rows, target], dtype=np.float64)
        order = np.lexsort((items, -contrib))[:n]
        return [(int(items[j]), float(contrib[j])) for j in order if contrib[j] > 0]

    # --- evaluation --------------------------------------------------------------------

    def batch_scores(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        history = sp.csr_matrix(history)
        out = np.zeros((history.shape[0], len(self.item_ids)), dtype=np.float32)
        for r in range(history.shape[0]):
            lo, hi = history.indptr[r], history.indptr[r + 1]
            state = self.fold_in(history.indices[lo:hi], history.data[lo:hi]) if hi > lo else None
            if state is not None:
                out[r, self.active] = self._active_scores(state)
        return out

    def batch_recommend(self, users: np.ndarray, history: sp.csr_matrix, k: int, block: int = 2048) -> np.ndarray:
        # A block of dense scores is block × products floats: keep it near 256 MB.
        block = max(16, min(block, (1 << 26) // max(len(self.item_ids), 1)))
        return super().batch_recommend(users, history, k, block=block)

    def health(self, trained_users: np.ndarray, trained_items: np.ndarray) -> dict[str, float]:
        items = float(np.isin(trained_items, self.active).mean()) if len(trained_items) else 1.0
        return {"users": 1.0, "items": items}

    # --- persistence ---------------------------------------------------------------------

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "ease_weights": np.ascontiguousarray(self.weights, dtype=np.float32),
            "ease_active": np.ascontiguousarray(self.active, dtype=np.int64),
        }

    def manifest_fields(self) -> dict[str, Any]:
        return {"regularization": self.regularization}

    @classmethod
    def array_names(cls, manifest: dict[str, Any]) -> list[str]:
        return ["ease_weights", "ease_active"]

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        user_ids: list[str],
        item_ids: list[str],
        manifest: dict[str, Any],
        signals: dict[str, np.ndarray],
    ) -> EASE:
        # Plain ndarray views of the memory maps (a memmap's own indexing is slow per request).
        return cls(
            np.asarray(arrays["ease_weights"]),
            np.array(arrays["ease_active"]),
            user_ids,
            item_ids,
            float(manifest["regularization"]),
            manifest,
            signals,
        )


def _ease_weights(gram: np.ndarray) -> np.ndarray:
    """``B`` (float32) from ``G = XᵀX + λI`` (float64, overwritten): Cholesky inverse in place, then blocks.

    LAPACK's ``potrf``/``potri`` invert a symmetric positive definite matrix in
    its own storage (only one triangle is written), so the float64 step needs
    one m × m array; ``B`` is filled block by block from that triangle.
    """
    m = gram.shape[0]
    if m == 0:
        return np.zeros((0, 0), dtype=np.float32)
    # A C-ordered symmetric matrix is its own Fortran-ordered transpose: hand LAPACK the view, no copy.
    factor, info = lapack.dpotrf(gram.T, lower=0, overwrite_a=1, clean=0)
    if info != 0:
        raise ModelError(f"EASE^R: XᵀX + λI is not positive definite (LAPACK potrf info={info}); raise λ")
    inverse, info = lapack.dpotri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise ModelError(f"EASE^R: cannot invert XᵀX + λI (LAPACK potri info={info})")
    # Fortran "upper" of `inverse` is valid: inverse[i, j] for i <= j.
    diag = inverse.diagonal().copy()
    weights = np.empty((m, m), dtype=np.float32)
    cols = np.arange(m)
    for start in range(0, m, BLOCK):
        stop = min(start + BLOCK, m)
        rows = np.arange(start, stop)
        upper = np.asarray(inverse[start:stop, :])
        lower = np.asarray(inverse[:, start:stop]).T
        full = np.where(cols[None, :] >= rows[:, None], upper, lower)
        block = -full / diag[None, :]
        block[np.arange(stop - start), rows] = 0.0
        weights[start:stop] = block
    return weights
