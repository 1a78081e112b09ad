"""Approximate top-k by inner product for large catalogues: a faiss IVF index stored in the artifact.

Past a few hundred thousand products even the norm-bounded exact scan of
:mod:`recommender.models.topk` reads a large share of the catalogue on real shop data
(on the Online Retail model the bound is met after a median 28 %). An inverted
file index reads a fixed number of its lists instead, whatever the catalogue
holds.

Why faiss (``faiss-cpu``) and not hnswlib: faiss is actively maintained; its
filters are evaluated in C++ inside the search (an ``IDSelectorBitmap`` over
the allowed products, no Python callback per candidate); an index serialises to
a plain byte array, which the artifact stores as ``ann_index.npy`` with a
checksum like every other file; and ``ZeroCopyIOReader`` reads the index
straight out of the memory-mapped ``.npy``, so every server worker on a machine
shares one copy in the page cache. hnswlib's Python filter is a callback per
visited node and its index is always read into each process's own memory.

ALS scores are dot products, not cosines, so the index is an inner-product
one (``METRIC_INNER_PRODUCT``: a query reads the lists whose centroids have the
largest dot product with it, and ranks their items by dot product). The
textbook reduction of inner product to L2 (storing ``[y, sqrt(M² − ‖y‖²)]``)
was measured too and needed twice the lists for the same recall on
shop-like norms: the extra coordinate dominates every product whose norm is
far below the largest, which is most of them. Codes are 8-bit scalar
quantised; the search only proposes candidates, which are re-checked against
the filters and re-scored exactly from the item factors, so the scores served
are exact dot products. How many lists a query reads (``probes``) is chosen at
build time: the smallest that reaches ``target_recall`` of the exact top-10
for a sample of the model's own customers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender.errors import ModelError
from recommender.models.base import top_k

ARRAY = "ann_index"
SIMILAR_ARRAY = "ann_similar_index"  # the same kind of index over unit-length factors: cosine for "similar"
PROBE_LADDER = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
CALIBRATION_QUERIES = 200


def available() -> bool:
    """Whether faiss can be imported (the ``ann`` extra)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def exact_top(factors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k item indices (unordered) per query row, for calibration."""
    scores = np.asarray(queries, np.float32) @ np.asarray(factors, np.float32).T
    return np.argpartition(-scores, k - 1, axis=1)[:, :k]


def _ivf(y: np.ndarray, lists: int, seed: int, rng: np.random.Generator) -> tuple[Any, int]:
    """An IVF-SQ8 inner-product index over the rows of ``y``, trained on a sample of 40 rows per list."""
    import faiss

    n, d = y.shape
    lists = int(lists) or max(1, round(2 * math.sqrt(n)))
    lists = min(lists, n)
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, d, lists, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    sample = y if n <= 40 * lists else y[np.sort(rng.choice(n, size=40 * lists, replace=False))]
    index.cp.seed = int(seed)
    index.train(sample)
    index.add(y)
    return index, lists


def build(
    item_factors: np.ndarray,
    queries: np.ndarray,
    *,
    lists: int = 0,
    target_recall: float = 0.97,
    candidates: int = 100,
    seed: int = 0,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[np.ndarray, dict]:
    """The serialised index (uint8) and its parameters, ``probes`` calibrated on ``queries``.

    ``queries`` are realistic query vectors (the model's own customers); the
    recall measured is that of the served lists: ``candidates`` proposed,
    re-scored exactly, top 10 kept.
    """
    import faiss

    y = np.ascontiguousarray(item_factors, dtype=np.float32)
    rng = np.random.default_rng(seed)
    index, lists = _ivf(y, lists, seed, rng)
    params = {
        "lists": lists,
        "candidates": int(candidates),
        "dim": y.shape[1],
        "items": y.shape[0],
        "kind": "IVF-SQ8, inner product",
    }
    probes, recall = calibrate(index, y, queries, candidates, target_recall, rng)
    params.update(probes=probes, calibrated_recall=round(recall, 4), target_recall=target_recall)
    log(
        f"ann index: {lists} lists, {probes} probes, recall@10 {recall:.3f} on {min(len(queries), CALIBRATION_QUERIES)}"
        f" customers"
    )
    return faiss.serialize_index(index), params


def unit_rows(factors: np.ndarray) -> np.ndarray:
    """Each row divided by its length (rows of length 0 stay 0), float32: dot products of these are cosines."""
    y = np.asarray(factors, dtype=np.float32)
    norms = np.linalg.norm(y, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(y / norms)


def build_similar(
    item_factors: np.ndarray,
    *,
    lists: int = 0,
    target_recall: float = 0.97,
    candidates: int = 100,
    seed: int = 0,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[np.ndarray, dict]:
    """The cosine index for "similar products": the IVF index of :func:`build` over unit-length factors.

    ALS scores a customer by dot product, but similarity between products is
    the cosine of their factors (a popular product's long vector must not make
    it everyone's neighbour), so it needs an index of its own. Its probes are
    calibrated on the model's own products as queries: recall of the exact
    top 10 by cosine, the product itself left out.
    """
    import faiss

    z = unit_rows(item_factors)
    rng = np.random.default_rng(seed)
    index, lists = _ivf(z, lists, seed, rng)
    params = {
        "lists": lists,
        "candidates": int(candidates),
        "dim": z.shape[1],
        "items": z.shape[0],
        "kind": "IVF-SQ8, cosine (inner product of unit factors)",
    }
    nonzero = np.flatnonzero(np.any(z != 0, axis=1))
    queries = (
        z[rng.choice(nonzero, size=min(len(nonzero), CALIBRATION_QUERIES), replace=False)] if len(nonzero) else z[:0]
    )
    # The query product is its own best match; asking for one more than 10 leaves 10 others.
    probes, recall = calibrate(index, z, queries, candidates + 1, target_recall, rng, k=11)
    params.update(probes=probes, calibrated_recall=round(recall, 4), target_recall=target_recall)
    log(f"ann similar index: {lists} lists, {probes} probes, recall@10 {recall:.3f} on {len(queries)} products")
    return faiss.serialize_index(index), params


def calibrate(
    index: Any,
    y: np.ndarray,
    queries: np.ndarray,
    candidates: int,
    target: float,
    rng: np.random.Generator,
    k: int = 10,
) -> tuple[int, float]:
    """The smallest probe count whose served top-k recall reaches ``target`` (and that recall)."""
    q = np.asarray(queries, dtype=np.float32)
    q = q[np.any(q != 0, axis=1)]
    if len(q) > CALIBRATION_QUERIES:
        q = q[rng.choice(len(q), size=CALIBRATION_QUERIES, replace=False)]
    if len(q) == 0:
        q = y[rng.choice(len(y), size=min(len(y), CALIBRATION_QUERIES), replace=False)]
    k = min(k, len(y))
    truth = exact_top(y, q, k)
    qa = np.ascontiguousarray(q)
    recall = 0.0
    for probes in PROBE_LADDER:
        probes = min(probes, index.nlist)
        index.nprobe = probes
        _, found = index.search(qa, min(candidates, len(y)))
        hits = 0
        for row, cand, true in zip(q, found, truth):
            cand = cand[cand >= 0]
            top = cand[np.argsort(-(y[cand] @ row), kind="stable")[:k]]
            hits += len(np.intersect1d(top, true))
        recall = hits / (len(q) * k)
        if recall >= target or probes >= index.nlist:
            return probes, recall
    return index.nlist, recall


@dataclass
class FilterInfo:
    """What a search derives from one allow mask: computed once per (read-only) mask object."""

    count: int
    _mask: np.ndarray
    _bits: np.ndarray | None = None
    _indices: np.ndarray | None = None

    @property
    def bits(self) -> np.ndarray:
        """The mask as faiss's bitmap (bit i of byte i // 8, least significant first)."""
        if self._bits is None:
            self._bits = np.packbits(self._mask, bitorder="little")
        return self._bits

    @property
    def indices(self) -> np.ndarray:
        if self._indices is None:
            self._indices = np.flatnonzero(self._mask)
        return self._indices


class MaskMemo:
    """Derived views of allow masks, keyed by the mask object itself.

    The catalogue hands out one read-only mask per filter set until its next
    refresh, so every request with the same filters finds its bitmap and its
    count here instead of recomputing them over the whole catalogue. A writable
    mask could change under the memo, so it is never remembered.
    """

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._entries: list[tuple[np.ndarray, FilterInfo]] = []

    def get(self, mask: np.ndarray) -> FilterInfo:
        for known, info in self._entries:
            if known is mask:
                return info
        info = FilterInfo(int(np.count_nonzero(mask)), mask)
        if not mask.flags.writeable:
            self._entries = [(mask, info)] + self._entries[: self.size - 1]
        return info


class AnnIndex:
    """An IVF index read in place from the artifact's bytes (kept alive here: faiss reads its lists from them)."""

    def __init__(self, data: np.ndarray, params: dict[str, Any], n_items: int, dim: int) -> None:
        try:
            import faiss
        except ImportError as exc:  # the artifact is fine; this machine lacks the extra
            raise ModelError(
                "the model has an ANN index but faiss is not installed (pip install 'recommender[ann]')"
            ) from exc
        self.data = np.ascontiguousarray(data, dtype=np.uint8)
        try:
            reader = faiss.ZeroCopyIOReader(faiss.swig_ptr(self.data), self.data.size)
            self.index = faiss.read_index(reader)
        except RuntimeError as exc:
            raise ModelError(f"unreadable ANN index ({str(exc).splitlines()[0][:200]})") from None
        if self.index.ntotal != n_items or self.index.d != dim:
            raise ModelError(f"ANN index holds {self.index.ntotal} x {self.index.d} for {n_items} x {dim} factors")
        faiss.omp_set_num_threads(1)  # one request per worker process, as BLAS
        self.faiss = faiss
        self.params = dict(params)
        self.probes = int(params.get("probes", 16))
        self.candidates = int(params.get("candidates", 100))

    def propose(
        self, query: np.ndarray, count: int, bits: np.ndarray | None = None, probes: int | None = None
    ) -> np.ndarray:
        """Item indices of up to ``count`` approximate best items (only those set in ``bits``, if given)."""
        q = np.asarray(query, dtype=np.float32).reshape(1, -1)
        kwargs: dict[str, Any] = {"nprobe": int(probes or self.probes)}
        if bits is not None:
            kwargs["sel"] = self.faiss.IDSelectorBitmap(self.index.ntotal, self.faiss.swig_ptr(bits))
        params = self.faiss.SearchParametersIVF(**kwargs)
        _, found = self.index.search(q, int(min(count, self.index.ntotal)), params=params)
        found = found[0]
        return found[found >= 0]


def overfetch(
    index: AnnIndex,
    query: np.ndarray,
    n: int,
    dropped: set[int],
    allow: np.ndarray | None,
    info: FilterInfo | None,
    n_items: int,
    score: Callable[[np.ndarray], np.ndarray],
    probes: int | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Top-n of ``index``'s candidates for ``query``, re-checked and re-scored exactly; None when exact must answer.

    Candidates outside ``allow`` or in ``dropped`` are left out and the rest
    scored by ``score`` (the served score, never the index's approximation).
    Over-fetches ``candidates`` (at least twice n + exclusions); when
    re-checking leaves fewer than n while more are allowed (a customer whose
    purchases fill their own neighbourhood), asks again for four times as
    many, up to ``20 × candidates`` or 1 % of the catalogue, whichever is
    more; past that, or with more exclusions than that, the caller scores
    every product. A filter letting through under half the catalogue is
    handed to faiss as a bitmap; a looser one is cheaper re-checked here.
    """
    limit = max(20 * index.candidates, n_items // 100)  # a heavy buyer's 1,383 purchases fit
    count = max(index.candidates, 2 * (n + len(dropped)))
    bits, share = None, 1.0
    if info is not None:
        share = info.count / max(1, n_items)
        if share < 0.5:
            bits, share = info.bits, 1.0
    available = (n_items if info is None else info.count) - len(dropped)
    while count <= limit:
        found = index.propose(query, int(np.ceil(count / share)), bits, probes)
        if allow is not None:
            found = found[allow[found]]
        if dropped:
            found = np.fromiter((i for i in found.tolist() if i not in dropped), dtype=np.int64)
        scores = score(found)
        top = top_k(scores, n)
        if len(top) >= n or len(top) >= available:
            return found[top].astype(np.int64), scores[top]
        count *= 4
    return None
