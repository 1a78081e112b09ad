"""The default engine: ``implicit``'s alternating least squares on the CPU.

The confidence transform is ours (see :func:`recommender.data.interactions.confidence`),
so implicit's own ``alpha`` is fixed at 1 and the matrix is passed as the
confidences themselves. BLAS is held to one thread while implicit runs: it
parallelises over users itself, and a multi-threaded BLAS underneath it
oversubscribes the cores and slows it down (implicit warns about this).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from recommender.config import ALSSettings
from recommender.models.engines.base import Engine
from recommender.models.factor import FactorModel


class ImplicitALS(Engine):
    name = "implicit"

    def __init__(self, num_threads: int = 0) -> None:
        self.num_threads = num_threads

    def _estimator(self, als: ALSSettings, iterations: int) -> AlternatingLeastSquares:
        return AlternatingLeastSquares(
            factors=als.factors,
            regularization=als.regularization,
            alpha=1.0,
            iterations=iterations,
            calculate_training_loss=False,
            num_threads=self.num_threads,
            random_state=als.random_state,
        )

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
        iterations = als.iterations if iterations is None else iterations
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        with threadpool_limits(limits=1, user_api="blas"):
            estimator = self._estimator(als, iterations)
            if warm_start is not None:
                estimator.user_factors = np.array(warm_start.user_factors, dtype=np.float32)
                estimator.item_factors = np.array(warm_start.item_factors, dtype=np.float32)
            if iterations > 0:
                estimator.fit(matrix, show_progress=progress)
        return FactorModel(
            user_factors=np.ascontiguousarray(estimator.user_factors, dtype=np.float32),
            item_factors=np.ascontiguousarray(estimator.item_factors, dtype=np.float32),
            user_ids=list(user_ids),
            item_ids=list(item_ids),
            regularization=als.regularization,
            manifest={"engine": self.name},
        )
