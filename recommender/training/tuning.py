"""Bounded hyper-parameter search that never looks at the test period.

The test period of the standard protocol (after the 80 % cut) is held out
entirely: tuning carves a validation split from the training period alone
(its own 80 % cut) and scores candidates there. Tuning on the test period
would make every later evaluation a lie.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlite_utils

from recommender.config import Settings, validate
from recommender.models.engines import get_engine
from recommender.training import evaluation, run as training
from recommender.training.recipes import WEIGHT_PROFILES

SPACE: dict[str, list[Any]] = {
    "factors": [32, 64, 128],
    "regularization": [0.1, 1.0, 3.0, 10.0, 30.0, 60.0],
    "alpha": [0.5, 1.0, 2.0, 4.0, 8.0],
    "iterations": [10, 15, 20],
    "log_scaling": [True, False],
    "half_life_days": [0.0, 7.0, 14.0, 30.0, 90.0],
}


@dataclass
class Trial:
    params: dict[str, Any]
    event_weights: dict[str, float]
    ndcg: float
    seconds: float


def _candidate(settings: Settings, rng: np.random.Generator) -> Settings:
    out = copy.deepcopy(settings)
    for name, values in SPACE.items():
        setattr(out.als, name, values[int(rng.integers(len(values)))])
    profile = WEIGHT_PROFILES[int(rng.integers(len(WEIGHT_PROFILES)))]
    # Keep any event type the shop configured beyond the profile's three.
    out.event_weights = {**out.event_weights, **{k: v for k, v in profile.items() if k in out.event_weights}}
    validate(out)
    return out


def tune(
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    trials: int = 24,
    seed: int = 0,
    engine: str = "implicit",
    max_seconds: float | None = None,
    log: Callable[[str], None] = lambda _: None,
    engine_options: dict[str, Any] | None = None,
) -> tuple[Settings, list[Trial], float]:
    """Random search; the first trial is the current settings. Returns (best settings, trials, validation cut)."""
    base_data = training.load_data(db, settings)
    test_cut = evaluation.temporal_split(base_data, settings.als, settings.evaluation).cut_time
    train_period = base_data.time < test_cut
    rng = np.random.default_rng(seed)
    fitter = get_engine(engine, **(engine_options or {}))
    results: list[Trial] = []
    best: tuple[float, Settings] | None = None
    started = time.perf_counter()
    for n in range(trials):
        candidate = copy.deepcopy(settings) if n == 0 else _candidate(settings, rng)
        # Event weights change the arrays, so the data is re-weighted per candidate.
        data = base_data.reweighted(candidate.event_weights)
        t0 = time.perf_counter()
        split = evaluation.temporal_split(data, candidate.als, candidate.evaluation, base_mask=train_period)
        model = fitter.fit(split.train, data.user_ids, data.item_ids, candidate.als)
        ndcg = evaluation.evaluate_model(model, split, candidate.evaluation.k).metrics["ndcg"]
        results.append(
            Trial(
                dataclasses.asdict(candidate.als),
                dict(candidate.event_weights),
                ndcg,
                round(time.perf_counter() - t0, 2),
            )
        )
        log(f"trial {n + 1}/{trials}: validation NDCG@{candidate.evaluation.k} {ndcg:.4f}  {results[-1].params}")
        if best is None or ndcg > best[0]:
            best = (ndcg, candidate)
        if max_seconds and time.perf_counter() - started > max_seconds:
            log("time budget reached")
            break
    assert best is not None
    return best[1], results, float(split.cut_time)
