#!/usr/bin/env python
"""Benchmark: a 7-day birthday campaign over 1,000,000 customers with a trained model.

1. A seeded synthetic shop is written once to ``--workdir`` (reused when it is
   already there): ``--customers`` customers with birthdays spread over the
   year (29 February included), anniversaries for half of them, a dozen time
   zones from Pacific/Pago_Pago to Pacific/Kiritimati, marketing consent for
   90 % (the rest withdrawn or never asked), personalization consent for 60 %;
   ``--products`` products with tracked or untracked stock, a few hidden or
   expired; ``--events`` events from ``--active`` customers. A model is
   trained and published by the real retrain job.
2. The database is copied so the ledger starts empty, and ONLY the campaign is
   timed: ``recommender.campaigns.run`` (the function behind ``recommender
   campaign run``), writing the ledger, the decision log and a CSV export
   (replaced with ``force``). Personal lists fold in each customer's current
   history through :mod:`recommender.serving.ranking`, as the API does.

It prints the time, the counts, and whether every eligible customer (in the
window, with marketing consent) got an offer. Target: <= 30 s.

    python scripts/bench_campaign.py
    python scripts/bench_campaign.py --customers 100000 --active 10000 --events 100000
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ZONES = [
    "Europe/London",
    "Europe/Paris",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Pacific/Kiritimati",
    "Pacific/Honolulu",
    "Pacific/Pago_Pago",
    "Asia/Kolkata",
    "America/Sao_Paulo",
]


def make_shop(workdir: Path, customers: int, products: int, active: int, events: int, seed: int) -> None:
    from recommender import store
    from recommender.config import load_settings
    from recommender.training import run as training

    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    settings = load_settings(environ={}, overrides={"db": workdir / "shop.db", "model_dir": workdir / "models"})
    settings.als.factors = 32
    settings.als.iterations = 6
    rng = np.random.default_rng(seed)
    db = store.connect(settings.db, create=True)
    db.execute("PRAGMA cache_size = -2000000")  # 2 GB page cache: index inserts stay in memory
    started = time.perf_counter()

    ids = [f"c{i:07d}" for i in range(customers)]  # generated in key order: the index grows at its end
    birth = (np.datetime64("1940-01-01") + rng.integers(0, 68 * 365, customers)).astype(str)
    anniversary = (np.datetime64("1975-01-01") + rng.integers(0, 45 * 365, customers)).astype(str)
    married = rng.random(customers) < 0.5
    zones = rng.choice(
        np.array(ZONES), customers, p=[0.3, 0.15, 0.12, 0.1, 0.08, 0.06, 0.05, 0.02, 0.04, 0.02, 0.04, 0.02]
    )
    store.upsert_customers(
        db,
        (
            (c, f"{c}@example.com", f"Customer {c[1:]}", str(b), str(a) if m else None, str(z), "2025-01-01T00:00:00Z")
            for c, b, a, m, z in zip(ids, birth, anniversary, married, zones)
        ),
    )
    log(f"{customers:,} customers", started)

    categories = rng.integers(0, 40, products)
    stock = np.where(rng.random(products) < 0.3, -1, rng.integers(0, 200, products))
    hidden = rng.random(products) < 0.02
    expired = rng.random(products) < 0.01
    prices = np.round(rng.uniform(2, 150, products), 2)
    store.upsert_products(
        db,
        (
            (
                f"p{j:06d}",
                f"Product {j}",
                f"cat{categories[j]}",
                float(prices[j]),
                None if stock[j] < 0 else int(stock[j]),
                int(hidden[j]),
                "2025-12-31" if expired[j] else None,
            )
            for j in range(products)
        ),
    )

    marketing = rng.choice(np.array([1, 0, -1]), customers, p=[0.9, 0.05, 0.05])  # -1 = never asked
    personal = rng.random(customers) < 0.6
    rows = [(c, "marketing", bool(m), "2025-01-01T00:00:00Z", "bench") for c, m in zip(ids, marketing) if m >= 0]
    rows += [(c, "personalization", True, "2025-01-01T00:00:00Z", "bench") for c, p in zip(ids, personal) if p]
    store.set_consents(db, rows)
    log(f"{len(rows):,} consents", started)

    # Active customers are spread over the whole id range; taste = a few favourite categories.
    shoppers = np.sort(rng.choice(customers, active, replace=False))
    users = shoppers[rng.integers(0, active, events)]
    taste = rng.integers(0, 40, customers)
    by_category = [np.flatnonzero(categories == c) for c in range(40)]
    items = rng.zipf(1.3, events) % products
    own = rng.random(events) < 0.7
    for c in range(40):
        pick = own & (taste[users] == c)
        items[pick] = by_category[c][(rng.zipf(1.2, int(pick.sum())) - 1) % len(by_category[c])]
    kinds = rng.choice(np.array(["view", "add_to_cart", "purchase"]), events, p=[0.7, 0.2, 0.1])
    times = 1_735_689_600 + rng.integers(0, 365 * 86400, events)
    order = np.lexsort((times, items, users))
    store.upsert_interactions(
        db,
        (
            (ids[u], f"p{i:06d}", str(k), 1.0, int(t))
            for u, i, k, t in zip(users[order], items[order], kinds[order], times[order])
        ),
    )
    log(f"{events:,} events", started)
    result = training.train(db, settings, publish=True, force=True)
    log(
        f"model {result.version}: {result.data['customers']:,} customers x {result.data['products']:,} products, "
        f"NDCG {result.metrics['model']['ndcg']:.4f} (popularity {result.metrics['popularity']['ndcg']:.4f})",
        started,
    )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    (workdir / "READY").write_text(json.dumps({"customers": customers, "products": products, "events": events}))


def log(message: str, started: float) -> None:
    print(f"  [{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--active", type=int, default=50_000, help="Customers with events (trained into the model).")
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--date", default="2026-06-01")
    parser.add_argument("--days-ahead", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/recommender-bench-campaign"))
    args = parser.parse_args()

    shape = {"customers": args.customers, "products": args.products, "events": args.events}
    ready = args.workdir / "READY"
    if not ready.exists() or json.loads(ready.read_text()) != shape:
        print(f"building the shop in {args.workdir} (once)", file=sys.stderr)
        make_shop(args.workdir, args.customers, args.products, args.active, args.events, args.seed)
    run_db = args.workdir / "run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{run_db}{suffix}").unlink(missing_ok=True)
    shutil.copy(args.workdir / "shop.db", run_db)  # a fresh, empty ledger for every timed run

    from recommender import campaigns, store
    from recommender.config import load_settings

    settings = load_settings(environ={}, overrides={"db": run_db, "model_dir": args.workdir / "models"})
    db = store.connect(run_db, create=True)
    request = campaigns.CampaignRequest(occasion="birthday", date=args.date, days_ahead=args.days_ahead)
    started = time.perf_counter()
    result = campaigns.run(db, settings, request, out=args.workdir / "offers.csv", force=True)
    seconds = time.perf_counter() - started
    summary = result.summary()
    skipped = summary["skipped"]
    in_window = (
        summary["offers_total"] + skipped["no_marketing_consent"] + skipped["already_offered"] + skipped["no_products"]
    )
    eligible = in_window - skipped["no_marketing_consent"] - skipped["already_offered"]
    ledger = store.counts(db)["offers"]
    report = {
        "customers": args.customers,
        "window": f"{args.date} + {args.days_ahead} days",
        "seconds": round(seconds, 2),
        "in_window": in_window,
        "eligible": eligible,
        "offers": summary["offers_total"],
        "ledger_rows": ledger,
        "every_eligible_customer_has_an_offer": summary["offers_total"] == eligible == ledger,
        "short_offers": summary["short_offers"],
        "modes": summary["modes"],
        "skipped": skipped,
        "capped_choices": summary["capped_choices"],
        "capped_first_pick": summary["capped_first_pick"],
        "product_cap": summary["product_cap"],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(report, indent=2))
    print(
        f"{args.days_ahead}-day birthday campaign over {args.customers:,} customers: {seconds:.1f} s, "
        f"{summary['offers_total']:,} offers for {eligible:,} eligible customers (target <= 30 s)"
    )


if __name__ == "__main__":
    main()
