"""The value model of a shop: chosen on a validation period, fitted on the whole history, scoring everyone.

Selection (:func:`choose`) never reads past the cut it is given. It cuts a
validation period from the end of the calibration history (as long as the horizon,
at most half the history), fits every candidate of :func:`.estimators.candidates` on
what came before it and keeps:

- for **spend and ranking**, the candidate with the highest Spearman correlation
  with spend in the validation period (ties broken by the share of that spend its
  top 10 % made);
- for **purchase counts**, the BG/NBD penalizer of :data:`.estimators.COUNT_PENALIZERS`
  whose total predicted purchases came closest to the actual total.

:func:`fit` then fits both on everything up to the cut, and :func:`score` gives
every profiled customer expected purchases and spend over each configured horizon,
the chance of buying in the first horizon, and an RFM segment (:mod:`.segments`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recommender.config import Settings
from recommender.value import estimators, metrics, segments
from recommender.value.estimators import BGNBDGammaGamma, Estimator, Fitted, Prediction
from recommender.value.features import Summary, future_spend, summarize
from recommender.value.transactions import Transactions, day_date


def validation_period(tx: Transactions, cut: int, horizon: float) -> tuple[int, int]:
    """``(validation cut, cut)``: the last ``min(horizon, half the history)`` days before ``cut``."""
    start = tx.first_day if tx.first_day is not None else cut
    length = int(max(1, min(horizon, (cut - start) // 2)))
    return cut - length, cut


@dataclass(frozen=True)
class Choice:
    """What selection kept, and the validation table it was chosen on."""

    value: Estimator
    count: BGNBDGammaGamma
    validation_cut: int
    validation_end: int
    table: list[dict] = field(default_factory=list)

    def payload(self) -> dict:
        return {
            "value_estimator": self.value.name,
            "count_estimator": self.count.name,
            "validation": {
                "cut": day_date(self.validation_cut).isoformat(),
                "end": day_date(self.validation_end).isoformat(),
                "candidates": self.table,
            },
        }


def choose(tx: Transactions, cut: int, horizon: float) -> Choice:
    """Choose the value and count estimators on a validation period cut from days up to ``cut`` only."""
    v_cut, v_end = validation_period(tx, cut, horizon)
    summary = summarize(tx, v_cut)
    count, spend = future_spend(tx, summary, v_end)
    table, best = [], None
    fitted_bgnbd: dict[float, estimators.FittedBGNBD] = {}  # one fit per penalizer serves both choices

    def fit_bgnbd(penalizer: float) -> estimators.FittedBGNBD:
        if penalizer not in fitted_bgnbd:
            fitted_bgnbd[penalizer] = BGNBDGammaGamma(penalizer).fit(tx, v_cut)
        return fitted_bgnbd[penalizer]

    for candidate in estimators.candidates():
        try:
            fitted = (
                fit_bgnbd(candidate.penalizer) if isinstance(candidate, BGNBDGammaGamma) else candidate.fit(tx, v_cut)
            )
            pred = fitted.predict(summary, v_end - v_cut)
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            continue
        row = {
            "estimator": candidate.name,
            "spearman": metrics.spearman(pred.spend, spend),
            "top10": metrics.top_share(pred.spend, spend, 0.1),
        }
        table.append(row)
        key = (np.nan_to_num(row["spearman"], nan=-2.0), np.nan_to_num(row["top10"], nan=-1.0))
        if best is None or key > best[0]:
            best = (key, candidate)
    best_count = None
    for penalizer in estimators.COUNT_PENALIZERS:
        candidate = BGNBDGammaGamma(penalizer)
        predicted = float(fit_bgnbd(penalizer).purchases(summary, v_end - v_cut).sum())
        error = float(abs(predicted - count.sum()) / max(count.sum(), 1.0))
        table.append(
            {
                "estimator": candidate.name + " (purchases)",
                "predicted_purchases": predicted,
                "actual_purchases": float(count.sum()),
                "relative_error": error,
            }
        )
        if best_count is None or error < best_count[0]:
            best_count = (error, candidate)
    value = best[1] if best is not None else estimators.PastSpend(anchor=False)
    return Choice(value, best_count[1], v_cut, v_end, table)


@dataclass(frozen=True)
class ValueModel:
    """The chosen estimators fitted at ``cut``: purchases from the count model, spend from the value model."""

    choice: Choice
    cut: int
    value: Fitted
    count: estimators.FittedBGNBD

    name = "value model (chosen on validation)"

    def predict(self, summary: Summary, horizon: float) -> Prediction:
        spend_pred = self.value.predict(summary, horizon)
        count_pred = self.count.predict(summary, horizon)
        p_active = spend_pred.p_active if spend_pred.p_active is not None else count_pred.p_active
        return Prediction(count_pred.purchases, spend_pred.spend, p_active)


def fit(tx: Transactions, cut: int, horizon: float) -> ValueModel:
    """Choose on validation before ``cut``, then fit the chosen estimators on everything up to ``cut``."""
    choice = choose(tx, cut, horizon)
    return ValueModel(choice, cut, choice.value.fit(tx, cut), choice.count.fit(tx, cut))


@dataclass(frozen=True)
class Scores:
    """Every profiled customer's value at ``as_of`` (arrays aligned with ``customer_ids``)."""

    as_of: str
    customer_ids: np.ndarray
    horizons: tuple[float, ...]
    purchases: dict[float, np.ndarray]
    spend: dict[float, np.ndarray]
    p_active: np.ndarray  # chance of at least one purchase within the first horizon
    segment: np.ndarray
    recency_days: np.ndarray
    purchase_days: np.ndarray
    spend_to_date: np.ndarray
    not_profiled: int
    choice: Choice

    def rows(self):
        """One dict per customer (for exports and pages)."""
        for i, cid in enumerate(self.customer_ids):
            row = {
                "customer_id": str(cid),
                "segment": str(self.segment[i]),
                "p_active": float(self.p_active[i]),
                "recency_days": int(self.recency_days[i]),
                "purchase_days": int(self.purchase_days[i]),
                "spend_to_date": float(self.spend_to_date[i]),
            }
            for h in self.horizons:
                row[f"purchases_{h:g}d"] = float(self.purchases[h][i])
                row[f"spend_{h:g}d"] = float(self.spend[h][i])
            yield row


def score(tx: Transactions, settings: Settings, as_of: int | None = None) -> Scores:
    """Fit on the whole history (up to ``as_of``, default the last purchase day) and score every customer."""
    horizons = tuple(float(h) for h in settings.value.horizons)
    cut = as_of if as_of is not None else (tx.last_day if tx.last_day is not None else 0)
    summary = summarize(tx, cut)
    model = fit(tx, cut, settings.value.evaluation_days) if len(summary) else None
    purchases, spend = {}, {}
    p_active = np.zeros(len(summary))
    for i, h in enumerate(horizons):
        pred = model.predict(summary, h) if model else Prediction(np.zeros(0), np.zeros(0), np.zeros(0))
        purchases[h], spend[h] = pred.purchases, pred.spend
        if i == 0 and pred.p_active is not None:
            p_active = pred.p_active
    return Scores(
        as_of=day_date(cut).isoformat(),
        customer_ids=tx.customers[summary.index],
        horizons=horizons,
        purchases=purchases,
        spend=spend,
        p_active=p_active,
        segment=segments.assign(summary.recency, summary.n),
        recency_days=summary.recency,
        purchase_days=summary.n,
        spend_to_date=summary.spend,
        not_profiled=tx.not_profiled,
        choice=model.choice if model else None,
    )
