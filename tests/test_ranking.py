"""One ranking path: the storefront and the campaigns rank a customer alike, with one set of filter rules.

Real demo shop with a published model (the ``served`` fixture), the real
Flask app, real campaign runs. The reference rankings are computed here from
the model's factors and the database rows with plain numpy, not with the code
under test.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from recommender import campaigns, store
from recommender.data import interactions
from recommender.models import registry
from recommender.serving.catalogue import Catalogue, ListFilters


def reference_top(db, settings, model, customer_id, n, on):
    """Top-n by full scoring: fold-in by the model's least squares, rules applied by hand from the rows."""
    items, conf = interactions.customer_confidences(
        db, settings, customer_id, model.item_index, model.manifest["data"]["reference_time"]
    )
    scores = model.item_factors @ model.recalculate_user(items, conf)
    rows = {r["id"]: r for r in store.all_products(db)}
    bought = {p for p, e, _, _ in store.customer_events(db, customer_id) if e == "purchase"}
    ok = [
        p in rows
        and not rows[p]["hidden"]
        and (rows[p]["in_stock"] is None or rows[p]["in_stock"] > 0)
        and (rows[p]["available_until"] or "9999-12-31") >= on
        and p not in bought
        for p in model.item_ids
    ]
    order = [i for i in np.argsort(-scores, kind="stable") if ok[i]]
    return [model.item_ids[i] for i in order[:n]]


def test_a_customer_newer_than_the_model_gets_the_same_top_k_on_the_web_and_in_an_offer(client, served):
    db = store.connect(served.db)
    model = registry.Registry(served.model_dir).load()
    today = dt.datetime.now(dt.UTC).date()
    if today.month == 2 and today.day == 29:
        pytest.skip("a 29 February birthday moves in non-leap years")
    birthday = f"1990-{today:%m-%d}"
    store.upsert_customers(db, [("NEWBIE", "new@example.com", "New Customer", birthday, None, "UTC", store.utcnow())])
    store.set_consents(
        db,
        [
            ("NEWBIE", "personalization", True, store.utcnow(), "test"),
            ("NEWBIE", "marketing", True, store.utcnow(), "test"),
        ],
    )
    # History taken from a trained customer's taste: their most viewed products, plus one purchase.
    donor = db.execute(
        "SELECT customer_id FROM interactions WHERE event_type = 'purchase' "
        "GROUP BY customer_id ORDER BY count(*) DESC, customer_id LIMIT 1"
    ).fetchone()[0]
    picked = [
        r[0]
        for r in db.execute(
            "SELECT product_id FROM interactions WHERE customer_id = ? "
            "GROUP BY product_id ORDER BY count(*) DESC, product_id LIMIT 6",
            [donor],
        )
    ]
    now = int(dt.datetime.now(dt.UTC).timestamp()) - 3600
    store.upsert_interactions(
        db,
        [("NEWBIE", p, "view", 1.0, now + i) for i, p in enumerate(picked)]
        + [("NEWBIE", picked[0], "purchase", 1.0, now + 10)],
    )
    assert "NEWBIE" not in model.user_index  # joined after the last retrain

    web = client.get("/v1/customers/NEWBIE/recommendations?n=3").get_json()
    assert web["mode"] == "personalized"
    web_ids = [i["product_id"] for i in web["items"]]
    assert web_ids == reference_top(db, served, model, "NEWBIE", 3, today.isoformat())
    assert picked[0] not in web_ids

    served.campaigns.max_product_share = 1.0  # nothing but this customer's own ranking decides
    result = campaigns.run(
        db,
        served,
        campaigns.CampaignRequest(
            occasion="birthday", date=today.isoformat(), days_ahead=0, items=3, max_per_product=10_000
        ),
        dry_run=True,
    )
    offer = next(o for o in result.offers if o.customer_id == "NEWBIE")
    assert offer.mode == "personalized" and offer.reason is None
    assert offer.product_ids == web_ids


def test_without_history_both_faces_say_no_history(client, served):
    db = store.connect(served.db)
    store.upsert_customers(db, [("QUIET", "q@example.com", "Quiet", "1990-06-03", None, "UTC", store.utcnow())])
    store.set_consents(
        db,
        [
            ("QUIET", "personalization", True, store.utcnow(), "test"),
            ("QUIET", "marketing", True, store.utcnow(), "test"),
        ],
    )
    assert client.get("/v1/customers/QUIET/recommendations?n=3").get_json()["reason"] == "no_history"
    result = campaigns.run(
        db, served, campaigns.CampaignRequest(occasion="birthday", date="2026-06-01", days_ahead=7), dry_run=True
    )
    assert next(o for o in result.offers if o.customer_id == "QUIET").reason == "no_history"


PRODUCTS = [  # id, name, category, price, in_stock, hidden, available_until
    ("A", "Mug", "kitchen", 9.0, None, 0, None),
    ("B", "Pan", "kitchen", 30.0, 0, 0, None),  # out of stock
    ("C", "Rose", "garden", 4.0, 3, 1, None),  # hidden
    ("D", "Spade", "garden", 20.0, None, 0, "2026-06-04"),  # available until 4 June
    ("E", "Lamp", None, None, 5, 0, None),  # no category, no price
    ("F", "Vase", "home", 15.0, 2, 0, None),
]


@pytest.mark.parametrize(
    "filters, expected",
    [
        (ListFilters(available_on="2026-06-01"), {"A", "D", "E", "F"}),
        (ListFilters(available_on="2026-06-05"), {"A", "E", "F"}),
        (ListFilters(available_on="2026-06-01", in_stock_only=False), {"A", "B", "D", "E", "F"}),
        (ListFilters(available_on="2026-06-01", categories=("kitchen", "garden")), {"A", "D"}),
        (ListFilters(available_on="2026-06-01", min_price=10.0), {"D", "F"}),
        (ListFilters(available_on="2026-06-01", max_price=15.0), {"A", "F"}),
        (ListFilters(available_on="2026-06-01", exclude=("A", "F")), {"D", "E"}),
    ],
)
def test_one_filter_definition_seen_three_ways(db, filters, expected):
    """The model-aligned mask, the per-product check and the catalogue mask give the same, hand-computed set."""
    store.upsert_products(db, PRODUCTS)
    catalogue = Catalogue(["F", "GONE", "A", "B", "C", "D", "E"], ttl=0.0)  # a model's order; GONE was deleted
    catalogue.refresh(db, force=True)
    mask = catalogue.mask(filters)
    assert {catalogue.item_ids[i] for i in np.flatnonzero(mask)} == expected
    assert {p for p in catalogue.products if catalogue.allows(catalogue.products[p], filters)} == expected
    assert {catalogue.ids[j] for j in np.flatnonzero(catalogue.product_mask(filters))} == expected
    banned = {catalogue.item_ids[i] for i in catalogue.banned(filters)}
    assert banned == set(catalogue.item_ids) - expected


def test_a_filter_set_is_one_cached_read_only_mask_and_exclusions_stay_separate(db):
    """Requests with the same filters share one mask (nothing per request over the catalogue)."""
    store.upsert_products(db, PRODUCTS)
    catalogue = Catalogue(["F", "GONE", "A", "B", "C", "D", "E"], ttl=0.0)
    catalogue.refresh(db, force=True)
    first, none = catalogue.allowed(ListFilters(available_on="2026-06-01"))
    second, excluded = catalogue.allowed(ListFilters(available_on="2026-06-01", exclude=("A", "F", "nope")))
    assert first is second and not first.flags.writeable
    assert none.size == 0 and sorted(excluded.tolist()) == [0, 2]  # F and A in the model's order; unknown ids dropped
