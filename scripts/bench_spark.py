#!/usr/bin/env python
"""Benchmark: Spark training from an export as the history grows 10x (driver memory, executor time, NDCG).

For each ``--events`` size (default 1,000,000 and 10,000,000), in a fresh
process so peak memory is that size's own:

1. a seeded synthetic shop: ``events / 25`` customers (all with personalization
   consent) and ``--products`` products in SQLite, and the events written
   straight into an ``export-interactions`` folder by the export's own writer
   (manifest, monthly Parquet files). The database's events table stays
   empty: what the driver could read of the history is nothing.
   Customers have tastes (a favourite product cluster each), so ALS has
   something to find beyond popularity;
2. ``recommender train --engine spark --interactions`` (the library call
   ``training.train``) on ``--master`` (default ``local[2]``) with the default
   ALS settings unless ``--factors`` / ``--iterations`` say otherwise.

Reported per size: wall time of the retrain (evaluation fit + full fit +
signals), executor time (the sum of Spark's per-task "Executor Run Time" and
CPU time, from the event log), the driver's peak memory (Python process peak
RSS, and the JVM's peak RSS: with a local master the executors run inside the
driver's JVM, so that number is driver *plus* executors), NDCG@10 of the model
and of popularity. The generator's own memory is released before training
(the events are written to disk and the arrays dropped) but counts towards
the Python peak when larger, so the Python peak is also reported just before
the training starts.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def proc_peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def make_shop(root: Path, events: int, products: int, seed: int) -> tuple[Path, Path]:
    """SQLite with customers, products, consents (no events); the events as an export folder."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from recommender import store
    from recommender.config import load_settings
    from recommender.data import exports

    rng = np.random.default_rng(seed)
    customers = max(events // 25, 100)
    settings = load_settings(environ={}, overrides={"db": root / "shop.db", "model_dir": root / "models"})
    db = store.connect(settings.db, create=True)
    cids = [f"c{i:08d}" for i in range(customers)]
    pids = [f"p{i:06d}" for i in range(products)]
    now = "2026-01-01T00:00:00Z"
    with db.conn:
        db.conn.executemany("INSERT INTO customers (id, created_at) VALUES (?, ?)", ((c, now) for c in cids))
        db.conn.executemany("INSERT INTO products (id, name) VALUES (?, ?)", ((p, p) for p in pids))
        db.conn.executemany(
            "INSERT INTO consents (customer_id, purpose, granted, updated_at, source) "
            "VALUES (?, 'personalization', 1, ?, 'bench')",
            ((c, now) for c in cids),
        )
    db.conn.close()
    clusters = 50
    cluster_of = rng.integers(0, clusters, products)
    members = [np.flatnonzero(cluster_of == k) for k in range(clusters)]
    popularity = rng.permutation(1.0 / np.arange(1, products + 1) ** 0.9)  # a long tail, no single giant
    favourite = rng.integers(0, clusters, customers)
    out = root / "export"
    out.mkdir()
    end = 1_790_000_000  # 2026-09-21
    start = end - 365 * 86400
    marker = {
        "layout": exports.LAYOUT,
        "files": [],
        "watermark": events,
        "update_watermark": 0,
        "customers_file": exports._write_customers(out, "bench", cids),
        "purpose": "personalization",
        "event_weights": {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0},
        "created_at": now,
    }
    chunk = 2_000_000
    types = np.array(["view", "add_to_cart", "purchase"], dtype=object)
    weights = np.array([1.0, 3.0, 5.0], dtype=np.float32)
    for n, lo in enumerate(range(0, events, chunk)):
        size = min(chunk, events - lo)
        user = rng.integers(0, customers, size)
        own = rng.random(size) < 0.7
        item = np.empty(size, dtype=np.int64)
        # 70 %: a product of the customer's favourite cluster, popular ones more often; 30 %: anything popular.
        for k in range(clusters):
            pick = np.flatnonzero(own & (favourite[user] == k))
            p = popularity[members[k]] / popularity[members[k]].sum()
            item[pick] = rng.choice(members[k], size=len(pick), p=p)
        rest = np.flatnonzero(~own)
        item[rest] = rng.choice(products, size=len(rest), p=popularity / popularity.sum())
        kind = rng.choice(3, size=size, p=[0.7, 0.2, 0.1])
        when = rng.integers(start, end, size)
        months = when.astype("datetime64[s]").astype("datetime64[M]").astype(str)
        table = pa.table(
            {
                "event_id": pa.array(np.arange(lo + 1, lo + size + 1, dtype=np.int64)),
                "customer_id": pa.DictionaryArray.from_arrays(pa.array(user.astype(np.int32)), pa.array(cids)),
                "product_id": pa.DictionaryArray.from_arrays(pa.array(item.astype(np.int32)), pa.array(pids)),
                "event_type": pa.DictionaryArray.from_arrays(pa.array(kind.astype(np.int16)), pa.array(types.tolist())),
                "quantity": pa.array(np.ones(size, np.float32)),
                "weight": pa.array(weights[kind]),
                "occurred_at": pa.array(when * 1000, pa.timestamp("ms", tz="UTC")),
                "month": pa.array(months),
            }
        )
        for month in sorted(set(months.tolist())):
            part = table.filter(pc.equal(table.column("month"), month))
            marker["files"].append(exports._write_file(out, f"month={month}/part-bench-{n}.parquet", part))
        del table, user, item, kind, when, months
        gc.collect()
    exports._write_marker(out, marker)
    return settings.db, out


def executor_times(log_dir: Path) -> dict[str, float]:
    """Sum of the tasks' executor run time and CPU time in a Spark event log."""
    run_ms = cpu_ns = tasks = 0
    for path in (p for p in log_dir.rglob("*") if p.is_file()):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if '"SparkListenerTaskEnd"' not in line:
                    continue
                metrics = json.loads(line).get("Task Metrics") or {}
                run_ms += metrics.get("Executor Run Time", 0)
                cpu_ns += metrics.get("Executor CPU Time", 0)
                tasks += 1
    return {"executor_run_s": round(run_ms / 1000, 1), "executor_cpu_s": round(cpu_ns / 1e9, 1), "tasks": tasks}


def one_size(args: argparse.Namespace, events: int) -> dict:
    from recommender import store
    from recommender.config import load_settings
    from recommender.training import run as training

    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        # Generated in a process of its own, so the peaks below are the retrain's alone.
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--generate",
                str(events),
                "--root",
                str(root),
                "--products",
                str(args.products),
                "--seed",
                str(args.seed),
            ],
            check=True,
        )
        db_path, export = root / "shop.db", root / "export"
        generated = time.perf_counter() - started
        before_training = rss_peak_mib()
        log_dir = root / "eventlog"
        log_dir.mkdir()
        settings = load_settings(environ={}, overrides={"db": db_path, "model_dir": root / "models"})
        if args.factors:
            settings.als.factors = args.factors
        if args.iterations:
            settings.als.iterations = args.iterations
        if args.regularization:
            settings.als.regularization = args.regularization
        conf = {
            "spark.driver.memory": args.driver_memory,
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": str(log_dir),
            "spark.eventLog.compress": "false",
            "spark.eventLog.rolling.enabled": "false",
            "spark.sql.shuffle.partitions": str(args.shuffle_partitions),
        }
        options = {"master": args.master, "conf": conf, "interactions_path": str(export)}
        db = store.connect(db_path)
        started = time.perf_counter()
        result = training.train(db, settings, engine="spark", publish=True, force=True, engine_options=options)
        wall = time.perf_counter() - started
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        jvm_pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
        jvm_peak = proc_peak_mib(jvm_pid)
        spark.stop()
        times = executor_times(log_dir)
        return {
            "events": events,
            "customers": result.data["customers"],
            "products": result.data["products"],
            "pairs": result.data["pairs"],
            "generate_s": round(generated, 1),
            "train_wall_s": round(wall, 1),
            "stages_s": result.seconds,
            **times,
            "driver_python_peak_mib": round(rss_peak_mib(), 1),
            "driver_python_peak_before_training_mib": round(before_training, 1),
            "driver_jvm_peak_rss_mib": round(jvm_peak, 1),
            "ndcg_model": result.metrics["model"]["ndcg"],
            "ndcg_popularity": result.metrics["popularity"]["ndcg"],
            "evaluated_customers": result.metrics["users"],
            "factors": settings.als.factors,
            "iterations": settings.als.iterations,
            "regularization": settings.als.regularization,
            "master": args.master,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--factors", type=int, default=0, help="0: the default ALS settings")
    parser.add_argument("--iterations", type=int, default=0, help="0: the default ALS settings")
    parser.add_argument(
        "--regularization",
        type=float,
        default=0.0,
        help="0: the default ALS settings (30, tuned on Online Retail, flattens this sparser shop)",
    )
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)  # child: measure one size
    parser.add_argument("--generate", type=int, default=0, help=argparse.SUPPRESS)  # grandchild: write the shop
    parser.add_argument("--root", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        make_shop(Path(args.root), args.generate, args.products, args.seed)
        return
    if args.one:
        print(json.dumps(one_size(args, args.one)))
        return
    rows = []
    for events in args.events:
        child = [
            sys.executable,
            __file__,
            "--one",
            str(events),
            "--products",
            str(args.products),
            "--factors",
            str(args.factors),
            "--iterations",
            str(args.iterations),
            "--regularization",
            str(args.regularization),
            "--master",
            args.master,
            "--driver-memory",
            args.driver_memory,
            "--shuffle-partitions",
            str(args.shuffle_partitions),
            "--seed",
            str(args.seed),
        ]
        proc = subprocess.run(child, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if proc.returncode != 0:
            sys.exit(
                f"Error: the run with {events:,} events failed: "
                f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}"
            )
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    print(
        f"{'events':>12}{'pairs':>12}{'wall s':>9}{'exec run s':>12}{'exec cpu s':>12}{'py peak MiB':>13}"
        f"{'JVM peak MiB':>14}{'NDCG':>8}{'pop NDCG':>10}"
    )
    for r in rows:
        print(
            f"{r['events']:>12,}{r['pairs']:>12,}{r['train_wall_s']:>9.1f}{r['executor_run_s']:>12.1f}"
            f"{r['executor_cpu_s']:>12.1f}{r['driver_python_peak_mib']:>13.1f}{r['driver_jvm_peak_rss_mib']:>14.1f}"
            f"{r['ndcg_model']:>8.4f}{r['ndcg_popularity']:>10.4f}"
        )


if __name__ == "__main__":
    main()
