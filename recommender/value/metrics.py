"""The evaluation metrics of customer value, on aligned arrays (prediction, actual holdout figure).

- :func:`top_share`: the share of all holdout spend made by the customers ranked in the
  top ``q`` by the prediction (ties broken by position, so the order is stable).
- :func:`spearman`: Spearman rank correlation (average ranks for ties).
- :func:`auc`: area under the ROC curve of a score for a yes/no outcome (Mann-Whitney,
  ties count one half).
- :func:`deciles`: customers in ten groups by prediction, mean predicted vs actual.
- :func:`bootstrap_top_share`: a percentile bootstrap 95 % interval of :func:`top_share`.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def _top(pred: np.ndarray, q: float) -> np.ndarray:
    k = round(len(pred) * q)
    return np.argsort(-np.asarray(pred, float), kind="stable")[:k]


def top_share(pred: np.ndarray, actual: np.ndarray, q: float = 0.1) -> float:
    actual = np.asarray(actual, float)
    total = actual.sum()
    return float(actual[_top(pred, q)].sum() / total) if total > 0 else float("nan")


def spearman(pred: np.ndarray, actual: np.ndarray) -> float:
    a, b = rankdata(pred), rankdata(actual)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def auc(score: np.ndarray, label: np.ndarray) -> float:
    label = np.asarray(label, bool)
    positives, negatives = int(label.sum()), int((~label).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[label].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def deciles(pred: np.ndarray, actual: np.ndarray, groups: int = 10) -> list[dict[str, float]]:
    """Customers sorted by prediction, cut into ``groups`` equal groups (1 = highest predictions)."""
    order = np.argsort(-np.asarray(pred, float), kind="stable")
    out = []
    for g, part in enumerate(np.array_split(order, groups), start=1):
        if len(part):
            out.append(
                {
                    "decile": g,
                    "customers": len(part),
                    "predicted": float(np.mean(pred[part])),
                    "actual": float(np.mean(actual[part])),
                }
            )
    return out


def bootstrap_top_share(
    pred: np.ndarray, actual: np.ndarray, q: float = 0.1, resamples: int = 1000, seed: int = 7
) -> tuple[float, float]:
    """Percentile 95 % interval of :func:`top_share` over customers resampled with replacement."""
    if resamples <= 0 or len(pred) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    pred, actual = np.asarray(pred, float), np.asarray(actual, float)
    values = []
    for _ in range(resamples):
        pick = rng.integers(0, len(pred), len(pred))
        values.append(top_share(pred[pick], actual[pick], q))
    lo, hi = np.nanpercentile(values, [2.5, 97.5])
    return float(lo), float(hi)
