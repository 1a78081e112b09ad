"""Each model family's NDCG@k on a shop, by the project's evaluation protocol (one temporal split for all).

    python scripts/eval_families.py --db shop.db [--ease-lambda 100,500,2000] [--period test|validation]

Fits ALS (the shipped settings), EASE^R at each λ, RP3beta and item-kNN on the
events before the cut and scores them on the events after it, with popularity,
exactly as ``recommender evaluate`` scores ALS (:mod:`recommender.training.evaluation`).
``--period validation`` cuts the training period again (the split that
per-shop selection must use), so settings can be compared without reading the
test period. A quick check, not the selection itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender import store
from recommender.config import load_settings  # noqa: E402
from recommender.data import interactions  # noqa: E402
from recommender.models import families
from recommender.training import evaluation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--period", choices=("test", "validation"), default="test")
    parser.add_argument("--ease-lambda", default="500", help="comma-separated λ values for EASE^R")
    parser.add_argument("--neighbours", default="200", help="comma-separated K values for the item graphs")
    parser.add_argument("--families", default="als,ease,rp3beta,itemknn")
    parser.add_argument(
        "--blend",
        default="",
        help="e.g. als,ease: also score an equal-weight blend of the first fit of each named family",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings(overrides={"db": args.db})
    db = store.connect(settings.db)
    data = interactions.load(db, settings)
    base = None
    if args.period == "validation":
        outer = evaluation.temporal_split(data, settings.als, settings.evaluation)
        base = outer.train_mask
    split = evaluation.temporal_split(data, settings.als, settings.evaluation, base_mask=base)
    k = settings.evaluation.k
    rows = [("popularity", "", evaluation.evaluate_popularity(split, k).metrics["ndcg"], 0.0)]
    wanted = args.families.split(",")
    runs: list[tuple[str, str, object]] = []
    if "als" in wanted:
        runs.append(("als", "shipped defaults", settings))
    for lam in (float(v) for v in args.ease_lambda.split(",")) if "ease" in wanted else ():
        s = dataclasses.replace(settings, ease=dataclasses.replace(settings.ease, regularization=lam))
        runs.append(("ease", f"λ={lam:g}", s))
    for name in ("rp3beta", "itemknn"):
        if name not in wanted:
            continue
        for kk in (int(v) for v in args.neighbours.split(",")):
            s = dataclasses.replace(settings, itemgraph=dataclasses.replace(settings.itemgraph, neighbours=kk))
            ig = s.itemgraph
            label = f"K={kk}" + (f", α={ig.alpha:g}, β={ig.beta:g}" if name == "rp3beta" else f", shrink={ig.shrink:g}")
            runs.append((name, label, s))
    fitted: dict[str, object] = {}

    def report(name: str, label: str, model, started: float) -> None:
        ndcg = evaluation.evaluate_model(model, split, k).metrics["ndcg"]
        rows.append((name, label, ndcg, time.perf_counter() - started))
        if not args.json:
            print(f"{name:10s} {label:28s} NDCG@{k} {ndcg:.4f}  ({rows[-1][3]:.1f} s)", flush=True)

    for name, label, s in runs:
        started = time.perf_counter()
        model = families.fit(name, split.train, data.user_ids, data.item_ids, s)
        fitted.setdefault(name, model)
        report(name, label, model, started)
    if args.blend:
        from recommender.models.families.blend import Blend

        names = args.blend.split(",")
        started = time.perf_counter()
        report(
            "blend", "+".join(names) + " equal weights", Blend([fitted[n] for n in names], [1.0] * len(names)), started
        )
    if args.json:
        print(
            json.dumps(
                [{"family": n, "config": c, "ndcg": round(v, 6), "seconds": round(t, 2)} for n, c, v, t in rows],
                indent=2,
            )
        )
    else:
        print(
            f"{'popularity':10s} {'':28s} NDCG@{k} {rows[0][2]:.4f}   period={args.period}, "
            f"{len(split.users)} users, {data.shape[1]} products"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
