#!/usr/bin/env python
"""Benchmark: ``recommender import-transactions`` of an order export, this tree against other checkouts.

Each round imports the file once per checkout, each into a fresh database
(``recommender init`` first, outside the timer), in a child process of its
own; the order of the checkouts alternates from round to round (interleaved),
so a machine that gets busier or quieter during the run weighs on all of them
alike. Reported per checkout: the median over the rounds of the wall time of
the whole command (interpreter start included), of its CPU time (user + sys,
steadier than wall time on a shared machine), and of the import's own
``seconds``. The first round also checks that every checkout stored the same
rows (interactions, customers, products, the product change log).

    python scripts/bench_import.py                              # Online Retail, this tree vs git HEAD
    python scripts/bench_import.py --against /work/base --rounds 7
    python scripts/bench_import.py --file orders.csv.gz --against HEAD~3 --against /path/to/checkout

``--against`` takes a folder (a checkout: its ``recommender`` package is imported) or a git
revision of this repository (exported with ``git archive`` into a temporary folder).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = ROOT.parent / "shared" / "datasets" / "online-retail" / "online_retail.csv.gz"
RUN = "import sys; sys.path.insert(0, sys.argv.pop(1)); from recommender.cli import main; main()"
# What "the same data" means here: the rows of the shop's tables, in id order (consent times are "now").
CHECKED = {
    "interactions": "SELECT customer_id, product_id, event_type, quantity, occurred_at FROM interactions ORDER BY id",
    "customers": "SELECT * FROM customers ORDER BY id",
    "products": "SELECT * FROM products ORDER BY id",
    "product_changes": "SELECT * FROM product_changes ORDER BY seq",
    "consents": "SELECT customer_id, purpose, granted, source FROM consents ORDER BY 1, 2",
}


def checkout(spec: str, scratch: Path) -> Path:
    """A folder holding the code of ``spec`` (a folder as it is, or a git revision exported)."""
    if Path(spec).is_dir():
        return Path(spec).resolve()
    target = scratch / f"rev-{hashlib.sha1(spec.encode()).hexdigest()[:8]}"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", spec], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def run_import(code: Path, db: Path, file: Path, grant: list[str]) -> dict:
    env = {**os.environ, "RECOMMENDER_DB": str(db), "PYTHONPATH": str(code)}
    env.pop("RECOMMENDER_CONFIG", None)
    subprocess.run([sys.executable, "-c", RUN, str(code), "init"], env=env, check=True, capture_output=True)
    args = [sys.executable, "-c", RUN, str(code), "import-transactions", str(file), "--json"]
    for purpose in grant:
        args += ["--grant", purpose]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{code}: import failed:\n{done.stdout}\n{done.stderr}")
    body = json.loads(done.stdout)
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "seconds": body.get("seconds", float("nan")),
        "rows": body.get("rows"),
        "new": body.get("new"),
    }


def fingerprint(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        return {
            t: hashlib.sha256(repr(conn.execute(q).fetchall()).encode()).hexdigest()[:12] for t, q in CHECKED.items()
        }
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="order export [Online Retail]")
    parser.add_argument(
        "--against",
        action="append",
        default=None,
        help="another checkout: a folder or a git revision (repeatable) [HEAD]",
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds [5]")
    parser.add_argument("--grant", action="append", default=None, help="--grant PURPOSE [personalization]")
    args = parser.parse_args()
    if not args.file.exists():
        raise SystemExit(f"{args.file}: not found (the Online Retail export lives in ../shared/datasets)")
    grant = args.grant if args.grant is not None else ["personalization"]
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        scratch = Path(tmp)
        codes = {"this tree": ROOT, **{spec: checkout(spec, scratch) for spec in (args.against or ["HEAD"])}}
        times: dict[str, list[dict]] = {name: [] for name in codes}
        prints: dict[str, dict[str, str]] = {}
        names = list(codes)
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                db = scratch / f"round{r}-{names.index(name)}.db"
                times[name].append(run_import(codes[name], db, args.file, grant))
                if r == 0:
                    prints[name] = fingerprint(db)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
            print(
                f"round {r + 1}/{args.rounds}: "
                + ", ".join(f"{n} {times[n][-1]['wall']:.2f} s wall / {times[n][-1]['cpu']:.2f} s CPU" for n in names),
                file=sys.stderr,
            )
    load = os.getloadavg()
    print(
        f"import-transactions {args.file.name}, {args.rounds} interleaved rounds, fresh database each, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"{'checkout':<28} {'wall s (median)':>16} {'CPU s user+sys':>15} {'import s':>9} {'rows':>9} "
        f"{'new':>8}  same data"
    )
    reference = prints[names[0]]
    for name in names:
        rows = times[name]
        same = (
            "yes"
            if prints[name] == reference
            else "NO: " + ", ".join(t for t in reference if prints[name][t] != reference[t])
        )
        print(
            f"{name[:28]:<28} {statistics.median(r['wall'] for r in rows):>16.2f} "
            f"{statistics.median(r['cpu'] for r in rows):>15.2f} "
            f"{statistics.median(r['seconds'] for r in rows):>9.2f} "
            f"{rows[0]['rows']:>9} {rows[0]['new']:>8}  {same}"
        )
        if name != names[0]:
            wall = statistics.median(r["wall"] for r in times[names[0]]) / statistics.median(r["wall"] for r in rows)
            cpu = statistics.median(r["cpu"] for r in times[names[0]]) / statistics.median(r["cpu"] for r in rows)
            print(f"{'':<28} this tree / {name}: wall x{wall:.2f}, CPU x{cpu:.2f}")


if __name__ == "__main__":
    main()
