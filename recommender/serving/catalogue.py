"""The product catalogue as arrays, and the one definition of which products a list may hold.

A storefront asks for "in stock, under £30, kitchen or garden" on every call;
answering that with SQL per request would cost more than the scoring itself.
Each worker keeps the attributes as numpy arrays and refreshes them after
``ttl`` seconds, so stock and visibility changes show within a minute without
any coordination between workers. A refresh reads only what changed since the
last one (the ``product_changes`` log that triggers on ``products`` keep), so
its cost follows the changes, not the catalogue.

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
import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlite_utils

from recommender import store

# Filter sets whose masks and ban lists a worker keeps between refreshes.
BANNED_CACHE_SIZE = 64
_NEVER = int(np.datetime64("9999-12-31", "D").astype(np.int64))
# The rules that keep a product out of a list, in the order a refused product is counted against
# them (the first that refuses it): the names a short list gives (``ServedList.short``). The
# caller's filters come first, so ``hidden`` is named only when a hidden product passed them.
RULES = ("category", "min_price", "max_price", "in_stock", "hidden", "expired")
_GONE = len(RULES) + 1  # rule code of a model item whose product was deleted since training: no candidate


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


# An incremental refresh reads only the products changed since the last one; when more than
# this share of the catalogue (and more than FULL_RELOAD_MIN rows) changed, it reads them all.
FULL_RELOAD_SHARE = 0.1
FULL_RELOAD_MIN = 1000
# A serving catalogue (``background=True``) reads more logged changes than this in a thread
# of its own, and requests go on with the products it has until the new ones are in; fewer are
# read in the request that finds them (a few hundred milliseconds at most).
BACKGROUND_ROWS = 2000


@dataclass
class _Snapshot:
    """One refresh's arrays, swapped in whole so a request never mixes two refreshes.

    Rows are ordered by id after a full load; products added since are appended
    and products deleted since keep their row, hidden and out of ``index``.
    Arrays are never written after the snapshot is published (a refresh copies
    what it changes), so a request may hold one while the next is built.
    """

    index: dict[str, int]
    products: _Rows
    category: np.ndarray  # per catalogue row: code into category_codes, -1 = none
    price: np.ndarray
    stock: np.ndarray  # NaN = not tracked
    hidden: np.ndarray  # also True for a row whose product was deleted
    until: np.ndarray  # day number of available_until (far future when absent)
    category_codes: dict[str, int]
    rows_of_items: np.ndarray  # model item -> catalogue row; -1 = deleted since training
    item_category: np.ndarray  # category code per model item
    today_day: int
    masks: dict[ListFilters, np.ndarray] = field(default_factory=dict)
    banned: dict[ListFilters, np.ndarray] = field(default_factory=dict)
    item_masks: dict[ListFilters, np.ndarray] = field(default_factory=dict)
    # per filter set: the rule code (1 + index in RULES, 0 = allowed) of each row / model item,
    # and per rule how many model items it refused (what a short list names)
    codes: dict[ListFilters, np.ndarray] = field(default_factory=dict)
    item_codes: dict[ListFilters, np.ndarray] = field(default_factory=dict)
    item_removed: dict[ListFilters, tuple[int, dict[str, int]]] = field(default_factory=dict)


class _Rows(Mapping):
    """Product rows by id, as dicts made on access (not a million dicts per refresh).

    The full load's columns are shared, never copied; rows changed or added
    since are in ``changed`` (id -> the row as read), which a refresh copies
    and extends. It stays small: past ``FULL_RELOAD_SHARE`` of the catalogue
    the next refresh loads everything again.
    """

    def __init__(
        self,
        index: dict[str, int],
        columns: tuple[list, ...],
        changed: dict[str, tuple],
        added: list[str],
        visible: np.ndarray,
    ) -> None:
        self.index, self.columns, self.changed, self.added, self._visible = index, columns, changed, added, visible
        self._ids: list[str] | None = None
        self._names: list[str | None] | None = None

    def with_visible(self, visible: np.ndarray) -> _Rows:
        return _Rows(self.index, self.columns, self.changed, self.added, visible)

    def row(self, j: int) -> tuple:
        ids, names, cats, prices, stocks, hiddens, untils = self.columns
        return ids[j], names[j], cats[j], prices[j], stocks[j], hiddens[j], untils[j]

    @property
    def ids(self) -> list[str]:
        """The product id of every row (deleted ones included)."""
        if self._ids is None:
            self._ids = self.columns[0] + self.added if self.added else self.columns[0]
        return self._ids

    @property
    def names(self) -> list[str | None]:
        if self._names is None:
            names = self.columns[1]
            if self.changed:
                names = names + [None] * len(self.added)
                for p, r in self.changed.items():
                    names[self.index[p]] = r[1]
            self._names = names
        return self._names

    def __getitem__(self, product_id: str) -> dict[str, Any]:
        j = self.index[product_id]
        r = self.changed.get(product_id) or self.row(j)
        return {
            "id": r[0],
            "name": r[1],
            "category": r[2],
            "price": r[3],
            "in_stock": r[4],
            "hidden": r[5],
            "available_until": r[6],
            "visible": bool(self._visible[j]),
        }

    def __contains__(self, product_id: object) -> bool:
        return product_id in self.index

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


def _number(value: float | None) -> float:
    """A price or stock as stored in the arrays: NaN when unknown (untracked stock = available)."""
    return np.nan if value is None else value


def _today() -> int:
    return int(np.datetime64(dt.date.today().isoformat(), "D").astype(np.int64))


class Catalogue:
    """All products as arrays, aligned on demand with a model's ``item_ids``.

    :meth:`refresh` follows the ``product_changes`` log (kept by triggers on
    ``products``): after the first full load, a refresh with nothing changed is
    one indexed query, and one with a few changes reads just those rows, so a
    worker serving a million products does not re-read them every ``ttl``.
    """

    def __init__(self, item_ids: Sequence[str], ttl: float = 60.0, background: bool = False) -> None:
        self.item_ids = list(item_ids)
        self.item_index = {p: i for i, p in enumerate(self.item_ids)}
        self.ttl = ttl
        self.background = background
        self.loaded_at = -math.inf
        self.seq: int | None = None  # the product_changes sequence the snapshot reflects
        self.full_loads = 0  # how many refreshes read the whole table (for tests and /metrics)
        self.background_reads = 0  # how many refreshes ran in a thread of their own
        self._lock = threading.Lock()
        self._job: threading.Thread | None = None
        self._snap = _Snapshot(
            {},
            _Rows({}, tuple([] for _ in range(7)), {}, [], np.zeros(0, bool)),
            *(np.zeros(0) for _ in range(5)),
            {},
            np.full(len(self.item_ids), -1, dtype=np.int64),
            np.full(len(self.item_ids), -1, dtype=np.int32),
            0,
        )

    def adopt(self, previous: Catalogue) -> None:
        """Start from ``previous``'s products (a new model's catalogue): the next refresh is incremental."""
        snap, seq, loaded_at = previous._snap, previous.seq, previous.loaded_at
        if seq is None:
            return
        with self._lock:
            self._snap = self._aligned(snap, snap.today_day)
            self.seq, self.loaded_at = seq, loaded_at

    def refresh(self, db: sqlite_utils.Database, force: bool = False) -> None:
        """Follow the products' changes since the last refresh (at most once per ``ttl`` unless ``force``).

        A serving catalogue hands a large change (a feed rewriting the stock of
        the whole catalogue, a bulk import) to a thread of its own: at a million
        products a full read takes seconds, which no request should wait for.
        Until it is done, requests see the products as they were — as they would
        have until the next ``ttl`` anyway. ``force`` (a product id the
        catalogue does not know, a campaign run) waits for such a read and then
        reads what is still new, in the caller.
        """
        if not force and time.monotonic() - self.loaded_at < self.ttl:
            return
        job = self._job
        if job is not None:
            if not force:
                return
            job.join()
        with self._lock:
            if not force and time.monotonic() - self.loaded_at < self.ttl:
                return  # another thread refreshed while this one waited
            read = self._read(db, allow_background=not force)
            if read is not None:
                self._snap, self.seq = read
            self.loaded_at = time.monotonic()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background read to finish; True when none is running any more (for tests and tools)."""
        job = self._job
        if job is not None:
            job.join(timeout)
        return self._job is None

    def _read(self, db: sqlite_utils.Database, allow_background: bool) -> tuple[_Snapshot, int | None] | None:
        """The snapshot and change number of the products now; None when a background read took it over."""
        # One read transaction: the change number and the rows it covers come from one state.
        with store.read_savepoint(db, "catalogue_refresh"):
            seq = store.latest_product_change(db)
            snap = self._snap
            if seq is None or self.seq is None:
                snap = self._load_all(db)
            elif seq != self.seq:
                if allow_background and self.background:
                    # Counted up to the limit only: listing a million changed ids would itself take a second.
                    logged = store.product_changes_after(db, self.seq, BACKGROUND_ROWS + 1)
                    path = store.database_path(db) if logged > BACKGROUND_ROWS else None
                    if path:  # "" in memory: no other connection could read it
                        self._start_background(path)
                        return None
                changed = store.products_changed_after(db, self.seq)
                pending = len(snap.products.changed) + len(changed)
                if pending > max(FULL_RELOAD_MIN, FULL_RELOAD_SHARE * len(snap.products.ids)):
                    snap = self._load_all(db)
                else:
                    snap = self._patched(snap, db, changed)
            if snap.today_day != _today():  # the day turned: availability moved on
                snap = self._aligned(snap, _today(), snap.rows_of_items)
        return snap, seq

    def _start_background(self, path: str) -> None:
        """Read the changes on a connection of its own, then swap them in (called holding the lock)."""

        def run() -> None:
            try:
                db = store.connect(path, migrate=False)
                try:
                    read = self._read(db, allow_background=False)
                finally:
                    db.conn.close()
                with self._lock:
                    self._snap, self.seq = read
                    self.loaded_at = time.monotonic()
                    self.background_reads += 1
            except Exception:  # noqa: BLE001 - a failed read leaves the products as they were; retried after ttl
                logging.getLogger("recommender.serving.catalogue").exception("background catalogue refresh failed")
            finally:
                self._job = None

        self._job = threading.Thread(target=run, name="catalogue-refresh", daemon=True)
        self._job.start()

    def _load_all(self, db: sqlite_utils.Database) -> _Snapshot:
        """Every product, ordered by id. Columns, not a dict per row: a million products load in seconds."""
        self.full_loads += 1
        rows = store.catalogue_rows(db)  # BINARY = Python's str order
        ids, names, cats, prices, stocks, hiddens, untils = (
            (list(c) for c in zip(*rows)) if rows else ([] for _ in range(7))
        )
        del rows
        categories: dict[str, int] = {}
        category = np.array(
            [-1 if c is None else categories.setdefault(c, len(categories)) for c in cats], dtype=np.int32
        )
        price = np.array([_number(v) for v in prices], dtype=np.float64)
        stock = np.array([_number(v) for v in stocks], dtype=np.float64)
        hidden = np.array(hiddens, dtype=bool)
        until = np.array([day_number(u) for u in untils], dtype=np.int64)
        index = {p: j for j, p in enumerate(ids)}
        rows_ = _Rows(index, (ids, names, cats, prices, stocks, hiddens, untils), {}, [], np.zeros(0, bool))
        snap = _Snapshot(
            index,
            rows_,
            category,
            price,
            stock,
            hidden,
            until,
            categories,
            np.zeros(0, np.int64),
            np.zeros(0, np.int32),
            0,
        )
        return self._aligned(snap, _today())

    def _patched(self, snap: _Snapshot, db: sqlite_utils.Database, changed: list[str]) -> _Snapshot:
        """``snap`` with the ``changed`` product ids re-read: updated (on copies), added, or deleted."""
        fresh: dict[str, tuple] = {}
        for row in store.catalogue_rows_of(db, changed):
            fresh[row[0]] = row
        old = snap.products
        index = snap.index
        size = len(old.ids)
        added = [p for p in changed if p in fresh and p not in index]
        removed = [p for p in changed if p not in fresh and p in index]
        if added or removed:
            index = dict(index)
            for p in removed:
                del index[p]
            for k, p in enumerate(added):
                index[p] = size + k
        grow = len(added)
        category = np.concatenate([snap.category, np.full(grow, -1, np.int32)])
        price = np.concatenate([snap.price, np.full(grow, np.nan)])
        stock = np.concatenate([snap.stock, np.full(grow, np.nan)])
        hidden = np.concatenate([snap.hidden, np.ones(grow, bool)])
        until = np.concatenate([snap.until, np.full(grow, _NEVER, np.int64)])
        gone = set(removed)
        rows_changed = {p: r for p, r in old.changed.items() if p not in gone}
        rows_changed.update(fresh)
        codes = snap.category_codes
        for p in removed:
            hidden[snap.index[p]] = True  # the row stays (nothing shifts) but no list may hold it
        for p, row in fresh.items():
            j = index[p]
            cat = row[2]
            if cat is not None and cat not in codes:
                codes = dict(codes) if codes is snap.category_codes else codes
                codes[cat] = len(codes)
            category[j] = -1 if cat is None else codes[cat]
            price[j] = _number(row[3])
            stock[j] = _number(row[4])
            hidden[j] = bool(row[5])
            until[j] = day_number(row[6])
        rows_of_items = snap.rows_of_items
        if added or removed:
            rows_of_items = rows_of_items.copy()
            for p in (*added, *removed):
                i = self.item_index.get(p)
                if i is not None:
                    rows_of_items[i] = index.get(p, -1)
        rows_ = _Rows(index, old.columns, rows_changed, old.added + added, np.zeros(0, bool))
        out = _Snapshot(
            index, rows_, category, price, stock, hidden, until, codes, rows_of_items, np.zeros(0, np.int32), 0
        )
        return self._aligned(out, _today(), rows_of_items)

    def _aligned(self, snap: _Snapshot, today_day: int, rows_of_items: np.ndarray | None = None) -> _Snapshot:
        """A snapshot of ``snap``'s products for this catalogue's model items and ``today_day``, caches empty.

        ``rows_of_items`` is given when it is known to match ``snap.index`` (a
        patch or a new day); otherwise it is looked up, once per model item.
        """
        index = snap.index
        if rows_of_items is None:
            rows_of_items = np.array([index.get(p, -1) for p in self.item_ids], dtype=np.int64)
        item_category = np.full(len(self.item_ids), -1, dtype=np.int32)
        known = rows_of_items >= 0
        item_category[known] = snap.category[rows_of_items[known]]
        visible = ~snap.hidden & (snap.until >= today_day)
        return _Snapshot(
            index,
            snap.products.with_visible(visible),
            snap.category,
            snap.price,
            snap.stock,
            snap.hidden,
            snap.until,
            snap.category_codes,
            rows_of_items,
            item_category,
            today_day,
        )

    # --- what callers read -----------------------------------------------------------------

    @property
    def products(self) -> Mapping[str, dict[str, Any]]:
        return self._snap.products

    @property
    def ids(self) -> list[str]:
        """Product ids of the catalogue rows: ordered by id, then those added since the last full load."""
        return self._snap.products.ids

    @property
    def index(self) -> dict[str, int]:
        return self._snap.index

    @property
    def names(self) -> list[str | None]:
        return self._snap.products.names

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

    @property
    def generation(self) -> object:
        """An object that is replaced whenever the products or the day change: the key of what is derived from them
        (merchandising rules compile their masks once per generation)."""
        return self._snap

    def row_columns(self) -> dict[str, Any]:
        """Per catalogue row: ``category`` (text or None), ``price``, ``stock`` (NaN = unknown), ``names``,
        ``available_until`` (day number) — what a rule's condition reads."""
        snap = self._snap
        codes = np.empty(len(snap.category_codes) + 1, dtype=object)
        codes[-1] = None
        for name, code in snap.category_codes.items():
            codes[code] = name
        return {
            "category": codes[snap.category],
            "category_code": snap.category,
            "category_codes": snap.category_codes,
            "price": snap.price,
            "stock": snap.stock,
            "names": snap.products.names,
            "until": snap.until,
        }

    # --- the rules, once ----------------------------------------------------------------

    def product_mask(self, filters: ListFilters) -> np.ndarray:
        """Catalogue rows (ordered by id) a list may contain under ``filters``: THE filter rules."""
        return self._product_mask(self._snap, filters)

    @staticmethod
    def _product_codes(snap: _Snapshot, key: ListFilters) -> np.ndarray:
        """Per catalogue row, the first rule of :data:`RULES` that refuses it (its index + 1; 0 = allowed).

        Read-only, kept per filter set (``exclude`` aside) until the next refresh:
        the mask is ``codes == 0``, and a short list counts its reasons from it.
        """
        cached = snap.codes.get(key)
        if cached is not None:
            return cached
        on = snap.today_day if key.available_on is None else day_number(key.available_on, snap.today_day)
        refused: list[tuple[str, np.ndarray]] = []
        if key.categories:
            wanted = [snap.category_codes[c] for c in key.categories if c in snap.category_codes]
            refused.append(("category", ~np.isin(snap.category, wanted)))
        with np.errstate(invalid="ignore"):
            if key.min_price is not None:
                refused.append(("min_price", ~(snap.price >= key.min_price)))  # unknown price: outside any band
            if key.max_price is not None:
                refused.append(("max_price", ~(snap.price <= key.max_price)))
        if key.in_stock_only:
            refused.append(("in_stock", snap.stock <= 0))  # NaN = stock not tracked = available
        refused.append(("hidden", snap.hidden))
        refused.append(("expired", snap.until < on))
        codes = np.zeros(len(snap.hidden), dtype=np.int8)
        for rule, rows in reversed(refused):  # the last rule first: each row keeps the first that refuses it
            codes[rows] = RULES.index(rule) + 1
        codes.flags.writeable = False
        if len(snap.codes) >= BANNED_CACHE_SIZE:
            snap.codes.clear()
        snap.codes[key] = codes
        return codes

    @staticmethod
    def _product_mask(snap: _Snapshot, filters: ListFilters) -> np.ndarray:
        key = dataclasses.replace(filters, exclude=())
        cached = snap.masks.get(key)
        if cached is None:
            allow = Catalogue._product_codes(snap, key) == 0
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
        remember what it derived from it (see :class:`recommender.models.ann.MaskMemo`);
        ``excluded`` holds the model indices of ``filters.exclude`` (a caller's
        few ids), to be left out by the scorer.
        """
        snap = self._snap
        allow = self._item_mask(snap, dataclasses.replace(filters, exclude=()))
        excluded = [i for i in (self.item_index.get(pid) for pid in filters.exclude) if i is not None]
        return allow, np.asarray(excluded, dtype=np.int64)

    def _item_mask(self, snap: _Snapshot, filters: ListFilters) -> np.ndarray:
        if filters.exclude:  # not kept: the exclusions are a caller's own
            rows = self._product_mask(snap, filters)
            known = snap.rows_of_items >= 0
            allow = np.zeros(len(self.item_ids), dtype=bool)
            allow[known] = rows[snap.rows_of_items[known]]
            return allow
        cached = snap.item_masks.get(filters)
        if cached is not None:
            return cached
        allow = self._item_codes(snap, filters) == 0
        allow.flags.writeable = False
        if len(snap.item_masks) >= BANNED_CACHE_SIZE:
            snap.item_masks.clear()
        snap.item_masks[filters] = allow
        return allow

    def _item_codes(self, snap: _Snapshot, key: ListFilters) -> np.ndarray:
        """Per model item, the code of the first rule that refuses it (``_GONE``: deleted since training)."""
        cached = snap.item_codes.get(key)
        if cached is None:
            rows = self._product_codes(snap, key)
            known = snap.rows_of_items >= 0
            cached = np.full(len(self.item_ids), _GONE, dtype=np.int8)
            cached[known] = rows[snap.rows_of_items[known]]
            cached.flags.writeable = False
            if len(snap.item_codes) >= BANNED_CACHE_SIZE:
                snap.item_codes.clear()
            snap.item_codes[key] = cached
        return cached

    # --- why a list is short ------------------------------------------------------------

    def item_refusals(self, filters: ListFilters) -> np.ndarray:
        """Per model item, 0 when ``filters`` (``exclude`` aside) allow it, else ``1 +`` the index in :data:`RULES`
        of the first rule that refuses it (``len(RULES) + 1``: its product was deleted since training).

        Read-only and kept per filter set with the mask it is made with.
        """
        return self._item_codes(self._snap, dataclasses.replace(filters, exclude=()))

    def removed_items(self, filters: ListFilters) -> tuple[int, dict[str, int]]:
        """``(pool, removed)``: the model items still in the catalogue, and how many of them each rule refuses.

        Each refused item is counted against the first rule of :data:`RULES` that
        refuses it. Counted when the filter set's mask is first made and kept with
        it, so a short list costs no pass over the catalogue.
        """
        snap = self._snap
        key = dataclasses.replace(filters, exclude=())
        cached = snap.item_removed.get(key)
        if cached is None:
            counts = np.bincount(self._item_codes(snap, key), minlength=_GONE + 1)
            cached = (
                int(len(self.item_ids) - counts[_GONE]),
                {rule: int(counts[k + 1]) for k, rule in enumerate(RULES)},
            )
            if len(snap.item_removed) >= BANNED_CACHE_SIZE:
                snap.item_removed.clear()
            snap.item_removed[key] = cached
        return cached

    def product_refusals(self, filters: ListFilters) -> np.ndarray:
        """:meth:`item_refusals` per catalogue row (read it at ``index[product_id]``), ``exclude`` aside."""
        return self._product_codes(self._snap, dataclasses.replace(filters, exclude=()))

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
        return j is not None and product["id"] not in filters.exclude and bool(self._product_mask(snap, filters)[j])

    # --- presenting ---------------------------------------------------------------------

    def describe(self, product_id: str) -> dict[str, Any]:
        """The fields a list shows of a product (None for one the catalogue does not hold).

        Ten per list: read straight from the snapshot's columns, without the full
        row dict of :attr:`products`.
        """
        rows = self._snap.products
        j = rows.index.get(product_id)
        r = (None,) * 5 if j is None else rows.changed.get(product_id) or rows.row(j)
        return {"product_id": product_id, "name": r[1], "category": r[2], "price": r[3], "in_stock": r[4]}

    def diversify(self, ranked: Sequence[int], n: int, diversity: float, skipped: list[int] | None = None) -> list[int]:
        """At most ``max(1, ceil(n · (1 − diversity)))`` items of one category, in rank order.

        ``skipped`` (a list) collects the items the cap left out.
        """
        if diversity <= 0:
            return list(ranked[:n])
        cap = max(1, math.ceil(n * (1.0 - diversity)))
        taken: dict[int, int] = {}
        out = []
        for i in ranked:
            c = int(self.category[i])
            if c >= 0 and taken.get(c, 0) >= cap:
                if skipped is not None:
                    skipped.append(int(i))
                continue
            taken[c] = taken.get(c, 0) + 1
            out.append(int(i))
            if len(out) == n:
                break
        return out
