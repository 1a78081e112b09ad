"""The product catalogue as arrays aligned with a model's items, for vectorised filters.

A storefront asks for "in stock, under £30, kitchen or garden" on every call;
answering that with SQL per request would cost more than the scoring itself.
Each worker keeps the attributes as numpy arrays indexed like the model's
items and refreshes them after ``ttl`` seconds, so stock and visibility
changes show within a minute without any coordination between workers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import sqlite_utils

from . import store

# Filter sets whose ban lists a worker keeps between refreshes.
BANNED_CACHE_SIZE = 64


@dataclass(frozen=True)
class ListFilters:
    """What a caller may narrow a list by; hidden and expired products are always out."""

    categories: tuple[str, ...] = ()
    min_price: float | None = None
    max_price: float | None = None
    in_stock_only: bool = True
    exclude: tuple[str, ...] = ()


class Catalogue:
    def __init__(self, item_ids: Sequence[str], ttl: float = 60.0) -> None:
        self.item_ids = list(item_ids)
        self.item_index = {p: i for i, p in enumerate(self.item_ids)}
        self.ttl = ttl
        self.loaded_at = -math.inf
        self.products: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._banned: dict[ListFilters, np.ndarray] = {}

    def refresh(self, db: sqlite_utils.Database, force: bool = False) -> None:
        if not force and time.monotonic() - self.loaded_at < self.ttl:
            return
        with self._lock:
            rows = store.all_products(db)
            today = dt.date.today().isoformat()
            n = len(self.item_ids)
            category = np.full(n, -1, dtype=np.int32)
            price = np.full(n, np.nan, dtype=np.float64)
            stock = np.full(n, np.nan, dtype=np.float64)
            visible = np.zeros(n, dtype=bool)  # products since deleted stay invisible
            categories: dict[str, int] = {}
            products = {}
            for row in rows:
                row["visible"] = not row["hidden"] and (row["available_until"] is None or row["available_until"] >= today)
                products[row["id"]] = row
                i = self.item_index.get(row["id"])
                if i is None:
                    continue
                if row["category"] is not None:
                    category[i] = categories.setdefault(row["category"], len(categories))
                if row["price"] is not None:
                    price[i] = row["price"]
                if row["in_stock"] is not None:
                    stock[i] = row["in_stock"]
                visible[i] = row["visible"]
            self.category, self.price, self.stock, self.visible = category, price, stock, visible
            self.category_codes = categories
            self.products = products
            self._banned = {}
            self.loaded_at = time.monotonic()

    def mask(self, filters: ListFilters) -> np.ndarray:
        """Items a list may contain under ``filters``."""
        allow = self.visible.copy()
        if filters.categories:
            codes = [self.category_codes[c] for c in filters.categories if c in self.category_codes]
            allow &= np.isin(self.category, codes)
        with np.errstate(invalid="ignore"):
            if filters.min_price is not None:
                allow &= self.price >= filters.min_price
            if filters.max_price is not None:
                allow &= self.price <= filters.max_price
        if filters.in_stock_only:
            allow &= ~(self.stock <= 0)  # NaN = stock not tracked = available
        for pid in filters.exclude:
            i = self.item_index.get(pid)
            if i is not None:
                allow[i] = False
        return allow

    def banned(self, filters: ListFilters) -> np.ndarray:
        """Indices a list may not contain under ``filters`` (int32, maybe repeated), for the scorer.

        Every request of a storefront asks with much the same filters, so the
        index list is kept per filter set (the ``exclude`` ids aside) until the
        next refresh: a request then pays nothing for filtering 100k products.
        """
        key = dataclasses.replace(filters, exclude=())
        cached = self._banned.get(key)
        if cached is None:
            cached = np.flatnonzero(~self.mask(key)).astype(np.int32)
            if len(self._banned) >= BANNED_CACHE_SIZE:
                self._banned = {}
            self._banned[key] = cached
        extra = [i for i in (self.item_index.get(pid) for pid in filters.exclude) if i is not None]
        return np.concatenate([cached, np.asarray(extra, np.int32)]) if extra else cached

    def allows(self, product: dict[str, Any], filters: ListFilters) -> bool:
        """The same rules as :meth:`mask`, for one product row."""
        if not product["visible"] or product["id"] in filters.exclude:
            return False
        if filters.categories and product["category"] not in filters.categories:
            return False
        price = product["price"]
        if filters.min_price is not None and (price is None or price < filters.min_price):
            return False
        if filters.max_price is not None and (price is None or price > filters.max_price):
            return False
        if filters.in_stock_only and product["in_stock"] is not None and product["in_stock"] <= 0:
            return False
        return True

    def describe(self, product_id: str) -> dict[str, Any]:
        row = self.products.get(product_id, {})
        return {
            "product_id": product_id,
            "name": row.get("name"),
            "category": row.get("category"),
            "price": row.get("price"),
            "in_stock": row.get("in_stock"),
        }

    def diversify(self, ranked: Sequence[int], n: int, diversity: float) -> list[int]:
        """At most ``max(1, ceil(n · (1 − diversity)))`` items of one category, in rank order."""
        if diversity <= 0:
            return list(ranked[:n])
        cap = max(1, math.ceil(n * (1.0 - diversity)))
        taken: dict[int, int] = {}
        out = []
        for i in ranked:
            c = int(self.category[i])
            if c >= 0 and taken.get(c, 0) >= cap:
                continue
            taken[c] = taken.get(c, 0) + 1
            out.append(int(i))
            if len(out) == n:
                break
        return out
