"""The shop behind the simulation: its own source system, shoppers with hidden tastes, what happens each day.

:mod:`simulate` drives the engine from the outside; this module is the shop it
plays. The shop keeps what a real shop's system keeps (customers, every event,
consent as the preference centre recorded it), which is why its nightly export
still holds the people the engine erased. All randomness comes from one
``numpy.random.Generator``, so a seed replays the same month.

Shoppers belong to hidden taste segments: each segment prefers a few
categories and, inside them, its own subset of products, so a model has more
to learn than popularity. A handful of bestsellers that everyone buys get a
small stock, so daily campaigns compete for them.

Shoppers also answer the lists the storefront shows them (:meth:`Shop.respond`),
by a stated response model: a product *matches their taste* when their
segment likes it at least ``LIKED_LIFT`` times as much as the average
segment does (so a bestseller everyone buys is nobody's particular taste).
Each shown product is clicked with probability ``CLICK_LIKED`` if it matches,
else ``CLICK_OTHER``; a click goes to the cart with ``CART_AFTER_CLICK``; a
cart is bought (one unit, at the shown price) with ``BUY_AFTER_CART``.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PURPOSES = ("personalization", "marketing")
EVENT_HEADER = ["customer_id", "product_id", "event_type", "quantity", "occurred_at"]
CUSTOMER_HEADER = ["id", "email", "name", "birth_date", "anniversary_date", "timezone", "created_at"]
CONSENT_HEADER = ["customer_id", "purpose", "granted", "updated_at", "source"]
PRODUCT_HEADER = ["id", "name", "category", "price", "in_stock", "hidden", "available_until"]
SMALL_CATEGORIES = ("kitchen", "garden", "toys", "books", "candles", "beauty")
FIRST = ("Ada", "Ben", "Cleo", "Dev", "Eva", "Finn", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lena")
LAST = ("Moss", "Reed", "Hart", "Vale", "Ng", "Okoro", "Silva", "Berg", "Quinn", "Rowe")
ZONES = ("Europe/London", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Pacific/Auckland", "UTC")
SCARCE_STOCK = 2  # units of each scarce bestseller
SCARCE_PRODUCTS = 4
BOOST = 1.0  # how much more everyone likes the bestsellers
LIKED = 12.0  # weight of a segment's liked products
OTHER = 0.05  # weight of everything else
# The response model of shoppers shown a list (see the module docstring).
LIKED_LIFT = 1.5
CLICK_LIKED, CLICK_OTHER = 0.40, 0.03
CART_AFTER_CLICK, BUY_AFTER_CART = 0.5, 0.6


def iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_start(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


@dataclass
class Customer:
    id: str
    email: str
    name: str
    birth: str
    anniversary: str
    timezone: str
    created: int
    segment: int
    rate: float  # chance of a shopping session on a given day

    def row(self) -> list[str]:
        return [self.id, self.email, self.name, self.birth, self.anniversary, self.timezone, iso(self.created)]


@dataclass
class Shop:
    """The shop's source system plus the hidden model of its shoppers."""

    rng: np.random.Generator
    products: list[list[str]]
    categories: list[str]
    segments: np.ndarray  # segment x product preference (rows sum to 1)
    customers: dict[str, Customer] = field(default_factory=dict)
    events: list[tuple[str, str, str, float, int]] = field(default_factory=list)
    history_rows: list[list[str]] = field(default_factory=list)  # imported history, kept as text
    consents: dict[tuple[str, str], tuple[bool, int, str]] = field(default_factory=dict)
    id_prefix: str = "S"
    id_width: int = 5
    next_number: int = 1
    new_per_day: float = 3.0

    @property
    def product_ids(self) -> list[str]:
        return [p[0] for p in self.products]

    def scarce(self) -> list[str]:
        return [p[0] for p in self.products if p[4] not in ("", None) and int(p[4]) <= SCARCE_STOCK and int(p[4]) > 0]

    # --- shoppers --------------------------------------------------------------------

    def _new_customer(self, created: int, segment: int | None = None) -> Customer:
        number = self.next_number
        self.next_number += 1
        cid = f"{self.id_prefix}{number:0{self.id_width}d}"
        first, last = FIRST[self.rng.integers(len(FIRST))], LAST[self.rng.integers(len(LAST))]
        born = dt.date(1950, 1, 1) + dt.timedelta(int(self.rng.integers(0, 365 * 55)))
        anniversary = ""
        if self.rng.random() < 0.4:  # married at 20 to 40, and never in the future (the importer refuses that)
            married = born + dt.timedelta(int(self.rng.integers(365 * 20, 365 * 40)))
            anniversary = min(married, dt.date.today() - dt.timedelta(days=1)).isoformat()
        seg = int(self.rng.integers(len(self.segments))) if segment is None else segment
        customer = Customer(
            cid,
            f"{first}.{last}.{cid}@example.com".lower(),
            f"{first} {last}",
            born.isoformat(),
            anniversary,
            ZONES[self.rng.integers(len(ZONES))],
            created,
            seg,
            float(np.clip(self.rng.lognormal(-2.3, 0.8), 0.01, 0.6)),
        )
        self.customers[cid] = customer
        return customer

    def _sign_up_consents(self, customer: Customer) -> dict[str, bool]:
        """What a new customer ticks at sign-up (unticked = never asked)."""
        chosen = {}
        for purpose, p_yes in (("personalization", 0.85), ("marketing", 0.7)):
            if self.rng.random() < p_yes:
                chosen[purpose] = True
                self.consents[customer.id, purpose] = (True, customer.created, "signup")
        return chosen

    def _session(self, customer: Customer, start: int, end: int) -> list[tuple[str, str, str, float, int]]:
        """One visit: a few views from the shopper's taste, some carts, some purchases; distinct seconds."""
        n = len(self.products)
        prefs = self.segments[customer.segment]
        t = start
        out = []
        for _ in range(int(self.rng.integers(1, 5))):
            item = int(self.rng.choice(n, p=prefs))
            pid = self.products[item][0]
            t = min(t + int(self.rng.integers(20, 200)), end)
            out.append((customer.id, pid, "view", 1.0, t))
            if self.rng.random() < 0.35:
                t = min(t + int(self.rng.integers(5, 60)), end)
                out.append((customer.id, pid, "add_to_cart", 1.0, t))
                if self.rng.random() < 0.6:
                    t = min(t + int(self.rng.integers(30, 300)), end)
                    out.append((customer.id, pid, "purchase", float(self.rng.integers(1, 3)), t))
        return out

    def likes(self, customer_id: str, product_id: str) -> bool:
        """Whether the product matches the shopper's hidden taste (their segment's lift >= LIKED_LIFT)."""
        if not hasattr(self, "_lift"):
            mean = self.segments.mean(axis=0)
            self._lift = np.divide(self.segments, mean, out=np.zeros_like(self.segments), where=mean > 0)
            self._index = {p[0]: i for i, p in enumerate(self.products)}
        j = self._index.get(product_id)
        return j is not None and bool(self._lift[self.customers[customer_id].segment, j] >= LIKED_LIFT)

    def respond(self, customer_id: str, items: list[dict], t: int) -> list[tuple[str, str, str, float, int, float]]:
        """What a shopper does with a shown list: ``(customer, product, type, quantity, time, price)`` events."""
        out = []
        for item in items:
            pid = item["product_id"]
            liked = self.likes(customer_id, pid)
            if self.rng.random() >= (CLICK_LIKED if liked else CLICK_OTHER):
                continue
            price = float(item.get("price") or 0.0)
            out.append((customer_id, pid, "view", 1.0, t, price))
            if self.rng.random() < CART_AFTER_CLICK:
                out.append((customer_id, pid, "add_to_cart", 1.0, t + 1, price))
                if self.rng.random() < BUY_AFTER_CART:
                    out.append((customer_id, pid, "purchase", 1.0, t + 2, price))
        return out

    def join(self, day: dt.date, latest: int) -> list[tuple[Customer, dict[str, bool]]]:
        """Customers who sign up on ``day`` (created before ``latest``), with their sign-up consents."""
        start = day_start(day)
        joined = []
        for _ in range(int(self.rng.poisson(self.new_per_day))):
            created = start + int(self.rng.integers(0, max(1, (latest - start) // 2)))
            customer = self._new_customer(created)
            joined.append((customer, self._sign_up_consents(customer)))
        return joined

    def shop_day(self, day: dt.date, latest: int, gone: set[str]) -> list[tuple[str, str, str, float, int]]:
        """Every event of ``day``, none after ``latest`` (so the last day ends now, not at midnight)."""
        start = day_start(day)
        end = max(start + 1, min(start + 86400 - 1, latest))
        events = []
        for customer in self.customers.values():
            if customer.id in gone or self.rng.random() >= customer.rate:
                continue
            first = max(start, customer.created + 60)
            if first >= end:
                continue
            events += self._session(customer, int(self.rng.integers(first, end)), end)
        self.events += events
        return events

    def consent_changes(self, day: dt.date, latest: int, gone: set[str], k: int) -> list[tuple[str, str, bool, int]]:
        """``k`` preference-centre decisions on ``day``: (customer, purpose, granted, when)."""
        live = [c for c in self.customers if c not in gone]
        start = day_start(day)
        out = []
        for cid in self.rng.choice(live, size=min(k, len(live)), replace=False):
            purpose = PURPOSES[int(self.rng.integers(2))]
            granted = not self.consents.get((str(cid), purpose), (False, 0, ""))[0]
            when = start + int(self.rng.integers(0, max(1, latest - start)))
            self.consents[str(cid), purpose] = (granted, when, "preference_centre")
            out.append((str(cid), purpose, granted, when))
        return out

    def pick(self, candidates: Iterable[str], k: int) -> list[str]:
        pool = sorted(candidates)
        if not pool:
            return []
        return [str(x) for x in self.rng.choice(pool, size=min(k, len(pool)), replace=False)]

    # --- the nightly export ------------------------------------------------------------

    def write_products(self, path: Path) -> Path:
        return _write_csv(path, PRODUCT_HEADER, self.products)

    def write_customers(self, path: Path, only: Iterable[Customer] | None = None) -> Path:
        rows = (c.row() for c in (self.customers.values() if only is None else only))
        return _write_csv(path, CUSTOMER_HEADER, rows)

    def write_interactions(self, path: Path) -> Path:
        new = ([c, p, e, f"{q:g}", iso(t)] for c, p, e, q, t in self.events)
        return _write_csv(path, EVENT_HEADER, (*self.history_rows, *new))

    def write_consents(self, path: Path) -> Path:
        rows = ([c, p, "true" if g else "false", iso(t), s] for (c, p), (g, t, s) in sorted(self.consents.items()))
        return _write_csv(path, CONSENT_HEADER, rows)


def _write_csv(path: Path, header: list[str], rows: Iterable[Iterable[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _scarce(products: list[list[str]], popularity: np.ndarray) -> None:
    """Give the shop's bestsellers a small stock: the campaigns' contested goods."""
    for i in np.argsort(-popularity, kind="stable")[:SCARCE_PRODUCTS]:
        products[int(i)][4] = str(SCARCE_STOCK)


def small_shop(
    seed: int, n_customers: int = 300, n_products: int = 60, first_day: dt.date | None = None, history_days: int = 60
) -> Shop:
    """A generated shop: ``n_products`` in six categories, ``n_customers`` with ``history_days`` of history."""
    rng = np.random.default_rng(seed)
    cats = list(SMALL_CATEGORIES)
    products = []
    for i in range(n_products):
        cat = cats[i % len(cats)]
        products.append(
            [
                f"P{i + 1:03d}",
                f"{cat.title()} item {i + 1}",
                cat,
                f"{rng.uniform(3, 60):.2f}",
                "" if rng.random() < 0.5 else str(int(rng.integers(20, 200))),
                "0",
                "",
            ]
        )
    base = 1.0 / np.arange(1, n_products + 1) ** 0.8
    base = base[rng.permutation(n_products)]
    best = np.argsort(-base)[:SCARCE_PRODUCTS]
    segments = []
    for s in range(len(cats)):
        liked_cats = {cats[s], cats[(s + 2) % len(cats)]}
        w = np.array(
            [
                base[i] * (LIKED if products[i][2] in liked_cats and rng.random() < 0.5 else OTHER)
                for i in range(n_products)
            ]
        )
        w[best] += w.mean() * BOOST  # bestsellers: everyone's
        segments.append(w / w.sum())
    shop = Shop(rng, products, cats, np.array(segments), new_per_day=max(1.0, n_customers / 100))
    first_day = first_day or dt.date.today()
    begin = day_start(first_day) - history_days * 86400
    for _ in range(n_customers):
        customer = shop._new_customer(begin - int(rng.integers(0, 30 * 86400)))
        shop._sign_up_consents(customer)
    for d in range(history_days):
        day = first_day - dt.timedelta(history_days - d)
        shop.shop_day(day, day_start(day) + 86399, set())
    popularity = np.zeros(n_products)
    index = {p[0]: i for i, p in enumerate(products)}
    for _, pid, _, _, _ in shop.events:
        popularity[index[pid]] += 1
    _scarce(products, popularity)
    return shop


def sample_shop(seed: int, directory: Path) -> Shop:
    """The bundled demo shop as the source system; tastes inferred from each customer's history.

    A customer's segment is the category they interacted with most (shoppers
    with no history get a random one); a segment's preferences are what its
    members did, smoothed with overall popularity.
    """
    rng = np.random.default_rng(seed)
    with open(directory / "products.csv", encoding="utf-8", newline="") as fh:
        products = list(csv.reader(fh))[1:]
    index = {p[0]: i for i, p in enumerate(products)}
    cats = sorted({p[2] for p in products})
    cat_of = {p[0]: cats.index(p[2]) for p in products}
    with gzip.open(directory / "interactions.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        history = list(csv.reader(fh))[1:]
    per_customer: dict[str, np.ndarray] = {}
    popularity = np.zeros(len(products))
    days: dict[str, set[str]] = {}
    for cid, pid, *_rest in history:
        per_customer.setdefault(cid, np.zeros(len(cats)))[cat_of[pid]] += 1
        popularity[index[pid]] += 1
        days.setdefault(cid, set()).add(_rest[-1][:10])
    hidden = np.array([p[5] == "1" for p in products])
    counts = np.zeros((len(cats), len(products)))
    seg_of = {cid: int(np.argmax(v)) for cid, v in per_customer.items()}
    for cid, pid, *_ in history:
        counts[seg_of[cid], index[pid]] += 1
    prefs = counts + 0.05 * popularity / max(1.0, popularity.sum()) * counts.sum(axis=1, keepdims=True) + 1e-3
    prefs[:, hidden] = 0.0
    prefs /= prefs.sum(axis=1, keepdims=True)
    shop = Shop(rng, products, cats, prefs, id_prefix="C", id_width=4, new_per_day=6.0)
    shop.history_rows = history
    span_days = 549.0
    with open(directory / "customers.csv", encoding="utf-8", newline="") as fh:
        for row in list(csv.DictReader(fh)):
            cid = row["id"]
            created = int(dt.datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")).timestamp())
            active = len(days.get(cid, ()))
            shop.customers[cid] = Customer(
                cid,
                row["email"],
                row["name"],
                row["birth_date"],
                row["anniversary_date"],
                row["timezone"],
                created,
                seg_of.get(cid, int(rng.integers(len(cats)))),
                float(min(0.5, 3.0 * (active + 0.5) / span_days)),
            )
            shop.next_number = max(shop.next_number, int(cid[1:]) + 1)
    with open(directory / "consents.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            when = int(dt.datetime.fromisoformat(row["updated_at"].replace("Z", "+00:00")).timestamp())
            shop.consents[row["customer_id"], row["purpose"]] = (row["granted"] == "true", when, row["source"])
    _scarce(products, popularity * ~hidden)
    return shop
