"""What every trained model is, whatever family made it: the one interface the rest of the code uses.

Modelled on ``implicit``'s ``RecommenderBase``. The server, the campaigns, the
evaluation protocol, the release gate, the registry and privacy reconciliation
only ever call what is defined here, so a new family (matrix factorisation,
EASE^R, an item graph, a blend of them) is served, evaluated, gated, scrubbed
and published exactly like the others.

A customer is represented by a *state* computed from their current history
(:meth:`Recommender.fold_in`): a factor vector for matrix factorisation, the
weighted history itself for item models. The state is opaque to callers; they
hand it back to :meth:`recommend`, :meth:`score` and :meth:`explain`.

Artifacts are plain ``.npy`` arrays (never pickle), ``ids.json`` and a
``manifest.json`` holding the checksum of every file; the manifest's
``family`` names the class that loads them (artifacts written before families
existed are matrix factorisation models).
"""

from __future__ import annotations

import abc
import hashlib
import importlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from recommender.errors import ModelError

IDS_FILE = "ids.json"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
DEFAULT_FAMILY = "factors"
CONTENT_PREFIX = "content_"  # the content mapping's arrays (recommender.models.content)

# family name -> "module:Class"; imported only when an artifact of that family is loaded.
FAMILIES: dict[str, str] = {
    "factors": "recommender.models.factor:FactorModel",
    "ease": "recommender.models.families.ease:EASE",
    "itemgraph": "recommender.models.families.itemgraph:ItemGraph",
    "blend": "recommender.models.families.blend:Blend",
}


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest finite scores, best first (ties by index)."""
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.lexsort((part, -scores[part]))]


def as_index_array(values: Iterable[int] | np.ndarray) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values.astype(np.int64, copy=False)
    return np.fromiter(values, dtype=np.int64)


class Recommender(abc.ABC):
    """A trained model: the id maps of both axes, per-item signals, a manifest, and the scoring methods.

    ``user_ids`` are the customers whose data trained the model (a factor model
    also holds a row of factors for each); privacy reconciliation removes them.
    """

    family: ClassVar[str] = "base"

    def __init__(
        self,
        user_ids: list[str],
        item_ids: list[str],
        manifest: dict[str, Any] | None = None,
        signals: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.user_ids = list(user_ids)
        self.item_ids = list(item_ids)
        self.manifest = dict(manifest or {})
        # Per-item arrays computed beside the model (popularity, bought-together).
        self.signals = dict(signals or {})
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_index = {p: i for i, p in enumerate(self.item_ids)}

    # --- identity ------------------------------------------------------------------

    @property
    def version(self) -> str | None:
        return self.manifest.get("version")

    @property
    def engine(self) -> str:
        return self.manifest.get("engine", "unknown")

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    # --- a customer's state ------------------------------------------------------------

    @abc.abstractmethod
    def fold_in(self, items: np.ndarray, confidences: np.ndarray) -> Any | None:
        """The state of a customer whose history is these (item index, confidence) pairs; None if it says nothing."""

    @abc.abstractmethod
    def score(self, state: Any, items: np.ndarray | None = None) -> np.ndarray:
        """Scores of ``items`` (all items when None) for a customer state; higher is better."""

    def recommend(
        self, state: Any, n: int = 10, *, exclude: Iterable[int] = (), allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` item indices and scores; ``exclude`` never returned, ``allow`` a boolean mask (False = never).

        Fewer than ``n`` come back only when fewer items are allowed. Families
        with a faster exact search override this.
        """
        scores = np.asarray(self.score(state), dtype=np.float64).copy()
        banned = as_index_array(exclude)
        if len(banned):
            scores[banned] = -np.inf
        if allow is not None:
            scores[~allow] = -np.inf
        top = top_k(scores, n)
        return top, scores[top].astype(np.float32)

    @abc.abstractmethod
    def similar_items(
        self, item_index: int, n: int = 10, *, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Items most like ``item_index`` (never itself), best first, with their similarity."""

    @abc.abstractmethod
    def explain(
        self, items: np.ndarray, confidences: np.ndarray, item_index: int, n: int = 3
    ) -> list[tuple[int, float]]:
        """Which of the customer's own items contributed most (positively) to ``item_index``'s score."""

    # --- evaluation ---------------------------------------------------------------------

    @abc.abstractmethod
    def batch_scores(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Dense scores (len(users) × items) for training-matrix rows ``users``; ``history`` is their rows."""

    def batch_recommend(self, users: np.ndarray, history: sp.csr_matrix, k: int, block: int = 2048) -> np.ndarray:
        """Top-``k`` for many training customers at once, their history excluded; -1 pads.

        ``history`` holds one row per entry of ``users`` (their confidences).
        """
        k = min(k, self.n_items)
        out = np.full((len(users), k), -1, dtype=np.int64)
        for start in range(0, len(users), block):
            rows = history[start : start + block]
            scores = np.asarray(self.batch_scores(users[start : start + block], rows), dtype=np.float32)
            r, c = rows.nonzero()
            scores[r, c] = -np.inf
            for j in range(scores.shape[0]):
                top = top_k(scores[j], k)
                out[start + j, : len(top)] = top
        return out

    # --- release gate and privacy ----------------------------------------------------------

    def health(self, trained_users: np.ndarray, trained_items: np.ndarray) -> dict[str, float]:
        """Shares of trained customers and products the model learnt something for (gate's sanity check)."""
        return {"users": 1.0, "items": 1.0}

    def drop_users(self, keep: np.ndarray) -> None:
        """Forget the customers whose ``keep`` entry is False (erasure, withdrawal)."""
        self.user_ids = [u for u, k in zip(self.user_ids, keep) if k]
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}

    def warm_up(self) -> None:  # noqa: B027 - a default that does nothing: most families have nothing to build
        """Build whatever the first request would otherwise build (a worker calls this on load)."""

    # --- persistence ----------------------------------------------------------------------

    @abc.abstractmethod
    def arrays(self) -> dict[str, np.ndarray]:
        """The family's arrays by file stem (saved as ``<stem>.npy``); no ``signal_`` prefix."""

    def manifest_fields(self) -> dict[str, Any]:
        """Family-specific settings the loader needs, stored in the manifest."""
        return {}

    @classmethod
    @abc.abstractmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        user_ids: list[str],
        item_ids: list[str],
        manifest: dict[str, Any],
        signals: dict[str, np.ndarray],
    ) -> Recommender:
        """Rebuild a model from what :meth:`arrays` saved."""

    @classmethod
    def array_names(cls, manifest: dict[str, Any]) -> list[str]:
        """File stems of the family's arrays in a manifest's artifact."""
        return list(manifest.get("arrays", []))

    def files(self) -> list[str]:
        """Every file of this model's artifact, manifest excluded (rewrite order)."""
        return (
            [f"{n}.npy" for n in self.arrays()]
            + [IDS_FILE]
            + [f"signal_{n}.npy" for n in self.signals]
            + [f"{CONTENT_PREFIX}{n}.npy" for n in getattr(self, "content_arrays", {})]
        )

    def save(self, directory: str | Path) -> dict[str, Any]:
        """Write the artifact files (fsynced) and the manifest with their checksums."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        checksums = {}
        own = self.arrays()
        for name in own:
            if name.startswith(("signal_", CONTENT_PREFIX)):
                raise ModelError(f"array name {name!r} is reserved for signals and content")
        # the content mapping of new products (recommender.models.content), item-side arrays only
        content = dict(getattr(self, "content_arrays", None) or {})
        files = {
            **{f"{n}.npy": a for n, a in own.items()},
            **{f"signal_{n}.npy": a for n, a in self.signals.items()},
            **{f"{CONTENT_PREFIX}{n}.npy": a for n, a in content.items()},
        }
        for name, array in files.items():
            array = np.ascontiguousarray(array)
            if name.startswith("signal_") and array.shape[0] != len(self.item_ids):
                raise ModelError(f"signal {name} has {array.shape[0]} rows for {len(self.item_ids)} items")
            path = directory / name
            with open(path, "wb") as fh:
                np.save(fh, array, allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
            checksums[name] = sha256(path)
        ids_path = directory / IDS_FILE
        with open(ids_path, "w", encoding="utf-8") as fh:
            json.dump({"users": list(self.user_ids), "items": list(self.item_ids)}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        checksums[IDS_FILE] = sha256(ids_path)
        manifest = dict(self.manifest)
        manifest.update(
            format=FORMAT_VERSION,
            family=self.family,
            arrays=sorted(own),
            users=len(self.user_ids),
            items=len(self.item_ids),
            signals=sorted(self.signals),
            content_arrays=sorted(content),
            checksums=checksums,
            **self.manifest_fields(),
        )
        with open(directory / MANIFEST_FILE, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        self.manifest = manifest
        return manifest


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(directory: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """The manifest of a complete, uncorrupted artifact (checksums verified), without loading it."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT_VERSION:
            raise ModelError(f"{directory}: unknown artifact format {manifest.get('format')!r}")
        if verify:
            for name, expected in manifest["checksums"].items():
                if sha256(directory / name) != expected:
                    raise ModelError(f"{directory}: checksum mismatch in {name}")
        return manifest
    except ModelError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{directory}: cannot load model ({exc.__class__.__name__}: {exc})") from None


def family_class(name: str) -> type[Recommender]:
    target = FAMILIES.get(name)
    if target is None:
        raise ModelError(f"unknown model family {name!r} (one of {', '.join(sorted(FAMILIES))})")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def load_model(directory: str | Path, *, verify: bool = True, mmap: bool = True) -> Recommender:
    """Load an artifact of any family; refuse anything incomplete, corrupt or of an unknown format.

    Arrays are memory-mapped, so server workers on one machine share pages.
    """
    directory = Path(directory)
    manifest = read_manifest(directory, verify=verify)
    cls = family_class(manifest.get("family", DEFAULT_FAMILY))
    try:
        ids = json.loads((directory / IDS_FILE).read_text(encoding="utf-8"))
        mode = "r" if mmap else None
        arrays = {
            name: np.load(directory / f"{name}.npy", mmap_mode=mode, allow_pickle=False)
            for name in cls.array_names(manifest)
        }
        signals = {
            name: np.load(directory / f"signal_{name}.npy", allow_pickle=False) for name in manifest.get("signals", [])
        }
        content = {
            name: np.load(directory / f"{CONTENT_PREFIX}{name}.npy", allow_pickle=False)
            for name in manifest.get("content_arrays", [])
        }
        model = cls.from_arrays(arrays, ids["users"], ids["items"], manifest, signals)
        if content:
            model.content_arrays = content  # type: ignore[attr-defined]
        return model
    except ModelError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelError(f"{directory}: cannot load model ({exc.__class__.__name__}: {exc})") from None
