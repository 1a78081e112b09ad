#!/usr/bin/env python
"""Benchmark: the nightly retrain after a search has chosen a recipe, against a plain retrain of that recipe.

On Online Retail (``../shared/datasets/online-retail/online_retail.csv.gz``;
the script says so and exits 0 when it is absent), imported once into a
database under ``--workdir`` with personalization granted. Then, each in a
fresh process, side by side in one run:

1. ``search``: ``recommender train --select --publish`` — the model search,
   recorded as the last search, and its choice published (once);
2. ``nightly``: ``recommender train --publish`` — what cron runs every night:
   no search (the last one is recent), the chosen recipe refitted on the
   data, evaluated, gated, published, housekeeping;
3. ``plain``: the same job with the recipe pinned and no schedule at all
   (``train --no-select`` as if the configured settings were that recipe:
   fit on the split, evaluate, refit on all data, gate, publish, housekeeping);
4. ``fit``: one fit of the recipe on all data (matrix built outside the
   timer), nothing else — for scale.

``nightly`` and ``plain`` are measured ``--repeat`` times, interleaved. The
target is nightly / plain <= 1.3 (median of the repeats).

    python scripts/bench_nightly.py [--repeat 2] [--workdir /tmp/recommender-bench-nightly] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "datasets" / "online-retail" / "online_retail.csv.gz"


def _settings(db_path: Path, model_dir: Path):
    from recommender.config import load_settings

    return load_settings(environ={}, overrides={"db": db_path, "model_dir": model_dir})


def child(kind: str, db_path: Path, model_dir: Path) -> dict:
    from recommender import store
    from recommender.training import recipes, run as training, schedule

    settings = _settings(db_path, model_dir)
    db = store.connect(db_path)
    out: dict = {"kind": kind}
    if kind in ("search", "nightly"):
        started = time.perf_counter()
        result = training.train(db, settings, publish=True, force=True, select=True if kind == "search" else None)
        out["seconds"] = time.perf_counter() - started
        out.update(
            stages=result.seconds,
            ndcg=result.metrics["model"]["ndcg"],
            schedule=result.metrics.get("schedule"),
            published=result.published,
        )
        sel = result.metrics.get("selection") or {}
        out["chosen"] = (sel.get("chosen") or {}).get("label")
        out["candidates"] = len(sel.get("candidates", []))
        out["skipped"] = sel.get("skipped")
        return out
    last = store.last_search(db)
    if not last:
        raise SystemExit("no search recorded: run the search child first")
    recipe = schedule.recipe_of(last, settings)
    if kind == "plain":
        # `train --no-select` fits what choose() returns with selection off: pin it to the recipe.
        settings.selection.enabled = False
        training.choose = lambda *a, **k: (recipe, None)  # noqa: E731 - the bench's pin, this process only
        started = time.perf_counter()
        result = training.train(db, settings, publish=True, force=True)
        out["seconds"] = time.perf_counter() - started
        out.update(stages=result.seconds, ndcg=result.metrics["model"]["ndcg"], published=result.published)
        return out
    data = training.load_data(db, settings)
    full = data.reweighted(recipe.settings.event_weights).matrix(recipe.settings.als)
    from recommender.models.engines import get_engine

    fitter = get_engine("implicit")
    started = time.perf_counter()
    recipes.fit(recipe, full, data.user_ids, data.item_ids, engine="implicit", fitter=fitter)
    out["seconds"] = time.perf_counter() - started
    out["pairs"] = int(full.nnz)
    return out


def run_child(kind: str, db_path: Path, model_dir: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--db", str(db_path), "--model-dir", str(model_dir)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def shop(workdir: Path) -> Path:
    """Online Retail imported once (personalization granted), reused by later runs."""
    from recommender import store
    from recommender.ingest import imports

    db_path = workdir / "online-retail.db"
    if not db_path.exists():
        partial = workdir / "online-retail.partial.db"
        for leftover in workdir.glob("online-retail.partial.db*"):
            leftover.unlink()
        settings = _settings(partial, workdir / "models")
        db = store.connect(partial, create=True)
        started = time.perf_counter()
        done = imports.import_transactions(db, DATASET, settings, grant=("personalization",))
        db.conn.close()
        print(f"imported {done.new:,} events in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        partial.rename(db_path)
        for suffix in ("-wal", "-shm"):
            side = Path(str(partial) + suffix)
            if side.exists():
                side.rename(Path(str(db_path) + suffix))
    return db_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/recommender-bench-nightly"))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of the table.")
    parser.add_argument("--child", choices=["search", "nightly", "plain", "fit"], help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.db, args.model_dir)))
        return
    if not DATASET.exists():
        print(f"skipped: {DATASET} is absent")
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    db_path = shop(args.workdir)
    models = args.workdir / "models"
    search = run_child("search", db_path, models)
    rows: dict[str, list[dict]] = {"nightly": [], "plain": [], "fit": []}
    for _ in range(max(args.repeat, 1)):
        for kind in ("nightly", "plain", "fit"):
            rows[kind].append(run_child(kind, db_path, models))
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in rows.items()}
    report = {
        "search": search,
        "runs": rows,
        "median_seconds": med,
        "ratio_nightly_plain": med["nightly"] / med["plain"],
        "ratio_nightly_fit": med["nightly"] / med["fit"],
    }
    if args.json:
        print(json.dumps(report))
        return
    searched = [r["schedule"]["searched"] for r in rows["nightly"]]
    print(
        f"Online Retail; search: {search['seconds']:.1f} s, {search['candidates']} candidates, chose "
        f"{search['chosen']}; NDCG@10 {search['ndcg']:.4f}"
    )
    print(f"{'run':44}{'seconds (each)':>22}{'median':>9}{'NDCG@10':>9}")
    names = {
        "nightly": "nightly: train --publish (no search)",
        "plain": "plain retrain of the recipe (pinned)",
        "fit": "one fit of the recipe on all data",
    }
    for kind, label in names.items():
        each = ", ".join(f"{r['seconds']:.1f}" for r in rows[kind])
        ndcg = rows[kind][0].get("ndcg")
        print(f"{label:44}{each:>22}{med[kind]:>9.1f}{(f'{ndcg:.4f}' if ndcg is not None else '-'):>9}")
    print(
        f"nightly / plain = {report['ratio_nightly_plain']:.2f} (target <= 1.3); nightly / one fit = "
        f"{report['ratio_nightly_fit']:.2f}; the nightly runs searched: {searched}"
    )
    print(f"nightly stages: {rows['nightly'][0]['stages']}")
    print(f"plain stages:   {rows['plain'][0]['stages']}")


if __name__ == "__main__":
    main()
