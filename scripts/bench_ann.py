#!/usr/bin/env python
"""Benchmark: at what catalogue size the ANN index pays, on Online Retail's factor norms.

For each ``--sizes`` entry, in one process with BLAS and faiss on one thread
(as a server worker runs): the item factors of the model the real retrain job
fits on Online Retail, scaled up to that many products by sampling them with
noise (as ``bench_serve.py --norms retail``); the ANN index built by the
publish-time code (:meth:`recommender.models.factor.FactorModel.attach_ann`, probes
calibrated to ``ann.target_recall``); then, for the other half's factor
vectors, side by side:

- ``exact``: :meth:`FactorModel.recommend` with ANN off (the norm-bounded scan
  of :mod:`recommender.models.topk`), with the share of the catalogue it scored;
- ``ann``: the same call with the index on (propose, re-check, re-score);
- ``full``: ``item_factors @ u`` + top-10 in numpy, every product scored.

Prints ms per top-10 (median, p99), recall@10 of ``ann`` against ``exact`` and
the index's build seconds and size. ``--noise`` is the relative noise of the
copies.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serve import ROOT, retail_model, scale_up  # noqa: E402


def timed(fn, queries: np.ndarray) -> tuple[np.ndarray, list]:
    out, lat = [], np.zeros(len(queries))
    for n, q in enumerate(queries):
        t0 = time.perf_counter()
        out.append(fn(q))
        lat[n] = time.perf_counter() - t0
    return lat * 1000, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000,300000,1000000")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--noise", type=float, default=0.25)
    parser.add_argument(
        "--base",
        type=Path,
        default=None,
        help="where the Online Retail model is cached [default: bench_serve.py --norms retail's]",
    )
    parser.add_argument(
        "--retail-csv",
        type=Path,
        default=ROOT.parent / "shared" / "datasets" / "online-retail" / "online_retail.csv.gz",
    )
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    from recommender.config import AnnSettings
    from recommender.models.factor import FactorModel

    threadpool_limits(1)
    base = args.base or Path(f"/tmp/recommender-bench-serve-retail-retail-{args.factors}")
    real = retail_model(base, args.factors, args.retail_csv)
    y = np.asarray(real.item_factors, dtype=np.float32)
    users = np.asarray(real.user_factors, dtype=np.float32)
    users = users[np.any(users != 0, axis=1)]
    rng = np.random.default_rng(0)
    picked = rng.permutation(len(users))
    queries = users[picked[: min(args.queries, len(users) // 2)]]
    calibration = users[picked[len(users) // 2 :]]  # the index is tuned on other customers than it is timed on
    print(
        f"Online Retail model: {len(y):,} products x {y.shape[1]}; {len(queries)} real customers as queries; "
        f"noise {args.noise}"
    )
    print(
        f"{'products':>10}{'exact p50':>11}{'p99':>8}{'scanned':>9}{'ann p50':>9}{'p99':>8}{'full p50':>10}"
        f"{'recall@10':>11}{'probes':>8}{'lists':>7}{'build s':>9}{'index MB':>10}"
    )
    for size in [int(s) for s in args.sizes.split(",")]:
        items, _ = scale_up(y, size, args.noise, np.random.default_rng(size))
        model = FactorModel(
            calibration,
            items,
            [f"u{i}" for i in range(len(calibration))],
            [f"p{i}" for i in range(size)],
            real.regularization,
        )
        t0 = time.perf_counter()
        model.attach_ann(AnnSettings(min_products=0), log=lambda _: None)
        build = time.perf_counter() - t0
        model.warm_up()
        model.norm_index  # noqa: B018 (built before timing)
        model.ann_enabled = False
        scanned = []

        def exact(q):
            found = model.recommend(q, 10)[0]
            scanned.append(model.norm_index.scanned / size)
            return found

        def full(q):
            s = items @ q
            top = np.argpartition(-s, 10)[:10]
            return top[np.argsort(-s[top])]

        exact_lat, exact_ids = timed(exact, queries)
        model.ann_enabled = True
        ann_lat, ann_ids = timed(lambda q: model.recommend(q, 10)[0], queries)
        full_lat, _ = timed(full, queries)
        recall = np.mean([len(set(a.tolist()) & set(e.tolist())) / 10 for a, e in zip(ann_ids, exact_ids)])
        p = model.ann_params
        print(
            f"{size:>10,}{np.median(exact_lat):>11.2f}{np.percentile(exact_lat, 99):>8.2f}"
            f"{np.median(scanned):>9.1%}{np.median(ann_lat):>9.2f}{np.percentile(ann_lat, 99):>8.2f}"
            f"{np.median(full_lat):>10.2f}{recall:>11.3f}{p['probes']:>8}{p['lists']:>7}{build:>9.1f}"
            f"{model.ann_data.nbytes / 1e6:>10.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
