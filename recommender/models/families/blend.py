"""A weighted blend of fitted models: families that see different things complement each other.

``Blend(parts, weights)`` scores a product for a customer as

    Σₚ wₚ · sₚ(i) / scaleₚ,    scaleₚ = max |sₚ| over the candidate products (1 when that is 0),

where ``sₚ`` is part ``p``'s own score from its own state of the customer.
Dividing by each part's largest magnitude *for this customer* puts a factor
model's dot products, EASE^R's regression weights and an item graph's walk
probabilities on one scale (the best candidate of each part scores ±1), so the
weights mean what they say whatever the families.

Serving stays bounded for any catalogue: the candidates are the union of each
part's own top-``depth·n`` (under the same exclusions and ``allow`` mask), each
part rescores that union and the blend ranks it (ties by index). A product no
part ranks that deep cannot be recommended; ``depth`` (default 5) says how deep.
Evaluation (:meth:`batch_recommend`) runs the same procedure from the parts'
``batch_recommend`` and ``batch_scores``, so it judges exactly what is served.

Every part must share the blend's item and customer id maps (they are fitted on
one matrix). Saved as one artifact: each part's arrays under the prefix
``part<k>__``, each part's family and loader fields in the manifest's ``parts``,
all checksummed by the one manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.errors import ModelError
from recommender.models.base import Recommender, as_index_array, family_class

DEPTH = 5
SEPARATOR = "__"


def _prefix(k: int) -> str:
    return f"part{k}{SEPARATOR}"


class Blend(Recommender):
    """Parts, their weights, and the candidate depth of serving."""

    family = "blend"

    def __init__(
        self,
        parts: Sequence[Recommender],
        weights: Sequence[float],
        *,
        depth: int = DEPTH,
        manifest: dict[str, Any] | None = None,
        signals: dict[str, np.ndarray] | None = None,
    ) -> None:
        if not parts or len(parts) != len(weights):
            raise ModelError("a blend needs one weight per part and at least one part")
        first = parts[0]
        for part in parts[1:]:
            if part.item_ids != first.item_ids or part.user_ids != first.user_ids:
                raise ModelError("blended models must share their customer and product id maps")
        if any(isinstance(p, Blend) for p in parts):
            raise ModelError("a blend cannot contain a blend")
        super().__init__(first.user_ids, first.item_ids, manifest, signals)
        self.parts = list(parts)
        self.weights = [float(w) for w in weights]
        self.depth = int(depth)

    # --- combining ----------------------------------------------------------------------

    def _combine(self, candidates: np.ndarray, part_scores: list[np.ndarray | None]) -> np.ndarray:
        total = np.zeros(len(candidates), dtype=np.float64)
        for w, s in zip(self.weights, part_scores):
            if s is None or len(s) == 0:
                continue
            s = np.asarray(s, dtype=np.float64)
            scale = float(np.abs(s).max())
            total += w * s / (scale if scale > 0 else 1.0)
        return total

    @staticmethod
    def _best(candidates: np.ndarray, total: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        order = np.lexsort((candidates, -total))[:n]
        return candidates[order].astype(np.int64), total[order].astype(np.float32)

    # --- a customer's state ---------------------------------------------------------------

    def fold_in(self, items: np.ndarray, confidences: np.ndarray) -> tuple | None:
        """Each part's own state (None for a part the history says nothing to); None when all are."""
        states = tuple(p.fold_in(items, confidences) for p in self.parts)
        return None if all(s is None for s in states) else states

    def score(self, state: Any, items: np.ndarray | None = None) -> np.ndarray:
        """Blended scores of ``items`` (all when None), each part normalised over those same items."""
        items = np.arange(self.n_items) if items is None else as_index_array(items)
        scores = [None if s is None else p.score(s, items) for p, s in zip(self.parts, state)]
        return self._combine(items, scores).astype(np.float32)

    def recommend(
        self, state: Any, n: int = 10, *, exclude=(), allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        exclude = as_index_array(exclude)
        pools = [
            p.recommend(s, self.depth * n, exclude=exclude, allow=allow)[0]
            for p, s in zip(self.parts, state)
            if s is not None
        ]
        if not pools:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        candidates = np.unique(np.concatenate(pools)).astype(np.int64)
        scores = [None if s is None else p.score(s, candidates) for p, s in zip(self.parts, state)]
        return self._best(candidates, self._combine(candidates, scores), n)

    def similar_items(
        self, item_index: int, n: int = 10, *, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The parts' own similar lists (``depth·n`` deep), normalised and blended; absent from a list = 0."""
        lists = [p.similar_items(item_index, self.depth * n, allow=allow) for p in self.parts]
        pool = [idx for idx, _ in lists if len(idx)]
        if not pool:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        candidates = np.unique(np.concatenate(pool)).astype(np.int64)
        scores = []
        for idx, sims in lists:
            dense = np.zeros(len(candidates))
            if len(idx):
                dense[np.searchsorted(candidates, idx)] = sims
            scores.append(dense)
        keep = candidates != item_index
        candidates = candidates[keep]
        return self._best(candidates, self._combine(candidates, [s[keep] for s in scores]), n)

    def explain(
        self, items: np.ndarray, confidences: np.ndarray, item_index: int, n: int = 3
    ) -> list[tuple[int, float]]:
        """The parts' explanations, each divided by its largest contribution, weighted and summed per item."""
        merged: dict[int, float] = {}
        deep = max(n, len(items))
        for part, w in zip(self.parts, self.weights):
            reasons = part.explain(items, confidences, item_index, n=deep)
            if not reasons:
                continue
            top = max(c for _, c in reasons)
            for j, c in reasons:
                merged[j] = merged.get(j, 0.0) + w * c / top
        ranked = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(j, c) for j, c in ranked[:n] if c > 0]

    # --- evaluation ------------------------------------------------------------------------

    def batch_scores(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Blended dense scores, each part normalised per customer over all products."""
        total = np.zeros((history.shape[0], self.n_items), dtype=np.float64)
        for part, w in zip(self.parts, self.weights):
            s = np.asarray(part.batch_scores(users, history), dtype=np.float64)
            scale = np.abs(s).max(axis=1, keepdims=True)
            scale[scale == 0] = 1.0
            total += w * s / scale
        return total.astype(np.float32)

    def batch_recommend(self, users: np.ndarray, history: sp.csr_matrix, k: int, block: int = 2048) -> np.ndarray:
        """The serving procedure for many training customers: parts' top-``depth·k`` union, rescored, blended."""
        k = min(k, self.n_items)
        out = np.full((len(users), k), -1, dtype=np.int64)
        block = max(16, min(block, (1 << 25) // max(self.n_items, 1)))
        history = sp.csr_matrix(history)
        for start in range(0, len(users), block):
            u = users[start : start + block]
            rows = history[start : start + block]
            pools = [p.batch_recommend(u, rows, self.depth * k) for p in self.parts]
            dense = [np.asarray(p.batch_scores(u, rows)) for p in self.parts]
            for r in range(len(u)):
                pool = np.concatenate([pl[r] for pl in pools])
                candidates = np.unique(pool[pool >= 0]).astype(np.int64)
                if len(candidates) == 0:
                    continue
                top, _ = self._best(candidates, self._combine(candidates, [d[r, candidates] for d in dense]), k)
                out[start + r, : len(top)] = top
        return out

    # --- gate and privacy --------------------------------------------------------------------

    def health(self, trained_users: np.ndarray, trained_items: np.ndarray) -> dict[str, float]:
        shares = [p.health(trained_users, trained_items) for p in self.parts]
        return {key: min(s[key] for s in shares) for key in ("users", "items")}

    def drop_users(self, keep: np.ndarray) -> None:
        for part in self.parts:
            part.drop_users(keep)
        super().drop_users(keep)

    def warm_up(self) -> None:
        for part in self.parts:
            part.warm_up()

    # --- large catalogues (recommender.models.ann) -----------------------------------------------

    def attach_ann(self, settings: Any, log: Any = lambda _: None) -> bool:
        """Each factor part builds its own ANN indexes, so a blend of a large catalogue is searched like ALS."""
        built = [part.attach_ann(settings, log) for part in self.parts if hasattr(part, "attach_ann")]
        return any(built)

    def configure_ann(self, settings: Any) -> None:
        for part in self.parts:
            if hasattr(part, "configure_ann"):
                part.configure_ann(settings)

    # --- persistence ------------------------------------------------------------------------

    def arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for k, part in enumerate(self.parts):
            for name, array in part.arrays().items():
                out[_prefix(k) + name] = array
        return out

    def manifest_fields(self) -> dict[str, Any]:
        parts = [
            {
                "family": p.family,
                "weight": w,
                "arrays": sorted(p.arrays()),
                "fields": p.manifest_fields(),
                "manifest": {
                    key: p.manifest[key] for key in ("engine", "ease", "itemgraph", "params") if key in p.manifest
                },
            }
            for p, w in zip(self.parts, self.weights)
        ]
        return {"parts": parts, "depth": self.depth}

    @classmethod
    def array_names(cls, manifest: dict[str, Any]) -> list[str]:
        return [_prefix(k) + name for k, part in enumerate(manifest["parts"]) for name in part["arrays"]]

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        user_ids: list[str],
        item_ids: list[str],
        manifest: dict[str, Any],
        signals: dict[str, np.ndarray],
    ) -> Blend:
        parts, weights = [], []
        for k, spec in enumerate(manifest["parts"]):
            part_cls = family_class(spec["family"])
            if part_cls is cls:
                raise ModelError("a blend cannot contain a blend")
            own = {name: arrays[_prefix(k) + name] for name in spec["arrays"]}
            part_manifest = {**spec.get("manifest", {}), **spec["fields"], "family": spec["family"]}
            parts.append(part_cls.from_arrays(own, user_ids, item_ids, part_manifest, {}))
            weights.append(float(spec["weight"]))
        return cls(parts, weights, depth=int(manifest.get("depth", DEPTH)), manifest=manifest, signals=signals)
