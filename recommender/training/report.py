"""A small evaluation report a person can read at a glance: does the model earn its keep?"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from recommender.training.evaluation import METRICS


def _when(seconds: int | float | None) -> str:
    """A cut time as a reader writes it (``2011-11-01 14:24 UTC``), never as Unix seconds."""
    if seconds is None:
        return "the temporal cut"
    moment = dt.datetime.fromtimestamp(float(seconds), tz=dt.UTC)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def write(directory: str | Path, payload: dict[str, Any], curves: dict[str, dict[str, list[float]]]) -> Path:
    """Write ``metrics.json``, ``metrics_at_k.png`` and ``report.md``; returns the Markdown path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metrics.json").write_text(json.dumps({**payload, "curves": curves}, indent=2, sort_keys=True))

    shown = ("precision", "recall", "ndcg")
    fig, axes = plt.subplots(1, len(shown), figsize=(12, 3.6), constrained_layout=True)
    for ax, metric in zip(axes, shown):
        for name, style in (("model", "-o"), ("popularity", "--s")):
            values = curves.get(name, {}).get(metric, [])
            ax.plot(range(1, len(values) + 1), values, style, markersize=3, label=name)
        ax.set_title(f"{metric} at k")
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"model vs popularity on the temporal split ({payload['users']:,} customers)")
    fig.savefig(directory / "metrics_at_k.png", dpi=110)
    plt.close(fig)

    k = payload["k"]
    lift = payload["model"]["ndcg"] / payload["popularity"]["ndcg"] if payload["popularity"]["ndcg"] else float("inf")
    rows = "\n".join(
        f"| {name} | " + " | ".join(f"{payload[name][m]:.4f}" for m in (*METRICS, "coverage")) + " |"
        for name in ("model", "popularity")
    )
    als = payload["params"]["als"]
    text = f"""# Evaluation report

Global temporal split at {_when(payload.get("cut_time"))}; {payload["users"]:,} test customers
(of {payload.get("eligible_users", payload["users"]):,} with history before the cut and new items after it).
Already-seen items are filtered; relevant items are products first touched after the cut.

| @{k} | precision | recall | ndcg | map | coverage |
|---|---|---|---|---|---|
{rows}

NDCG@{k} of the model is **{lift:.2f}×** the popularity baseline's.

![metrics at k](metrics_at_k.png)

Family `{payload["params"].get("family", "als")}`, engine `{payload["params"]["engine"]}`; ALS factors {als["factors"]}, regularization {als["regularization"]},
alpha {als["alpha"]}, iterations {als["iterations"]}, log scaling {als["log_scaling"]},
half-life {als["half_life_days"]} days; event weights {payload["params"]["event_weights"]}.
"""
    sel = payload.get("selection")
    if sel:
        fam_rows = "\n".join(
            f"| {name}{' (chosen)' if e.get('chosen') else ''} | {e['label']} | {e['validation_ndcg']:.4f} | "
            + (f"{e['test_ndcg']:.4f}" if e.get("test_ndcg") is not None else "n/a")
            + " |"
            for name, e in sel["families"].items()
        )
        text += f"""
## How the model was chosen

Best of each family on a validation split cut from the training period only (validation cut
{_when(sel["validation"]["cut_time"])}, {sel["validation"]["users"]:,} customers); the choice reads validation
numbers only. Test NDCG@{k} of the families not chosen is reported here and never used to choose.

| family | best settings on validation | validation NDCG@{k} | test NDCG@{k} |
|---|---|---|---|
{fam_rows}
| popularity | | {sel["validation"]["popularity_ndcg"]:.4f} | {sel.get("test", {}).get("popularity_ndcg", float("nan")):.4f} |

Chosen: `{sel["chosen"]["label"]}`; {len(sel["candidates"])} candidates in {sel["seconds"]:.1f} s.
"""
    path = directory / "report.md"
    path.write_text(text)
    return path
