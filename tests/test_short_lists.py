"""A list shorter than asked says why (issue 24): ``short = {asked, returned, because}``, null when full.

A hand-made shop of fifteen products, each kept out of a list by one known
rule, and a model trained on it (it holds every product but K9, added after). Every expected ``because`` below is written by
hand from the table, not computed by the code under test: the steps in the order
a list is made, a product refused by several counted against the first.

    id   category  price  stock  hidden  available_until   events
    K1   kitchen   10     5                                 yes
    K2   kitchen   15     5                                 yes
    K3   kitchen   30     5                                 yes
    K4   kitchen   12     0                                 yes
    K5   kitchen   8      5      yes                        yes
    K6   kitchen   9      5              2020-01-01         yes
    K7   kitchen   11     5                                 yes (bought by BUYER)
    K8   kitchen   14     5                                 none: never popular
    K9   kitchen   10     5                                 none, added after the model: not in it
    G1-4 garden    5      5                                 yes
    G5   garden    5      5      yes                        yes
"""

from __future__ import annotations

import time

import pytest

from recommender import store
from recommender.config import load_settings

PRODUCTS = [
    ("K1", "Mug", "kitchen", 10.0, 5, 0, None),
    ("K2", "Pan", "kitchen", 15.0, 5, 0, None),
    ("K3", "Pot", "kitchen", 30.0, 5, 0, None),
    ("K4", "Jug", "kitchen", 12.0, 0, 0, None),
    ("K5", "Bowl", "kitchen", 8.0, 5, 1, None),
    ("K6", "Whisk", "kitchen", 9.0, 5, 0, "2020-01-01"),
    ("K7", "Ladle", "kitchen", 11.0, 5, 0, None),
    ("K8", "Sieve", "kitchen", 14.0, 5, 0, None),
    *[(f"G{i}", f"Seed {i}", "garden", 5.0, 5, 0, None) for i in range(1, 5)],
    ("G5", "Rake", "garden", 5.0, 5, 1, None),
]
IN_MODEL = [p[0] for p in PRODUCTS if p[0] != "K8"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    from recommender.training import run as training

    root = tmp_path_factory.mktemp("short")
    settings = load_settings(
        environ={}, overrides={"db": root / "shop.db", "model_dir": root / "models", "selection": {"enabled": False}}
    )
    settings.als.factors = 4
    settings.als.iterations = 5
    # K9 stands for a product the model cannot see: what a list lacks is told without the content
    # representation of new products (tested on its own in tests/test_new_products.py)
    settings.serve.represent_new_products = False
    db = store.connect(settings.db, create=True)
    customers = ["BUYER", "NEWBIE", *[f"C{i:02d}" for i in range(30)]]
    store.upsert_customers(db, [(c, None, None, None, None, "UTC", "2025-01-01T00:00:00Z") for c in customers])
    store.upsert_products(db, PRODUCTS)
    store.set_consents(db, [(c, "personalization", True, "2025-01-01T00:00:00Z", "test") for c in customers])
    now = int(time.time()) - 86400
    events = [
        (f"C{i:02d}", p, "view", 1.0, now + i * 60 + k)
        for i in range(30)
        for k, p in enumerate(IN_MODEL)
        if (i + k) % 3
    ]
    events += [("BUYER", p, "view", 1.0, now + k) for k, p in enumerate(IN_MODEL)]
    events.append(("BUYER", "K7", "purchase", 1.0, now + 100))
    store.upsert_interactions(db, events)
    training.train(db, settings, publish=True, force=True, select=False)  # the gate is not what is tested
    store.upsert_products(db, [("K9", "Grater", "kitchen", 10.0, 5, 0, None)])
    db.conn.close()
    return settings


@pytest.fixture(scope="module")
def client(shop):
    from api import create_app

    shop.serve.open = True
    shop.privacy.decision_log = False
    app = create_app(shop)
    app.config["TESTING"] = True
    return app.test_client()


def short(client, url):
    body = client.get(url).get_json()
    assert "short" in body, body
    return body


# --- personal lists ---------------------------------------------------------------------------


def test_the_issue_s_list_names_each_filter_that_removed_candidates(client):
    # kitchen under 20: K1, K2, K8 left; K3 too dear, K4 out of stock, K5 hidden, K6 expired, K7 bought
    body = short(client, "/v1/customers/BUYER/recommendations?n=5&category=kitchen&max_price=20")
    assert body["mode"] == "personalized"
    assert sorted(i["product_id"] for i in body["items"]) == ["K1", "K2", "K8"]
    assert body["short"] == {
        "asked": 5,
        "returned": 3,
        "because": ["category", "max_price", "in_stock", "hidden", "expired", "purchased"],
    }


def test_a_full_list_has_short_null(client):
    body = short(client, "/v1/customers/BUYER/recommendations?n=3&category=kitchen&max_price=20")
    assert len(body["items"]) == 3 and body["short"] is None


def test_exclusions_and_purchases_count_only_what_the_rules_let_through(client):
    # K7 is allowed back in (exclude_purchased=false); K1 is the caller's; K3 is excluded too but already too dear
    body = short(
        client,
        "/v1/customers/BUYER/recommendations?n=5&category=kitchen&max_price=20"
        "&exclude_purchased=false&exclude=K1&exclude=K3",
    )
    assert sorted(i["product_id"] for i in body["items"]) == ["K2", "K7", "K8"]
    assert body["short"]["because"] == ["category", "max_price", "in_stock", "hidden", "expired", "exclude"]


def test_a_product_refused_by_two_rules_counts_against_the_first(client):
    # garden: G1-G4 (price 5); K3 is dearer than 10 but already out by category, G5 is hidden
    body = short(client, "/v1/customers/BUYER/recommendations?n=10&category=garden&max_price=10")
    assert sorted(i["product_id"] for i in body["items"]) == ["G1", "G2", "G3", "G4"]
    assert body["short"] == {"asked": 10, "returned": 4, "because": ["category", "hidden"]}


def test_the_diversity_cap(client):
    # at most ceil(4 * 0.25) = 1 kitchen product: K1, K2, K3, K8 allowed, one kept
    body = short(client, "/v1/customers/BUYER/recommendations?n=4&category=kitchen&diversity=0.75")
    assert len(body["items"]) == 1
    assert body["short"]["because"] == ["category", "in_stock", "hidden", "expired", "purchased", "diversity"]


def test_a_catalogue_smaller_than_n(client):
    # 13 products in the model (K9 is not); allowed: K1, K2, K3, K8, G1-G4 (K7 bought)
    body = short(client, "/v1/customers/BUYER/recommendations?n=50")
    assert len(body["items"]) == 8
    assert body["short"] == {
        "asked": 50,
        "returned": 8,
        "because": ["catalogue", "in_stock", "hidden", "expired", "purchased"],
    }


# --- lists that are not personal ----------------------------------------------------------------


def test_no_history_falls_back_to_popular_products_which_the_catalogue_outnumbers(client):
    # NEWBIE has no events: popular products only, so K8 and K9 (never touched) cannot fill it; nothing bought
    # is left out
    body = short(client, "/v1/customers/NEWBIE/recommendations?n=5&category=kitchen&max_price=20")
    assert (body["mode"], body["reason"]) == ("non_personalized", "no_history")
    assert sorted(i["product_id"] for i in body["items"]) == ["K1", "K2", "K7"]
    assert body["short"] == {
        "asked": 5,
        "returned": 3,
        "because": ["no_history", "category", "max_price", "in_stock", "hidden", "expired"],
    }


def test_popular_lists(client):
    body = short(client, "/v1/products/popular?n=5&category=kitchen&max_price=20&exclude=K2")
    assert sorted(i["product_id"] for i in body["items"]) == ["K1", "K7"]
    assert body["short"]["because"] == ["popular", "category", "max_price", "in_stock", "hidden", "expired", "exclude"]
    assert short(client, "/v1/products/popular?n=3")["short"] is None


def test_similar_products(client):
    # itself aside the model knows 12 products; G5 hidden, K4 out of stock, K5 hidden, K6 expired
    body = short(client, "/v1/products/K1/similar?n=20")
    assert body["mode"] == "model"
    assert sorted(i["product_id"] for i in body["items"]) == ["G1", "G2", "G3", "G4", "K2", "K3", "K7", "K8"]
    assert body["short"] == {"asked": 20, "returned": 8, "because": ["catalogue", "in_stock", "hidden", "expired"]}
    # a product the model has not seen: popular products of its category, which K8 is not
    body = short(client, "/v1/products/K9/similar?n=20&max_price=12")
    assert body["reason"] == "not_in_model"
    assert sorted(i["product_id"] for i in body["items"]) == ["K1", "K7"]
    assert body["short"]["because"] == ["not_in_model", "category", "max_price", "in_stock", "hidden", "expired"]


def test_bought_together_of_a_product_the_model_has_not_seen(client):
    body = short(client, "/v1/products/K9/bought-together?n=3")
    assert body["items"] == []
    assert body["short"] == {"asked": 3, "returned": 0, "because": ["not_in_model"]}


def test_a_rerank_never_is_short(client):
    body = client.post("/v1/customers/BUYER/rerank", json={"products": ["K1", "K2"]}).get_json()
    assert "short" not in body


# --- counted with the mask, not per request -----------------------------------------------------


def test_the_rule_counts_are_kept_with_the_filter_set(shop):
    from recommender.models import registry
    from recommender.serving.catalogue import Catalogue, ListFilters

    db = store.connect(shop.db)
    model = registry.Registry(shop.model_dir).load()
    catalogue = Catalogue(model.item_ids)
    catalogue.refresh(db)
    filters = ListFilters(categories=("kitchen",), max_price=20.0)
    pool, removed = catalogue.removed_items(filters)
    assert pool == 13
    assert removed == {"category": 5, "min_price": 0, "max_price": 1, "in_stock": 1, "hidden": 1, "expired": 1}
    # the same numbers object until the next refresh: a short list costs no pass over the catalogue
    assert catalogue.removed_items(ListFilters(categories=("kitchen",), max_price=20.0, exclude=("K1",)))[1] is removed
    # and the mask is the one the rules always made
    allow = catalogue.mask(filters)
    assert sorted(model.item_ids[i] for i in allow.nonzero()[0]) == ["K1", "K2", "K7", "K8"]
    db.conn.close()
