#!/usr/bin/env python
"""Benchmark: the ``implicit`` and ``spark`` engines on Online Retail, same settings, same split.

Imports the shared Online Retail file (every customer granted
personalization) into a temporary database, then runs the standard
evaluation (``recommender.training.run.evaluate``: 80 % temporal cut, NDCG@10 and
friends, popularity on the same split) once per engine with one settings
object, so the two differ only in the engine. Prints, per engine, the wall
time of the whole evaluation and of the fit alone, and the metrics; then the
popularity baseline, the Java and Spark versions and the cores used.

The Spark session is started before the clock runs (its start-up, reported
separately, is paid once per process, not per fit).

    python scripts/bench_engines.py                        # local[*], default settings
    python scripts/bench_engines.py --master local[2] --factors 32 --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "datasets" / "online-retail" / "online_retail.csv.gz"


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from recommender import store
    from recommender.config import load_settings
    from recommender.ingest import imports
    from recommender.models.engines import spark as spark_engine
    from recommender.training import run as training

    overrides: dict[str, Any] = {"db": workdir / "retail.db", "model_dir": workdir / "models"}
    settings = load_settings(environ={}, overrides=overrides)
    for name in ("factors", "regularization", "iterations", "alpha"):
        if getattr(args, name) is not None:
            setattr(settings.als, name, getattr(args, name))
    db = store.connect(settings.db, create=True)
    started = time.perf_counter()
    imported = imports.import_transactions(db, args.dataset, settings, grant=("personalization",))
    print(f"imported {imported.new:,} events in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    data = training.load_data(db, settings)

    results: dict[str, Any] = {
        "settings": {
            k: getattr(settings.als, k) for k in ("factors", "regularization", "alpha", "iterations", "half_life_days")
        },
        "data": {"interactions": len(data), "customers": data.shape[0], "products": data.shape[1]},
        "cores": os.cpu_count(),
        "engines": {},
    }
    started = time.perf_counter()
    spark = spark_engine.spark_session(args.master, {})
    results["spark_startup_seconds"] = round(time.perf_counter() - started, 2)
    results["spark_version"] = spark.version
    results["spark_master"] = spark.sparkContext.master
    results["java_version"] = spark_engine.java_version(spark_engine.find_java())

    spark_options = {"master": args.master, "conf": {}, "interactions_path": None}
    for engine, options in (("implicit", {}), ("spark", spark_options)):
        print(f"evaluating {engine} ...", file=sys.stderr)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        result = training.evaluate(db, settings, engine=engine, data=data, timings=timings, engine_options=options)
        wall = time.perf_counter() - started
        payload = result.payload
        results["engines"][engine] = {
            "wall_seconds": round(wall, 2),
            "fit_seconds": timings["fit"],
            **{m: payload["model"][m] for m in ("ndcg", "precision", "recall", "map", "coverage")},
        }
        if engine == "spark":
            results["engines"][engine]["reg_param"] = round(result.model.manifest["spark"]["reg_param"], 4)
        results["popularity"] = {
            m: payload["popularity"][m] for m in ("ndcg", "precision", "recall", "map", "coverage")
        }
        results["test_customers"] = payload["users"]
    return results


def table(results: dict[str, Any]) -> str:
    s = results["settings"]
    lines = [
        (
            f"Online Retail: {results['data']['interactions']:,} events, {results['data']['customers']:,} customers x "
            f"{results['data']['products']:,} products; {results['test_customers']:,} test customers; "
            f"{results['cores']} cores"
        ),
        (
            f"settings: factors={s['factors']} regularization={s['regularization']} alpha={s['alpha']} "
            f"iterations={s['iterations']} half_life_days={s['half_life_days']}"
        ),
        (
            f"Java {results['java_version']}, Spark {results['spark_version']} ({results['spark_master']}, "
            f"session start-up {results['spark_startup_seconds']:.1f} s, not counted below)"
        ),
        "",
        (
            f"| {'engine':10} | {'wall s':>7} | {'fit s':>7} | {'NDCG@10':>8} | {'P@10':>7} | {'MAP@10':>7} "
            f"| {'coverage':>8} |"
        ),
        f"|{'-' * 12}|{'-' * 9}|{'-' * 9}|{'-' * 10}|{'-' * 9}|{'-' * 9}|{'-' * 10}|",
    ]
    rows = [(name, r["wall_seconds"], r["fit_seconds"], r) for name, r in results["engines"].items()]
    rows.append(("popularity", None, None, results["popularity"]))
    for name, wall, fit, r in rows:
        wall_s = f"{wall:>7.1f}" if wall is not None else f"{'-':>7}"
        fit_s = f"{fit:>7.1f}" if fit is not None else f"{'-':>7}"
        lines.append(
            f"| {name:10} | {wall_s} | {fit_s} | {r['ndcg']:>8.4f} | {r['precision']:>7.4f} | "
            f"{r['map']:>7.4f} | {r['coverage']:>8.4f} |"
        )
    if "spark" in results["engines"]:
        lines.append(
            f"\nspark regParam {results['engines']['spark']['reg_param']} "
            f"(= regularization / max mean pairs per customer or product)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DATASET, help="Online Retail CSV [default: %(default)s]")
    parser.add_argument("--master", default="local[*]", help="Spark master [default: %(default)s]")
    parser.add_argument("--factors", type=int, default=None, help="als.factors [default: the settings default]")
    parser.add_argument("--regularization", type=float, default=None)
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--alpha", type=float, default=None)
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of the table.")
    args = parser.parse_args(argv)
    if not args.dataset.is_file():
        print(f"skipped: the Online Retail dataset is not at {args.dataset} (pass --dataset FILE)", file=sys.stderr)
        return 0
    from recommender.errors import RecommenderError

    try:
        with tempfile.TemporaryDirectory(prefix="recommender-bench-engines-") as tmp:
            results = run(args, Path(tmp))
    except RecommenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(results, sort_keys=True) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
