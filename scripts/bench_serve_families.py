#!/usr/bin/env python
"""Benchmark: the real API under gunicorn serving each item family, against bare Flask and the bare scoring.

The harness is :mod:`bench_serve`'s (same synthetic shop generator, servers,
load generator, API key and median-of-interleaved-rounds summary); only the
model behind ``CURRENT`` changes, at the largest catalogue each family accepts:

* ``ease``: ``--ease-products`` products (default ``ease.max_items``, 20,000).
  Fitting the dense closed form at that size takes minutes of both cores, and
  serving cost does not depend on the values of ``B``, so the benchmark stores
  a seeded random dense ``B`` over all products (same shapes, same dtype, same
  code path) instead of fitting it;
* ``itemgraph``: ``--products`` products (default 100,000), RP3beta fitted by
  the real code on the shop's events (``--neighbours``, default 200);
* ``als`` (only when asked for): the same shop's ALS model, measured the same
  way, to compare families within one run.

For each family, in one run: ``ours`` (``GET /v1/customers/<id>/recommendations?n=10``
with a read key, decision log on), ``bare`` (a fixed ten-item list from Flask
under the same gunicorn settings) and ``raw`` (the family's own scoring and
top-10 for the customer's training history, in one single-threaded process per
core, all at once: ``model.fold_in`` + ``model.recommend``, no HTTP, database
or filters), and ``floor`` (:func:`bench_serve.floor_app`: the same contract written
as directly as Python allows, around the same scoring). Prints each,
``ours / (bare + raw)`` (target <= 1.25), ``floor / (bare + raw)`` (what any
server of this contract reaches here) and ``ours / floor`` (what our code adds).

    python scripts/bench_serve_families.py [--family ease,itemgraph,als] [--rounds 3] [--requests 2000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_serve  # noqa: E402  (the harness: servers, load, keys, summaries)


def shop(workdir: Path, products: int, customers: int, events: int) -> Path:
    """bench_serve's synthetic shop (its ALS model trained and published by the real job), reused if present."""
    return bench_serve.make_shop(workdir, products, customers, events, factors=16, seed=0)


def publish(workdir: Path, family: str, neighbours: int) -> str:
    """Put a model of ``family`` behind CURRENT for the shop in ``workdir``; returns a description."""
    from recommender import store
    from recommender.config import load_settings
    from recommender.data import interactions, signals
    from recommender.models import families, registry
    from recommender.models.families.ease import EASE

    settings = load_settings(environ={}, overrides={"db": workdir / "shop.db", "model_dir": workdir / "models"})
    db = store.connect(settings.db)
    reg = registry.Registry(settings.model_dir)

    def newest(of: str) -> str | None:
        found = [v for v in reg.versions() if reg.manifest(v).get("family", "factors") == of]
        return found[-1] if found else None

    if family == "als":  # the shop's own ALS model (make_shop trained it), for comparison in the same run
        reg.set_current(newest("factors"))
        db.conn.close()
        return f"als: {data_items(reg):,} products, 16 factors, trained by the retrain job"
    if newest(family):
        reg.set_current(newest(family))
        db.conn.close()
        return f"{family}: {data_items(reg):,} products (reused {newest(family)})"
    data = interactions.load(db, settings)
    started = time.perf_counter()
    if family == "ease":
        m = data.shape[1]
        rng = np.random.default_rng(0)
        weights = np.empty((m, m), dtype=np.float32)
        for start in range(0, m, 2048):  # seeded, block by block: no float64 m x m temporary
            weights[start : start + 2048] = rng.standard_normal((min(2048, m - start), m), dtype=np.float32) * 0.01
        np.fill_diagonal(weights, 0.0)
        model = EASE(weights, np.arange(m), data.user_ids, data.item_ids, 500.0)
        how = f"ease: random dense B {m:,} x {m:,} float32 ({weights.nbytes / 2**30:.2f} GiB), not fitted"
    else:
        settings.itemgraph.neighbours = neighbours
        model = families.fit("rp3beta", data.matrix(settings.als), data.user_ids, data.item_ids, settings)
        how = (
            f"itemgraph rp3beta: {data.shape[1]:,} products, K={neighbours}, {len(model.data):,} edges, "
            f"fitted in {time.perf_counter() - started:.1f} s"
        )
    model.signals = signals.compute(data, settings.purchase_events)
    version = registry.new_version()
    model.manifest.update(
        version=version,
        created_at=store.utcnow(),
        engine="numpy",
        data={"reference_time": int(data.reference_time), "privacy_epoch": int(data.epoch)},
    )
    path = reg.save(model, version)
    registry.record(db, model, path, "published")
    reg.set_current(version)
    db.conn.close()
    return how


def data_items(reg) -> int:
    return int(reg.manifest(reg.current_version())["items"])


def _raw_worker(workdir: str, picks: np.ndarray, barrier, out) -> None:
    """One scoring process (BLAS on one thread): fold-in of a training history + top-10, timed alone."""
    from threadpoolctl import threadpool_limits

    from recommender import store
    from recommender.config import load_settings
    from recommender.data import interactions
    from recommender.models import registry

    threadpool_limits(1)
    settings = load_settings(
        environ={}, overrides={"db": Path(workdir) / "shop.db", "model_dir": Path(workdir) / "models"}
    )
    model = registry.Registry(settings.model_dir).load()
    model.warm_up()
    db = store.connect(settings.db, migrate=False)
    matrix = interactions.load(db, settings).matrix(settings.als)
    db.conn.close()
    rows = [
        (
            matrix.indices[matrix.indptr[u] : matrix.indptr[u + 1]].astype(np.int64),
            matrix.data[matrix.indptr[u] : matrix.indptr[u + 1]],
        )
        for u in picks
    ]

    def one(items: np.ndarray, conf: np.ndarray) -> None:
        state = model.fold_in(items, conf)
        if state is not None:
            model.recommend(state, 10, exclude=items)

    for items, conf in rows[:50]:  # fault the memory-mapped arrays in
        one(items, conf)
    latencies = np.zeros(len(rows))
    barrier.wait()
    started = time.perf_counter()
    for n, (items, conf) in enumerate(rows):
        t0 = time.perf_counter()
        one(items, conf)
        latencies[n] = time.perf_counter() - t0
    out.put((started, time.perf_counter(), latencies.tolist()))


def raw_scoring(workdir: Path, customers: int, calls: int) -> dict:
    import multiprocessing as mp

    rng = np.random.default_rng(0)
    picks = rng.integers(0, customers, size=calls)
    cores = os.cpu_count() or 1
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(cores), ctx.Queue()
    procs = [
        ctx.Process(target=_raw_worker, args=(str(workdir), part, barrier, out))
        for part in np.array_split(picks, cores)
    ]
    for proc in procs:
        proc.start()
    results = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    wall = max(r[1] for r in results) - min(r[0] for r in results)
    lat = np.concatenate([np.array(r[2]) for r in results]) * 1000
    return {
        "requests": calls,
        "errors": 0,
        "rps": calls / wall,
        "cost_ms": wall * 1000 / calls,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "latencies": lat,
    }


def bench_family(family: str, workdir: Path, args, workers: int) -> dict:
    products = args.ease_products if family == "ease" else args.products
    shop(workdir, products, args.customers, args.events)
    how = publish(workdir, family, args.neighbours)
    token = bench_serve.read_key(workdir / "shop.db")
    rng = np.random.default_rng(1)
    customers = [f"c{i:06d}" for i in rng.integers(0, args.customers, size=args.requests)]
    kinds = ("bare", "floor", "ours")
    servers, ports = {}, {}
    rounds: dict[str, list[dict]] = {kind: [] for kind in (*kinds, "raw")}
    try:
        for kind in kinds:
            ports[kind] = bench_serve.free_port()
            servers[kind] = bench_serve.start_server(kind, ports[kind], workers, workdir)
        paths = {
            "bare": [f"/bare/{c}" for c in customers],
            "floor": [f"/floor/{c}" for c in customers],
            "ours": [f"/v1/customers/{c}/recommendations?n=10" for c in customers],
        }
        headers = {"Authorization": f"Bearer {token}"}
        for kind in kinds:
            bench_serve.load(ports[kind], paths[kind][:300], args.concurrency, 300, 20, headers)  # warm up
        for _ in range(args.rounds):
            for kind in kinds:
                rounds[kind].append(
                    bench_serve.load(ports[kind], paths[kind], args.concurrency, args.requests, args.seconds, headers)
                )
            rounds["raw"].append(raw_scoring(workdir, args.customers, args.requests))
    finally:
        for proc in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    results = {kind: bench_serve.summarise(runs) for kind, runs in rounds.items()}
    results["ratio"] = results["ours"]["cost_ms"] / (results["bare"]["cost_ms"] + results["raw"]["cost_ms"])
    results["floor_ratio"] = results["floor"]["cost_ms"] / (results["bare"]["cost_ms"] + results["raw"]["cost_ms"])
    results["how"] = how
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="ease,itemgraph")
    parser.add_argument("--products", type=int, default=100_000, help="catalogue for itemgraph")
    parser.add_argument("--ease-products", type=int, default=0, help="catalogue for ease [default: ease.max_items]")
    parser.add_argument("--neighbours", type=int, default=200)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/recommender-bench-families"))
    parser.add_argument("--fresh", action="store_true", help="rebuild the shops")
    args = parser.parse_args()

    from api import server
    from recommender.config import EASESettings

    args.ease_products = args.ease_products or EASESettings().max_items
    workers = args.workers or server.default_workers()
    if args.fresh:
        shutil.rmtree(args.workdir, ignore_errors=True)
    lines = []
    for family in args.family.split(","):
        products = args.ease_products if family == "ease" else args.products
        r = bench_family(family, args.workdir / f"shop-{products}", args, workers)
        lines.append((family, r))
        print(
            f"\n{r['how']}; gunicorn {workers} sync workers; concurrency {args.concurrency}; "
            f"{os.cpu_count()} cores; {args.rounds} interleaved rounds of {args.requests} requests (median round)"
        )
        print(f"{'':10}{'req/s':>9}{'cost ms':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'requests':>10}")
        for kind in ("ours", "floor", "bare", "raw"):
            k = r[kind]
            print(
                f"{kind:10}{k['rps']:>9.0f}{k['cost_ms']:>9.2f}{k['p50']:>9.2f}{k['p99']:>9.2f}{k['errors']:>8}"
                f"{k['requests']:>10}"
            )
        print(
            f"{family}: ratio ours / (bare + raw) = {r['ratio']:.2f} (target <= 1.25); "
            f"p99 ours {r['ours']['p99']:.1f} ms; errors {r['ours']['errors']}; floor / (bare + raw) = "
            f"{r['floor_ratio']:.2f}, ours / floor = {r['ours']['cost_ms'] / r['floor']['cost_ms']:.2f} "
            f"(the contract's least work: bench_serve.floor_app)",
            flush=True,
        )


if __name__ == "__main__":
    main()
