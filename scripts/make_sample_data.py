"""Generate a deterministic, synthetic sample shop for the recommendation engine.

Run ``python scripts/make_sample_data.py --seed 42 --out sample_data``. The same
seed always produces byte-identical files: all randomness comes from
``numpy.random.default_rng(seed)``, the shop's history ends at the fixed instant
2026-10-31T23:59:59Z (18 months from 2025-05-01) and the gzip header carries no
timestamp.

Why the data looks the way it does (the structure a model can learn):

* Every customer belongs to one of ten taste segments ("home cook", "gardener",
  "pet owner", ...). A segment favours one to three categories and, inside each
  of them, its own hidden subset of products. Two segments sharing a category
  still like different items, so co-occurrence carries information beyond
  category and beyond raw popularity.
* Tastes are stable over time, so the first 80% of the history predicts the
  last 20%. Each customer also has a few personal favourites they come back to.
* Item popularity is long-tailed (Zipf-like within each category) and a handful
  of global bestsellers show up in every segment: a popularity baseline is
  decent, but a personalised model should beat it clearly.
* Activity per customer is heavy-tailed (log-normal rates): many customers have
  a handful of events, a few have hundreds.
* Events come in sessions following a funnel: views, some add-to-carts, some of
  those purchased at checkout. Consumables (candles, beauty, pet supplies) get
  repeat purchases. November and December are busier, and sessions happen in
  the customer's local daytime/evening.
* Calendar edge cases are present on purpose: Feb 29 birthdays/anniversaries,
  time zones on both sides of the date line, missing birth dates, hidden,
  out-of-stock and expired seasonal products.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import pathlib
from datetime import UTC, date, datetime, timedelta

import numpy as np

UTC = UTC
HISTORY_START = datetime(2025, 5, 1, tzinfo=UTC)
HISTORY_END = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
END_DATE = date(2026, 10, 31)
N_CUSTOMERS = 2000
TARGET_SESSIONS = 11_500  # tuned so the event log lands near 60,000 rows

# category: (product count, median price, price sigma, nouns, consumable)
CATEGORIES: dict[str, tuple[int, float, float, list[str], bool]] = {
    "kitchen": (
        40,
        22.0,
        0.5,
        "Mug|Teapot|Chopping Board|Apron|Mixing Bowl|Tea Towel|Cafetière|Oven Glove".split("|"),
        False,
    ),
    "garden": (30, 25.0, 0.6, "Planter|Trowel|Bird Feeder|Watering Can|Seed Tin|Kneeler|Lantern".split("|"), False),
    "toys": (35, 20.0, 0.5, "Wooden Train|Jigsaw|Plush Fox|Stacking Blocks|Kite|Puppet|Board Game".split("|"), False),
    "books": (
        40,
        12.0,
        0.3,
        "Cookbook|Field Guide|Notecard Set|Poetry Anthology|Atlas|Puzzle Book|Journal".split("|"),
        False,
    ),
    "jewellery": (30, 45.0, 0.6, "Pendant|Bangle|Stud Earrings|Charm Bracelet|Ring|Locket".split("|"), False),
    "candles": (
        30,
        18.0,
        0.35,
        "Soy Candle|Tealight Set|Reed Diffuser|Pillar Candle|Wax Melts|Travel Candle".split("|"),
        True,
    ),
    "stationery": (
        35,
        6.0,
        0.4,
        "Notebook|Pen Set|Washi Tape|Planner|Greeting Card|Sticky Notes|Pencil Case".split("|"),
        False,
    ),
    "beauty": (35, 16.0, 0.4, "Hand Cream|Lip Balm|Bath Salts|Face Mist|Soap Bar|Body Oil|Bath Bomb".split("|"), True),
    "home-decor": (35, 30.0, 0.5, "Cushion|Throw|Vase|Photo Frame|Wall Print|Doorstop|Trinket Dish".split("|"), False),
    "electronics": (
        30,
        60.0,
        0.6,
        "Bluetooth Speaker|Desk Lamp|Power Bank|Earbuds|Alarm Clock|Charging Stand".split("|"),
        False,
    ),
    "sports": (
        30,
        35.0,
        0.5,
        "Yoga Mat|Water Bottle|Gym Bag|Skipping Rope|Resistance Band|Running Cap".split("|"),
        False,
    ),
    "pet-supplies": (
        30,
        14.0,
        0.5,
        "Dog Treats|Cat Toy|Pet Bed|Lead|Food Bowl|Grooming Brush|Catnip Pouch".split("|"),
        True,
    ),
}
ADJECTIVES = (
    "Ceramic Classic Handmade Organic Vintage Scandi Rustic Deluxe Mini Linen Bamboo Recycled Cosy Botanical"
).split()
COLOURS = ("Sage Navy Mustard Blush Charcoal Ivory Terracotta Teal Lilac Forest Oat Coral Slate Plum").split()

# segment: ({category: weight}, share of customers)
SEGMENTS: list[tuple[dict[str, float], float]] = [
    ({"kitchen": 0.6, "home-decor": 0.25, "candles": 0.15}, 0.14),  # home cook
    ({"garden": 0.7, "home-decor": 0.3}, 0.10),  # gardener
    ({"toys": 0.6, "books": 0.25, "stationery": 0.15}, 0.12),  # young family
    ({"books": 0.65, "stationery": 0.2, "candles": 0.15}, 0.10),  # bookworm
    ({"beauty": 0.55, "candles": 0.3, "jewellery": 0.15}, 0.12),  # pamper
    ({"electronics": 0.75, "sports": 0.25}, 0.08),  # gadget fan
    ({"pet-supplies": 0.8, "garden": 0.2}, 0.10),  # pet owner
    ({"sports": 0.6, "beauty": 0.2, "electronics": 0.2}, 0.08),  # active
    ({"jewellery": 0.5, "candles": 0.25, "home-decor": 0.25}, 0.09),  # gift giver
    ({"stationery": 0.6, "books": 0.25, "electronics": 0.15}, 0.07),  # student / crafter
]
TIMEZONES: list[tuple[str, int, float]] = [  # name, approx UTC offset (h), share
    ("Europe/London", 0, 0.58),
    ("Europe/Paris", 1, 0.08),
    ("Europe/Berlin", 1, 0.05),
    ("Europe/Dublin", 0, 0.04),
    ("America/New_York", -5, 0.07),
    ("America/Chicago", -6, 0.02),
    ("America/Los_Angeles", -8, 0.04),
    ("Asia/Tokyo", 9, 0.03),
    ("Australia/Sydney", 10, 0.04),
    ("Pacific/Auckland", 12, 0.015),
    ("Pacific/Kiritimati", 14, 0.004),
    ("Pacific/Honolulu", -10, 0.006),
    ("Pacific/Pago_Pago", -11, 0.004),
]
DATE_LINE_ZONES = ["Pacific/Auckland", "Pacific/Kiritimati", "Pacific/Honolulu", "Pacific/Pago_Pago"]
FIRST_NAMES = (
    "Olivia Amelia Isla Ava Mia Grace Freya Lily Sophie Emily Chloe Ella Ruby Zara "
    "Priya Aisha Hannah Megan Lucy Niamh Oliver George Harry Noah Jack Leo Arthur Oscar "
    "Charlie Jacob Thomas James William Samuel Daniel Mohammed Rohan Ethan Callum "
    "Finn"
).split()
LAST_NAMES = (
    "Smith Jones Taylor Brown Williams Wilson Johnson Davies Patel Robinson Wright "
    "Thompson Evans Walker White Roberts Green Hall Wood Jackson Clarke Khan Hughes "
    "Edwards Turner Murphy O'Connor Singh Baker Price Morgan Bennett Ng Kowalski Fraser "
    "Campbell Ali Shaw Lloyd Ellis"
).split()


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(d: datetime) -> int:
    return int(d.timestamp())


def _cdf(weights: np.ndarray) -> np.ndarray:
    c = np.cumsum(weights, dtype=float)
    return c / c[-1]


def _draw(rng: np.random.Generator, cdf: np.ndarray) -> int:
    return min(int(np.searchsorted(cdf, rng.random(), side="right")), len(cdf) - 1)


def _days(first: date, stop: date) -> list[date]:
    return [first + timedelta(d) for d in range((stop - first).days)]


def _day_weights(days: list[date]) -> np.ndarray:
    """Mild seasonality: busy Nov/early Dec, quiet January, small weekend lift."""
    w = np.ones(len(days))
    for i, d in enumerate(days):
        if d.month == 11:
            w[i] = 1.3
        elif d.month == 12:
            w[i] = 1.5 if d.day <= 20 else 1.1
        elif d.month == 1:
            w[i] = 0.8
        if d.weekday() >= 5:
            w[i] *= 1.1
    return w


def _make_products(rng: np.random.Generator) -> list[dict]:
    products: list[dict] = []
    names: set[str] = set()
    for cat, (n, median, sigma, nouns, _) in CATEGORIES.items():
        for _ in range(n):
            while True:
                name = f"{rng.choice(ADJECTIVES)} {rng.choice(nouns)} — {rng.choice(COLOURS)}"
                if name not in names:
                    names.add(name)
                    break
            price = max(1.0, np.round(median * np.exp(rng.normal(0, sigma)) * 2) / 2) - 0.01
            stock = 0 if rng.random() < 0.05 else int(min(500, max(1, rng.lognormal(2.8, 1.2))))
            products.append({"name": name, "category": cat, "price": f"{price:.2f}", "in_stock": stock})
    order = rng.permutation(len(products))  # ids are not grouped by category
    products = [products[i] for i in order]
    for i, p in enumerate(products):
        p["id"] = f"P{i + 1:04d}"
        p["hidden"] = 0
        p["available_until"] = ""
    for i in rng.choice(len(products), 8, replace=False):
        products[i]["hidden"] = 1
    ends = [
        "2025-09-30",
        "2025-12-31",
        "2026-01-06",
        "2026-02-15",
        "2026-03-31",
        "2026-06-30",
        "2026-08-31",
        "2026-11-30",
        "2026-12-24",
        "2026-12-31",
        "2027-01-31",
        "2027-03-31",
    ]
    for i, end in zip(rng.choice(len(products), len(ends), replace=False), ends):
        products[i]["available_until"] = end
    return products


def _make_customers(rng: np.random.Generator) -> list[dict]:
    n_old = int(N_CUSTOMERS * 0.25)
    old_start, hist_start = _epoch(datetime(2023, 1, 1, tzinfo=UTC)), _epoch(HISTORY_START)
    created = list(rng.integers(old_start, hist_start, n_old))
    days = _days(HISTORY_START.date(), date(2026, 10, 28))
    dw = _day_weights(days) * np.linspace(1.0, 1.3, len(days))  # the shop grows
    picks = rng.choice(len(days), N_CUSTOMERS - n_old, p=dw / dw.sum())
    created += [hist_start + int(d) * 86400 + int(rng.integers(0, 86400)) for d in picks]
    created = sorted(int(c) for c in created)

    tz_names = [t[0] for t in TIMEZONES]
    tz_p = np.array([t[2] for t in TIMEZONES])
    tzs = list(rng.choice(tz_names, N_CUSTOMERS, p=tz_p / tz_p.sum()))
    london = [i for i, t in enumerate(tzs) if t == "Europe/London"]
    forced = rng.choice(london, 4 * len(DATE_LINE_ZONES), replace=False)
    for k, i in enumerate(forced):  # guarantee a few customers on each side of the date line
        tzs[i] = DATE_LINE_ZONES[k // 4]

    customers = []
    for i in range(N_CUSTOMERS):
        first = FIRST_NAMES[rng.integers(len(FIRST_NAMES))]
        last = LAST_NAMES[rng.integers(len(LAST_NAMES))]
        local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalpha() or ch == ".")
        age_days = int(np.clip(rng.normal(42, 14), 18.1, 79.9) * 365.25)
        birth: date | None = END_DATE - timedelta(age_days)
        if rng.random() < 0.08:
            birth = None
        customers.append(
            {
                "id": f"C{i + 1:04d}",
                "email": f"{local}.{i + 1}@example.com",
                "name": f"{first} {last}",
                "birth": birth,
                "anniv": None,
                "timezone": str(tzs[i]),
                "created": created[i],
            }
        )
    with_birth = [c for c in customers if c["birth"] is not None]
    for k in rng.choice(len(with_birth), 6, replace=False):  # leap-day birthdays
        with_birth[k]["birth"] = date(int(rng.choice(range(1952, 2005, 4))), 2, 29)
    for c in customers:
        if rng.random() >= 0.45:
            continue
        lo = date(c["birth"].year + 19, 1, 1) if c["birth"] else date(1975, 1, 1)
        lo = max(lo, date(1965, 1, 1))
        span = (END_DATE - lo).days - 1
        if span < 60:  # too young for an anniversary
            continue
        c["anniv"] = lo + timedelta(int(span * rng.beta(1.3, 2.5)))
    eligible = [c for c in customers if c["birth"] and c["birth"].year <= 1990 and c["anniv"]]
    for k in rng.choice(len(eligible), 3, replace=False):  # leap-day anniversaries
        c = eligible[k]
        c["anniv"] = date(int(rng.choice(range(4 * ((c["birth"].year + 22) // 4), 2025, 4))), 2, 29)
    return customers


def _make_interactions(rng: np.random.Generator, customers: list[dict], products: list[dict]) -> list[tuple]:
    pids = np.array([p["id"] for p in products])
    cat_names = list(CATEGORIES)
    cat_items = {c: np.array([i for i, p in enumerate(products) if p["category"] == c]) for c in cat_names}
    base = np.zeros(len(products))
    for items in cat_items.values():  # Zipf-like popularity inside each category
        base[items[rng.permutation(len(items))]] = 1.0 / np.arange(1, len(items) + 1) ** 1.05
    cat_pop = np.array([base[cat_items[c]].sum() * CATEGORIES[c][0] for c in cat_names])
    explore_cat_cdf = _cdf(cat_pop)
    explore_cdf = {c: _cdf(base[cat_items[c]]) for c in cat_names}
    best = np.argsort(-base, kind="stable")[:60]
    best = rng.choice(best, 15, replace=False)  # global bestsellers, shown to everyone
    best_cdf = _cdf(1.0 / np.arange(1, 16) ** 0.7)
    seg_item_cdf, seg_cat_cdf = [], []
    for cats, _ in SEGMENTS:  # each segment likes its own subset inside a category
        seg_cat_cdf.append((list(cats), _cdf(np.array(list(cats.values())))))
        per = {}
        for c in cat_names:
            liked = rng.random(len(cat_items[c])) < 0.35
            per[c] = _cdf(base[cat_items[c]] * np.where(liked, 9.0, 1.0))
        seg_item_cdf.append(per)
    consumable = np.array([CATEGORIES[p["category"]][4] for p in products])
    expiry = np.array(
        [
            _epoch(datetime.fromisoformat(p["available_until"] + "T23:59:59+00:00")) if p["available_until"] else 2**40
            for p in products
        ]
    )

    days = _days(HISTORY_START.date(), END_DATE + timedelta(1))
    dw = _day_weights(days)
    hour_w = np.array(
        [1, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 1.5, 2, 2.2, 2.4, 2.6, 3.2, 3, 2.6, 2.4, 2.4, 2.8, 3.4, 4, 4.2, 3.8, 2.6, 1.6]
    )
    hour_cdf = _cdf(hour_w)
    tz_off = {t[0]: t[1] for t in TIMEZONES}
    h0, end_ts = _epoch(HISTORY_START), _epoch(HISTORY_END)

    seg_p = np.array([s[1] for s in SEGMENTS])
    seg_of = rng.choice(len(SEGMENTS), len(customers), p=seg_p / seg_p.sum())
    first_day = [max(0, (c["created"] - h0) // 86400) for c in customers]
    # engagement fades with time since signup but never disappears
    lag = [max(0, (h0 - c["created"]) // 86400) for c in customers]  # signed up before history
    fade = 0.45 + 0.55 * np.exp(-np.arange(len(days) + max(lag)) / 300.0)
    active = np.array([(dw[f:] * fade[g : g + len(days) - f]).sum() for f, g in zip(first_day, lag)])
    rates = rng.lognormal(0.0, 1.25, len(customers)) * active
    floor = 0.7  # most customers come back at least once
    scaled = floor + rates * (TARGET_SESSIONS - floor * len(customers)) / rates.sum()
    n_sessions = np.minimum(rng.poisson(scaled), 160)

    events: list[tuple] = []
    for ci, cust in enumerate(customers):
        seg = seg_of[ci]
        cats, ccdf = seg_cat_cdf[seg]
        fav_cats = [cats[_draw(rng, ccdf)] for _ in range(4)]  # a few personal favourites
        favs = [int(cat_items[c][_draw(rng, seg_item_cdf[seg][c])]) for c in fav_cats]
        f0 = first_day[ci]
        sub_cdf = _cdf(dw[f0:] * fade[lag[ci] : lag[ci] + len(days) - f0])
        starts = []
        for _ in range(n_sessions[ci]):
            day = f0 + _draw(rng, sub_cdf)
            local_s = _draw(rng, hour_cdf) * 3600 + int(rng.integers(0, 3600))
            ts = h0 + day * 86400 + (local_s - tz_off[cust["timezone"]] * 3600) % 86400
            if ts <= cust["created"]:
                ts = cust["created"] + int(rng.integers(60, 3600))
            starts.append(ts)
        owned: list[int] = []

        def emit(ts: int, item: int, kind: str, qty: int = 1) -> None:
            events.append((ts, ci, len(events), int(item), kind, qty))

        for t in sorted(starts):
            cart: list[tuple[int, int]] = []
            if owned and rng.random() < 0.25:  # replenish a consumable bought before
                item = owned[int(rng.integers(len(owned)))]
                emit(t, item, "view")
                t += int(rng.integers(10, 90))
                qty = int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))
                emit(t, item, "add_to_cart", qty)
                cart.append((item, qty))
                n_views = int(rng.integers(0, 3))
            else:
                n_views = min(int(rng.geometric(0.28)), 15)
            own_cat = rng.random() < 0.85
            cat = cats[_draw(rng, ccdf)] if own_cat else cat_names[_draw(rng, explore_cat_cdf)]
            for _ in range(n_views):
                u, p_cart = rng.random(), 0.28
                if u < 0.10:
                    item = int(best[_draw(rng, best_cdf)])
                elif u < 0.28:
                    item, p_cart = favs[int(rng.integers(len(favs)))], 0.4
                else:
                    if rng.random() < 0.15:  # drift to a second category
                        cat = cats[_draw(rng, ccdf)]
                        own_cat = True
                    cdf = seg_item_cdf[seg][cat] if own_cat else explore_cdf[cat]
                    item = int(cat_items[cat][_draw(rng, cdf)])
                if t > expiry[item]:
                    continue
                t += int(rng.integers(15, 150))
                emit(t, item, "view")
                if rng.random() < p_cart:
                    t += int(rng.integers(5, 60))
                    qty = 2 if rng.random() < 0.08 else 1
                    emit(t, item, "add_to_cart", qty)
                    cart.append((item, qty))
            t += int(rng.integers(60, 400))
            for item, qty in cart:
                if rng.random() < 0.72:
                    if consumable[item]:
                        qty = max(qty, int(rng.choice([1, 2, 3], p=[0.6, 0.28, 0.12])))
                        if item not in owned:
                            owned.append(item)
                    emit(t, item, "purchase", qty)
                    t += int(rng.integers(1, 5))
    # nothing after the end of history, nothing for a seasonal item after it expired
    events = [e for e in events if e[0] <= min(end_ts, expiry[e[3]])]
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return [(customers[ci]["id"], str(pids[item]), kind, qty, _iso(ts)) for ts, ci, _, item, kind, qty in events]


def _make_consents(rng: np.random.Generator, customers: list[dict]) -> list[tuple]:
    rows = []
    end_ts = _epoch(HISTORY_END)
    mix = {"personalization": [0.85, 0.07], "marketing": [0.65, 0.15]}
    for c in customers:
        for purpose, (p_yes, p_no) in mix.items():
            u = rng.random()
            if u >= p_yes + p_no:
                continue  # never asked
            granted = u < p_yes
            later = c["created"] + int((end_ts - c["created"]) * rng.random())
            src_p = [0.7, 0.18, 0.12] if granted else [0.2, 0.05, 0.75]  # withdrawals come later
            src = str(rng.choice(["signup", "checkout", "preference_centre"], p=src_p))
            ts = c["created"] + int(rng.integers(0, 5)) if src == "signup" else later
            flag = "true" if granted else "false"
            rows.append((c["id"], purpose, flag, _iso(min(ts, end_ts)), src))
    return rows


def _csv_bytes(header: list[str], rows: list) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _readme(counts: dict[str, int], seed: int) -> str:
    return f"""# Sample data (synthetic)

A small, made-up online gift shop for development, demos and tests. Nothing here
describes real people: names come from short built-in lists and every email is
`@example.com`. Regenerate (byte-identical for the same seed) with:

    python scripts/make_sample_data.py --seed {seed}

History covers 2025-05-01 to 2026-10-31T23:59:59Z. Timestamps are ISO 8601 UTC
(`YYYY-MM-DDTHH:MM:SSZ`), dates are `YYYY-MM-DD`, empty cells mean "unknown/none".
All files are UTF-8 CSV with a header row and `\\n` line endings.

- `customers.csv` ({counts["customers.csv"]} rows): id, email, name, birth_date,
  anniversary_date, timezone (IANA name), created_at.
- `products.csv` ({counts["products.csv"]} rows): id, name, category, price (2 decimals),
  in_stock (units, 0 = out of stock), hidden (0/1), available_until (date or empty).
- `interactions.csv.gz` ({counts["interactions.csv.gz"]} rows): customer_id, product_id,
  event_type (view / add_to_cart / purchase), quantity (>= 1), occurred_at.
- `consents.csv` ({counts["consents.csv"]} rows): customer_id, purpose (personalization /
  marketing), granted (true / false), updated_at, source (signup / preference_centre /
  checkout).

Notes:
- `interactions.csv.gz` is gzip-compressed and sorted by occurred_at, then customer_id.
  No event precedes its customer's created_at.
- A missing consent row means the customer was never asked; `false` means withdrawn/declined.
- `available_until` is empty for most products; a past date means an expired seasonal item.
- Customers fall into hidden taste segments with stable preferences, item popularity
  is long-tailed, and activity is heavy-tailed, so a collaborative-filtering model has
  real signal to learn beyond a popularity baseline.
"""


def generate(out_dir: pathlib.Path, seed: int = 42) -> dict[str, int]:
    """Write the sample files into ``out_dir`` and return row counts per file."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    products = _make_products(rng)
    customers = _make_customers(rng)
    interactions = _make_interactions(rng, customers, products)
    consents = _make_consents(rng, customers)

    def fmt(d: date | None) -> str:
        return d.isoformat() if d else ""

    files = {
        "customers.csv": _csv_bytes(
            ["id", "email", "name", "birth_date", "anniversary_date", "timezone", "created_at"],
            [
                (c["id"], c["email"], c["name"], fmt(c["birth"]), fmt(c["anniv"]), c["timezone"], _iso(c["created"]))
                for c in customers
            ],
        ),
        "products.csv": _csv_bytes(
            ["id", "name", "category", "price", "in_stock", "hidden", "available_until"],
            [
                (p["id"], p["name"], p["category"], p["price"], p["in_stock"], p["hidden"], p["available_until"])
                for p in products
            ],
        ),
        "consents.csv": _csv_bytes(["customer_id", "purpose", "granted", "updated_at", "source"], consents),
    }
    counts = {
        "customers.csv": len(customers),
        "products.csv": len(products),
        "interactions.csv.gz": len(interactions),
        "consents.csv": len(consents),
    }
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    raw = _csv_bytes(["customer_id", "product_id", "event_type", "quantity", "occurred_at"], interactions)
    with (
        open(out_dir / "interactions.csv.gz", "wb") as f,
        gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz,
    ):
        gz.write(raw)
    (out_dir / "README.md").write_text(_readme(counts, seed), encoding="utf-8", newline="\n")
    return counts


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: generate the files and print one line per file."""
    default_out = pathlib.Path(__file__).resolve().parent.parent / "sample_data"
    parser = argparse.ArgumentParser(
        description="Generate deterministic synthetic shop data (customers, products, interactions, consents)."
    )
    parser.add_argument(
        "--seed", type=int, default=42, help="random seed; the same seed gives byte-identical files (default 42)"
    )
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=default_out,
        help="output directory (default: sample_data/ at the repository root)",
    )
    args = parser.parse_args(argv)
    counts = generate(args.out, args.seed)
    for name, rows in counts.items():
        print(f"{name}: {rows} rows, {(args.out / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
