#!/usr/bin/env python
"""Benchmark: the real API under gunicorn against a bare Flask endpoint and raw numpy scoring.

In one run, on loopback only:

1. a seeded synthetic shop with ``--products`` products (default 100,000) and a
   model of ``--factors`` factors (default 64) trained by the real retrain job;
2. ``ours``: ``GET /v1/customers/<random consenting customer>/recommendations?n=10``
   with a real ``read`` API key, against ``recommender serve``'s app under gunicorn;
3. ``bare``: a Flask view returning a fixed ten-item JSON list under the same
   gunicorn settings;
4. ``raw``: ``item_factors @ user`` plus top-10 (argpartition + sort) in numpy,
   for the same model size, in one single-threaded process per core (as the
   server's workers run it), all cores busy at once.
5. ``floor``: :func:`floor_app`, the same contract (key, consent, the
   customer's current history, fold-in, the model's own search, purchases left
   out, ten ids as JSON) written as directly as Python allows, under the same
   gunicorn settings: a lower bound for any server of this contract on this
   stack. ``floor / (bare + raw or ann)`` says whether a ratio target is
   reachable here at all; ``ours / floor`` is what our own code adds.

With ``--norms retail`` the model is not the synthetic generator's: implicit
ALS is fitted on the Online Retail data set (``--retail-csv``; imported with
the real CLI once, then cached), and its 3,665 item factors are scaled up to
``--products`` by sampling them with noise (relative noise of ``--noise`` of
each factor's norm), so the norm spread is a real shop's. Each bench customer
is a clone of a real customer whose events point at clones of the products
they really bought, so the fold-in query vectors are realistic too. The model
is published with the shared publish-time step, so from ``ann.min_products``
on it carries the ANN index (:mod:`recommender.models.ann`); a fifth kind, ``ann``,
times the index library's own query alone (faiss, one single-threaded process
per core, as ``raw``), and the recall@10 of the served lists against the exact
ones is measured in process on the same customers; so are "similar products"
(``similar_items`` from the model's cosine index against scoring every product:
ms per call and recall@10 on 200 random products).

The load generator keeps ``--concurrency`` requests in flight (default 8) on
keep-alive connections for at most ``--requests`` requests or ``--seconds``.
``ours`` runs with the decision log on (the default) and ``ours_nolog`` with
it off, to show what logging every served list costs. Cost per request =
elapsed wall time / requests completed, so every number is
"machine time per request" with the same client overhead. All servers run at
once and ``--rounds`` interleaved rounds are measured (bare, floor, ours, ours_nolog,
raw, then again), so noise from a shared machine hits every kind alike; the
median round is reported. Prints req/s, p50, p99, errors for each and
``ours / (bare + raw)`` (target <= 1.25), or with an ANN index
``ours / (bare + ann)`` (target <= 1.25), ``p99 ours / p99 bare`` (target <= 1.5)
and recall@10 (target >= 0.95).

With ``--visits SCORER`` a kind ``ours_visit`` posts a visit (the last three products of the same
random customers, as a page would send them) to ``POST /v1/recommendations`` of the same server,
scored by SCORER (recorded in the shop's database as ``recommender sessions evaluate`` would:
``mix`` = the model × 0.35 + V-SKNN k=100 m=1000, Online Retail's choice; or ``vsknn``,
``cooccurrence``, ``model``), interleaved with the others, and the run prints
``ours_visit / ours`` (target <= 1.2).

Each round asks for its own random sample of customers (the same for every kind). Every run
starts from the same decision log (:func:`seed_history`, ``--history``): a week of lists served
to the bench customers, written afresh, since rotation rules read it.

With ``--rules N`` a sixth kind, ``ours_rules``, serves the same model from a copy of the
shop's database holding N active merchandising rules (:func:`install_rules`: a realistic
mix of boosts, buries, pins, promotions, exclusions and rotations, some scheduled, some
for an audience), interleaved with the others, and the run prints
``ours_rules / ours`` (target <= 1.1).
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
from pathlib import Path

import numpy as np

from recommender.store.consents import PERSONALIZATION

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_shop(workdir: Path, products: int, customers: int, events: int, factors: int, seed: int) -> Path:
    from recommender import store
    from recommender.config import load_settings
    from recommender.training import run as training

    db_path = workdir / "shop.db"
    settings = load_settings(environ={}, overrides={"db": db_path, "model_dir": workdir / "models"})
    settings.als.factors = factors
    settings.selection.enabled = False  # the bench serves ALS factors of this size, not whichever family wins
    if (workdir / "models" / "CURRENT").exists():
        return db_path
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    db = store.connect(db_path, create=True)
    cats = rng.integers(0, 40, size=products)
    store.upsert_products(
        db,
        (
            (
                f"p{i:06d}",
                f"Product {i}",
                f"cat{cats[i]}",
                float(rng.integers(1, 200)),
                int(rng.integers(0, 50)),
                0,
                None,
            )
            for i in range(products)
        ),
    )
    cids = [f"c{i:06d}" for i in range(customers)]
    store.upsert_customers(db, ((c, None, None, None, None, "UTC", "2025-01-01T00:00:00Z") for c in cids))
    store.set_consents(db, [(c, "personalization", True, "2025-01-01T00:00:00Z", "bench") for c in cids])
    # A long tail over the whole catalogue (popularity ∝ rank^-0.8, in a random product order)
    # mixed with taste: each customer leans to one of 40 segments of the catalogue. The tail is
    # milder than a pure Zipf so the model's factor norms fall off no faster than on Online Retail.
    users = rng.integers(0, customers, size=events)
    popularity = rng.permutation(products)
    weights = 1.0 / np.arange(1, products + 1) ** 0.8
    global_pick = popularity[rng.choice(products, size=events, p=weights / weights.sum())]
    segment_size = products // 40
    seg_weights = weights[:segment_size] / weights[:segment_size].sum()
    segment_pick = popularity[(users % 40) * segment_size + rng.choice(segment_size, size=events, p=seg_weights)]
    items = np.where(rng.random(events) < 0.6, segment_pick, global_pick)
    kinds = rng.choice(np.array(["view", "add_to_cart", "purchase"]), size=events, p=[0.7, 0.2, 0.1])
    times = 1_735_689_600 + rng.integers(0, 300 * 86400, size=events)
    store.upsert_interactions(
        db, ((cids[u], f"p{i:06d}", str(k), 1.0, int(t)) for u, i, k, t in zip(users, items, kinds, times))
    )
    training.train(db, settings, publish=True, force=True)
    db.conn.close()
    return db_path


def retail_model(base: Path, factors: int, csv: Path):
    """The model the real retrain job fits on Online Retail (imported with the real CLI once, then cached)."""
    from recommender.models import registry

    env = {**os.environ, "RECOMMENDER_ALS_FACTORS": str(factors)}
    if not (base / "models" / "CURRENT").exists():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        real_db = str(base / "retail.db")
        cli = shutil.which("recommender") or str(Path(sys.executable).with_name("recommender"))
        for cmd in (
            ["init", "--db", real_db],
            ["import-transactions", "--db", real_db, str(csv), "--grant", "personalization"],
            ["train", "--db", real_db, "--publish", "--force", "--no-select"],
        ):  # ALS factors
            subprocess.run([cli, *cmd], env=env, check=True, stdout=subprocess.DEVNULL)
    return registry.Registry(base / "models").load()


def scale_up(y: np.ndarray, products: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``products`` noisy copies of the rows of ``y`` (each row at least once) and the row each copies."""
    src = np.concatenate([np.arange(len(y)), rng.integers(0, len(y), products - len(y))])
    rng.shuffle(src)
    norms = np.linalg.norm(y, axis=1)
    items = (
        y[src]
        + rng.standard_normal((products, y.shape[1])).astype(np.float32)
        * (noise * norms[src] / np.sqrt(y.shape[1]))[:, None]
    )
    return items.astype(np.float32), src


def make_retail_shop(
    workdir: Path, products: int, customers: int, factors: int, seed: int, csv: Path, noise: float
) -> Path:
    """A shop of ``products`` products whose factors are noisy copies of a model fitted on Online Retail."""
    from recommender import store
    from recommender.config import load_settings
    from recommender.models import registry
    from recommender.models.factor import FactorModel

    db_path = workdir / "shop.db"
    if (workdir / "models" / "CURRENT").exists():
        return db_path
    base = workdir.parent / f"{workdir.name}-retail-{factors}"
    real = retail_model(base, factors, csv)
    real_db = store.connect(base / "retail.db", migrate=False)
    history: dict[str, list[tuple[int, str, float, int]]] = {}
    for c, p, e, q, t in real_db.execute(
        "SELECT customer_id, product_id, event_type, quantity, occurred_at FROM interactions"
    ):
        if c in real.user_index and p in real.item_index:
            history.setdefault(c, []).append((real.item_index[p], e, q, t))
    real_db.conn.close()
    y = np.asarray(real.item_factors, dtype=np.float32)
    rng = np.random.default_rng(seed)
    items, src = scale_up(y, products, noise, rng)
    order = np.argsort(src, kind="stable")  # clones of real product i: order[starts[i]:starts[i + 1]]
    starts = np.searchsorted(src[order], np.arange(len(y) + 1))
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    settings = load_settings(overrides={"db": db_path, "model_dir": workdir / "models"})
    db = store.connect(db_path, create=True)
    pids = [f"p{i:07d}" for i in range(products)]
    cats = rng.integers(0, 40, size=products)
    prices, stock = rng.integers(1, 200, size=products), rng.integers(0, 50, size=products)
    store.upsert_products(
        db,
        ((pids[i], f"Product {i}", f"cat{cats[i]}", float(prices[i]), int(stock[i]), 0, None) for i in range(products)),
    )
    donors = sorted(history)
    cids = [f"c{i:06d}" for i in range(customers)]
    store.upsert_customers(db, ((c, None, None, None, None, "UTC", "2025-01-01T00:00:00Z") for c in cids))
    store.set_consents(db, [(c, "personalization", True, "2025-01-01T00:00:00Z", "bench") for c in cids])
    user_rows = np.array([real.user_index[donors[i % len(donors)]] for i in range(customers)])
    counts = np.zeros(products)

    def events():
        for n, c in enumerate(cids):
            for i, e, q, t in history[donors[n % len(donors)]]:
                j = int(order[starts[i] + rng.integers(0, starts[i + 1] - starts[i])])
                counts[j] += 1
                yield c, pids[j], e, q, t

    store.upsert_interactions(db, events())
    db.conn.close()
    manifest = {k: v for k, v in real.manifest.items() if k in ("engine", "params", "data", "metrics", "created_at")}
    manifest["bench"] = {"norms": "retail", "noise": noise, "source_products": len(y)}
    model = FactorModel(
        np.asarray(real.user_factors)[user_rows],
        items,
        cids,
        pids,
        real.regularization,
        manifest,
        signals={"popularity": counts.astype(np.float32)},
    )
    model.attach_ann(settings.ann, log=print)
    reg = registry.Registry(settings.model_dir)
    version = registry.new_version()
    reg.save(model, version)
    reg.set_current(version)
    return db_path


def seed_history(db_path: Path, model_dir: Path, customers: list[str], mean: float, seed: int = 7) -> dict[str, float]:
    """Reset the shop's decision log to the same past week of served lists on every run.

    The log is what rotation rules read, and a shop's log holds a week of lists: each bench
    customer was shown their own current list (the model's top 10, as ``ours`` serves it) a
    number of times drawn from a geometric law of mean ``mean`` (most a few times, a tail
    many times; at most 60), at uniform times over the past seven days. Without the reset,
    the log would keep every earlier run's lists and no two runs would read the same
    history.
    """
    from recommender import store
    from recommender.config import load_settings
    from recommender.serving.service import ListOptions, Service
    from recommender.store.rows import DecisionLogRow

    settings = load_settings(environ={}, overrides={"db": db_path, "model_dir": model_dir})
    settings.privacy.decision_log = False
    db = store.connect(db_path, migrate=True)
    store.prune_decisions(db, "9999-12-31T00:00:00Z")
    service = Service(settings)
    rng = np.random.default_rng(seed)
    distinct = sorted(set(customers))
    shown = np.minimum(rng.geometric(1.0 / (mean + 1.0), size=len(distinct)) - 1, 60)
    now = time.time()
    rows = []
    for customer, times in zip(distinct, shown.tolist()):
        if not times:
            continue
        served = service.recommend(db, customer, ListOptions(n=10))
        ids = json.dumps(served.product_ids)
        for at in sorted(rng.uniform(now - 7 * 86400, now - 60, size=times).tolist()):
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
            rows.append(
                DecisionLogRow(
                    customer, created, "recommendations", served.model_version, served.mode, served.reason, ids
                )
            )
    store.insert_decisions(db, rows)
    db.conn.close()
    return {
        "lists": len(rows),
        "customers": len(distinct),
        "mean": float(shown.mean()),
        "five_or_more": float((shown >= 5).mean()),
    }


def install_rules(db_path: Path, count: int, seed: int = 5) -> dict[str, int]:
    """``count`` active rules in a realistic mix, through the library (as the API and the CLI add them)."""
    from recommender import store
    from recommender.serving import merchandising

    rng = np.random.default_rng(seed)
    db = store.connect(db_path, migrate=True)
    products = [r[0] for r in db.execute("SELECT id FROM products ORDER BY id LIMIT 5000")]
    categories = sorted({r[0] for r in db.execute("SELECT DISTINCT category FROM products") if r[0]})
    kinds: dict[str, int] = {}
    schedule = {"start": "2020-01-01T00:00", "end": "2099-01-01T00:00", "timezone": "Pacific/Auckland"}
    for k in range(count):
        kind = ["boost", "boost", "boost", "bury", "bury", "pin", "promote", "exclude", "rotate", "boost"][k % 10]
        cat = [str(c) for c in rng.choice(categories, size=2, replace=False)]
        some = [str(p) for p in rng.choice(products, size=20, replace=False)]
        if kind == "boost":
            action = {
                "type": "boost",
                "condition": {"categories": cat[:1]}
                if k % 2
                else {"min_price": float(rng.integers(1, 150)), "max_price": 200.0},
                "amount": 0.05,
            }
        elif kind == "bury":
            action = {"type": "bury", "condition": {"products": some} if k % 2 else {"max_stock": 2}, "amount": 0.1}
        elif kind == "pin":
            action = {"type": "pin", "product": str(rng.choice(products)), "position": int(rng.integers(3, 10))}
        elif kind == "promote":
            action = {"type": "promote", "condition": {"categories": cat}, "slots": 1, "of": 10}
        elif kind == "exclude":
            action = {"type": "exclude", "condition": {"products": some}}
        else:
            action = {"type": "rotate", "after": 5, "days": 7}
        body = {
            "name": f"bench-{k:03d}-{kind}",
            "owner": "bench",
            "action": action,
            "surfaces": ["recommendations", "offers", "popular"],
        }
        if k % 3 == 0:
            body["schedule"] = schedule
        if k % 7 == 0:
            body["audience"] = {"arms": ["model", "challenger"]}
        merchandising.create_rule(db, body, "bench")
        kinds[kind] = kinds.get(kind, 0) + 1
    db.conn.close()
    return kinds


def bare_app():
    from flask import Flask, jsonify

    app = Flask("bare")
    payload = {
        "mode": "personalized",
        "items": [{"product_id": f"p{i:06d}", "score": 1.0 / (i + 1)} for i in range(10)],
    }

    @app.get("/bare/<customer_id>")
    def bare(customer_id: str):
        return jsonify(payload)

    return app


def floor_app():
    """The least a server of this contract can do per request, written as directly as Python allows.

    Same gunicorn settings, model artifact, key and customers as ``ours``: the
    domain's own steps with nothing around them — the key
    (``keys.lookup``), consent and the history (``store.customer_consent``,
    ``store.customer_events``: one query each), the history's
    confidences by the model's recipe (``interactions.confidences_of``), the
    model's scoring (``fold_in`` + ``recommend``, what ``raw``/``ann`` time
    alone) with the customer's purchases excluded, and ten ids as JSON. No
    service layer, catalogue filters, decision log, metrics, request validation
    or list ids: a lower bound for ``ours``. So ``floor / (bare + scoring)``
    says what any server of this contract on this stack can reach, and
    ``ours / floor`` what our own code adds to it.
    """
    from flask import Flask, abort, jsonify, request
    from threadpoolctl import threadpool_limits

    from recommender import store
    from recommender.config import load_settings
    from recommender.data import interactions
    from recommender.models import registry
    from recommender.serving import keys, ranking
    from recommender.training import recipes

    threadpool_limits(1)
    settings = load_settings()
    model = registry.Registry(settings.model_dir).load()
    model.warm_up()
    rules = recipes.serving_settings(model, settings)
    reference = model.manifest.get("data", {}).get("reference_time")
    db = store.connect(settings.db, migrate=False)
    app = Flask("floor")

    @app.get("/floor/<customer_id>")
    def floor(customer_id: str):
        if keys.lookup(db, request.headers.get("Authorization", "")[7:]) is None:
            abort(401)
        if not all(store.customer_consent(db, customer_id, PERSONALIZATION)):
            abort(404)
        events = store.customer_events(db, customer_id)
        local = interactions.local_index(events, model.item_index)
        items, conf = interactions.confidences_of(events, rules, local, reference)
        state = model.fold_in(items, conf)
        if state is None:
            abort(404)
        top, scores = model.recommend(
            state, 10, exclude=ranking.purchased_items(model, events, settings.purchase_events, local)
        )
        return jsonify(
            {
                "mode": "personalized",
                "items": [
                    {"product_id": model.item_ids[i], "score": float(s)} for i, s in zip(top.tolist(), scores.tolist())
                ],
            }
        )

    @app.get("/healthz")
    def healthz():
        return "ok"

    return app


def start_server(kind: str, port: int, workers: int, workdir: Path) -> subprocess.Popen:
    db = workdir / ("shop-rules.db" if kind == "ours_rules" else "shop.db")
    env = {
        **os.environ,
        "RECOMMENDER_DB": str(db),
        "RECOMMENDER_MODEL_DIR": str(workdir / "models"),
        "RECOMMENDER_ALS_FACTORS": "64",
        "RECOMMENDER_PRIVACY_DECISION_LOG": "false" if kind == "ours_nolog" else "true",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            kind if kind in ("bare", "floor") else "ours",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / f"server-{kind}.log", "w"),  # noqa: SIM115 - the server process owns it until the end
        cwd=str(workdir),
    )
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


def load(
    port: int,
    paths: list[str],
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    headers: dict[str, str] | None = None,
    bodies: list[bytes] | None = None,
) -> dict:
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
                if bodies:
                    conn.request(
                        "POST",
                        paths[n % len(paths)],
                        body=bodies[n % len(bodies)],
                        headers={**(headers or {}), "Content-Type": "application/json"},
                    )
                else:
                    conn.request("GET", paths[n % len(paths)], headers=headers or {})
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
    return {
        "requests": len(lat),
        "errors": errors,
        "rps": len(lat) / wall,
        "cost_ms": wall * 1000 / len(lat),
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "latencies": lat,
    }


def _raw_worker(model_dir: str, picks: np.ndarray, barrier, out) -> None:
    """One scoring process: BLAS on one thread, as in a server worker; times only the scoring."""
    from threadpoolctl import threadpool_limits

    from recommender.models import registry

    threadpool_limits(1)
    model = registry.Registry(model_dir).load()
    items, users = np.asarray(model.item_factors), np.asarray(model.user_factors)

    def one(u: np.ndarray) -> None:
        scores = items @ u
        top = np.argpartition(-scores, 10)[:10]
        top[np.argsort(-scores[top])]

    for j in picks[:50]:  # fault the memory-mapped factors in
        one(users[j])
    latencies = np.zeros(len(picks))
    barrier.wait()
    started = time.perf_counter()
    for n, j in enumerate(picks):
        t0 = time.perf_counter()
        one(users[j])
        latencies[n] = time.perf_counter() - t0
    out.put((started, time.perf_counter(), latencies.tolist()))


def _ann_worker(model_dir: str, picks: np.ndarray, barrier, out) -> None:
    """One process timing only the index library's query (faiss search of ``candidates``), as ``raw``."""
    from threadpoolctl import threadpool_limits

    from recommender.models import registry

    threadpool_limits(1)
    model = registry.Registry(model_dir).load()
    index, users = model._ann, np.asarray(model.user_factors)
    for j in picks[:50]:
        index.propose(users[j], index.candidates)
    latencies = np.zeros(len(picks))
    barrier.wait()
    started = time.perf_counter()
    for n, j in enumerate(picks):
        t0 = time.perf_counter()
        index.propose(users[j], index.candidates)
        latencies[n] = time.perf_counter() - t0
    out.put((started, time.perf_counter(), latencies.tolist()))


def raw_scoring(workdir: Path, calls: int, target=None) -> dict:
    """``item_factors @ user`` plus top-10 in one single-threaded process per core, all at once.

    That is the machine's best case for the bare arithmetic a request needs:
    the way the server runs it (one request per worker, BLAS on one thread),
    with no HTTP, database or filter in the way.
    """
    import multiprocessing as mp

    from recommender.models import registry

    model = registry.Registry(workdir / "models").load()
    shape = list(model.item_factors.shape)
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(model.user_ids), size=calls)
    cores = os.cpu_count() or 1
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(cores), ctx.Queue()
    procs = [
        ctx.Process(target=target or _raw_worker, args=(str(workdir / "models"), part, barrier, out))
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
        "shape": shape,
        "latencies": lat,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers [default: as recommender serve]")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=4000, help="requests per round and kind")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the median is reported)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="[default: /tmp/recommender-bench-serve, -retail for --norms retail]"
    )
    parser.add_argument(
        "--norms",
        choices=["synthetic", "retail"],
        default="synthetic",
        help="factor norms: the synthetic shop's, or Online Retail's factors scaled up with noise",
    )
    parser.add_argument(
        "--retail-csv",
        type=Path,
        default=ROOT.parent / "shared" / "datasets" / "online-retail" / "online_retail.csv.gz",
    )
    parser.add_argument("--noise", type=float, default=0.25, help="relative noise of the scaled-up factors")
    parser.add_argument(
        "--history",
        type=float,
        default=3.0,
        help="mean lists each bench customer was served in the past week, written afresh each run (default 3)",
    )
    parser.add_argument(
        "--rules",
        type=int,
        default=0,
        metavar="N",
        help="also serve from a copy of the shop with N active merchandising rules (ours_rules)",
    )
    parser.add_argument(
        "--visits",
        choices=["mix", "vsknn", "cooccurrence", "model"],
        default=None,
        help="also time visit lists (POST /v1/recommendations) scored by this session scorer",
    )
    parser.add_argument("--serve", choices=["ours", "bare", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from api import server

    workers = args.workers or server.default_workers()
    if args.serve:
        # A worker loads the model and the catalogue on its first request; with a million products
        # on a busy shared machine that can outlast serve's 60 s worker timeout, so the bench allows more.
        serve_options = server.gunicorn_options
        server.gunicorn_options = lambda *a: {**serve_options(*a), "timeout": 600}
        options = server.gunicorn_options("127.0.0.1", args.port, workers)
        if args.serve in ("bare", "floor"):
            server.run_wsgi(bare_app if args.serve == "bare" else floor_app, options)
        else:
            from recommender.config import load_settings

            server.run(load_settings(), "127.0.0.1", args.port, workers)
        return

    if args.workdir is None:
        args.workdir = Path("/tmp/recommender-bench-serve" + ("-retail" if args.norms == "retail" else ""))
    if args.norms == "retail":
        make_retail_shop(args.workdir, args.products, args.customers, args.factors, 0, args.retail_csv, args.noise)
    else:
        make_shop(args.workdir, args.products, args.customers, args.events, args.factors, seed=0)
    has_ann = "ann" in json.loads(next((args.workdir / "models").glob("[0-9]*/manifest.json")).read_text())
    token = read_key(args.workdir / "shop.db")
    rng = np.random.default_rng(1)
    # a fresh sample of customers per round (the same for every kind): the bench's own lists must not make every
    # customer one who is shown a list every few seconds, which no shop's traffic is
    draws = [[f"c{i:06d}" for i in rng.integers(0, args.customers, size=args.requests)] for _ in range(args.rounds)]
    customers = draws[0]  # the warm-up's, the visits' and the quality check's
    kinds: tuple[str, ...] = ("bare", "floor", "ours", "ours_nolog")
    history = seed_history(
        args.workdir / "shop.db", args.workdir / "models", [c for draw in draws for c in draw], args.history
    )
    print(
        f"decision log: {history['lists']:,} lists served to {history['customers']:,} customers over the past "
        f"week (mean {history['mean']:.1f} per customer; {history['five_or_more']:.0%} were shown 5 or more)"
    )
    if args.rules:
        import sqlite3

        copy = args.workdir / "shop-rules.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(copy) + suffix).unlink(missing_ok=True)
        source, target = sqlite3.connect(args.workdir / "shop.db"), sqlite3.connect(copy)
        source.backup(target)
        source.close(), target.close()
        print(f"rules installed in {copy.name}: {install_rules(copy, args.rules)}")
        kinds += ("ours_rules",)
    bodies: dict[str, list[bytes]] = {}
    if args.visits:
        bodies["ours_visit"] = visit_bodies(args.workdir / "shop.db", customers, args.visits)
    servers, ports = {}, {}
    try:
        for kind in kinds:  # all up at once, so the rounds below can interleave them
            ports[kind] = free_port()
            servers[kind] = start_server(kind, ports[kind], workers, args.workdir)
        round_paths = [
            {
                kind: (
                    [f"/{kind}/{c}" for c in draw]
                    if kind in ("bare", "floor")
                    else [f"/v1/customers/{c}/recommendations?n=10" for c in draw]
                )
                for kind in kinds
            }
            for draw in draws
        ]
        if args.visits:  # the same server as ours, another endpoint
            kinds += ("ours_visit",)
            ports["ours_visit"] = ports["ours"]
            for paths in round_paths:
                paths["ours_visit"] = ["/v1/recommendations"]
        paths = round_paths[0]
        headers = {"Authorization": f"Bearer {token}"}
        for kind in kinds:  # warm up every worker: a large model and catalogue take a while to load
            for _ in range(10):
                if (
                    load(ports[kind], paths[kind][:300], args.concurrency, 300, 120, headers, bodies.get(kind))[
                        "errors"
                    ]
                    == 0
                ):
                    break
        conn = http.client.HTTPConnection("127.0.0.1", ports["ours"], timeout=120)
        conn.request("GET", paths["ours"][0], headers=headers)
        response = conn.getresponse()
        sample = json.loads(response.read())
        auth = "open" if response.getheader("X-Recommender-Auth") else "read key"
        rounds: dict[str, list[dict]] = {kind: [] for kind in (*kinds, "raw", "ann")}
        # Interleaved rounds, so a noisy neighbour on a shared machine hits every kind alike.
        for paths in round_paths:
            for kind in kinds:
                rounds[kind].append(
                    load(
                        ports[kind],
                        paths[kind],
                        args.concurrency,
                        args.requests,
                        args.seconds,
                        headers,
                        bodies.get(kind),
                    )
                )
            rounds["raw"].append(raw_scoring(args.workdir, args.requests))
            if has_ann:
                rounds["ann"].append(raw_scoring(args.workdir, args.requests, target=_ann_worker))
    finally:
        for proc in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    results = {kind: summarise(runs) for kind, runs in rounds.items() if runs}
    shape = rounds["raw"][0]["shape"]
    print(
        f"model {shape[0]:,} products x {shape[1]} factors; gunicorn {workers} sync workers; "
        f"concurrency {args.concurrency}; {os.cpu_count()} cores; {args.rounds} interleaved rounds of "
        f"{args.requests} requests (median round shown); ours: mode {sample['mode']}, {auth}"
    )
    print(f"{'':10}{'req/s':>9}{'cost ms':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'requests':>10}")
    for kind in ("ours", "ours_visit", "ours_rules", "ours_nolog", "floor", "bare", "raw", "ann"):
        if kind not in results:
            continue
        r = results[kind]
        print(
            f"{kind:10}{r['rps']:>9.0f}{r['cost_ms']:>9.2f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['errors']:>8}"
            f"{r['requests']:>10}"
        )
    quality = served_quality(args.workdir, customers[:500])
    print(
        f"norms: {args.norms}; exact path scores {quality['scanned'][0]:.1%} of the products per request (median; "
        f"p90 {quality['scanned'][1]:.1%}): the exact norm bound of recommender.models.topk skips the rest; raw scores all"
    )
    if has_ann:
        print(
            f"ANN index {quality['ann']}; answered {quality['ann_share']:.0%} of the lists; recall@10 of served "
            f"lists vs exact {quality['recall']:.3f} (target >= 0.95)"
        )
        ratio = results["ours"]["cost_ms"] / (results["bare"]["cost_ms"] + results["ann"]["cost_ms"])
        print(
            f"ratio ours / (bare + ann) = {ratio:.2f} (target <= 1.25); p99 ours / bare = "
            f"{results['ours']['p99'] / results['bare']['p99']:.2f} (target <= 1.5); errors {results['ours']['errors']}"
        )
        if "similar" in quality:
            sim = quality["similar"]
            print(
                f"similar products (in process, 200 products): cosine index {sim['ann_ms']:.2f} ms vs every product "
                f"{sim['exact_ms']:.2f} ms per call; recall@10 {sim['recall']:.3f}"
            )
    else:
        ratio = results["ours"]["cost_ms"] / (results["bare"]["cost_ms"] + results["raw"]["cost_ms"])
        print(
            f"ratio ours / (bare + raw) = {ratio:.2f} (target <= 1.25); p99 ours {results['ours']['p99']:.1f} ms "
            f"(target < 20 ms); p99 ours / bare = {results['ours']['p99'] / results['bare']['p99']:.2f}; "
            f"errors {results['ours']['errors']}"
        )
    scoring = results["ann" if has_ann else "raw"]
    floor = results["floor"]
    print(
        f"floor (the contract's least work, see floor_app): floor / (bare + {'ann' if has_ann else 'raw'}) = "
        f"{floor['cost_ms'] / (results['bare']['cost_ms'] + scoring['cost_ms']):.2f}, p99 floor / bare = "
        f"{floor['p99'] / results['bare']['p99']:.2f}; ours / floor = {results['ours']['cost_ms'] / floor['cost_ms']:.2f}, "
        f"p99 ours / floor = {results['ours']['p99'] / floor['p99']:.2f}; errors {floor['errors']}"
    )
    print(
        f"decision log cost: {results['ours']['cost_ms'] - results['ours_nolog']['cost_ms']:+.2f} ms per request "
        f"({results['ours']['cost_ms'] / results['ours_nolog']['cost_ms'] - 1:+.1%})"
    )
    if "ours_visit" in results:
        v, o = results["ours_visit"], results["ours"]
        print(
            f"visit lists ({args.visits}): ours_visit / ours = {v['cost_ms'] / o['cost_ms']:.3f} (target <= 1.2); "
            f"{v['cost_ms']:.2f} vs {o['cost_ms']:.2f} ms per request; p99 {v['p99']:.1f} vs {o['p99']:.1f} ms; "
            f"errors {v['errors']}"
        )
    if "ours_rules" in results:
        r, o = results["ours_rules"], results["ours"]
        print(
            f"merchandising rules ({args.rules} active): ours_rules / ours = {r['cost_ms'] / o['cost_ms']:.3f} "
            f"(target <= 1.1); {r['cost_ms']:.2f} vs {o['cost_ms']:.2f} ms per request; p99 {r['p99']:.1f} vs "
            f"{o['p99']:.1f} ms; errors {r['errors']}"
        )


def visit_bodies(db_path: Path, customers: list[str], scorer: str) -> list[bytes]:
    """Record ``scorer`` as the shop's session scorer; one visit per customer: their last three products."""
    import sqlite3

    from recommender import store
    from recommender.training import sessions

    params = {"mix": {"k": 100, "m": 1000, "w": 0.35}, "vsknn": {"k": 100, "m": 1000}}.get(scorer, {})
    db = store.connect(db_path, migrate=False)
    sessions.record_choice(db, {"choice": {"scorer": scorer, "params": params, "evaluated": True}})
    db.conn.close()
    conn = sqlite3.connect(db_path)
    out = []
    for c in customers:
        rows = conn.execute(
            "SELECT product_id, event_type FROM interactions WHERE customer_id = ? ORDER BY occurred_at DESC LIMIT 3",
            [c],
        ).fetchall()
        out.append(
            json.dumps({"products": [{"product_id": p, "event_type": e} for p, e in reversed(rows)], "n": 10}).encode()
        )
    conn.close()
    return out


def similar_quality(model, products: int = 200) -> dict:
    """``similar_items`` in process for ``products`` random products: ms per call and recall@10, index vs every product."""
    rng = np.random.default_rng(3)
    picks = [int(i) for i in rng.choice(model.n_items, size=min(products, model.n_items), replace=False)]
    timed = {}
    for kind, enabled in (("exact", False), ("ann", True)):
        model.ann_enabled = enabled
        started = time.perf_counter()
        timed[kind] = [model.similar_items(i, 10)[0].tolist() for i in picks]
        timed[kind + "_ms"] = (time.perf_counter() - started) * 1000 / len(picks)
    recall = float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(timed["ann"], timed["exact"])]))
    return {"exact_ms": timed["exact_ms"], "ann_ms": timed["ann_ms"], "recall": recall}


def served_quality(workdir: Path, customers: list[str]) -> dict:
    """What the served lists cost and how good they are, for these customers.

    The same ``Service.recommend`` the API calls (default options), in process:
    once exactly (ANN switched off), reading the model's
    :class:`~recommender.models.topk.NormIndex` after each list for the share of the
    catalogue scored (median, p90); and, when the model has an ANN index, once
    as served, for the recall@10 of the served list against the exact one.
    """
    from recommender import store
    from recommender.config import load_settings
    from recommender.privacy import DecisionLog
    from recommender.serving.service import ListOptions, Service

    settings = load_settings(environ={}, overrides={"db": workdir / "shop.db", "model_dir": workdir / "models"})
    service = Service(settings, decisions=DecisionLog(settings.db, enabled=False))
    db = store.connect(settings.db, migrate=False)
    shares, exact, served, paths = [], {}, {}, []
    service.live.get(db)
    model = service.live.model
    has_ann = getattr(model, "_ann", None) is not None
    model.ann_enabled = False
    for customer in customers:
        result = service.recommend(db, customer, ListOptions(n=10))
        if result.mode == "personalized":
            exact[customer] = result.product_ids
            if model.last_search == "exact":
                shares.append(model.norm_index.scanned / len(model.item_ids))
    out = {"scanned": (float(np.median(shares)), float(np.percentile(shares, 90))) if shares else (0.0, 0.0)}
    if has_ann:
        model.ann_enabled = True
        for customer in exact:
            served[customer] = service.recommend(db, customer, ListOptions(n=10)).product_ids
            paths.append(model.last_search == "ann")
        out["recall"] = float(np.mean([len(set(served[c]) & set(exact[c])) / max(1, len(exact[c])) for c in exact]))
        out["ann_share"] = float(np.mean(paths))
        p = model.ann_params
        out["ann"] = f"{p['kind']}, {p['lists']} lists, {model._ann.probes} probes, {p['candidates']} candidates"
        if getattr(model, "_ann_similar", None) is not None:
            out["similar"] = similar_quality(model)
    db.conn.close()
    return out


def read_key(db_path: Path) -> str:
    """A real ``read`` API key, so ``ours`` pays for authentication as a storefront's calls do."""
    from recommender import store
    from recommender.serving import keys

    db = store.connect(db_path, create=True)
    try:
        return keys.create(db, "read", "bench_serve")[1]
    finally:
        db.conn.close()


def summarise(runs: list[dict]) -> dict:
    """The median round by cost; p50/p99 over every request of every round; errors summed."""
    median = sorted(runs, key=lambda r: r["cost_ms"])[len(runs) // 2]
    lat = np.concatenate([r["latencies"] for r in runs])
    return {
        "rps": median["rps"],
        "cost_ms": median["cost_ms"],
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "errors": sum(r["errors"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
    }


if __name__ == "__main__":
    main()
