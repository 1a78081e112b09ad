"""The storefront API, unchanged, serving an artifact of each item family and a blend.

The tests of :mod:`test_api` that hold for any model are collected here again
with ``served`` overridden: the demo shop with an EASE^R, an RP3beta, an
item-kNN or an ALS + EASE^R blend model published as ``CURRENT`` through the
real registry. The ranking path (:mod:`recommender.serving.ranking`) and the service
are the same code that serves ALS.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_api import (  # noqa: F401  (tests collected again below)
    consenting_customer,
    db_of,
    get_list,
    test_a_product_newer_than_the_model_gets_its_category,
    test_an_event_changes_the_next_recommendation,
    test_diversity_caps_items_per_category,
    test_explain_names_the_customers_own_products,
    test_fallbacks_are_popular_lists_with_a_reason,
    test_filters_category_price_stock_exclude,
    test_hidden_and_expired_products_never_appear,
    test_personalized_recommendations,
    test_rerank_orders_by_the_model,
    test_similar_and_bought_together,
)

from recommender import store
from recommender.config import load_settings
from recommender.data import interactions, signals
from recommender.models import families, registry
from recommender.models.base import load_model
from recommender.models.families.blend import Blend
from recommender.serving.catalogue import Catalogue, ListFilters

FAMILIES = ("ease", "rp3beta", "itemknn", "blend")


def publish_family(db, settings, name: str) -> str:
    """Fit ``name`` on the shop's data as the training job would, save it and point CURRENT at it."""
    data = interactions.load(db, settings)
    full = data.matrix(settings.als)
    if name == "blend":
        parts = [
            families.fit("als", full, data.user_ids, data.item_ids, settings),
            families.fit("ease", full, data.user_ids, data.item_ids, settings),
        ]
        model = Blend(parts, [0.5, 0.5])
    else:
        model = families.fit(name, full, data.user_ids, data.item_ids, settings)
    model.signals = signals.compute(data, settings.purchase_events)
    version = registry.new_version()
    model.manifest.update(
        version=version,
        created_at=store.utcnow(),
        engine="numpy",
        data={"reference_time": int(data.reference_time), "privacy_epoch": int(data.epoch)},
    )
    registry.publish(db, registry.Registry(settings.model_dir), model, version)
    return version


@pytest.fixture(scope="session", params=FAMILIES)
def family_template(request, trained_template, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"family-{request.param}")
    shutil.copy(trained_template / "shop.db", root / "shop.db")
    shutil.copytree(trained_template / "models", root / "models")
    settings = load_settings(environ={}, overrides={"db": root / "shop.db", "model_dir": root / "models"})
    settings.als.factors = 16
    db = store.connect(settings.db)
    publish_family(db, settings, request.param)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return root, request.param


@pytest.fixture
def served(family_template, tmp_path):
    root, _ = family_template
    shutil.copy(root / "shop.db", tmp_path / "shop.db")
    shutil.copytree(root / "models", tmp_path / "models")
    settings = load_settings(environ={}, overrides={"db": tmp_path / "shop.db", "model_dir": tmp_path / "models"})
    settings.als.factors = 16
    settings.serve.model_check_seconds = 0.0
    settings.serve.catalogue_ttl_seconds = 0.0
    return settings


def test_the_family_is_what_is_served(client, served, family_template):
    _, name = family_template
    model = registry.Registry(served.model_dir).load()
    assert model.family == {"rp3beta": "itemgraph", "itemknn": "itemgraph"}.get(name, name)
    body = get_list(client, f"/v1/customers/{consenting_customer(served)}/recommendations?n=5")
    assert body["mode"] == "personalized" and body["model_version"] == model.version


def test_served_scores_are_the_models_scores_of_the_current_history(client, served):
    cid = consenting_customer(served)
    body = get_list(client, f"/v1/customers/{cid}/recommendations?n=5&exclude_purchased=false&in_stock_only=false")
    model = registry.Registry(served.model_dir).load()
    items, conf = interactions.customer_confidences(
        db_of(served), served, cid, model.item_index, model.manifest["data"]["reference_time"]
    )
    state = model.fold_in(items, conf)
    if isinstance(model, Blend):  # blended scores are normalised over the candidates: rank them the same way
        catalogue = Catalogue(model.item_ids)
        catalogue.refresh(db_of(served))
        top, scores = model.recommend(state, 5, exclude=catalogue.banned(ListFilters(in_stock_only=False)))
        assert [i["product_id"] for i in body["items"]] == [model.item_ids[i] for i in top]
        np.testing.assert_allclose([i["score"] for i in body["items"]], scores, atol=1e-5)
        return
    idx = np.array([model.item_index[i["product_id"]] for i in body["items"]])
    np.testing.assert_allclose([i["score"] for i in body["items"]], model.score(state, idx), atol=1e-5)


def test_a_corrupt_artifact_of_the_family_is_refused(client, served):
    cid = consenting_customer(served)
    current = get_list(client, f"/v1/customers/{cid}/recommendations")["model_version"]
    broken = served.model_dir / "20990101T000000Z-broken"
    shutil.copytree(served.model_dir / current, broken)
    name = sorted(load_model(broken).arrays())[0]
    (broken / f"{name}.npy").write_bytes(b"garbage")
    (served.model_dir / registry.POINTER).write_text(broken.name + "\n")
    body = get_list(client, f"/v1/customers/{cid}/recommendations")
    assert body["model_version"] == current and body["mode"] == "personalized"
    reload = client.post("/v1/admin/reload")
    assert reload.status_code == 503 and "checksum" in reload.get_json()["error"]["message"]


def test_erasure_reaches_the_item_model_and_makes_it_stale(client, served):
    """Item models keep only ``user_ids`` per customer: erasure removes the id; the weights stay until a retrain."""
    from recommender import privacy
    from recommender.privacy.reconcile import staleness

    cid = consenting_customer(served)
    reg = registry.Registry(served.model_dir)
    version = reg.current_version()
    assert cid in load_model(reg.path(version)).user_ids
    db = db_of(served)
    done = privacy.forget(db, served, cid)
    assert version in done["models_scrubbed"]
    model = load_model(reg.path(version))  # checksums verified: the rewrite is complete
    assert cid not in model.user_ids and cid not in (reg.path(version) / "ids.json").read_text()
    assert staleness(db, model.manifest, model.user_index, served)["stale"]
    body = get_list(client, f"/v1/customers/{consenting_customer(served)}/recommendations?n=3")
    assert body["mode"] == "personalized"  # stale but inside privacy.max_stale_hours: still served
