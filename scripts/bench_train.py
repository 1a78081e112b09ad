#!/usr/bin/env python
"""Benchmark: the whole retrain job against a bare ``implicit`` fit of the same matrix.

A seeded synthetic shop (default 1M customers, 100k products, 10M events,
taste segments and long-tail popularity) is written to a real SQLite file.
Then, each in a fresh process so that peak memory is its own:

1. ``end_to_end``: ``recommender.training.run.train(publish=True)`` with
   selection off (``--no-select``) — store → matrix → fit on the split →
   evaluate model and popularity → warm refit on all data → save → gate →
   publish;
2. ``raw_fit``: the same full confidence matrix, built outside the timer, fit
   by ``implicit.cpu.als.AlternatingLeastSquares`` with the same factors,
   regularization and iterations, BLAS at one thread;
3. ``selected`` (unless ``--no-selection``): the same job with the model
   search (``recommender train --select``), side by side. The nightly job
   without a search (the recipe of the last one refitted) is measured by
   ``scripts/bench_nightly.py``.

It prints the times, the ratio end_to_end / raw_fit (target <= 1.3), the
retrain ratio selected / end_to_end (what selection costs) and the peak
resident memory of each.

``--scaling N1,N2,...`` instead measures the selected retrain at several
shop sizes (customers = events / 10, products = events / 100, as the
default shop) and extrapolates its time to ``--interactions`` by a power law
fitted to the measurements. That figure is an extrapolation, and says so.

    python scripts/bench_train.py                       # the full 10M run
    python scripts/bench_train.py --interactions 1000000 --customers 100000 --products 20000
    python scripts/bench_train.py --scaling 100000,300000,1000000   # selection cost, extrapolated to 10M
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def make_shop(db_path: Path, customers: int, products: int, interactions: int, seed: int) -> None:
    from recommender import store

    rng = np.random.default_rng(seed)
    db = store.connect(db_path, create=True)
    db.execute("PRAGMA cache_size = -4000000")  # 4 GB page cache: index inserts stay in memory
    cust_ids = [f"c{i:07d}" for i in range(customers)]
    prod_ids = [f"p{i:06d}" for i in range(products)]
    segments = 50
    store.upsert_customers(db, ((c, None, None, None, None, "UTC", "2025-01-01T00:00:00Z") for c in cust_ids))
    categories = rng.integers(0, segments, size=products)
    store.upsert_products(db, ((p, p, f"cat{categories[j]}", 1.0, None, 0, None) for j, p in enumerate(prod_ids)))
    store.set_consents(db, [(c, "personalization", True, "2025-01-01T00:00:00Z", "bench") for c in cust_ids])
    # Heavy-tailed activity, segment-focused taste, Zipf popularity inside a segment.
    activity = rng.pareto(1.5, size=customers) + 1.0
    activity /= activity.sum()
    users = rng.choice(customers, size=interactions, p=activity).astype(np.int64)
    user_segment = rng.integers(0, segments, size=customers)
    by_segment = [np.flatnonzero(categories == s) for s in range(segments)]
    in_segment = rng.random(interactions) < 0.8
    items = rng.zipf(1.3, size=interactions) % products
    for s in range(segments):
        members = by_segment[s]
        pick = in_segment & (user_segment[users] == s)
        ranks = (rng.zipf(1.2, size=int(pick.sum())) - 1) % len(members)
        items[pick] = members[ranks]
    types = rng.choice(np.array(["view", "add_to_cart", "purchase"]), size=interactions, p=[0.7, 0.2, 0.1])
    times = 1_735_689_600 + rng.integers(0, 365 * 86400, size=interactions)
    # Insert in natural-key order so the unique index grows at its end.
    order = np.lexsort((times, items, users))
    users, items, types, times = users[order], items[order], types[order], times[order]
    batch = 1_000_000
    for start in range(0, interactions, batch):
        stop = min(start + batch, interactions)
        store.upsert_interactions(
            db,
            (
                (cust_ids[u], prod_ids[i], str(t), 1.0, int(ts))
                for u, i, t, ts in zip(users[start:stop], items[start:stop], types[start:stop], times[start:stop])
            ),
        )
        print(f"  wrote {stop:,} events", file=sys.stderr, flush=True)
    db.conn.close()


def run_child(kind: str, db_path: Path, model_dir: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--db", str(db_path), "--model-dir", str(model_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(kind: str, db_path: Path, model_dir: Path) -> None:
    from threadpoolctl import threadpool_limits

    from recommender import store
    from recommender.config import load_settings
    from recommender.data import interactions
    from recommender.training import run as training

    settings = load_settings(environ={}, overrides={"db": db_path, "model_dir": model_dir})
    settings.selection.enabled = kind == "selected"
    db = store.connect(db_path, create=True)
    result: dict = {}
    if kind in ("end_to_end", "selected"):
        started = time.perf_counter()
        # "selected" searches every time (--select): the shop's database keeps the last search between runs.
        trained = training.train(db, settings, publish=True, force=True, select=True if kind == "selected" else None)
        result = {
            "seconds": time.perf_counter() - started,
            "stages": trained.seconds,
            "ndcg": trained.metrics["model"]["ndcg"],
            "popularity_ndcg": trained.metrics["popularity"]["ndcg"],
        }
        sel = trained.metrics.get("selection")
        if sel:
            result.update(
                chosen=sel["chosen"]["label"],
                candidates=len(sel["candidates"]),
                stopped_early=sel["stopped_early"],
                skipped=sel["skipped"],
            )
    else:
        from implicit.cpu.als import AlternatingLeastSquares

        data = interactions.load(db, settings)
        matrix = data.matrix(settings.als)
        als = settings.als
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=als.factors,
                regularization=als.regularization,
                alpha=1.0,
                iterations=als.iterations,
                random_state=als.random_state,
                calculate_training_loss=False,
            )
            started = time.perf_counter()
            model.fit(matrix, show_progress=False)
            result = {"seconds": time.perf_counter() - started, "nnz": int(matrix.nnz), "shape": list(matrix.shape)}
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


def peak_rss_mib() -> float:
    """This process's peak resident memory.

    ``VmHWM`` where Linux has it: ``ru_maxrss`` survives exec, so a child of a
    parent that just generated the shop would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/recommender-bench-train"))
    parser.add_argument("--no-selection", action="store_true", help="Skip the run with selection on.")
    parser.add_argument(
        "--scaling",
        default=None,
        metavar="N1,N2,...",
        help="Measure the selected retrain at these event counts and extrapolate to --interactions.",
    )
    parser.add_argument("--child", choices=["end_to_end", "raw_fit", "selected"], help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.db, args.model_dir)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.scaling:
        scaling(args)
        return
    db_path = shop(args.workdir, args.customers, args.products, args.interactions, args.seed)
    e2e = run_child("end_to_end", db_path, args.workdir / "models")
    raw = run_child("raw_fit", db_path, args.workdir / "models")
    print(
        f"shop: {args.customers:,} customers x {args.products:,} products, {args.interactions:,} events "
        f"({raw['nnz']:,} pairs), cores: {os.cpu_count()}"
    )
    print(f"{'':12}{'seconds':>10}{'peak RSS MiB':>14}")
    print(f"{'end_to_end':12}{e2e['seconds']:>10.1f}{e2e['peak_rss_mib']:>14.0f}   stages {e2e['stages']}")
    print(f"{'raw_fit':12}{raw['seconds']:>10.1f}{raw['peak_rss_mib']:>14.0f}")
    print(
        f"ratio end_to_end / raw_fit = {e2e['seconds'] / raw['seconds']:.2f} (target <= 1.3); "
        f"NDCG@10 model {e2e['ndcg']:.4f} vs popularity {e2e['popularity_ndcg']:.4f}"
    )
    if not args.no_selection:
        sel = run_child("selected", db_path, args.workdir / "models")
        print(f"{'selected':12}{sel['seconds']:>10.1f}{sel['peak_rss_mib']:>14.0f}   stages {sel['stages']}")
        print(
            f"retrain ratio selection on / off = {sel['seconds'] / e2e['seconds']:.2f}; chose {sel['chosen']} "
            f"({sel['candidates']} candidates{', stopped at selection.max_seconds' if sel['stopped_early'] else ''}"
            f"; skipped {sel['skipped'] or 'none'}); NDCG@10 {sel['ndcg']:.4f} vs {e2e['ndcg']:.4f} without"
        )


def shop(workdir: Path, customers: int, products: int, interactions: int, seed: int) -> Path:
    """The seeded shop's database, generated once and reused."""
    tag = f"{customers}-{products}-{interactions}-{seed}"
    db_path = workdir / f"shop-{tag}.db"
    if not db_path.exists():
        print(f"generating {tag} (once; reused by later runs)", file=sys.stderr)
        started = time.perf_counter()
        make_shop(db_path.with_suffix(".partial"), customers, products, interactions, seed)
        os.replace(db_path.with_suffix(".partial"), db_path)
        print(f"  generated in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return db_path


def scaling(args: argparse.Namespace) -> None:
    """Selected and plain retrain at several sizes, side by side; power-law extrapolation to --interactions."""
    sizes = [int(float(n)) for n in args.scaling.split(",") if n.strip()]
    rows = []
    print(f"{'events':>12}{'plain s':>10}{'selected s':>12}{'ratio':>8}  chosen")
    for n in sizes:
        db_path = shop(args.workdir, max(n // 10, 10), max(n // 100, 10), n, args.seed)
        plain = run_child("end_to_end", db_path, args.workdir / f"models-{n}")
        sel = run_child("selected", db_path, args.workdir / f"models-{n}")
        rows.append((n, plain["seconds"], sel["seconds"]))
        print(
            f"{n:>12,}{plain['seconds']:>10.1f}{sel['seconds']:>12.1f}{sel['seconds'] / plain['seconds']:>8.2f}  "
            f"{sel['chosen']} ({sel['candidates']} candidates, skipped {sel['skipped'] or 'none'})",
            flush=True,
        )
    if len(rows) >= 2:
        x = np.log([r[0] for r in rows])
        for name, col in (("plain", 1), ("selected", 2)):
            slope, icept = np.polyfit(x, np.log([r[col] for r in rows]), 1)
            at = float(np.exp(icept + slope * np.log(args.interactions)))
            print(
                f"EXTRAPOLATION (not measured): {name} retrain at {args.interactions:,} events ~ {at:,.0f} s "
                f"(time ~ events^{slope:.2f} fitted on {len(rows)} sizes)"
            )


if __name__ == "__main__":
    main()
