"""Peak memory of a fit, predicted before anything is allocated, and the limit selection keeps under.

Each prediction is an upper bound in closed form from the matrix's shape,
its number of stored pairs (``nnz``) and the recipe's settings; the unit tests
check each against its formula and against a measured fit (tracemalloc)
within a stated tolerance. Bytes:

* **EASE^R** (dense): ``12·m²`` for ``m`` active products (the float64 Gram
  matrix, inverted in place, and the float32 ``B``) plus ``33 · m · min(m,
  1024)`` for the blocks that build and convert them (four float64 blocks and
  a boolean mask at once while ``B`` is filled; measured), plus the sparse
  block of ``XᵀX`` before it is made dense (``12 · min(m · min(m, 1024),
  Σ_u deg(u)²)``), plus ``4 · 12 · nnz`` for float64 copies of ``X``. The
  ``m²`` term is the one that matters: 17,600 products are 3.7 GB.
* **ALS**: ``2 · 4 · factors · (customers + products)`` (the engine's factors
  and the model's) plus ``2 · 8 · nnz`` (the float32 matrix and its transpose).
* **Item graphs**: float64 copies of ``X`` (``5 · 12 · nnz`` for RP3beta, ``4 ·
  12 · nnz`` for item-kNN), plus one block of the sparse product ``XᵀX``
  (``min(rows_per_block · products, Σ_u deg(u)²)`` entries, at 24 bytes each
  for RP3beta — the product and its rescaled copy — and 48 for item-kNN, whose
  cosine goes through COO form), plus the neighbour lists (``2 · 8 · products
  · K``).
* **A blend**: the sum of its parts (they are fitted one after the other and
  all kept).

Selection adds what it already holds (the fitted models it keeps for blends
and for the extra validation cuts: their arrays' bytes) and skips a candidate
whose total is above ``selection.max_memory_bytes`` (default: half of this
machine's memory, from ``os.sysconf``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.config import Settings

GIB = float(1 << 30)
EASE_BLOCK = 1024  # recommender.models.families.ease.BLOCK
GRAPH_BLOCK_ENTRIES = 20_000_000  # recommender.models.families.itemgraph.BLOCK_ENTRIES


def machine_memory() -> int:
    """This machine's physical memory in bytes (0 when the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def limit(settings: Settings) -> int:
    """``selection.max_memory_bytes``, or half the machine's memory when it is 0 (0 = no limit known)."""
    configured = int(settings.selection.max_memory_bytes)
    return configured if configured > 0 else machine_memory() // 2


def _shape(matrix: sp.spmatrix) -> tuple[int, int, int, int, int]:
    """(customers, products, nnz, active products, Σ_u deg(u)²) of a customers × products CSR matrix."""
    m = sp.csr_matrix(matrix)
    degrees = np.diff(m.indptr).astype(np.int64)
    active = int(np.count_nonzero(np.bincount(m.indices, minlength=m.shape[1]))) if m.nnz else 0
    return m.shape[0], m.shape[1], int(m.nnz), active, int((degrees * degrees).sum())


def ease_bytes(active: int, nnz: int, pair_bound: int) -> int:
    block = min(active, EASE_BLOCK)
    return 12 * active * active + 33 * active * block + 12 * min(active * block, pair_bound) + 4 * 12 * nnz


def als_bytes(customers: int, products: int, nnz: int, factors: int) -> int:
    return 2 * 4 * factors * (customers + products) + 2 * 8 * nnz


def graph_bytes(method: str, products: int, nnz: int, pair_bound: int, neighbours: int) -> int:
    rows = max(1, min(products, GRAPH_BLOCK_ENTRIES // max(products, 1)))
    block = min(rows * products, pair_bound)
    copies, per_entry = (5, 24) if method == "rp3beta" else (4, 48)
    return copies * 12 * nnz + per_entry * block + 2 * 8 * products * min(int(neighbours), products)


def family_bytes(family: str, settings: Settings, shape: tuple[int, int, int, int, int]) -> int:
    customers, products, nnz, active, pairs = shape
    if family == "ease":
        return ease_bytes(active, nnz, pairs)
    if family in ("rp3beta", "itemknn"):
        return graph_bytes(family, products, nnz, pairs, int(settings.itemgraph.neighbours))
    return als_bytes(customers, products, nnz, int(settings.als.factors))


def predict(recipe: Any, matrix: sp.spmatrix) -> int:
    """Upper bound on the bytes that fitting ``recipe`` (a :class:`~recommender.training.recipes.Recipe`) on
    ``matrix`` allocates at its peak (a blend: the sum of its parts)."""
    shape = _shape(matrix)
    parts = recipe.parts if recipe.family == "blend" else (recipe.family,)
    return sum(family_bytes(name, recipe.settings, shape) for name in parts)


def held_bytes(models: Iterable[Any]) -> int:
    """Bytes of the arrays of fitted models kept in memory (each counted once)."""
    seen: set[int] = set()
    total = 0
    for model in models:
        if id(model) in seen:
            continue
        seen.add(id(model))
        try:
            arrays = model.arrays()
        except Exception:  # noqa: BLE001 - a model that cannot list its arrays counts as nothing
            continue
        total += sum(int(getattr(a, "nbytes", 0)) for a in (arrays or {}).values())
    return total


def describe(nbytes: int) -> str:
    return f"{nbytes / GIB:.2f} GiB" if nbytes >= GIB / 10 else f"{nbytes / (1 << 20):.0f} MiB"
