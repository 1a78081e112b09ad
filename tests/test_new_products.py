"""New products get a place on day one (docs/new-products.md).

A hand-made shop with two clearly separated categories and distinctive names: what a new product's
neighbours must be is known by hand (the products of its category, those sharing its words first).
"""

import json

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import store
from recommender.models import content
from recommender.models.base import load_model
from recommender.models.factor import FactorModel
from recommender.serving.catalogue import ListFilters
from recommender.serving.newproducts import Exploration
from recommender.serving.service import ListOptions, Service
from recommender.store.rows import ProductRow

KITCHEN = {
    "k1": "Steel Kettle Small",
    "k2": "Steel Kettle Large",
    "k3": "Ceramic Mug Blue",
    "k4": "Ceramic Mug Red",
    "k5": "Chef Knife Forged",
    "k6": "Cutting Board Oak",
}
GARDEN = {
    "g1": "Rose Bush Red",
    "g2": "Rose Bush White",
    "g3": "Garden Spade",
    "g4": "Watering Can Zinc",
    "g5": "Flower Pot Clay",
    "g6": "Seed Tray Plastic",
}
NEW = ProductRow("k7", "Steel Kettle Deluxe", "kitchen", 30.0, description="A steel kettle for the kitchen")


def _shop(db, settings, tmp_path):
    from recommender.ingest import imports

    lines = [f"{p},{n},kitchen,{10 + i},5,0," for i, (p, n) in enumerate(KITCHEN.items())]
    lines += [f"{p},{n},garden,{10 + i},5,0," for i, (p, n) in enumerate(GARDEN.items())]
    (tmp_path / "products.csv").write_text(
        "id,name,category,price,in_stock,hidden,available_until\n" + "\n".join(lines) + "\n"
    )
    kitchen, garden = sorted(KITCHEN), sorted(GARDEN)
    events, consents, customers = [], [], []
    for c in range(24):
        cid = f"c{c:02d}"
        customers.append(f"{cid},,,,,UTC,2025-01-01T00:00:00Z")
        consents.append(f"{cid},personalization,true,2025-01-01T00:00:00Z,signup")
        own = kitchen if c < 12 else garden
        for j in range(4):  # four of the six products of their category, rotating
            p = own[(c + j) % 6]
            events.append(f"{cid},{p},purchase,1,2025-03-{1 + (c + j) % 27:02d}T10:00:00Z")
    (tmp_path / "customers.csv").write_text(
        "id,email,name,birth_date,anniversary_date,timezone,created_at\n" + "\n".join(customers) + "\n"
    )
    (tmp_path / "interactions.csv").write_text(
        "customer_id,product_id,event_type,quantity,occurred_at\n" + "\n".join(events) + "\n"
    )
    (tmp_path / "consents.csv").write_text(
        "customer_id,purpose,granted,updated_at,source\n" + "\n".join(consents) + "\n"
    )
    for kind in ("customers", "products", "interactions", "consents"):
        imports.import_file(db, kind, tmp_path / f"{kind}.csv", settings)


@pytest.fixture
def shop(db, fast_settings, tmp_path):
    from recommender.training import run as training

    fast_settings.serve.model_check_seconds = 0.0
    fast_settings.serve.catalogue_ttl_seconds = 0.0
    fast_settings.serve.new_product_share = 0.0  # new products compete on their content score only
    _shop(db, fast_settings, tmp_path)
    training.train(db, fast_settings, publish=True, force=True)  # a toy shop: popularity ties the model
    return db, fast_settings


def test_a_product_imported_after_the_retrain_is_similar_to_its_category_and_in_a_matching_personal_list(shop):
    db, settings = shop
    service = Service(settings)
    before = service.recommend(db, "c00", ListOptions(n=3))
    assert before.mode == "personalized" and "k7" not in before.product_ids
    store.upsert_products(db, [NEW])  # no retrain: the worker follows the product change log

    similar = service.similar(db, "k7", 6, ListFilters())
    assert similar.mode == "model"
    # by hand: the six kitchen products, nothing of the garden, before any garden product
    assert set(similar.product_ids) == set(KITCHEN)
    kitchen_customer = service.recommend(db, "c00", ListOptions(n=3))
    # c00 bought k1..k4: the two kitchen products left and the new kettle beat every garden product
    assert kitchen_customer.mode == "personalized" and "k7" in kitchen_customer.product_ids
    assert set(kitchen_customer.product_ids) == {"k5", "k6", "k7"}
    garden_customer = service.recommend(db, "c12", ListOptions(n=3))
    assert "k7" not in garden_customer.product_ids
    # the new product also lists kitchen products as its neighbours from the other side
    kettle = service.similar(db, "k1", 3, ListFilters())
    assert set(kettle.product_ids) <= set(KITCHEN) | {"k7"}


def test_an_item_model_places_a_new_product_by_its_content_neighbours(shop, tmp_path):
    db, settings = shop
    from recommender.data import interactions
    from recommender.models import families
    from recommender.training import coldstart

    data = interactions.load(db, settings)
    matrix = data.matrix(settings.als)
    ease = families.fit("ease", matrix, list(data.user_ids), list(data.item_ids), settings)
    coldstart.attach_mapping(db, ease, matrix)
    new = content.ProductText("k7", NEW.name, NEW.description, "kitchen", 30.0)
    extended = content.extend(ease, [new])
    k7 = extended.item_index["k7"]
    found, sims = extended.similar_items(k7, 3)
    names = [extended.item_ids[i] for i in found]
    # by hand: cosine over TF-IDF + category + price band; the two steel kettles share the most words
    assert set(names[:2]) == {"k1", "k2"} and names[2] in KITCHEN
    assert np.all(np.diff(sims) <= 0)
    # a kitchen customer's scores put it above every garden product
    state = extended.fold_in(np.array([extended.item_index["k3"], extended.item_index["k4"]]), np.ones(2))
    scores = extended.score(state)
    assert scores[k7] > max(scores[extended.item_index[g]] for g in GARDEN)
    # a history holding only the new product says something: its neighbours stand in for it
    assert extended.fold_in(np.array([k7]), np.ones(1)) is not None


def test_the_ridge_mapping_is_the_closed_form_on_a_tiny_case():
    rng = np.random.default_rng(3)
    x = rng.random((7, 4))
    x[x < 0.4] = 0.0
    y = rng.standard_normal((7, 2))
    alpha = 0.7
    coef, intercept = content.ridge(sp.csr_matrix(x), y, alpha)
    # by hand: centre both sides, solve (XcᵀXc + αI) W = XcᵀYc, b = ȳ − x̄ W
    xm, ym = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - xm, y - ym
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(4), xc.T @ yc)
    np.testing.assert_allclose(coef, w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(intercept, ym - xm @ w, rtol=1e-4, atol=1e-5)


def _factor_model() -> FactorModel:
    rng = np.random.default_rng(0)
    items = [*KITCHEN, *GARDEN]
    y = np.zeros((len(items), 4), dtype=np.float32)
    y[:6, 0], y[6:, 1] = 1.0, 1.0
    y += 0.05 * rng.standard_normal(y.shape).astype(np.float32)
    y[5] = 0.0  # k6: no interactions in its training data
    return FactorModel(rng.standard_normal((3, 4)).astype(np.float32), y, ["u1", "u2", "u3"], items, 0.1)


def test_the_mapping_is_saved_with_the_artifact_as_arrays_and_loads_back_without_pickle(tmp_path):
    model = _factor_model()
    texts = {
        **{p: content.ProductText(p, n, None, "kitchen", 10.0) for p, n in KITCHEN.items()},
        **{p: content.ProductText(p, n, None, "garden", 12.0) for p, n in GARDEN.items()},
    }
    trained = np.ones(model.n_items, dtype=bool)
    trained[5] = False
    mapping = content.ContentMapping.fit(model, texts, trained)
    mapping.attach(model)
    model.save(tmp_path / "a")
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["content"]["kinds"] == ["ridge"] and "vocabulary" in manifest["content_arrays"]
    for name in manifest["content_arrays"]:  # plain arrays: nothing needs pickle
        np.load(tmp_path / "a" / f"content_{name}.npy", allow_pickle=False)
    loaded = load_model(tmp_path / "a")
    again = content.ContentMapping.of(loaded)
    assert again.featuriser.vocabulary == mapping.featuriser.vocabulary
    new = [content.ProductText("k7", NEW.name, NEW.description, "kitchen", 30.0)]
    x = mapping.featuriser.transform(new)
    np.testing.assert_allclose(
        again.predict_factors(0, again.featuriser.transform(new)), mapping.predict_factors(0, x), rtol=1e-6
    )
    extended = content.extend(loaded, new, base_products=texts)
    assert extended.item_ids[-1] == "k7" and list(content.cold_items(extended)) == [5, 12]
    # the cold k6 and the new k7 are kitchen products to the factor model now
    k7 = extended.item_index["k7"]
    found, _ = extended.similar_items(k7, 5)
    assert {extended.item_ids[i] for i in found} <= set(KITCHEN)


def test_the_exploration_share_holds_over_many_requests():
    model = _factor_model()
    texts = {
        p: content.ProductText(p, n, None, "kitchen" if p in KITCHEN else "garden", 10.0)
        for p, n in {**KITCHEN, **GARDEN}.items()
    }
    trained = np.ones(model.n_items, dtype=bool)
    trained[5] = False
    content.ContentMapping.fit(model, texts, trained).attach(model)
    extended = content.extend(model, [content.ProductText("k7", NEW.name, None, "kitchen", 30.0)], base_products=texts)
    eligible = content.cold_items(extended)
    exploration = Exploration(0.05, eligible, np.random.default_rng(11))
    state = np.array([0.0, 1.0, 0.0, 0.0], dtype=np.float32)  # a garden customer: new kitchen products rank low
    allow = np.ones(extended.n_items, dtype=bool)
    requests, n, slots = 4000, 10, 0
    for _ in range(requests):
        top, scores = extended.recommend(state, n, exclude=eligible, allow=allow)  # a list without new products
        chosen = top.tolist()
        out, explored = exploration.apply(
            extended, state, chosen, dict(zip(top.tolist(), scores.tolist())), n, allow, np.zeros(0, np.int64)
        )
        assert len(out) == n and len(explored) <= 1
        if explored:
            assert out[-1] == explored[0]  # the last slot, the best content score for this customer
            assert explored[0] == max(eligible.tolist(), key=lambda i: extended.score(state)[i])
        slots += len(explored)
    # stated: 0.05 of slots = one slot in half of the lists of 10; 4000 lists: se of the share 0.0008
    assert abs(slots / (requests * n) - 0.05) < 0.005
