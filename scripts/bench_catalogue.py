#!/usr/bin/env python
"""Benchmark: what a serving worker's catalogue refresh costs, and what the change log costs imports.

In one run, on a fresh SQLite file with ``--products`` products (default 1,000,000):

1. importing the products with the ``product_changes`` triggers (as every shop
   runs) and, side by side, into a second file with the triggers dropped;
2. a full catalogue load (what every refresh did before the change log, every
   ``serve.catalogue_ttl_seconds`` in every worker);
3. a refresh with nothing changed, and after ``--changes`` updated products
   (stock and price), a few added and a few deleted ones;
4. re-importing the whole feed unchanged (the triggers log nothing);
5. a feed changing every product's price, read in the request (a batch job's
   catalogue) and by a serving catalogue in its background thread, with the
   time a request's catalogue work takes meanwhile.

Prints seconds for each (imports in CPU seconds, refreshes in wall time);
ratios are the result (absolute times on a shared machine are noise).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def feed(n: int, seed: int, price_shift: float = 0.0) -> list[tuple]:
    rng = np.random.default_rng(seed)
    cats = rng.integers(0, 40, size=n)
    prices = rng.integers(1, 200, size=n).astype(float) + price_shift
    stock = rng.integers(0, 50, size=n)
    return [(f"p{i:07d}", f"Product {i}", f"cat{cats[i]}", float(prices[i]), int(stock[i]), 0, None) for i in range(n)]


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def cpu(fn) -> float:
    """CPU seconds of this process (imports are measured so: the disk and the other jobs are noise)."""
    started = time.process_time()
    fn()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    from recommender import store
    from recommender.serving.catalogue import Catalogue, ListFilters

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-catalogue-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = feed(args.products, 0)
    plain = store.connect(work / "plain.db", create=True)
    for trigger in ("products_added", "products_changed", "products_removed"):
        plain.execute(f"DROP TRIGGER {trigger}")
    db = store.connect(work / "shop.db", create=True)
    half = len(rows) // 2  # interleaved halves, so a burst of load elsewhere hits both alike
    t_plain = cpu(lambda: store.upsert_products(plain, rows[:half]))
    t_logged = cpu(lambda: store.upsert_products(db, rows[:half]))
    t_logged += cpu(lambda: store.upsert_products(db, rows[half:]))
    t_plain += cpu(lambda: store.upsert_products(plain, rows[half:]))
    print(
        f"import {args.products:,} products: {t_logged:.2f} s CPU with the change log, {t_plain:.2f} s without "
        f"(x{t_logged / t_plain:.2f})"
    )

    item_ids = [r[0] for r in rows[: min(len(rows), 200_000)]]
    catalogue = Catalogue(item_ids, ttl=0.0)
    t_full = timed(lambda: catalogue.refresh(db))
    t_none = timed(lambda: catalogue.refresh(db))
    rng = np.random.default_rng(1)
    picks = rng.choice(args.products, size=args.changes, replace=False)
    changed = [(r[0], r[1], r[2], r[3] + 1.0, 0, r[5], r[6]) for r in (rows[i] for i in picks)]
    added = [(f"n{i:07d}", f"New {i}", "cat1", 5.0, 3, 0, None) for i in range(10)]
    store.upsert_products(db, changed + added)
    with db.conn:
        db.conn.executemany("DELETE FROM products WHERE id = ?", [(rows[i][0],) for i in picks[:10]])
    t_patch = timed(lambda: catalogue.refresh(db))
    assert catalogue.full_loads == 1, "the refresh after the changes read the whole table"
    before = catalogue.seq
    touched = {c[0] for c in changed} | {rows[i][0] for i in picks[:10]}
    unchanged = [r for r in rows if r[0] not in touched]
    t_again = cpu(lambda: store.upsert_products(db, unchanged))
    assert db.execute("SELECT max(seq) FROM product_changes").fetchone()[0] == before
    print(
        f"full load {t_full:.2f} s; refresh, nothing changed {t_none * 1000:.2f} ms; refresh after "
        f"{args.changes:,} changed + 10 added + 10 deleted {t_patch * 1000:.1f} ms "
        f"(full / incremental x{t_full / t_patch:.0f})"
    )
    print(f"re-import of the unchanged feed: {t_again:.2f} s CPU, nothing logged")

    # 5. A feed changing every product's price: read in the request (a batch job's catalogue) against
    #    a serving catalogue, which reads it in a thread while its requests go on.
    store.upsert_products(db, feed(args.products, 0, price_shift=0.5))
    blocking, serving = Catalogue(item_ids, ttl=0.0), Catalogue(item_ids, ttl=0.0, background=True)
    blocking.adopt(catalogue)
    serving.adopt(catalogue)
    t_block = timed(lambda: blocking.refresh(db))
    started = time.perf_counter()
    serving.refresh(db)
    t_return = time.perf_counter() - started
    waits = []
    sample = item_ids[:10]
    while not serving.wait(timeout=0):  # a request's catalogue work, timed while the thread reads
        t0 = time.perf_counter()
        serving.allowed(ListFilters())
        [serving.describe(p) for p in sample]
        waits.append(time.perf_counter() - t0)
        time.sleep(0.005)
    t_done = time.perf_counter() - started
    assert all(serving.products[p] == blocking.products[p] for p in sample if p in blocking.products)
    waits_ms = np.array(waits or [0.0]) * 1000
    print(
        f"every price changed: read in the request {t_block:.2f} s; in the background the refresh returned in "
        f"{t_return * 1000:.1f} ms and the new products were in after {t_done:.2f} s; "
        f"{len(waits)} request-sized reads meanwhile: p50 {np.percentile(waits_ms, 50):.2f} ms, "
        f"p99 {np.percentile(waits_ms, 99):.2f} ms, max {waits_ms.max():.2f} ms"
    )


if __name__ == "__main__":
    main()
