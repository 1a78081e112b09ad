"""Model families: each fits a :class:`~recommender.model_base.Recommender` from a confidence matrix.

``als`` is matrix factorisation, trained by an ALS engine (:mod:`recommender.engines`:
``implicit`` on one machine, Spark MLlib for shops that outgrow one). Item
models (EASE^R, item graphs) are fitted here directly; they have no engine
choice. Selection (see the training job) fits several and keeps the one that
validates best.
"""

from __future__ import annotations

from typing import Any

import scipy.sparse as sp

from ..config import Settings
from ..errors import ConfigError
from ..model_base import Recommender

FAMILY_NAMES = ("als",)


def fit(name: str, matrix: sp.csr_matrix, user_ids: list[str], item_ids: list[str], settings: Settings, *,
        engine: str = "implicit", engine_options: dict[str, Any] | None = None,
        progress: bool = False) -> Recommender:
    """Fit family ``name`` on ``matrix`` (customers × products confidences) with its section of ``settings``."""
    if name == "als":
        from ..engines import get_engine

        model = get_engine(engine, **(engine_options or {})).fit(matrix, user_ids, item_ids, settings.als,
                                                                   progress=progress)
        model.manifest.setdefault("engine", engine)
        return model
    raise ConfigError(f"unknown model family {name!r} (one of {', '.join(FAMILY_NAMES)})")
