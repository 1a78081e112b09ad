"""The evaluation protocol of customer value: calibration and holdout split by time, anchors side by side.

The customers are those with a purchase on or before the cut (the calibration
period); the holdout is ``(cut, end]``. Every estimator (the chosen value model, the
anchors and every candidate) is fitted on the calibration period only, and the
value model's choice is made on a validation period cut from the calibration
period (:func:`recommender.value.model.choose`), so nothing reads the holdout but
the scoring below. Per estimator:

- ``top10``, ``top20``: holdout spend captured by the customers it ranks in its
  top 10 % and 20 % (ranked by expected spend); ``top10_ci95``: bootstrap interval;
- ``spearman``: rank correlation of expected spend with holdout spend;
- ``auc``: of "buys again in the holdout", by the estimator's chance of buying
  (its expected spend when it has none);
- ``predicted_purchases`` / ``predicted_spend``: totals against the actual ones;
- ``deciles``: calibration by decile of expected spend (mean predicted vs actual).

``criteria`` says whether the value model captures at least the best anchor's top
10 % share (a tie inside its 95 % interval counts), beats every anchor on
Spearman, and beats BG/NBD on the absolute error of total repeat purchases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from recommender.config import Settings
from recommender.errors import ValidationError
from recommender.value import estimators, metrics, model
from recommender.value.features import future_spend, summarize
from recommender.value.transactions import Transactions, day_date, day_number


def holdout_period(
    tx: Transactions, settings: Settings, cut: str | None = None, horizon: float | None = None
) -> tuple[int, int]:
    """``(cut, end)`` day numbers of the holdout ``(cut, end]``.

    With ``cut``: to ``cut + horizon``, or to the last purchase day without a horizon.
    Without: the last ``horizon`` days (default ``value.evaluation_days``, at most a
    third of the history).
    """
    if tx.last_day is None:
        raise ValidationError("no purchases of profiled customers to evaluate")
    first, last = tx.first_day, tx.last_day
    if cut is not None:
        try:
            c = day_number(cut)
        except ValueError:
            raise ValidationError(f"--cut {cut!r} is not a date (YYYY-MM-DD)") from None
        end = c + int(horizon) if horizon else last
    else:
        length = int(horizon) if horizon else int(min(settings.value.evaluation_days, (last - first) // 3))
        c, end = last - length, last
    if horizon is not None and horizon <= 0:
        raise ValidationError("--horizon must be a positive number of days")
    if not first < c < end:
        raise ValidationError(
            f"the cut {day_date(c)} must fall after the first purchase ({day_date(first)}) "
            f"and before the holdout's end ({day_date(end)})"
        )
    return c, end


def _row(
    name: str, kind: str, pred: estimators.Prediction, spend: np.ndarray, count: np.ndarray, settings: Settings
) -> dict[str, Any]:
    buys = count > 0
    active = pred.p_active if pred.p_active is not None else pred.spend
    return {
        "estimator": name,
        "kind": kind,
        "top10": metrics.top_share(pred.spend, spend, 0.1),
        "top10_ci95": list(
            metrics.bootstrap_top_share(pred.spend, spend, 0.1, settings.value.bootstrap, settings.value.seed)
        ),
        "top20": metrics.top_share(pred.spend, spend, 0.2),
        "spearman": metrics.spearman(pred.spend, spend),
        "auc": metrics.auc(active, buys),
        "predicted_purchases": float(np.sum(pred.purchases)),
        "predicted_spend": float(np.sum(pred.spend)),
        "deciles": metrics.deciles(pred.spend, spend),
    }


def evaluate(
    tx: Transactions, settings: Settings, cut: str | None = None, horizon: float | None = None
) -> dict[str, Any]:
    """The whole protocol on one shop; a JSON-ready payload (see the module's docstring)."""
    c, end = holdout_period(tx, settings, cut, horizon)
    summary = summarize(tx, c)
    count, spend = future_spend(tx, summary, end)
    length = end - c
    chosen = model.fit(tx, c, length)
    rows = [_row(chosen.name, "value model", chosen.predict(summary, length), spend, count, settings)]
    seen = set()
    for kind, group in (("anchor", estimators.anchors()), ("candidate", estimators.candidates())):
        for estimator in group:
            if estimator.name in seen:
                continue
            seen.add(estimator.name)
            pred = estimator.fit(tx, c).predict(summary, length)
            rows.append(_row(estimator.name, kind, pred, spend, count, settings))
    actual = {
        "customers": len(summary),
        "buyers": int((count > 0).sum()),
        "purchases": float(count.sum()),
        "spend": float(spend.sum()),
    }
    return _finite(
        {
            "cut": day_date(c).isoformat(),
            "end": day_date(end).isoformat(),
            "horizon_days": length,
            "history_start": day_date(tx.first_day).isoformat(),
            "purpose": tx.purpose,
            "not_profiled": int(tx.not_profiled),
            "actual": actual,
            "chosen": chosen.choice.payload(),
            "estimators": rows,
            "criteria": criteria(rows, actual),
        }
    )


def _finite(value: Any) -> Any:
    """NaN (a metric without data, e.g. AUC when nobody bought again) as None, so the payload is valid JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    return value


def criteria(rows: list[dict[str, Any]], actual: dict[str, Any]) -> dict[str, Any]:
    """The three tests of the value model against the anchors (see the module's docstring)."""
    mine = rows[0]
    anchors = [r for r in rows if r["kind"] == "anchor"]
    best = max(anchors, key=lambda r: np.nan_to_num(r["top10"], nan=-1.0))
    lo, hi = (np.nan if v is None else v for v in mine["top10_ci95"])
    bg = next(r for r in anchors if r["estimator"].startswith("BG/NBD"))
    truth = actual["purchases"]
    mine_error = (mine["predicted_purchases"] - truth) / truth if truth else float("nan")
    bg_error = (bg["predicted_purchases"] - truth) / truth if truth else float("nan")
    best_spearman = max(anchors, key=lambda r: np.nan_to_num(r["spearman"], nan=-2.0))
    return {
        "top10_at_least_best_anchor": bool(mine["top10"] >= best["top10"] or lo <= best["top10"] <= hi),
        "best_anchor_top10": {"estimator": best["estimator"], "top10": best["top10"]},
        "spearman_beats_every_anchor": bool(all(mine["spearman"] > r["spearman"] for r in anchors)),
        "best_anchor_spearman": {"estimator": best_spearman["estimator"], "spearman": best_spearman["spearman"]},
        "purchases_error_beats_bgnbd": bool(abs(mine_error) < abs(bg_error)),
        "purchases_relative_error": {"value model": mine_error, bg["estimator"]: bg_error},
    }


def _fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def table(payload: dict[str, Any]) -> str:
    """The side-by-side table, for a terminal (and the report)."""
    a = payload["actual"]
    lines = [
        f"calibration {payload['history_start']} .. {payload['cut']}, holdout to {payload['end']} "
        f"({payload['horizon_days']} days); {a['customers']:,} customers, {a['buyers']:,} bought again; "
        f"actual {a['purchases']:,.0f} repeat purchases, spend {a['spend']:,.2f}; "
        f"{payload['not_profiled']:,} not profiled (no {payload['purpose']} consent)",
        f"chosen on validation ({payload['chosen']['validation']['cut']} .. "
        f"{payload['chosen']['validation']['end']}): {payload['chosen']['value_estimator']}; "
        f"purchases: {payload['chosen']['count_estimator']}",
        f"{'estimator':<46} {'kind':<11} {'top10':>6} {'95% CI':>13} {'top20':>6} {'spear.':>6} {'AUC':>6} "
        f"{'purchases':>10} {'spend':>13}",
    ]
    for r in payload["estimators"]:
        lo, hi = r["top10_ci95"]
        lines.append(
            f"{r['estimator']:<46} {r['kind']:<11} {_fmt(r['top10']):>6} "
            f"{_fmt(lo) + '-' + _fmt(hi):>13} {_fmt(r['top20']):>6} {_fmt(r['spearman']):>6} "
            f"{_fmt(r['auc']):>6} {r['predicted_purchases']:>10,.0f} {r['predicted_spend']:>13,.0f}"
        )
    c = payload["criteria"]
    lines.append(
        f"top 10 % at least the best anchor's ({c['best_anchor_top10']['estimator']}, "
        f"{_fmt(c['best_anchor_top10']['top10'])}): {'yes' if c['top10_at_least_best_anchor'] else 'no'}; "
        f"Spearman above every anchor (best {_fmt(c['best_anchor_spearman']['spearman'])}): "
        f"{'yes' if c['spearman_beats_every_anchor'] else 'no'}; "
        "repeat purchases closer than BG/NBD ("
        + ", ".join(
            f"{k} {100 * v:+.1f} %" if v is not None and v == v else f"{k} –"
            for k, v in c["purchases_relative_error"].items()
        )
        + f"): {'yes' if c['purchases_error_beats_bgnbd'] else 'no'}"
    )
    return "\n".join(lines)


def write_report(directory: str | Path, payload: dict[str, Any]) -> Path:
    """``value.json``, ``deciles.png`` (calibration by decile) and ``report.md``; returns the Markdown path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "value.json").write_text(json.dumps(payload, indent=2, sort_keys=True))
    shown = [r for r in payload["estimators"] if r["kind"] in ("value model", "anchor")]
    fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
    actual = [d["actual"] for d in shown[0]["deciles"]]
    ax.bar([d["decile"] for d in shown[0]["deciles"]], actual, color="#ccd", label="actual (value model's deciles)")
    for r in shown:
        ax.plot(
            [d["decile"] for d in r["deciles"]],
            [d["predicted"] for d in r["deciles"]],
            "-o",
            markersize=3,
            label=f"predicted: {r['estimator']}",
        )
    ax.set_xlabel("decile of expected spend (1 = highest)")
    ax.set_ylabel("holdout spend per customer")
    ax.set_yscale("symlog")
    ax.legend(fontsize=7)
    fig.savefig(directory / "deciles.png", dpi=110)
    plt.close(fig)
    deciles = "\n".join(
        f"| {d['decile']} | {d['customers']} | {d['predicted']:.2f} | {d['actual']:.2f} |" for d in shown[0]["deciles"]
    )
    text = (
        "# Customer value: evaluation\n\n```\n" + table(payload) + "\n```\n\n"
        "## Calibration by decile (value model)\n\n| decile | customers | predicted spend | actual spend |\n"
        "|---|---|---|---|\n" + deciles + "\n\n![calibration by decile](deciles.png)\n"
    )
    path = directory / "report.md"
    path.write_text(text)
    return path
