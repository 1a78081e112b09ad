"""One rule for "this customer granted purpose P", seen from every reader that applies it.

The shop is six customers written by hand into a real SQLite file, with the
consent rows each needs. Every reader of customer data for a purpose —
training's matrix (the bulk reader), the Parquet export, the popularity counts
that survive erasure and withdrawal, campaign eligibility — must keep exactly
the customers listed below as granted, and no one else. The expected ids and
counts are written out by hand, not computed by the code under test.

    customer  personalization   marketing   events
    A         granted           granted     p1 purchase, p2 view
    B         granted           refused     p1 view,     p3 purchase
    C         withdrawn (0)     -           p1 purchase, p2 purchase
    D         -  (no row)       -           p1 purchase, p2 view
    E         -  (no row)       granted     p2 purchase, p3 view
    F         granted           -           (none)
"""

from __future__ import annotations

from collections import Counter

import pytest

from recommender import store
from recommender.data import interactions
from recommender.privacy import counts
from recommender.store.consents import MARKETING, PERSONALIZATION

WHEN = 1_735_689_600  # 2025-01-01T00:00:00Z
CUSTOMERS = ["A", "B", "C", "D", "E", "F"]
CONSENTS = [
    ("A", "personalization", 1),
    ("A", "marketing", 1),
    ("B", "personalization", 1),
    ("B", "marketing", 0),
    ("C", "personalization", 0),
    ("E", "marketing", 1),
    ("F", "personalization", 1),
]
EVENTS = [
    ("A", "p1", "purchase"),
    ("A", "p2", "view"),
    ("B", "p1", "view"),
    ("B", "p3", "purchase"),
    ("C", "p1", "purchase"),
    ("C", "p2", "purchase"),
    ("D", "p1", "purchase"),
    ("D", "p2", "view"),
    ("E", "p2", "purchase"),
    ("E", "p3", "view"),
]
# By hand, from the table above.
PERSONALIZED_WITH_EVENTS = ["A", "B"]
PERSONALIZED = ["A", "B", "F"]
MARKETABLE = ["A", "E"]
PERSONALIZED_PAIRS = Counter({("A", "p1"): 1, ("A", "p2"): 1, ("B", "p1"): 1, ("B", "p3"): 1})
POPULARITY = {"p1": 2, "p2": 1, "p3": 1}  # distinct customers among A and B


@pytest.fixture
def shop(db):
    db.conn.executemany(
        "INSERT INTO customers (id, created_at) VALUES (?, '2024-12-01T00:00:00Z')", [(c,) for c in CUSTOMERS]
    )
    db.conn.executemany("INSERT INTO products (id, name) VALUES (?, ?)", [("p1", "Mug"), ("p2", "Pan"), ("p3", "Rose")])
    db.conn.executemany(
        "INSERT INTO consents (customer_id, purpose, granted, updated_at, source) "
        "VALUES (?, ?, ?, '2024-12-01T00:00:00Z', 'test')",
        CONSENTS,
    )
    db.conn.executemany(
        "INSERT INTO interactions (customer_id, product_id, event_type, quantity, occurred_at) VALUES (?, ?, ?, 1, ?)",
        [(c, p, t, WHEN + n) for n, (c, p, t) in enumerate(EVENTS)],
    )
    return db


def test_the_store_answers_the_rule_for_each_customer(shop):
    assert store.consenting_customers(shop, PERSONALIZATION) == PERSONALIZED
    assert store.consenting_customers(shop, MARKETING) == MARKETABLE
    assert [c for c in CUSTOMERS if store.has_consent(shop, c, PERSONALIZATION)] == PERSONALIZED
    assert [store.customer_consent(shop, c, PERSONALIZATION) for c in ("A", "C", "D", "nobody")] == [
        (True, True),
        (True, False),
        (True, False),
        (False, False),
    ]
    assert sorted({c for c, *_ in store.consented_event_rows(shop, PERSONALIZATION)}) == PERSONALIZED_WITH_EVENTS
    assert store.popular_since(shop, 0, 10) == [("p1", 2), ("p2", 1), ("p3", 1)]


def test_campaign_eligibility_keeps_only_the_marketing_grants(shop):
    assert store.consented_among(shop, CUSTOMERS + ["nobody"], MARKETING) == set(MARKETABLE)
    assert store.consented_among(shop, ["B", "C", "D"], MARKETING) == set()
    assert store.consented_among(shop, CUSTOMERS, PERSONALIZATION) == set(PERSONALIZED)


def test_the_training_matrix_holds_only_the_personalization_grants(shop, settings):
    data = interactions.load(shop, settings)
    assert sorted(data.user_ids.tolist()) == PERSONALIZED_WITH_EVENTS
    assert Counter(zip(data.user_ids[data.user].tolist(), data.item_ids[data.item].tolist())) == PERSONALIZED_PAIRS


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "bulk-reader"])
def test_popularity_counts_only_the_personalization_grants(shop, settings, monkeypatch, in_process):
    if not in_process:  # a shop too big for the in-process read goes through training's reader
        monkeypatch.setattr(counts, "IN_PROCESS_ROWS", 0)
    data = counts.consented_events(shop, settings)
    assert sorted(data.user_ids.tolist()) == PERSONALIZED_WITH_EVENTS
    popularity = counts.signals_for(shop, settings, ["p1", "p2", "p3"], data)["popularity"]
    assert dict(zip(["p1", "p2", "p3"], popularity.tolist())) == POPULARITY


def test_the_parquet_export_holds_only_the_personalization_grants(shop, settings, tmp_path):
    pytest.importorskip("pyarrow")
    from recommender.data import exports

    out = tmp_path / "export"
    summary = exports.export_interactions(shop, settings, out)
    table = exports.read_export(out)
    pairs = Counter(zip(table.column("customer_id").to_pylist(), table.column("product_id").to_pylist()))
    assert pairs == PERSONALIZED_PAIRS
    assert summary["rows"] == 4
