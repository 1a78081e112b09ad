"""The product catalogue as arrays, and the one definition of which products a list may hold.

A storefront asks for "in stock, under £30, kitchen or garden" on every call;
answering that with SQL per request would cost more than the scoring itself.
Each worker keeps the attributes as numpy arrays and refreshes them after
``ttl`` seconds, so stock and visibility changes show within a minute without
any coordination between workers.

Every filter rule lives in :meth:`Catalogue.product_mask`, over all products
of the shop. The views a caller needs are read from it: :meth:`Catalogue.mask`
aligns it with a model's items (for the scorer), :meth:`Catalogue.allows`
answers for one product (for popular lists, whose products a model may not
know), and campaigns pass their own rules — available on the occasion date,
gift categories, the price band — as a :class:`ListFilters` too. Three copies
of the rules used to drift apart; one cannot.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Iterator, Mapping
from typing import Any, Sequence

import numpy as np
import sqlite_utils


# Filter sets whose masks and ban lists a worker keeps between refreshes.
BANNED_CACHE_SIZE = 64
_NEVER = int(np.datetime64("9999-12-31", "D").astype(np.int64))


@dataclass(frozen=True)
class ListFilters:
    """What a caller may narrow a list by; hidden and expired products are always out.

    ``available_on`` (``YYYY-MM-DD``) is the date a product must still be
    available on (``available_until`` not before it); ``None`` means the
    catalogue's today. A campaign sets it to the occasion date.
    """

    categories: tuple[str, ...] = ()
    min_price: float | None = None
    max_price: float | None = None
    in_stock_only: bool = True
    exclude: tuple[str, ...] = ()
    available_on: str | None = None


def day_number(text: str | None, fallback: int = _NEVER) -> int:
    """Days since 1970-01-01 of a ``YYYY-MM-DD...`` text; ``fallback`` when absent or unreadable."""
    if not text:
        return fallback
    try:
        return int(np.datetime64(text[:10], "D").astype(np.int64))
    except ValueError:
        return fallback


@dataclass
class _Snapshot:
    """One refresh's arrays, swapped in whole so a request never mixes two refreshes."""

    ids: list[str]
    index: dict[str, int]
    names: list[str | None]
    products: dict[str, dict[str, Any]]
    category: np.ndarray  # per catalogue row: code into category_codes, -1 = none
    price: np.ndarray
    stock: np.ndarray  # NaN = not tracked
    hidden: np.ndarray
    until: np.ndarray  # day number of available_until (far future when absent)
    category_codes: dict[str, int]
    rows_of_items: np.ndarray  # model item -> catalogue row; -1 = deleted since training
    item_category: np.ndarray  # category code per model item
    today_day: int
    masks: dict[ListFilters, np.ndarray] = field(default_factory=dict)
    banned: dict[ListFilters, np.ndarray] = field(default_factory=dict)
    item_masks: dict[ListFilters, np.ndarray] = field(default_factory=dict)


class _Rows(Mapping):
    """Product rows by id, as dicts made on access from the refresh's columns (not a million dicts per refresh)."""

    def __init__(self, ids: list[str], names: list, cats: list, prices: list, stocks: list, hiddens: list,
                 untils: list, visible: np.ndarray) -> None:
        self.index = {p: j for j, p in enumerate(ids)}
        self._ids, self._names, self._cats, self._prices = ids, names, cats, prices
        self._stocks, self._hiddens, self._untils, self._visible = stocks, hiddens, untils, visible

    def __getitem__(self, product_id: str) -> dict[str, Any]:
        j = self.index[product_id]
        return {"id": self._ids[j], "name": self._names[j], "category": self._cats[j], "price": self._prices[j],
                "in_stock": self._stocks[j], "hidden": self._hiddens[j], "available_until": self._untils[j],
                "visible": bool(self._visible[j])}

    def __contains__(self, product_id: object) -> bool:
        return product_id in self.index

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


class Catalogue:
    """All products as arrays (ordered by id), aligned on demand with a model's ``item_ids``."""

    def __init__(self, item_ids: Sequence[str], ttl: float = 60.0) -> None:
        self.item_ids = list(item_ids)
        self.item_index = {p: i for i, p in enumerate(self.item_ids)}
        self.ttl = ttl
        self.loaded_at = -math.inf
        self._lock = threading.Lock()
        self._snap = _Snapshot([], {}, [], {}, *(np.zeros(0) for _ in range(5)), {},
                               np.full(len(self.item_ids), -1, dtype=np.int64),
                               np.full(len(self.item_ids), -1, dtype=np.int32), 0)

    def refresh(self, db: sqlite_utils.Database, force: bool = False) -> None:
        if not force and time.monotonic() - self.loaded_at < self.ttl:
            return
        with self._lock:
            # Columns, not a dict per row: a million products refresh in seconds, every ``ttl``.
            rows = db.execute("SELECT id, name, category, price, in_stock, hidden, available_until "
                              "FROM products ORDER BY id").fetchall()  # BINARY order = Python's str order
            today_day = int(np.datetime64(dt.date.today().isoformat(), "D").astype(np.int64))
            ids, names, cats, prices, stocks, hiddens, untils = (list(c) for c in zip(*rows)) if rows else (
                [] for _ in range(7))
            del rows
            categories: dict[str, int] = {}
            category = np.array([-1 if c is None else categories.setdefault(c, len(categories)) for c in cats],
                                dtype=np.int32)
            price = np.array([np.nan if v is None else v for v in prices], dtype=np.float64)
            stock = np.array([np.nan if v is None else v for v in stocks], dtype=np.float64)
            hidden = np.array(hiddens, dtype=bool)
            until = np.array([_NEVER if u is None else day_number(u) for u in untils], dtype=np.int64)
            products = _Rows(ids, names, cats, prices, stocks, hiddens, untils, ~hidden & (until >= today_day))
            index = products.index
            rows_of_items = np.array([index.get(p, -1) for p in self.item_ids], dtype=np.int64)
            item_category = np.full(len(self.item_ids), -1, dtype=np.int32)
            known = rows_of_items >= 0
            item_category[known] = category[rows_of_items[known]]
            self._snap = _Snapshot(ids, index, names, products, category, price, stock, hidden,
                                   until, categories, rows_of_items, item_category, today_day)
            self.loaded_at = time.monotonic()

    # --- what callers read -----------------------------------------------------------------

    @property
    def products(self) -> dict[str, dict[str, Any]]:
        return self._snap.products

    @property
    def ids(self) -> list[str]:
        """Product ids of the catalogue rows, ordered by id."""
        return self._snap.ids

    @property
    def index(self) -> dict[str, int]:
        return self._snap.index

    @property
    def names(self) -> list[str | None]:
        return self._snap.names

    @property
    def stock(self) -> np.ndarray:
        return self._snap.stock

    @property
    def until(self) -> np.ndarray:
        return self._snap.until

    @property
    def rows_of_items(self) -> np.ndarray:
        return self._snap.rows_of_items

    @property
    def category(self) -> np.ndarray:
        """Category code per model item (for diversity), -1 = none or unknown."""
        return self._snap.item_category

    # --- the rules, once ----------------------------------------------------------------

    def product_mask(self, filters: ListFilters) -> np.ndarray:
        """Catalogue rows (ordered by id) a list may contain under ``filters``: THE filter rules."""
        return self._product_mask(self._snap, filters)

    @staticmethod
    def _product_mask(snap: _Snapshot, filters: ListFilters) -> np.ndarray:
        key = dataclasses.replace(filters, exclude=())
        cached = snap.masks.get(key)
        if cached is None:
            on = snap.today_day if key.available_on is None else day_number(key.available_on, snap.today_day)
            allow = ~snap.hidden & (snap.until >= on)
            if key.categories:
                codes = [snap.category_codes[c] for c in key.categories if c in snap.category_codes]
                allow &= np.isin(snap.category, codes)
            with np.errstate(invalid="ignore"):
                if key.min_price is not None:
                    allow &= snap.price >= key.min_price  # unknown price: outside any band
                if key.max_price is not None:
                    allow &= snap.price <= key.max_price
            if key.in_stock_only:
                allow &= ~(snap.stock <= 0)  # NaN = stock not tracked = available
            if len(snap.masks) >= BANNED_CACHE_SIZE:
                snap.masks.clear()
            snap.masks[key] = cached = allow
        if not filters.exclude:
            return cached
        allow = cached.copy()
        for pid in filters.exclude:
            j = snap.index.get(pid)
            if j is not None:
                allow[j] = False
        return allow

    def mask(self, filters: ListFilters) -> np.ndarray:
        """Model items a list may contain under ``filters`` (products deleted since training never)."""
        allow, excluded = self.allowed(filters)
        if len(excluded):
            allow = allow.copy()
            allow[excluded] = False
        return allow

    def allowed(self, filters: ListFilters) -> tuple[np.ndarray, np.ndarray]:
        """``(mask, excluded)``: the model items ``filters`` allow, ``exclude`` aside, and the excluded items.

        The mask is kept per filter set until the next refresh and is read-only,
        so a request pays nothing over the catalogue for it and a scorer may
        remember what it derived from it (see :class:`recommender.ann.MaskMemo`);
        ``excluded`` holds the model indices of ``filters.exclude`` (a caller's
        few ids), to be left out by the scorer.
        """
        snap = self._snap
        allow = self._item_mask(snap, dataclasses.replace(filters, exclude=()))
        excluded = [i for i in (self.item_index.get(pid) for pid in filters.exclude) if i is not None]
        return allow, np.asarray(excluded, dtype=np.int64)

    def _item_mask(self, snap: _Snapshot, filters: ListFilters) -> np.ndarray:
        key = None if filters.exclude else filters
        cached = snap.item_masks.get(key) if key is not None else None
        if cached is not None:
            return cached
        rows = self._product_mask(snap, filters)
        known = snap.rows_of_items >= 0
        allow = np.zeros(len(self.item_ids), dtype=bool)
        allow[known] = rows[snap.rows_of_items[known]]
        if key is not None:
            allow.flags.writeable = False
            if len(snap.item_masks) >= BANNED_CACHE_SIZE:
                snap.item_masks.clear()
            snap.item_masks[key] = allow
        return allow

    def banned(self, filters: ListFilters) -> np.ndarray:
        """Model item indices a list may not contain under ``filters`` (int32, maybe repeated), for the scorer.

        Every request of a storefront asks with much the same filters, so the
        index list is kept per filter set (the ``exclude`` ids aside) until the
        next refresh: a request then pays nothing for filtering 100k products.
        """
        snap = self._snap
        key = dataclasses.replace(filters, exclude=())
        cached = snap.banned.get(key)
        if cached is None:
            cached = np.flatnonzero(~self._item_mask(snap, key)).astype(np.int32)
            if len(snap.banned) >= BANNED_CACHE_SIZE:
                snap.banned.clear()
            snap.banned[key] = cached
        extra = [i for i in (self.item_index.get(pid) for pid in filters.exclude) if i is not None]
        return np.concatenate([cached, np.asarray(extra, np.int32)]) if extra else cached

    def allows(self, product: dict[str, Any], filters: ListFilters) -> bool:
        """Whether one product (a row of :attr:`products`) may be listed: a lookup in :meth:`product_mask`."""
        snap = self._snap
        j = snap.index.get(product["id"])
        return (j is not None and product["id"] not in filters.exclude
                and bool(self._product_mask(snap, filters)[j]))

    # --- presenting ---------------------------------------------------------------------

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
