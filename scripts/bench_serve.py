#!/usr/bin/env python
"""Benchmark: the real API under gunicorn against a bare Flask endpoint and raw numpy scoring.

In one run, on loopback only:

1. a seeded synthetic shop with ``--products`` products (default 100,000) and a
   model of ``--factors`` factors (default 64) trained by the real retrain job;
2. ``ours``: ``GET /v1/customers/<random consenting customer>/recommendations?n=10``
   against ``recommender serve``'s app under gunicorn;
3. ``bare``: a Flask view returning a fixed ten-item JSON list under the same
   gunicorn settings;
4. ``raw``: ``item_factors @ user`` plus top-10 (argpartition + sort) in numpy,
   for the same model size, in as many threads as there are cores.

The load generator keeps ``--concurrency`` requests in flight (default 8) on
keep-alive connections for at most ``--requests`` requests or ``--seconds``.
``ours`` runs with the decision log on (the default) and ``ours_nolog`` with
it off, to show what logging every served list costs. Cost per request =
elapsed wall time / requests completed, so every number is
"machine time per request" with the same client overhead. Prints req/s, p50,
p99, errors for each and ``ours / (bare + raw)`` (target <= 1.25).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_shop(workdir: Path, products: int, customers: int, events: int, factors: int, seed: int) -> Path:
    from recommender import store, training
    from recommender.config import load_settings

    db_path = workdir / "shop.db"
    settings = load_settings(environ={}, overrides={"db": db_path, "model_dir": workdir / "models"})
    settings.als.factors = factors
    if (workdir / "models" / "CURRENT").exists():
        return db_path
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    db = store.connect(db_path)
    cats = rng.integers(0, 40, size=products)
    store.upsert_products(db, ((f"p{i:06d}", f"Product {i}", f"cat{cats[i]}", float(rng.integers(1, 200)),
                                int(rng.integers(0, 50)), 0, None) for i in range(products)))
    cids = [f"c{i:06d}" for i in range(customers)]
    store.upsert_customers(db, ((c, None, None, None, None, "UTC", "2025-01-01T00:00:00Z") for c in cids))
    store.set_consents(db, [(c, "personalization", True, "2025-01-01T00:00:00Z", "bench") for c in cids])
    users = rng.integers(0, customers, size=events)
    items = (rng.zipf(1.2, size=events) - 1 + users * 37) % products  # per-customer neighbourhoods
    kinds = rng.choice(np.array(["view", "add_to_cart", "purchase"]), size=events, p=[0.7, 0.2, 0.1])
    times = 1_735_689_600 + rng.integers(0, 300 * 86400, size=events)
    store.upsert_interactions(db, ((cids[u], f"p{i:06d}", str(k), 1.0, int(t))
                                   for u, i, k, t in zip(users, items, kinds, times)))
    training.train(db, settings, publish=True, force=True)
    db.conn.close()
    return db_path


def bare_app():
    from flask import Flask, jsonify

    app = Flask("bare")
    payload = {"mode": "personalized", "items": [{"product_id": f"p{i:06d}", "score": 1.0 / (i + 1)} for i in range(10)]}

    @app.get("/bare/<customer_id>")
    def bare(customer_id: str):
        return jsonify(payload)

    return app


def start_server(kind: str, port: int, workers: int, workdir: Path) -> subprocess.Popen:
    env = {**os.environ, "RECOMMENDER_DB": str(workdir / "shop.db"), "RECOMMENDER_MODEL_DIR": str(workdir / "models"),
           "RECOMMENDER_ALS_FACTORS": "64",
           "RECOMMENDER_PRIVACY_DECISION_LOG": "false" if kind == "ours_nolog" else "true"}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", "bare" if kind == "bare" else "ours",
                             "--port", str(port), "--workers", str(workers)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(workdir))
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/bare/x" if kind == "bare" else "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


def load(port: int, paths: list[str], concurrency: int, max_requests: int, max_seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(max_requests))
    lock = threading.Lock()
    started = time.perf_counter()

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.perf_counter() - started < max_seconds:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            t0 = time.perf_counter()
            try:
                conn.request("GET", paths[n % len(paths)])
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                errors += not ok

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    return {"requests": len(lat), "errors": errors, "rps": len(lat) / wall, "cost_ms": wall * 1000 / len(lat),
            "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))}


def raw_scoring(workdir: Path, calls: int) -> dict:
    from recommender import registry

    model = registry.Registry(workdir / "models").load()
    items = np.asarray(model.item_factors)
    users = np.asarray(model.user_factors)
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(users), size=calls)
    latencies = np.zeros(calls)

    def one(j: int) -> None:
        t0 = time.perf_counter()
        scores = items @ users[picks[j]]
        top = np.argpartition(-scores, 10)[:10]
        top[np.argsort(-scores[top])]
        latencies[j] = time.perf_counter() - t0

    started = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(one, range(calls)))
    wall = time.perf_counter() - started
    lat = latencies * 1000
    return {"requests": calls, "errors": 0, "rps": calls / wall, "cost_ms": wall * 1000 / calls,
            "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "shape": list(items.shape)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers [default: as recommender serve]")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/recommender-bench-serve"))
    parser.add_argument("--serve", choices=["ours", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from api import server

    workers = args.workers or server.default_workers()
    if args.serve:
        options = server.gunicorn_options("127.0.0.1", args.port, workers)
        if args.serve == "bare":
            server.run_wsgi(bare_app, options)
        else:
            from recommender.config import load_settings

            server.run(load_settings(), "127.0.0.1", args.port, workers)
        return

    make_shop(args.workdir, args.products, args.customers, args.events, args.factors, seed=0)
    rng = np.random.default_rng(1)
    customers = [f"c{i:06d}" for i in rng.integers(0, args.customers, size=args.requests)]
    results = {}
    for kind in ("bare", "ours", "ours_nolog"):
        port = free_port()
        proc = start_server(kind, port, workers, args.workdir)
        try:
            paths = ([f"/bare/{c}" for c in customers] if kind == "bare"
                     else [f"/v1/customers/{c}/recommendations?n=10" for c in customers])
            load(port, paths[:200], args.concurrency, 200, 20)  # warm up every worker
            results[kind] = load(port, paths, args.concurrency, args.requests, args.seconds)
            if kind == "ours":
                conn = http.client.HTTPConnection("127.0.0.1", port)
                conn.request("GET", paths[0])
                sample = json.loads(conn.getresponse().read())
                results[kind]["mode"] = sample["mode"]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    results["raw"] = raw_scoring(args.workdir, args.requests)
    print(f"model {results['raw']['shape'][0]:,} products x {results['raw']['shape'][1]} factors; "
          f"gunicorn {workers} sync workers; concurrency {args.concurrency}; {os.cpu_count()} cores; "
          f"sample response mode: {results['ours'].get('mode')}")
    print(f"{'':10}{'req/s':>9}{'cost ms':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'requests':>10}")
    for kind in ("ours", "ours_nolog", "bare", "raw"):
        r = results[kind]
        print(f"{kind:10}{r['rps']:>9.0f}{r['cost_ms']:>9.2f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['errors']:>8}{r['requests']:>10}")
    ratio = results["ours"]["cost_ms"] / (results["bare"]["cost_ms"] + results["raw"]["cost_ms"])
    print(f"ratio ours / (bare + raw) = {ratio:.2f} (target <= 1.25); p99 ours {results['ours']['p99']:.1f} ms "
          f"(target < 20 ms)")
    print(f"decision log cost: {results['ours']['cost_ms'] - results['ours_nolog']['cost_ms']:+.2f} ms per request "
          f"({results['ours']['cost_ms'] / results['ours_nolog']['cost_ms'] - 1:+.1%})")


if __name__ == "__main__":
    main()
