"""The nightly refit: score every profiled customer and replace the stored scores at once.

:func:`refresh` reads the consent-filtered purchase days (:func:`.transactions.load`),
chooses and fits the value model as of the last purchase day (:func:`.model.score`),
and replaces the ``customer_values`` table in one transaction
(:func:`recommender.store.replace_customer_values`): a reader sees the old scores or
the new ones, never a mix. A row is written only for a customer who still grants
``value.purpose`` when the transaction commits, so a withdrawal or an erasure that
lands while the model is fitted is not undone. The refresh also keeps aggregates
(customers, revenue and expected spend per segment, the distribution of expected
spend) in its ``value_runs`` row, and the month's aggregate snapshot
(``value_snapshots``) that "movement since last month" compares with. No customer
id is in either.

The nightly job calls it from :func:`recommender.training.maintenance.run`, whatever
the release gate decided; ``recommender value`` runs it by hand.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import numpy as np
import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.value import model, segments, transactions

# Upper edges of the expected-spend distribution's bins: 1, 2.5, 5 x powers of ten, up to the largest value.
_STEPS = (1.0, 2.5, 5.0)


def display_horizon(settings: Settings) -> float:
    """The horizon pages and sentences speak of: 180 days (six months) when configured, else the middle one."""
    horizons = sorted(float(h) for h in settings.value.horizons)
    return 180.0 if 180.0 in horizons else horizons[len(horizons) // 2]


def bin_edges(largest: float) -> list[float]:
    """``[0, 10, 25, 50, 100, ...]``: edges at 1 / 2.5 / 5 x 10^k from 10 until one passes ``largest``."""
    edges, k = [0.0], 1
    while True:
        for step in _STEPS:
            edge = step * 10**k
            if edge >= 10:
                edges.append(edge)
                if edge > largest:
                    return edges
        k += 1


def distribution(values: np.ndarray) -> list[dict[str, float]]:
    """Customers per bin of expected spend: ``[{low, high, customers}]`` (the last bin's ``high`` is inclusive)."""
    values = np.asarray(values, float)
    if len(values) == 0:
        return []
    edges = bin_edges(float(values.max()))
    counts, _ = np.histogram(values, bins=edges)
    return [{"low": edges[i], "high": edges[i + 1], "customers": int(c)} for i, c in enumerate(counts)]


def aggregates(scores: model.Scores, horizon: float) -> dict[str, Any]:
    """What pages and reports need about the whole shop: totals, per segment, the distribution; no ids."""
    n = len(scores.customer_ids)
    spend = np.asarray(scores.spend.get(horizon, np.zeros(n)), float)
    purchases = np.asarray(scores.purchases.get(horizon, np.zeros(n)), float)
    revenue = np.asarray(scores.spend_to_date, float)
    seg = np.asarray(scores.segment, dtype=object)
    rows = []
    for name in segments.SEGMENTS:
        mask = seg == name
        k = int(mask.sum())
        rows.append(
            {
                "segment": name,
                "customers": k,
                "revenue": float(revenue[mask].sum()),
                "expected_spend": float(spend[mask].sum()),
                "p_active": float(np.asarray(scores.p_active)[mask].mean()) if k else None,
            }
        )
    return {
        "as_of": scores.as_of,
        "horizon": horizon,
        "profiled": n,
        "not_profiled": int(scores.not_profiled),
        "revenue": float(revenue.sum()),
        "expected_spend": float(spend.sum()),
        "expected_purchases": float(purchases.sum()),
        "segments": rows,
        "distribution": distribution(spend),
    }


def snapshot_of(summary: dict[str, Any]) -> dict[str, Any]:
    """The month's snapshot: customers and revenue share per segment (aggregates only)."""
    revenue = summary["revenue"] or 0.0
    return {
        "profiled": summary["profiled"],
        "not_profiled": summary["not_profiled"],
        "segments": {
            r["segment"]: {"customers": r["customers"], "revenue_share": r["revenue"] / revenue if revenue else 0.0}
            for r in summary["segments"]
        },
    }


def _json_template(horizons: tuple[float, ...]) -> str:
    # '{"90":%s,"180":%s}' - written by hand: a million json.dumps calls cost seconds
    return "{" + ",".join(f'"{h:g}":%s' for h in horizons) + "}"


def _number(v: float) -> str:
    return repr(round(float(v), 4))


def estimator_name(choice: model.Choice | None) -> str:
    if choice is None:
        return "none (no profiled customer with a purchase)"
    return f"{choice.value.name}; purchases: {choice.count.name}"


def refresh(db: sqlite_utils.Database, settings: Settings, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Recompute every profiled customer's value and replace the stored scores atomically; returns a summary.

    ``now`` (UTC, default the clock) dates the run and picks the month of its snapshot.
    """
    started = time.perf_counter()
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    tx = transactions.load(db, settings)
    loaded = time.perf_counter()
    scores = model.score(tx, settings)
    scored = time.perf_counter()
    horizon = display_horizon(settings)
    summary = aggregates(scores, horizon)
    template = _json_template(scores.horizons)
    p_active = np.clip(np.nan_to_num(np.asarray(scores.p_active, float)), 0.0, 1.0)
    purchases = [np.nan_to_num(np.asarray(scores.purchases[h], float)) for h in scores.horizons]
    spend = [np.nan_to_num(np.asarray(scores.spend[h], float)) for h in scores.horizons]

    def rows():
        for i, cid in enumerate(scores.customer_ids):
            yield (
                str(cid),
                str(scores.segment[i]),
                float(p_active[i]),
                template % tuple(_number(p[i]) for p in purchases),
                template % tuple(_number(s[i]) for s in spend),
                int(scores.recency_days[i]),
                int(scores.purchase_days[i]),
                float(scores.spend_to_date[i]),
            )

    run = {
        "computed_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "as_of": scores.as_of if len(scores.customer_ids) else None,
        "purpose": settings.value.purpose,
        "estimator": estimator_name(scores.choice),
        "horizons": [float(h) for h in scores.horizons],
        "summary": summary,
        "seconds": round(scored - started, 3),
    }
    written = store.replace_customer_values(db, run, rows(), now.strftime("%Y-%m"), snapshot_of(summary))
    done = time.perf_counter()
    return {
        "run_id": written["run_id"],
        "computed_at": run["computed_at"],
        "as_of": run["as_of"],
        "purpose": run["purpose"],
        "estimator": run["estimator"],
        "stored": written["stored"],
        "left_out_since_read": written["offered"] - written["stored"],
        "not_profiled": summary["not_profiled"],
        "horizon": horizon,
        "summary": summary,
        "seconds": {
            "read": round(loaded - started, 3),
            "fit_and_score": round(scored - loaded, 3),
            "write": round(done - scored, 3),
            "total": round(done - started, 3),
        },
    }
