"""The candidates: estimators of each customer's purchases and spend over a horizon.

Every estimator is fitted at a cut day from purchases on or before it only
(``fit(tx, cut)``) and then predicts, for the customers of a :class:`Summary` at that
cut, a :class:`Prediction` over ``horizon`` days: expected purchase days, expected
spend (the ranking score) and, where the estimator has one, the chance of at least
one purchase in the horizon. Names (``name``) are what reports print.

- :class:`PastSpend` (anchor): spend so far; as a forecast, the customer's run rate
  (spend x horizon / length of the calibration history).
- :class:`RecentSpend` (anchor): spend in the last ``window`` days, as a run rate.
- :class:`DecayedSpend`: spend weighted by 0.5 ** (age / half-life), as a run rate.
- :class:`BGNBDGammaGamma` (anchor at penalizer 0): BG/NBD expected purchases x
  Gamma-Gamma expected value per purchase (:mod:`.bgnbd`).
- :class:`Hybrid`: a logistic P(buys within a window) on log frequency and log
  recency, learned on the last window of the calibration period (features at the
  window's start, target = bought in it), times decayed spend; scaled to money by the
  same window. Frequency and recency mean the same at any cut, so unlike tenure they
  do not shift when the window's features see a shorter history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
from scipy.optimize import minimize

from recommender.value import bgnbd
from recommender.value.features import Summary, decayed_spend, future_spend, summarize, window_spend
from recommender.value.transactions import Transactions

WEEK = 7.0
# BG/NBD and Gamma-Gamma are fitted on a seeded sample of at most this many customers.
FIT_SAMPLE = 20_000


class Prediction(NamedTuple):
    """Per summary row, over the horizon: expected purchase days, expected spend, P(at least one purchase)."""

    purchases: np.ndarray
    spend: np.ndarray
    p_active: np.ndarray | None = None


class Fitted(Protocol):
    def predict(self, summary: Summary, horizon: float) -> Prediction: ...


class Estimator(Protocol):
    name: str
    anchor: bool

    def fit(self, tx: Transactions, cut: int) -> Fitted: ...


def _history_days(summary: Summary) -> float:
    return float(summary.cut - summary.history_start + 1)


# --- run rates ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RunRate:
    tx: Transactions
    window: float | None = None  # None = the whole history
    half_life: float | None = None

    def predict(self, summary: Summary, horizon: float) -> Prediction:
        length = _history_days(summary)
        if self.half_life:
            spend = decayed_spend(self.tx, summary, self.half_life)
            count = _decayed_count(self.tx, summary, self.half_life)
            # the weight a steady buyer accumulates over the history: the effective length of the window
            effective = self.half_life / np.log(2) * (1 - np.exp2(-length / self.half_life))
        elif self.window:
            spend = window_spend(self.tx, summary, self.window)
            count = _window_count(self.tx, summary, self.window)
            effective = min(self.window, length)
        else:
            spend, count, effective = summary.spend, summary.n, length
        scale = horizon / max(effective, 1.0)
        return Prediction(count * scale, spend * scale)


def _window_count(tx: Transactions, summary: Summary, days: float) -> np.ndarray:
    keep = (tx.day <= summary.cut) & (tx.day > summary.cut - days)
    return np.bincount(tx.customer[keep], minlength=len(tx.customers))[summary.index].astype(float)


def _decayed_count(tx: Transactions, summary: Summary, half_life: float) -> np.ndarray:
    keep = tx.day <= summary.cut
    weight = np.exp2(-(summary.cut - tx.day[keep]) / half_life)
    return np.bincount(tx.customer[keep], weights=weight, minlength=len(tx.customers))[summary.index]


@dataclass(frozen=True)
class PastSpend:
    name: str = "past spend"
    anchor: bool = True

    def fit(self, tx: Transactions, cut: int) -> Fitted:
        return _RunRate(tx)


@dataclass(frozen=True)
class RecentSpend:
    window: float = 180.0
    anchor: bool = True

    @property
    def name(self) -> str:
        return f"spend in the last {self.window:g} days"

    def fit(self, tx: Transactions, cut: int) -> Fitted:
        return _RunRate(tx, window=self.window)


@dataclass(frozen=True)
class DecayedSpend:
    half_life: float = 365.0
    anchor: bool = False

    @property
    def name(self) -> str:
        return f"decayed spend (half-life {self.half_life:g} d)"

    def fit(self, tx: Transactions, cut: int) -> Fitted:
        return _RunRate(tx, half_life=self.half_life)


# --- BG/NBD + Gamma-Gamma ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FittedBGNBD:
    params: bgnbd.BGNBDParams
    gg: bgnbd.GammaGammaParams

    def purchases(self, summary: Summary, horizon: float) -> np.ndarray:
        return bgnbd.conditional_expected_purchases(
            self.params, horizon / WEEK, summary.x, summary.t_x / WEEK, summary.T / WEEK
        )

    def predict(self, summary: Summary, horizon: float) -> Prediction:
        purchases = self.purchases(summary, horizon)
        value = bgnbd.conditional_expected_value(self.gg, summary.n, np.maximum(summary.mean_spend, 1e-9))
        r, alpha, _, _ = self.params
        alive = bgnbd.p_alive(self.params, summary.x, summary.t_x / WEEK, summary.T / WEEK)
        # alive at the cut, and then at least one purchase (dropout inside the horizon neglected)
        T = summary.T / WEEK
        buys = 1 - np.exp((r + summary.x) * (np.log(alpha + T) - np.log(alpha + T + horizon / WEEK)))
        return Prediction(purchases, purchases * value, alive * buys)


@dataclass(frozen=True)
class BGNBDGammaGamma:
    penalizer: float = 0.0
    anchor: bool = False

    @property
    def name(self) -> str:
        return "BG/NBD + Gamma-Gamma" + (f" (penalizer {self.penalizer:g})" if self.penalizer else "")

    def fit(self, tx: Transactions, cut: int) -> FittedBGNBD:
        s = summarize(tx, cut)
        x, t_x, T, n, mean = s.x, s.t_x, s.T, s.n, s.mean_spend
        if len(s) > FIT_SAMPLE:
            # four (three) population parameters: a seeded sample estimates them as well, at a bounded cost
            pick = np.random.default_rng(0).choice(len(s), FIT_SAMPLE, replace=False)
            x, t_x, T, n, mean = x[pick], t_x[pick], T[pick], n[pick], mean[pick]
        params = bgnbd.fit_bgnbd(x, t_x / WEEK, T / WEEK, penalizer=self.penalizer)
        gg = bgnbd.fit_gamma_gamma(n, mean)
        return FittedBGNBD(params, gg)


# --- the hybrid --------------------------------------------------------------------------------------------


def _design(summary: Summary) -> np.ndarray:
    return np.column_stack([np.ones(len(summary)), np.log1p(summary.n), np.log1p(summary.recency)])


def fit_logistic(design: np.ndarray, target: np.ndarray, l2: float = 1.0) -> np.ndarray:
    """Weights of an L2-penalised logistic regression (the intercept, column 0, unpenalised)."""

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = design @ w
        p = 1 / (1 + np.exp(-z))
        grad = design.T @ (p - target)
        grad[1:] += 2 * l2 * w[1:]
        return float((np.logaddexp(0, z) - target * z).sum() + l2 * (w[1:] ** 2).sum()), grad

    return minimize(loss, np.zeros(design.shape[1]), jac=True, method="L-BFGS-B").x


@dataclass(frozen=True)
class FittedHybrid:
    tx: Transactions
    weights: np.ndarray
    window: float  # the window P(buy) was learned on, days
    half_life: float
    spend_rate: float  # money per unit of score per day of horizon
    count_rate: float  # purchases per unit of (P(buy) x decayed count) per day of horizon

    def predict(self, summary: Summary, horizon: float) -> Prediction:
        p = 1 / (1 + np.exp(-(_design(summary) @ self.weights)))
        spend = p * decayed_spend(self.tx, summary, self.half_life) * self.spend_rate * horizon
        count = p * _decayed_count(self.tx, summary, self.half_life) * self.count_rate * horizon
        return Prediction(count, spend, 1 - (1 - p) ** (horizon / self.window))


@dataclass(frozen=True)
class Hybrid:
    half_life: float = 365.0
    window: float = 90.0
    anchor: bool = False

    @property
    def name(self) -> str:
        return f"P(buy) x decayed spend (half-life {self.half_life:g} d)"

    def fit(self, tx: Transactions, cut: int) -> FittedHybrid:
        start = tx.first_day if tx.first_day is not None else cut
        # the last window of the calibration period, at most half of it, so its features see some history
        window = float(max(1, min(self.window, (cut - start) // 2)))
        inner = summarize(tx, int(cut - window))
        count, spend = future_spend(tx, inner, cut)
        weights = fit_logistic(_design(inner), (count > 0).astype(float))
        p = 1 / (1 + np.exp(-(_design(inner) @ weights)))
        score = p * decayed_spend(tx, inner, self.half_life)
        score_count = p * _decayed_count(tx, inner, self.half_life)
        spend_rate = float(spend.sum() / max(score.sum(), 1e-12) / window)
        count_rate = float(count.sum() / max(score_count.sum(), 1e-12) / window)
        return FittedHybrid(tx, weights, window, self.half_life, spend_rate, count_rate)


def anchors() -> list[Estimator]:
    """The anchors every evaluation shows: past spend, recent spend (90 and 180 days), BG/NBD + Gamma-Gamma."""
    return [PastSpend(), RecentSpend(90.0), RecentSpend(180.0), BGNBDGammaGamma(0.0, anchor=True)]


def candidates() -> list[Estimator]:
    """What selection chooses the value estimate from, on a validation period (see :mod:`.model`)."""
    return [
        PastSpend(anchor=False),
        *(DecayedSpend(h) for h in (90.0, 180.0, 365.0)),
        *(BGNBDGammaGamma(p) for p in (0.001, 0.01, 0.1)),
        *(Hybrid(h) for h in (90.0, 180.0, 365.0)),
    ]


# Penalizers of the BG/NBD that predicts purchase counts, chosen on validation by the error of the total.
COUNT_PENALIZERS = (0.0, 0.001, 0.01, 0.1)
