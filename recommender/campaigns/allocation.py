"""Allocation: who gets which product when stock, caps and the spread rule bound how often it is offered.

Caps, per product, in units (one offer = one unit):

- **stock over time** — ``min(stock, --max-per-product)`` (untracked stock =
  no limit) minus the units already promised by ledger offers that are
  still valid on the run's first local date, so runs on consecutive days
  never promise more in total than either bound allows;
- **spread** — in one run no product goes into more than
  ``max(1, ceil(campaigns.max_product_share × customers))`` offers while
  another product can still fill the slot; a second pass lifts only this
  rule for offers still short, so a shop with nothing else still fills them.

Customers come in a seeded random order and are served in rounds: each round
every customer takes their best product that still has room (their personal
list, then the occasion's popular list). Round-robin spreads a scarce
bestseller over as many customers as it has room for, instead of the first
few taking it with their second and third picks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from recommender.campaigns.eligibility import Candidate


def hard_caps(stock: np.ndarray, max_per_product: int | None, outstanding: np.ndarray) -> np.ndarray:
    """Units each catalogue row may still be offered: stock or the cap, less what earlier offers promised."""
    cap = np.where(np.isnan(stock), np.inf, stock)
    if max_per_product is not None:
        cap = np.minimum(cap, max_per_product)
    return np.maximum(cap - outstanding, 0.0)


def spread_cap(share: float, customers: int) -> int | None:
    """The most offers one product may join in a run under the spread rule; ``None`` = rule off."""
    return None if share >= 1 else max(1, math.ceil(share * customers))


def allocate(
    order: list[Candidate],
    k: int,
    hard: Sequence[float],
    soft: Sequence[float],
    until: Sequence[int],
    popular: dict[str, list[int]],
    bought: dict[str, set[int]],
) -> None:
    """Fill each candidate's ``chosen`` (and cap statistics): a pass under ``soft`` caps, then ``hard`` for the short.

    ``soft`` ≤ ``hard`` everywhere; both passes share one count per product.
    """
    count = [0] * len(hard)
    _round_robin(order, k, soft, count, until, popular, bought, track=True)
    short = [c for c in order if len(c.chosen) < k]
    if short and list(soft) != list(hard):
        _round_robin(short, k, hard, count, until, popular, bought, track=False)


def _round_robin(
    order: list[Candidate],
    k: int,
    caps: Sequence[float],
    count: list[int],
    until: Sequence[int],
    popular: dict[str, list[int]],
    bought: dict[str, set[int]],
    *,
    track: bool,
) -> None:
    """Rounds until every customer has ``k`` products or nothing left that fits them.

    Products only ever fill up, so each customer keeps a cursor into their
    personal and popular lists and each popular list a cursor to its first
    product with room: the whole pass is linear in what is scanned.
    ``track`` records, per customer, the rank of their first product among
    the choices they could take (``first_rank``) and whether a full product
    was ever passed over for them (``capped``).
    """
    first_open = dict.fromkeys(popular, 0)
    cursor = {id(c): [0, 0] for c in order}
    done: set[int] = set()
    for round_no in range(k):
        for c in order:
            if id(c) in done or len(c.chosen) >= k:
                continue
            pos = cursor[id(c)]
            own = bought.get(c.customer_id, ())
            passed = 0  # full products this customer could otherwise have taken, this turn
            pick = None
            while pos[0] < len(c.personal):
                p = c.personal[pos[0]]
                pos[0] += 1
                if until[p] < c.date or p in c.chosen:
                    continue
                if count[p] >= caps[p]:
                    passed += 1
                    continue
                pick = p
                c.from_model += 1
                break
            if pick is None:
                ranked = popular[c.occasion]
                start = first_open[c.occasion]
                while start < len(ranked) and count[ranked[start]] >= caps[ranked[start]]:
                    start += 1
                first_open[c.occasion] = start
                i = pos[1]
                if track and i < start:  # everything skipped here is full: count what they could have had
                    passed += sum(
                        1
                        for p in ranked[i:start]
                        if until[p] >= c.date and p not in c.chosen and p not in own and p not in c.personal
                    )
                i = max(i, start)
                while i < len(ranked):
                    p = ranked[i]
                    i += 1
                    if until[p] < c.date or p in c.chosen or p in own:
                        continue
                    if count[p] >= caps[p]:
                        passed += p not in c.personal
                        continue
                    pick = p
                    break
                pos[1] = i
            if track and passed:
                c.capped = True
            if pick is None:
                done.add(id(c))
                continue
            if track and round_no == 0:
                c.first_rank = 1 + passed
            c.chosen.append(pick)
            count[pick] += 1
