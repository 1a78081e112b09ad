"""A trained factor model: what every engine produces and every server loads.

The interface follows ``implicit``'s ``RecommenderBase`` (recommend, similar
items, recalculate_user, explain, save/load) but the math lives here, in
numpy, on the factors alone. That is what lets a model trained by Spark be
served exactly like one trained by ``implicit``: the server never needs the
engine that made the factors.

Fold-in and explanations solve the same regularised least-squares problem as
implicit ALS for one user, with the item factors fixed:
``(YᵀY + Yᵀ(Cᵤ − I)Y + λI) xᵤ = YᵀCᵤpᵤ``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import ModelError
from .topk import NormIndex

FACTOR_FILES = ("user_factors.npy", "item_factors.npy")
IDS_FILE = "ids.json"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest finite scores, best first."""
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


@dataclass
class FactorModel:
    """User and item factors with the id maps of both axes and the settings that made them."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_ids: list[str]
    item_ids: list[str]
    regularization: float
    manifest: dict[str, Any] = field(default_factory=dict)
    # Per-item arrays computed beside the factors (popularity, bought-together).
    signals: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.user_factors.shape[0] != len(self.user_ids) or self.item_factors.shape[0] != len(self.item_ids):
            raise ModelError("factor rows do not match the id maps")
        if self.user_factors.shape[1] != self.item_factors.shape[1]:
            raise ModelError("user and item factors have different widths")
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_index = {p: i for i, p in enumerate(self.item_ids)}
        self._yty: np.ndarray | None = None
        self._yty_regularized: np.ndarray | None = None
        self._item_norms: np.ndarray | None = None
        self._norm_index: NormIndex | None = None

    # --- shape ---------------------------------------------------------------

    @property
    def factors(self) -> int:
        return int(self.item_factors.shape[1])

    @property
    def version(self) -> str | None:
        return self.manifest.get("version")

    @property
    def engine(self) -> str:
        return self.manifest.get("engine", "unknown")

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
        False = never. Exact, via :class:`~recommender.topk.NormIndex`, which
        skips the products that cannot reach the top n.
        """
        exclude = np.fromiter(exclude, dtype=np.int64) if not isinstance(exclude, np.ndarray) else exclude
        banned = exclude.astype(np.int64, copy=False)
        if allow is not None:
            banned = np.concatenate([banned, np.flatnonzero(~allow)])
        return self.norm_index.search(user_vector, n, banned)

    @property
    def norm_index(self) -> NormIndex:
        """The items sorted by factor norm for :meth:`recommend`; built on first use (a worker builds it on load)."""
        if self._norm_index is None:
            self._norm_index = NormIndex(self.item_factors)
        return self._norm_index

    def similar_items(self, item_index: int, n: int = 10, *, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Items nearest by cosine of their factors, excluding the item itself."""
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

    def explain(self, items: np.ndarray, confidences: np.ndarray, item_index: int, n: int = 3) -> list[tuple[int, float]]:
        """Which of the user's own items contributed most to ``item_index``'s score.

        The score decomposes exactly as ``Σⱼ cⱼ · yᵢᵀ A⁻¹ yⱼ`` over the user's items.
        """
        if len(items) == 0:
            return []
        a, _ = self._system(items, confidences)
        weights = np.linalg.solve(a, np.asarray(self.item_factors[item_index], dtype=np.float64))
        contrib = np.asarray(confidences, dtype=np.float64) * (np.asarray(self.item_factors[items], dtype=np.float64) @ weights)
        order = np.argsort(-contrib)[:n]
        return [(int(items[j]), float(contrib[j])) for j in order if contrib[j] > 0]

    # --- persistence -----------------------------------------------------------

    def save(self, directory: str | Path) -> dict[str, Any]:
        """Write the artifact files (fsynced) and the manifest with their checksums."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        checksums = {}
        arrays = {
            FACTOR_FILES[0]: np.ascontiguousarray(self.user_factors, dtype=np.float32),
            FACTOR_FILES[1]: np.ascontiguousarray(self.item_factors, dtype=np.float32),
            **{f"signal_{name}.npy": np.ascontiguousarray(a) for name, a in self.signals.items()},
        }
        for name, array in arrays.items():
            if name.startswith("signal_") and array.shape[0] != len(self.item_ids):
                raise ModelError(f"signal {name} has {array.shape[0]} rows for {len(self.item_ids)} items")
            path = directory / name
            with open(path, "wb") as fh:
                np.save(fh, array, allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
            checksums[name] = _sha256(path)
        ids_path = directory / IDS_FILE
        with open(ids_path, "w", encoding="utf-8") as fh:
            json.dump({"users": list(self.user_ids), "items": list(self.item_ids)}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        checksums[IDS_FILE] = _sha256(ids_path)
        manifest = dict(self.manifest)
        manifest.update(
            format=FORMAT_VERSION,
            factors=self.factors,
            users=len(self.user_ids),
            items=len(self.item_ids),
            regularization=self.regularization,
            signals=sorted(self.signals),
            checksums=checksums,
        )
        with open(directory / MANIFEST_FILE, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        self.manifest = manifest
        return manifest

    @staticmethod
    def read_manifest(directory: str | Path, *, verify: bool = True) -> dict[str, Any]:
        """The manifest of a complete, uncorrupted artifact (checksums verified), without loading it."""
        directory = Path(directory)
        try:
            manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
            if manifest.get("format") != FORMAT_VERSION:
                raise ModelError(f"{directory}: unknown artifact format {manifest.get('format')!r}")
            if verify:
                for name, expected in manifest["checksums"].items():
                    if _sha256(directory / name) != expected:
                        raise ModelError(f"{directory}: checksum mismatch in {name}")
            return manifest
        except ModelError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{directory}: cannot load model ({exc.__class__.__name__}: {exc})") from None

    @classmethod
    def load(cls, directory: str | Path, *, verify: bool = True, mmap: bool = True) -> "FactorModel":
        """Load an artifact; refuse anything incomplete, corrupt or of an unknown format.

        Factors are memory-mapped, so server workers on one machine share pages.
        """
        directory = Path(directory)
        manifest = cls.read_manifest(directory, verify=verify)
        try:
            ids = json.loads((directory / IDS_FILE).read_text(encoding="utf-8"))
            mode = "r" if mmap else None
            user_factors = np.load(directory / FACTOR_FILES[0], mmap_mode=mode, allow_pickle=False)
            item_factors = np.load(directory / FACTOR_FILES[1], mmap_mode=mode, allow_pickle=False)
            signals = {name: np.load(directory / f"signal_{name}.npy", allow_pickle=False)
                       for name in manifest.get("signals", [])}
            return cls(user_factors, item_factors, ids["users"], ids["items"],
                       float(manifest["regularization"]), manifest, signals)
        except ModelError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{directory}: cannot load model ({exc.__class__.__name__}: {exc})") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def batch_top_k(user_factors: np.ndarray, item_factors: np.ndarray, seen, k: int,
                allow: np.ndarray | None = None) -> np.ndarray:
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


def rank_items(items: Sequence[str], model: FactorModel, user_vector: np.ndarray) -> list[str]:
    """Order the caller's items for one user; items the model does not know keep their order at the end."""
    known = [(p, model.item_index[p]) for p in items if p in model.item_index]
    unknown = [p for p in items if p not in model.item_index]
    if known:
        idx = np.array([i for _, i in known])
        scores = model.item_factors[idx] @ user_vector
        known = [known[j] for j in np.argsort(-scores, kind="stable")]
    return [p for p, _ in known] + unknown
