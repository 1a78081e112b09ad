"""The evaluation protocol every model is judged by (see docs/quality.md).

A global temporal split at a quantile of event time (80 % by default): the
model sees only the past and is asked to predict what each customer turns to
next. Test customers are those with history before the cut; their relevant
items are the products they interact with after the cut and had not touched
before it, so re-buying the same mug does not count as insight. Already-seen
items are filtered from every list. The popularity baseline is always scored
on the same split, because a number without a baseline says nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.config import ALSSettings, EvaluationSettings
from recommender.data.interactions import Interactions
from recommender.models.base import Recommender

METRICS = ("precision", "recall", "ndcg", "map")


@dataclass
class Split:
    """Train matrix, relevant test items and the evaluated users of one temporal split."""

    cut_time: int
    train_mask: np.ndarray
    train: sp.csr_matrix  # confidences, events before the cut
    relevant: sp.csr_matrix  # binary, new items after the cut
    users: np.ndarray  # evaluated user indices (maybe sampled)
    eligible_users: int


def cut_time(times: np.ndarray, settings: EvaluationSettings) -> int:
    """The time of the global cut: the ``cut_quantile`` of event times (the test period starts there)."""
    if len(times) == 0:
        raise ValueError("no interactions to split")
    return int(np.quantile(times, settings.cut_quantile, method="higher"))


def temporal_split(
    data: Interactions, als: ALSSettings, settings: EvaluationSettings, base_mask: np.ndarray | None = None
) -> Split:
    """Split ``data`` (or the events selected by ``base_mask``) at the time quantile."""
    cut = cut_time(data.time if base_mask is None else data.time[base_mask], settings)
    in_scope = np.ones(len(data), dtype=bool) if base_mask is None else base_mask
    train_mask = in_scope & (data.time < cut)
    test_mask = in_scope & (data.time >= cut)
    train = data.matrix(als, train_mask, reference_time=cut)
    seen = train.copy()
    seen.data = np.ones_like(seen.data)
    test = sp.csr_matrix(
        (np.ones(int(test_mask.sum()), dtype=np.float32), (data.user[test_mask], data.item[test_mask])),
        shape=data.shape,
    )
    test.sum_duplicates()
    test.data[:] = 1.0
    relevant = (test - test.multiply(seen)).tocsr()
    relevant.eliminate_zeros()
    has_history = np.diff(train.indptr) > 0
    has_relevant = np.diff(relevant.indptr) > 0
    users = np.flatnonzero(has_history & has_relevant)
    eligible = len(users)
    if settings.max_users and eligible > settings.max_users:
        rng = np.random.default_rng(settings.seed)
        users = np.sort(rng.choice(users, size=settings.max_users, replace=False))
    return Split(cut, train_mask, train, relevant, users, eligible)


def _hits(
    top: np.ndarray, relevant: sp.csr_matrix, users: np.ndarray, k: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(row, relevant items, hit mask of the top k)`` for each of ``users`` with relevant items."""
    for row, user in enumerate(users):
        rel = relevant.indices[relevant.indptr[user] : relevant.indptr[user + 1]]
        if len(rel):
            ranked = top[row, :k]
            yield row, rel, np.isin(ranked, rel) & (ranked >= 0)


def per_user_ndcg(top: np.ndarray, relevant: sp.csr_matrix, users: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k of each of ``users`` (``top[j]`` ranks for ``users[j]``); its mean is the reported NDCG@k."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    out = np.zeros(len(users), dtype=np.float64)
    for row, rel, hits in _hits(top, relevant, users, k):
        # a catalogue smaller than k gives lists shorter than k: their hit mask is as long as the list
        out[row] = discounts[: len(hits)][hits].sum() / discounts[: min(len(rel), k)].sum()
    return out


def ranking_metrics(top: np.ndarray, relevant: sp.csr_matrix, users: np.ndarray, k: int) -> dict[str, float]:
    """Mean precision, recall, NDCG and MAP at k over ``users``.

    ``top[j]`` is the ranked list for ``users[j]`` (-1 = no item). Recall
    divides by all relevant items; MAP@k divides by min(|relevant|, k).
    """
    totals = dict.fromkeys(METRICS, 0.0)
    for _, rel, hits in _hits(top, relevant, users, k):
        n_hits = int(hits.sum())
        totals["precision"] += n_hits / k
        totals["recall"] += n_hits / len(rel)
        if n_hits:
            precision_at_hit = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)
            totals["map"] += float(precision_at_hit.sum() / min(len(rel), k))
    totals["ndcg"] = float(per_user_ndcg(top, relevant, users, k).sum())
    n = max(len(users), 1)
    return {m: totals[m] / n for m in METRICS}


@dataclass
class Scores:
    metrics: dict[str, float]
    coverage: float
    curve: dict[str, list[float]] = field(default_factory=dict)
    # Standard error of the mean NDCG@k over the customers scored (the schedule's losing-ground rule).
    ndcg_se: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**{m: round(v, 6) for m, v in self.metrics.items()}, "coverage": round(self.coverage, 6)}


def score_lists(top: np.ndarray, split: Split, k: int, n_items: int, curve_k: int = 0) -> Scores:
    metrics = ranking_metrics(top, split.relevant, split.users, k)
    per_user = per_user_ndcg(top, split.relevant, split.users, k)
    ndcg_se = float(per_user.std(ddof=1) / np.sqrt(len(per_user))) if len(per_user) > 1 else 0.0
    shown = top[:, :k]
    coverage = len(np.unique(shown[shown >= 0])) / max(n_items, 1)
    curve: dict[str, list[float]] = {}
    if curve_k:
        per_k = [ranking_metrics(top, split.relevant, split.users, kk) for kk in range(1, curve_k + 1)]
        curve = {m: [p[m] for p in per_k] for m in METRICS}
    return Scores(metrics, coverage, curve, ndcg_se)


def popularity(train: sp.csr_matrix) -> np.ndarray:
    """Item popularity: how many distinct customers touched each item in training."""
    return np.diff(train.tocsc().indptr).astype(np.float32)


def evaluate_model(model: Recommender, split: Split, k: int, curve_k: int = 0) -> Scores:
    depth = max(k, curve_k)
    top = model.batch_recommend(split.users, split.train[split.users], depth)
    return score_lists(top, split, k, len(model.item_ids), curve_k)


def popular_not_seen(order: np.ndarray, seen: sp.csr_matrix, users: np.ndarray, depth: int) -> np.ndarray:
    """For each user, the first ``depth`` items of the global ``order`` they have not seen."""
    top = np.full((len(users), depth), -1, dtype=np.int64)
    for row, user in enumerate(users):
        own = seen.indices[seen.indptr[user] : seen.indptr[user + 1]]
        head = order[: depth + len(own)]
        picked = head[~np.isin(head, own)][:depth]
        top[row, : len(picked)] = picked
    return top


def evaluate_popularity(split: Split, k: int, curve_k: int = 0) -> Scores:
    depth = max(k, curve_k)
    order = np.argsort(-popularity(split.train), kind="stable")
    top = popular_not_seen(order, split.train, split.users, depth)
    return score_lists(top, split, k, split.train.shape[1], curve_k)


def report_payload(
    model_scores: Scores, popular_scores: Scores, split: Split, k: int, params: dict[str, Any]
) -> dict[str, Any]:
    """The ``--json`` object of ``recommender evaluate`` (also stored in each model's manifest)."""
    return {
        "k": k,
        "users": len(split.users),
        "eligible_users": int(split.eligible_users),
        "cut_time": int(split.cut_time),
        "model": model_scores.as_dict(),
        "popularity": popular_scores.as_dict(),
        "params": params,
    }
