"""What a training engine is: something that turns a confidence matrix into factors.

Engines only fit. Scoring, fold-in, explanations and the artifact format live
in :mod:`recommender.models.factor`, so whatever trained a model, it is served the same.
"""

from __future__ import annotations

import abc

import scipy.sparse as sp

from recommender.config import ALSSettings
from recommender.models.factor import FactorModel


class Engine(abc.ABC):
    """Fits factor models; ``name`` is recorded in every artifact it produces."""

    name: str = "base"
    # Whether ``warm_start`` really continues from the given factors (else it is a fresh full fit).
    warm_starts: bool = True

    @abc.abstractmethod
    def fit(
        self,
        matrix: sp.csr_matrix,
        user_ids: list[str],
        item_ids: list[str],
        als: ALSSettings,
        *,
        progress: bool = False,
        warm_start: FactorModel | None = None,
        iterations: int | None = None,
    ) -> FactorModel:
        """Fit on ``matrix`` (customers × products confidences).

        With ``warm_start``, continue from that model's factors instead of a
        random start; ``iterations`` overrides ``als.iterations``.
        """
