"""What each customer's purchase history says at a cut day: the RFM summary every estimator reads.

A :class:`Summary` holds one row per customer with at least one purchase on or before
the cut (arrays, aligned): purchase days ``n`` (a customer-day with a purchase counts
once), repeat purchases ``x = n - 1``, days from the first purchase to the last
(``t_x``) and to the cut (``T``), days since the last purchase (``recency``), total
and mean spend, and spend in recent windows. Nothing after the cut is read, so an
estimator fitted on a summary cannot see the period it is scored on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender.value.transactions import Transactions


@dataclass(frozen=True)
class Summary:
    """One row per customer who bought on or before ``cut`` (a day number; see :mod:`.transactions`)."""

    cut: int
    index: np.ndarray  # position of each customer in ``Transactions.customers``
    n: np.ndarray  # purchase days up to the cut
    first: np.ndarray  # day of the first purchase
    last: np.ndarray  # day of the last purchase up to the cut
    spend: np.ndarray  # total spend up to the cut
    history_start: int  # first day of the shop's history (the oldest purchase of anyone)

    @property
    def x(self) -> np.ndarray:
        """Repeat purchases (BG/NBD's frequency)."""
        return self.n - 1

    @property
    def t_x(self) -> np.ndarray:
        """Days from the first purchase to the last."""
        return (self.last - self.first).astype(float)

    @property
    def T(self) -> np.ndarray:
        """Days from the first purchase to the cut (the customer's observed age)."""
        return (self.cut - self.first).astype(float)

    @property
    def recency(self) -> np.ndarray:
        """Days since the last purchase."""
        return (self.cut - self.last).astype(float)

    @property
    def mean_spend(self) -> np.ndarray:
        return self.spend / np.maximum(self.n, 1)

    def __len__(self) -> int:
        return len(self.index)


def summarize(tx: Transactions, cut: int) -> Summary:
    """The summary of every customer with a purchase on or before day ``cut``."""
    keep = tx.day <= cut
    customer, day, spend = tx.customer[keep], tx.day[keep], tx.spend[keep]
    size = len(tx.customers)
    n = np.bincount(customer, minlength=size)
    index = np.flatnonzero(n)
    first = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(size, np.iinfo(np.int64).min, dtype=np.int64)
    if len(customer):
        _min_max(first, last, customer, day)
    total = np.bincount(customer, weights=spend, minlength=size)
    start = int(tx.day.min()) if len(tx.day) else cut
    return Summary(
        cut=int(cut),
        index=index,
        n=n[index].astype(float),
        first=first[index],
        last=last[index],
        spend=total[index],
        history_start=start,
    )


def _min_max(first: np.ndarray, last: np.ndarray, customer: np.ndarray, day: np.ndarray) -> None:
    """First and last day per customer, vectorised: rows are sorted by (customer, day) (see Transactions)."""
    starts = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
    ends = np.r_[starts[1:], len(customer)] - 1
    first[customer[starts]] = day[starts]
    last[customer[ends]] = day[ends]


def window_spend(tx: Transactions, summary: Summary, days: float) -> np.ndarray:
    """Spend in the ``days`` days up to and including the cut, per summary row."""
    keep = (tx.day <= summary.cut) & (tx.day > summary.cut - days)
    total = np.bincount(tx.customer[keep], weights=tx.spend[keep], minlength=len(tx.customers))
    return total[summary.index]


def decayed_spend(tx: Transactions, summary: Summary, half_life: float) -> np.ndarray:
    """Spend weighted by 0.5 ** (age in days / half_life), per summary row."""
    keep = tx.day <= summary.cut
    weight = tx.spend[keep] * np.exp2(-(summary.cut - tx.day[keep]) / half_life)
    total = np.bincount(tx.customer[keep], weights=weight, minlength=len(tx.customers))
    return total[summary.index]


def future_spend(tx: Transactions, summary: Summary, end: int) -> tuple[np.ndarray, np.ndarray]:
    """``(purchase days, spend)`` in ``(cut, end]`` per summary row: the target of an evaluation."""
    keep = (tx.day > summary.cut) & (tx.day <= end)
    size = len(tx.customers)
    count = np.bincount(tx.customer[keep], minlength=size)[summary.index].astype(float)
    total = np.bincount(tx.customer[keep], weights=tx.spend[keep], minlength=size)[summary.index]
    return count, total
