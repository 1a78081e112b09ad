"""Purchases per customer-day with their spend: what customer value is computed from.

A transaction is a customer-day with at least one purchase event (the event types of
``purchase_events``); its spend is the sum of quantity x price of that day's purchases
(the event's own price, else the product's catalogue price). Only customers who
granted the purpose configured for profiling (``value.purpose``, default
``personalization``) are read; the others are counted in ``not_profiled`` and
nothing else about them is kept.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import sqlite_utils

from recommender import store
from recommender.config import Settings

EPOCH = dt.date(1970, 1, 1)


def day_number(day: dt.date | str) -> int:
    """Days since 1970-01-01 of a date (or ``YYYY-MM-DD``)."""
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    return (day - EPOCH).days


def day_date(number: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(number))


@dataclass(frozen=True)
class Transactions:
    """Rows sorted by (customer, day), one per customer-day; ``customer`` indexes ``customers``."""

    customers: np.ndarray  # customer ids (object array), sorted
    customer: np.ndarray  # int64 index into ``customers`` per row
    day: np.ndarray  # int64 day number per row
    spend: np.ndarray  # float64 spend per row
    not_profiled: int = 0  # customers with purchases who did not grant the purpose
    purpose: str = field(default="personalization")

    @classmethod
    def from_rows(
        cls, customer_ids, days, spend, not_profiled: int = 0, purpose: str = "personalization"
    ) -> Transactions:
        """Build from unsorted rows (several per customer-day allowed: they are summed)."""
        ids = np.asarray(customer_ids, dtype=object)
        days = np.asarray(days, dtype=np.int64)
        spend = np.asarray(spend, dtype=float)
        if len(ids) == 0:
            return cls(
                np.array([], dtype=object),
                np.array([], dtype=np.int64),
                np.array([], dtype=np.int64),
                np.array([], dtype=float),
                not_profiled,
                purpose,
            )
        customers, customer = np.unique(ids, return_inverse=True)
        customer = customer.astype(np.int64)
        order = np.lexsort((days, customer))
        customer, days, spend = customer[order], days[order], spend[order]
        new = np.r_[True, (customer[1:] != customer[:-1]) | (days[1:] != days[:-1])]
        groups = np.cumsum(new) - 1
        total = np.bincount(groups, weights=spend)
        return cls(customers, customer[new], days[new], total, not_profiled, purpose)

    @property
    def first_day(self) -> int | None:
        return int(self.day.min()) if len(self.day) else None

    @property
    def last_day(self) -> int | None:
        return int(self.day.max()) if len(self.day) else None


def load(db: sqlite_utils.Database, settings: Settings) -> Transactions:
    """Every consenting customer's purchase days from the store (purpose: ``settings.value.purpose``)."""
    purpose = settings.value.purpose
    types = tuple(settings.purchase_events)
    ids, days, spend = [], [], []
    for customer_id, day, amount in store.purchase_days(db, purpose, types):
        ids.append(customer_id)
        days.append(day)
        spend.append(amount or 0.0)
    not_profiled = store.purchases_not_profiled(db, purpose, types)
    return Transactions.from_rows(ids, days, spend, not_profiled=not_profiled, purpose=purpose)
