"""Derived data follows consent and erasure at once, in every worker; the stale-model window is enforced."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from recommender import store
from recommender.config import load_settings
from recommender.models import registry
from recommender.models.factor import FactorModel
from recommender.privacy import derived, reconcile
from tests.conftest import write_csv


@pytest.fixture
def tiny(tmp_path):
    """Four customers, four products; the pair p1+p2 is bought (twice) by c1 alone.

    Baskets (customer, day): c1 {p1,p2} ×2, c2 {p1,p3} ×2, c3 {p3}, {p4}, c4 {p1,p4}: 7 baskets;
    p1 is in 5, p2 in 2, p3 in 3. Bought together with p1 (support ≥ 2): p2 with lift 2·7/(5·2) = 1.4
    and p3 with lift 2·7/(5·3) ≈ 0.9333.
    """
    from recommender.ingest import imports

    settings = load_settings(environ={}, overrides={"db": tmp_path / "shop.db", "model_dir": tmp_path / "models"})
    settings.serve.model_check_seconds = 0.0
    settings.serve.catalogue_ttl_seconds = 0.0
    settings.privacy.decision_log = False
    db = store.connect(settings.db, create=True)
    write_csv(tmp_path / "c.csv", "id,email,name", *(f"c{i},c{i}@example.com,Name{i}" for i in range(1, 5)))
    write_csv(tmp_path / "p.csv", "id,name,category,price", *(f"p{i},Thing{i},home,{i}" for i in range(1, 5)))
    events = [
        ("c1", "p1", 1),
        ("c1", "p2", 1),
        ("c1", "p1", 5),
        ("c1", "p2", 5),
        ("c2", "p1", 2),
        ("c2", "p3", 2),
        ("c2", "p1", 6),
        ("c2", "p3", 6),
        ("c3", "p3", 3),
        ("c3", "p4", 4),
        ("c4", "p4", 7),
        ("c4", "p1", 7),
    ]
    write_csv(
        tmp_path / "i.csv",
        "customer_id,product_id,event_type,quantity,occurred_at",
        *(f"{c},{p},purchase,1,2025-03-{d:02d}T10:00:00Z" for c, p, d in events),
    )
    write_csv(
        tmp_path / "k.csv",
        "customer_id,purpose,granted,updated_at,source",
        *(f"c{i},personalization,true,2025-01-01T00:00:00Z,signup" for i in range(1, 5)),
    )
    for kind, name in (("customers", "c"), ("products", "p"), ("interactions", "i"), ("consents", "k")):
        imports.import_file(db, kind, tmp_path / f"{name}.csv", settings)
    rng = np.random.default_rng(1)
    items = ["p1", "p2", "p3", "p4"]
    model = FactorModel(
        rng.random((4, 3), dtype=np.float32),
        rng.random((4, 3), dtype=np.float32),
        ["c1", "c2", "c3", "c4"],
        items,
        0.1,
        {"data": {"privacy_epoch": 0}},
    )
    model.signals = derived.signals_for(db, settings, items)
    reg = registry.Registry(settings.model_dir)
    reg.save(model, "v1")
    reg.set_current("v1")
    return settings, db


def _workers(settings, n=2):
    from api import create_app

    settings.serve.open = True  # test clients come from 127.0.0.1, as with `serve --open`
    return [create_app(settings).test_client() for _ in range(n)]


def _together(client, pid="p1"):
    return [(i["product_id"], i["lift"]) for i in client.get(f"/v1/products/{pid}/bought-together").get_json()["items"]]


def _popular(client, days=None):
    query = f"?n=10&days={days}" if days else "?n=10"
    return {i["product_id"]: i["score"] for i in client.get(f"/v1/products/popular{query}").get_json()["items"]}


def test_bought_together_and_popularity_forget_an_erased_customer_on_the_next_request(tiny):
    settings, db = tiny
    first, second = _workers(settings)
    for worker in (first, second):
        assert _together(worker) == [("p2", 1.4), ("p3", 0.9333)]
        assert _popular(worker) == {"p1": 3.0, "p3": 2.0, "p4": 2.0, "p2": 1.0}
    assert first.delete("/v1/customers/c1").status_code == 200
    # Without c1: baskets 5, p1 in 3, p3 in 3: lift(p1, p3) = 2·5/(3·3) ≈ 1.1111; p2 is nobody's any more.
    for worker in (first, second):
        assert _together(worker) == [("p3", 1.1111)]
        assert _popular(worker) == {"p1": 2.0, "p3": 2.0, "p4": 2.0}
    manifest = registry.Registry(settings.model_dir).manifest("v1")
    assert manifest["users"] == 3 and len(manifest["erased_subjects"]) == 1


def test_trending_and_popularity_forget_a_withdrawn_customer_in_every_worker(tiny):
    settings, db = tiny
    first, second = _workers(settings)
    days = (dt.date.today() - dt.date(2025, 3, 1)).days + 2
    for worker in (first, second):  # both workers have the window cached
        assert _popular(worker, days) == {"p1": 3.0, "p3": 2.0, "p4": 2.0, "p2": 1.0}
    body = first.put("/v1/customers/c2/consents", json={"consents": {"personalization": False}, "source": "centre"})
    assert body.status_code == 200
    for worker in (first, second):
        assert _popular(worker, days) == {"p1": 2.0, "p3": 1.0, "p4": 2.0, "p2": 1.0}
        assert _popular(worker) == {"p1": 2.0, "p3": 1.0, "p4": 2.0, "p2": 1.0}
        # c2 made the p1+p3 pair, so it is gone; baskets 5, p1 in 3, p2 in 2: lift(p1, p2) = 2·5/(3·2) ≈ 1.6667.
        assert _together(worker) == [("p2", 1.6667)]
    on_disk = registry.Registry(settings.model_dir).load("v1")
    assert on_disk.user_ids == ["c1", "c3", "c4"]
    # A grant again changes nothing already published (no privacy event), and a second withdrawal is no event.
    epoch = store.privacy_epoch(db)
    first.put("/v1/customers/c2/consents", json={"consents": {"personalization": True}, "source": "centre"})
    assert store.privacy_epoch(db) == epoch


def _backdated_withdrawal(db, customer_id: str, hours: float) -> None:
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    db.execute(
        "INSERT INTO privacy_events (kind, customer_id, purpose, recorded_at) "
        "VALUES ('withdrawal', ?, 'personalization', ?)",
        [customer_id, at],
    )


def test_a_model_stale_past_the_cap_stops_serving_its_factors(served):
    from api import create_app

    served.privacy.decision_log = False
    served.serve.open = True
    client = create_app(served).test_client()
    db = store.connect(served.db)
    reg = registry.Registry(served.model_dir)
    model = reg.load()
    trained, other = model.user_ids[0], model.user_ids[1]
    product = model.item_ids[0]
    assert client.get(f"/v1/products/{product}/similar").get_json()["mode"] == "model"
    assert reconcile.staleness(db, model.manifest, model.user_index)["stale"] is False

    _backdated_withdrawal(db, trained, hours=30)  # stale, but inside privacy.max_stale_hours (36)
    state = reconcile.staleness(db, model.manifest, model.user_index)
    assert state["stale"] and 29.99 < state["hours"] < 30.1
    assert client.get(f"/v1/products/{product}/similar").get_json()["mode"] == "model"
    assert client.get(f"/v1/customers/{other}/recommendations").get_json()["mode"] == "personalized"
    ready = client.get("/readyz").get_json()["model_stale"]
    assert ready["stale"] and ready["serving_factors"] and 29.99 < ready["hours"] < 30.1

    _backdated_withdrawal(db, trained, hours=40)  # an older event of the same kind: stale since 40 h
    body = client.get(f"/v1/products/{product}/similar").get_json()
    assert body["mode"] == "non_personalized" and body["reason"] == "model_stale" and body["items"]
    recs = client.get(f"/v1/customers/{other}/recommendations").get_json()
    assert recs["mode"] == "non_personalized" and recs["reason"] == "model_stale"
    rerank = client.post(f"/v1/customers/{other}/rerank", json={"products": [product]}).get_json()
    assert rerank["reason"] == "model_stale"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["model_stale"]["serving_factors"] is False


def test_an_event_about_someone_the_model_never_saw_does_not_make_it_stale(served):
    db = store.connect(served.db)
    model = registry.Registry(served.model_dir).load()
    _backdated_withdrawal(db, "someone-else", hours=100)
    db.execute(
        "INSERT INTO privacy_events (kind, subject_hash, recorded_at) VALUES ('erasure', ?, ?)",
        ["0" * 64, "2020-01-01T00:00:00Z"],
    )
    assert reconcile.staleness(db, model.manifest, model.user_index) == {
        "stale": False,
        "stale_since": None,
        "hours": None,
    }


def test_the_in_process_read_counts_what_the_bulk_reader_counts(sample_db, settings):
    """Small shops skip the bulk reader's child process; both reads must give the same signals."""
    from recommender.data import interactions, signals

    bulk, small = interactions.load(sample_db, settings), derived.consented_events(sample_db, settings)
    assert list(small.user_ids) == list(bulk.user_ids) and list(small.item_ids) == list(bulk.item_ids)
    assert len(small) == len(bulk) > 1000
    a, b = signals.compute(bulk), signals.compute(small)
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_consents_import_that_withdraws_refreshes_the_signals(tiny, tmp_path):
    from recommender.ingest import imports

    settings, db = tiny
    (worker,) = _workers(settings, 1)
    assert _popular(worker) == {"p1": 3.0, "p3": 2.0, "p4": 2.0, "p2": 1.0}
    path = write_csv(
        tmp_path / "withdraw.csv",
        "customer_id,purpose,granted,updated_at,source",
        "c1,personalization,false,2026-01-01T00:00:00Z,centre",
    )
    imports.import_file(db, "consents", path, settings)
    assert _popular(worker) == {"p1": 2.0, "p3": 2.0, "p4": 2.0}
    assert _together(worker) == [("p3", 1.1111)]  # as without c1 (see the erasure test)
