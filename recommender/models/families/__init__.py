"""Model families: each fits a :class:`~recommender.models.base.Recommender` from a confidence matrix.

``als`` is matrix factorisation, trained by an ALS engine (:mod:`recommender.models.engines`:
``implicit`` on one machine, Spark MLlib for shops that outgrow one). Item
models (EASE^R, item graphs) are fitted here directly; they have no engine
choice. Selection (see the training job) fits several and keeps the one that
validates best.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import scipy.sparse as sp

from recommender.config import Settings
from recommender.errors import ConfigError
from recommender.models.base import Recommender

# "rp3beta" and "itemknn" are the two methods of the item-graph family (section itemgraph);
# a blend is built by selection from fitted parts (recommender.models.families.blend), never fitted here.
FAMILY_NAMES = ("als", "ease", "rp3beta", "itemknn")


def fit(
    name: str,
    matrix: sp.csr_matrix,
    user_ids: list[str],
    item_ids: list[str],
    settings: Settings,
    *,
    engine: str = "implicit",
    engine_options: dict[str, Any] | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> Recommender:
    """Fit family ``name`` on ``matrix`` (customers × products confidences) with its section of ``settings``.

    ``log`` hears what a fit is about to cost (EASE^R states its memory before it allocates).
    """
    if name == "als":
        from recommender.models.engines import get_engine

        model = get_engine(engine, **(engine_options or {})).fit(
            matrix, user_ids, item_ids, settings.als, progress=progress
        )
        model.manifest.setdefault("engine", engine)
        return model
    if name == "ease":
        from recommender.models.families.ease import EASE

        model = EASE.fit(matrix, user_ids, item_ids, settings.ease, log=log)
    elif name in ("rp3beta", "itemknn"):
        from recommender.models.families.itemgraph import ItemGraph

        model = ItemGraph.fit(matrix, user_ids, item_ids, settings.itemgraph, method=name)
    else:
        raise ConfigError(f"unknown model family {name!r} (one of {', '.join(FAMILY_NAMES)})")
    model.manifest.setdefault("engine", "numpy")
    return model
