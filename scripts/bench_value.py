#!/usr/bin/env python
"""Benchmark: scoring 1,000,000 customers with the value model, on 2 cores.

A seeded shop is simulated in memory from the BG/NBD story (purchase rate
Gamma(0.5, 5 weeks), dropout Beta(0.8, 2.5) after each repeat purchase,
first purchases spread over two years, spend per purchase Gamma-Gamma), as
purchase days with spend: the :class:`recommender.value.transactions.Transactions`
that the store read gives. Then ONLY the nightly scoring is timed:
:func:`recommender.value.model.score` — selection of the estimators on a
validation period (every candidate fitted and scored), the fit of the chosen
ones on the whole history, expected purchases and spend over 90/180/365 days,
the chance of buying and the RFM segment of every customer. The process is
pinned to 2 cores (and BLAS to 2 threads) first. Target: <= 60 s.

    python scripts/bench_value.py
    python scripts/bench_value.py --customers 100000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(name, "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender.config import Settings  # noqa: E402
from recommender.value import model  # noqa: E402
from recommender.value.transactions import Transactions, day_number  # noqa: E402


def simulate(customers: int, seed: int) -> Transactions:
    """Customer-days with spend, sorted by (customer, day), from the BG/NBD and Gamma-Gamma stories (vectorised)."""
    rng = np.random.default_rng(seed)
    start, days = day_number("2023-01-01"), 730
    lam = rng.gamma(0.5, 1 / 5.0, customers) / 7.0  # purchases per day while active
    p = rng.beta(0.8, 2.5, customers)
    first = rng.integers(0, days, customers)
    nu = rng.gamma(3.0, 1 / 60.0, customers)  # Gamma-Gamma: mean value p/nu
    owner, when = [np.arange(customers)], [first.astype(float)]
    t, alive, who = first.astype(float), np.ones(customers, bool), np.arange(customers)
    while alive.any():
        idx = who[alive]
        t[idx] += rng.exponential(1.0, len(idx)) / lam[idx]
        inside = t[idx] < days
        idx = idx[inside]
        alive[:] = False
        alive[idx] = True
        owner.append(idx)
        when.append(t[idx].copy())
        drop = rng.random(len(idx)) < p[idx]
        alive[idx[drop]] = False
    owner = np.concatenate(owner)
    day = start + np.floor(np.concatenate(when)).astype(np.int64)
    order = np.lexsort((day, owner))
    owner, day = owner[order], day[order]
    new = np.r_[True, (owner[1:] != owner[:-1]) | (day[1:] != day[:-1])]
    owner, day = owner[new], day[new]
    spend = rng.gamma(3.0, 1.0, len(owner)) / nu[owner]
    ids = np.array([f"C{i:07d}" for i in range(customers)], dtype=object)  # sorted as the store's ids are
    return Transactions(ids, owner.astype(np.int64), day, spend)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))[: args.cores]
        os.sched_setaffinity(0, cores)
    began = time.perf_counter()
    tx = simulate(args.customers, args.seed)
    simulated = time.perf_counter() - began
    settings = Settings()
    began = time.perf_counter()
    scores = model.score(tx, settings)
    seconds = time.perf_counter() - began
    segments, counts = np.unique(scores.segment, return_counts=True)
    print(
        json.dumps(
            {
                "customers": len(scores.customer_ids),
                "purchase_days": len(tx.day),
                "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                "simulate_seconds": round(simulated, 1),
                "score_seconds": round(seconds, 1),
                "chosen": scores.choice.value.name,
                "count_model": scores.choice.count.name,
                "expected_spend_365d": round(float(scores.spend[365.0].sum()), 0),
                "segments": {str(s): int(c) for s, c in zip(segments, counts)},
                "target_seconds": 60,
                "within_target": seconds <= 60,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
