"""The real Flask app through its test client, on a copy of the trained demo shop."""

import itertools
import json
import shutil

import numpy as np
import pytest

from api.schema import Accepted, ItemList, Reranked
from recommender import store
from recommender.models import registry
from recommender.store.rows import CustomerRow, ProductRow
from recommender.training import run as training


def db_of(settings):
    return store.connect(settings.db)


def pick(settings, sql, *params):
    row = db_of(settings).execute(sql, params).fetchone()
    assert row is not None, sql
    return row[0]


def consenting_customer(settings, offset=0):
    return pick(
        settings,
        "SELECT c.customer_id FROM consents c JOIN interactions i ON i.customer_id = c.customer_id "
        "WHERE c.purpose = 'personalization' AND c.granted = 1 GROUP BY c.customer_id "
        "HAVING count(*) > 20 ORDER BY c.customer_id LIMIT 1 OFFSET ?",
        offset,
    )


def get_list(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    if status == 200:
        ItemList.model_validate(body)  # the documented schema is what is served
    return body


def test_personalized_recommendations(client, served):
    cid = consenting_customer(served)
    body = get_list(client, f"/v1/customers/{cid}/recommendations?n=7")
    assert body["mode"] == "personalized" and body["reason"] is None
    assert body["model_version"] == registry.Registry(served.model_dir).current_version()
    assert len(body["items"]) == 7
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    purchased = {
        r[0]
        for r in db_of(served).execute(
            "SELECT product_id FROM interactions WHERE customer_id = ? AND event_type = 'purchase'", [cid]
        )
    }
    assert not purchased & {i["product_id"] for i in body["items"]}


def test_hidden_and_expired_products_never_appear(client, served):
    db = db_of(served)
    banned = store.unrecommendable_products(db, "2026-11-23")
    assert banned
    for offset in range(5):
        cid = consenting_customer(served, offset)
        body = get_list(
            client, f"/v1/customers/{cid}/recommendations?n=100&in_stock_only=false&exclude_purchased=false"
        )
        assert not banned & {i["product_id"] for i in body["items"]}
    popular = get_list(client, "/v1/products/popular?n=100&in_stock_only=false")
    assert not banned & {i["product_id"] for i in popular["items"]}


@pytest.mark.parametrize("reason", ["unknown_customer", "no_consent", "no_history"])
def test_fallbacks_are_popular_lists_with_a_reason(client, served, reason):
    db = db_of(served)
    if reason == "unknown_customer":
        cid = "nobody-at-all"
    elif reason == "no_consent":
        cid = pick(
            served,
            "SELECT id FROM customers WHERE id NOT IN "
            "(SELECT customer_id FROM consents WHERE purpose='personalization' AND granted=1) LIMIT 1",
        )
    else:
        store.upsert_customers(db, [CustomerRow("fresh", created_at="2026-11-01T00:00:00Z")])
        store.set_consents(db, [("fresh", "personalization", True, "2026-11-01T00:00:00Z", "test")])
        cid = "fresh"
    body = get_list(client, f"/v1/customers/{cid}/recommendations?n=5")
    assert body["mode"] == "non_personalized" and body["reason"] == reason
    assert len(body["items"]) == 5
    assert body["items"] == get_list(client, "/v1/products/popular?n=5")["items"]


def test_without_a_model_everyone_gets_popular_and_readyz_says_why(served, tmp_path):
    from api import create_app

    shutil.rmtree(served.model_dir)
    served.serve.open = True
    client = create_app(served).test_client()
    body = get_list(client, f"/v1/customers/{consenting_customer(served)}/recommendations?n=3")
    assert body["reason"] == "no_model" and len(body["items"]) == 3 and body["model_version"] is None
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "model" in ready.get_json()["problems"][0]
    assert client.get("/healthz").status_code == 200


def test_filters_category_price_stock_exclude(client, served):
    cid = consenting_customer(served)
    body = get_list(
        client, f"/v1/customers/{cid}/recommendations?n=20&category=kitchen&category=garden&min_price=5&max_price=30"
    )
    assert body["items"]
    for item in body["items"]:
        assert item["category"] in ("kitchen", "garden") and 5 <= item["price"] <= 30
        assert item["in_stock"] is None or item["in_stock"] > 0
    first = body["items"][0]["product_id"]
    again = get_list(
        client,
        f"/v1/customers/{cid}/recommendations?n=20&category=kitchen&category=garden"
        f"&min_price=5&max_price=30&exclude={first}",
    )
    assert first not in {i["product_id"] for i in again["items"]}
    out_of_stock = pick(served, "SELECT id FROM products WHERE in_stock = 0 AND hidden = 0 LIMIT 1")
    listed = get_list(client, f"/v1/customers/{cid}/recommendations?n=100")
    assert out_of_stock not in {i["product_id"] for i in listed["items"]}


def test_diversity_caps_items_per_category(client, served):
    """``diversity`` keeps at most ``max(1, ceil(n·(1 − diversity)))`` items of a category, in rank order.

    The expected lists are made by hand from the plain ranking 100 deep (the depth a
    list of 10 is diversified from): walk it best first and skip an item whose
    category is already at the cap. For n = 10 the caps are 1, 3 and 5.
    """
    cid = consenting_customer(served)
    deep = get_list(client, f"/v1/customers/{cid}/recommendations?n=100")["items"]
    caps = {"1": 1, "0.75": 3, "0.5": 5}  # max(1, ceil(0)), ceil(2.5), ceil(5)
    expected = {}
    for diversity, cap in caps.items():
        taken, picked = {}, []
        for item in deep:
            category = item["category"]
            if category is not None and taken.get(category, 0) >= cap:
                continue
            taken[category] = taken.get(category, 0) + 1
            picked.append(item["product_id"])
            if len(picked) == 10:
                break
        expected[diversity] = picked
        listed = get_list(client, f"/v1/customers/{cid}/recommendations?n=10&diversity={diversity}")["items"]
        assert [i["product_id"] for i in listed] == picked, diversity
        categories = [i["category"] for i in listed]
        assert max(categories.count(c) for c in categories) <= cap
    plain = [i["product_id"] for i in deep[:10]]
    assert expected["1"] != plain  # the cap bites for this customer (their top 10 repeats a category)


def test_explain_names_the_customers_own_products(client, served):
    cid = consenting_customer(served)
    body = get_list(client, f"/v1/customers/{cid}/recommendations?n=3&explain=true")
    history = {r[0] for r in db_of(served).execute("SELECT product_id FROM interactions WHERE customer_id = ?", [cid])}
    assert all(item["because"] for item in body["items"])
    for item in body["items"]:
        assert {b["product_id"] for b in item["because"]} <= history


def test_an_event_changes_the_next_recommendation(client, served):
    cid = consenting_customer(served)
    before = get_list(client, f"/v1/customers/{cid}/recommendations?n=10&exclude_purchased=false")
    # The customer suddenly buys a lot from a category they never touched.
    db = db_of(served)
    touched = {
        r[0]
        for r in db.execute(
            "SELECT DISTINCT p.category FROM interactions i JOIN products p "
            "ON p.id = i.product_id WHERE i.customer_id = ?",
            [cid],
        )
    }
    new_category = pick(
        served,
        f"SELECT category FROM products WHERE category NOT IN ({','.join('?' * len(touched))}) LIMIT 1",
        *sorted(touched),
    )
    products = [
        r[0] for r in db.execute("SELECT id FROM products WHERE category = ? AND hidden = 0 LIMIT 8", [new_category])
    ]
    events = [{"customer_id": cid, "product_id": p, "event_type": "purchase", "quantity": 3} for p in products]
    response = client.post("/v1/events", json={"events": events})
    assert response.status_code == 201 and Accepted.model_validate(response.get_json()).accepted == len(products)
    after = get_list(client, f"/v1/customers/{cid}/recommendations?n=10&exclude_purchased=false")
    assert [i["product_id"] for i in after["items"]] != [i["product_id"] for i in before["items"]]
    share_before = sum(i["category"] == new_category for i in before["items"])
    share_after = sum(i["category"] == new_category for i in after["items"])
    assert share_after > share_before


def test_similar_and_bought_together(client, served):
    product = pick(
        served,
        "SELECT product_id FROM interactions WHERE event_type='purchase' "
        "GROUP BY product_id ORDER BY count(*) DESC LIMIT 1",
    )
    similar = get_list(client, f"/v1/products/{product}/similar?n=5")
    assert similar["mode"] == "model" and len(similar["items"]) == 5
    assert product not in {i["product_id"] for i in similar["items"]}
    together = get_list(client, f"/v1/products/{product}/bought-together?n=5&in_stock_only=false")
    assert together["mode"] == "cooccurrence" and together["items"]
    lifts = [i["lift"] for i in together["items"]]
    assert lifts == sorted(lifts, reverse=True) and lifts[0] > 1
    assert get_list(client, "/v1/products/NOPE/similar", status=404)["error"]["code"] == "not_found"
    assert get_list(client, "/v1/products/NOPE/bought-together", status=404)


def test_a_product_newer_than_the_model_gets_its_category(client, served):
    store.upsert_products(db_of(served), [ProductRow("NEW1", "New mug", "kitchen", 9.0, in_stock=5)])
    body = get_list(client, "/v1/products/NEW1/similar?n=4")
    from recommender.models import content, registry

    if content.ContentMapping.of(registry.Registry(served.model_dir).load()) is not None:
        # no retrain: the model places it by its content (docs/new-products.md), its own category first
        assert body["mode"] == "model" and len(body["items"]) == 4
        assert "NEW1" not in {i["product_id"] for i in body["items"]}
        assert body["items"][0]["category"] == "kitchen", body["items"]
    else:  # a model published without a content mapping: popular products of its category
        assert body["reason"] == "not_in_model" and {i["category"] for i in body["items"]} == {"kitchen"}


def test_popular_by_category_and_trending_window(client, served):
    body = get_list(client, "/v1/products/popular?n=5&category=candles")
    assert body["reason"] == "popular" and {i["category"] for i in body["items"]} == {"candles"}
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    trending = get_list(client, "/v1/products/popular?n=5&days=3650")
    assert trending["reason"] == "trending" and trending["days"] == 3650 and trending["items"]


def rerank(client, cid, products):
    response = client.post(f"/v1/customers/{cid}/rerank", json={"products": products})
    assert response.status_code == 200, response.get_json()
    return Reranked.model_validate(response.get_json())


def test_rerank_orders_by_the_model(client, served):
    """Any family: the served order is the order of the model's own scores of the candidates.

    The scores are computed here from the customer's history (their confidences,
    folded in by the model), not by the service.
    """
    cid = consenting_customer(served)
    products = [f"P{i:04d}" for i in range(1, 21)]
    body = rerank(client, cid, products)
    assert body.mode == "personalized" and body.reason is None and sorted(body.products) == sorted(products)
    model = registry.Registry(served.model_dir).load()
    from recommender.data import interactions

    items, conf = interactions.customer_confidences(
        db_of(served), served, cid, model.item_index, model.manifest["data"]["reference_time"]
    )
    known = [p for p in products if p in model.item_index]
    index = np.array([model.item_index[p] for p in known])
    scores = dict(zip(known, np.asarray(model.score(model.fold_in(items, conf), index), dtype=float).tolist()))
    ordered = body.products[: len(known)]
    assert set(ordered) == set(known)
    assert all(scores[a] >= scores[b] - 1e-5 for a, b in itertools.pairwise(ordered)), [scores[p] for p in ordered]
    assert body.products[len(known) :] == [p for p in products if p not in scores]  # unknown to the model: last
    unknown = client.post(f"/v1/customers/{cid}/rerank", json={"products": ["P0001", "GHOST"]})
    assert unknown.status_code == 422 and "GHOST" in unknown.get_json()["error"]["message"]
    plain = client.post("/v1/customers/nobody/rerank", json={"products": products}).get_json()
    assert plain["products"] == products and plain["reason"] == "unknown_customer"


def test_rerank_follows_hand_set_factors(client, served):
    """A two-factor model set by hand, so the expected order is dot products written down here.

    Every product the customer touched has the factor (1, 0), every other product
    none but the five candidates. Folding in such a history gives a vector (x, 0)
    with x > 0 (the least-squares system is diagonal and its right-hand side,
    Σ cⱼ·(1, 0), is positive), so a candidate (f, g) scores f·x: the order is by
    f, whatever g is, and a product the model does not know comes last.
    """
    from recommender.models.factor import FactorModel

    db = db_of(served)
    cid = consenting_customer(served)
    touched = sorted({r[0] for r in db.execute("SELECT product_id FROM interactions WHERE customer_id = ?", [cid])})
    others = [r[0] for r in db.execute("SELECT id FROM products ORDER BY id") if r[0] not in touched]
    a, b, c, d, e, outside = others[:6]
    candidates = {a: (0.5, 0.0), b: (3.0, 0.0), c: (-1.0, 0.0), d: (2.0, 0.0), e: (0.0, 9.0)}
    # scores: b 3x, d 2x, a 0.5x, e 0 (a long factor, orthogonal to the customer), c −x
    item_factors = np.array([(1.0, 0.0)] * len(touched) + list(candidates.values()), dtype=np.float32)
    model = FactorModel(np.zeros((1, 2), np.float32), item_factors, [cid], touched + list(candidates), 0.1)
    version = registry.new_version()
    reference = db.execute("SELECT max(occurred_at) FROM interactions").fetchone()[0]
    model.manifest.update(
        version=version,
        created_at=store.utcnow(),
        engine="numpy",
        data={"reference_time": int(reference), "privacy_epoch": store.privacy_epoch(db)},
    )
    registry.publish(db, registry.Registry(served.model_dir), model, version)
    body = rerank(client, cid, [outside, a, c, e, d, b])
    assert (body.mode, body.reason, body.model_version) == ("personalized", None, version)
    assert body.products == [b, d, a, e, c, outside]
    # once personalization is withdrawn, the caller's order comes back unchanged, with the reason
    store.set_consents(db, [(cid, "personalization", False, store.utcnow(), "test")])
    withdrawn = rerank(client, cid, [outside, a, c, e, d, b])
    assert (withdrawn.mode, withdrawn.reason) == ("non_personalized", "no_consent")
    assert withdrawn.products == [outside, a, c, e, d, b]


@pytest.mark.parametrize(
    "url, status, fragment",
    [
        ("/v1/customers/C0001/recommendations?n=0", 422, "greater than or equal to 1"),
        ("/v1/customers/C0001/recommendations?n=101", 422, "less than or equal to 100"),
        ("/v1/customers/C0001/recommendations?n=ten", 422, "valid integer"),
        ("/v1/customers/C0001/recommendations?diversity=2", 422, "diversity"),
        ("/v1/customers/C0001/recommendations?explain=maybe", 422, "explain"),
        ("/v1/customers/C0001/recommendations?colour=red", 400, "unknown query parameter 'colour'"),
        ("/v1/customers/C0001/recommendations?n=1&n=2", 400, "more than once"),
        ("/v1/products/popular?days=0", 422, "days"),
        ("/v1/nothing-here", 404, "not found"),
    ],
)
def test_bad_requests_are_json_errors(client, url, status, fragment):
    response = client.get(url)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert fragment.lower() in error["message"].lower() and error["code"]


@pytest.mark.parametrize(
    "payload, status, fragment",
    [
        ({"customer_id": "C0001", "product_id": "P9999", "event_type": "view"}, 422, "unknown product 'P9999'"),
        ({"customer_id": "ghost", "product_id": "P0001", "event_type": "view"}, 422, "unknown customer 'ghost'"),
        ({"customer_id": "C0001", "product_id": "P0001", "event_type": "dance"}, 422, "unknown event type"),
        ({"customer_id": "C0001", "product_id": "P0001", "event_type": "view", "quantity": -1}, 422, "greater than 0"),
        (
            {"customer_id": "C0001", "product_id": "P0001", "event_type": "view", "occurred_at": "soon"},
            422,
            "bad timestamp",
        ),
        ({"customer_id": 5, "product_id": "P0001", "event_type": "view"}, 422, "string"),
        ({"customer_id": "C0001", "product_id": "P0001", "event_type": "view", "colour": "red"}, 400, "extra"),
        ({"events": []}, 422, "at least 1"),
    ],
)
def test_bad_events_are_rejected_and_nothing_is_stored(client, served, payload, status, fragment):
    before = db_of(served)["interactions"].count
    response = client.post("/v1/events", json=payload)
    assert response.status_code == status, response.get_json()
    assert fragment.lower() in response.get_json()["error"]["message"].lower()
    assert db_of(served)["interactions"].count == before


def test_event_batches_are_all_or_nothing_and_bounded(client, served):
    before = db_of(served)["interactions"].count
    good = {"customer_id": "C0001", "product_id": "P0001", "event_type": "view", "occurred_at": "2026-11-01T10:00:00Z"}
    bad = {**good, "product_id": "NOPE"}
    response = client.post("/v1/events", json={"events": [good, good, bad]})
    assert response.status_code == 422 and "events[2]" in response.get_json()["error"]["message"]
    assert db_of(served)["interactions"].count == before
    too_many = client.post("/v1/events", json={"events": [good] * 1001})
    assert too_many.status_code == 422
    huge = client.post("/v1/events", data=b"{" + b" " * (2 << 20) + b"}", content_type="application/json")
    assert huge.status_code == 413 and huge.get_json()["error"]["code"] == "payload_too_large"
    malformed = client.post("/v1/events", data=b"{not json", content_type="application/json")
    assert malformed.status_code == 400 and malformed.get_json()["error"]["code"] == "bad_request"
    wrong_type = client.post("/v1/events", data="x", content_type="text/plain")
    assert wrong_type.status_code == 400
    ok = client.post("/v1/events", json=good)
    assert ok.status_code == 201 and db_of(served)["interactions"].count == before + 1


def test_hot_swap_to_a_new_model_and_refusal_of_a_corrupt_one(client, served):
    cid = consenting_customer(served)
    old = get_list(client, f"/v1/customers/{cid}/recommendations")["model_version"]
    db = db_of(served)
    new = training.train(db, served, publish=True, force=True).version
    assert get_list(client, f"/v1/customers/{cid}/recommendations")["model_version"] == new != old
    # A corrupt artifact behind the pointer is refused; the loaded model keeps serving.
    reg = registry.Registry(served.model_dir)
    broken = served.model_dir / "20990101T000000Z-broken"
    shutil.copytree(served.model_dir / new, broken)
    (broken / "item_factors.npy").write_bytes(b"garbage")
    (served.model_dir / registry.POINTER).write_text(broken.name + "\n")
    body = get_list(client, f"/v1/customers/{cid}/recommendations")
    assert body["model_version"] == new and body["mode"] == "personalized"
    reload = client.post("/v1/admin/reload")
    assert reload.status_code == 503 and "checksum" in reload.get_json()["error"]["message"]
    assert reg.current_version() == broken.name


def test_openapi_docs_and_metrics(client):
    spec = client.get("/openapi.json").get_json()
    for path in (
        "/v1/customers/{customer_id}/recommendations",
        "/v1/products/{product_id}/similar",
        "/v1/products/{product_id}/bought-together",
        "/v1/products/popular",
        "/v1/customers/{customer_id}/rerank",
        "/v1/events",
        "/v1/admin/reload",
    ):
        assert path in spec["paths"], path
    params = {p["name"] for p in spec["paths"]["/v1/customers/{customer_id}/recommendations"]["get"]["parameters"]}
    assert {"n", "category", "diversity", "explain", "exclude_purchased", "customer_id"} <= params
    assert "ItemList" in spec["components"]["schemas"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"/v1/events" in docs.data
    client.get("/v1/products/popular")
    text = client.get("/metrics").data.decode()
    assert 'recommender_http_requests_total{endpoint="/v1/products/popular",method="GET",status="200"}' in text
    assert "recommender_http_request_seconds_bucket" in text
    assert client.post("/healthz").status_code == 405


def test_served_scores_match_the_model(client, served):
    cid = consenting_customer(served)
    body = get_list(client, f"/v1/customers/{cid}/recommendations?n=5&exclude_purchased=false&in_stock_only=false")
    model = registry.Registry(served.model_dir).load()
    from recommender.data import interactions

    items, conf = interactions.customer_confidences(
        db_of(served), served, cid, model.item_index, model.manifest["data"]["reference_time"]
    )
    vector = model.recalculate_user(items, conf)
    for item in body["items"]:
        expected = float(model.item_factors[model.item_index[item["product_id"]]] @ vector)
        assert np.isclose(item["score"], expected, atol=1e-4)
    assert json.dumps(body)  # plain JSON all the way down


# --- no 500 for any input -------------------------------------------------------------------


def test_deeply_nested_json_is_a_400(client, served):
    before = db_of(served)["interactions"].count
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        response = client.post("/v1/events", data=body, content_type="application/json")
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_request"
        assert "nested too deeply" in response.get_json()["error"]["message"]
    assert db_of(served)["interactions"].count == before


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_timestamp_beyond_the_calendar_is_a_422_naming_the_field(client, served, when):
    event = {"customer_id": "C0001", "product_id": "P0001", "event_type": "view", "occurred_at": when}
    response = client.post("/v1/events", json={"events": [event, event]})
    assert response.status_code == 422
    assert response.get_json()["error"]["message"].startswith("body.batch.events.0.occurred_at: bad timestamp")


@pytest.mark.parametrize("date", ["9999-12-31", "0001-01-01", "1969-12-31", "3000-01-01"])
def test_a_campaign_preview_far_from_now_is_a_422_naming_date(client, date):
    body = {"occasion": "all", "date": date, "days_ahead": 7}
    response = client.post("/v1/admin/campaigns/preview", json=body)
    assert response.status_code == 422, response.get_json()
    message = response.get_json()["error"]["message"]
    assert message.startswith("body.date") and "out of range" in message and "--" not in message
    ok = client.post("/v1/admin/campaigns/preview", json={**body, "date": "2100-12-31", "limit": 0})
    assert ok.status_code == 200


@pytest.mark.parametrize("date", ["9999-12-31", "0001-01-01"])
def test_campaign_run_with_a_date_beyond_range_is_one_error_line(runner, date):
    from recommender.cli import cli

    result = runner.invoke(cli, ["campaign", "run", "--occasion", "all", "--date", date, "--days-ahead", "7"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: --date: ") and "out of range" in lines[0], result.output


def test_overlong_urls_and_too_many_headers_are_json(client):
    from api.limits import LIMIT_REQUEST_FIELDS, LIMIT_REQUEST_LINE

    long = client.get("/v1/products/popular?exclude=" + "x" * LIMIT_REQUEST_LINE)
    assert long.status_code == 414 and long.get_json()["error"]["code"] == "uri_too_long"
    crowded = client.get("/v1/products/popular", headers={f"X-H{i}": "1" for i in range(LIMIT_REQUEST_FIELDS + 1)})
    assert crowded.status_code == 431 and crowded.get_json()["error"]["code"] == "headers_too_large"
    fat = client.get("/v1/products/popular", headers={"X-Big": "y" * 9000})
    assert fat.status_code == 431


def test_a_lone_surrogate_is_a_400_not_a_500(client, served):
    before = db_of(served)["interactions"].count
    body = b'{"customer_id": "C\\ud800", "product_id": "P0001", "event_type": "view"}'
    response = client.post("/v1/events", data=body, content_type="application/json")
    assert response.status_code in (400, 422)
    assert response.get_json()["error"]["code"] in ("bad_request", "invalid_input")
    assert db_of(served)["interactions"].count == before


def test_a_busy_database_is_a_503_with_retry_after(client, served):
    import sqlite3

    from api.db import _local

    assert client.get("/v1/products/popular?n=1").status_code == 200  # the worker's connection exists now
    _local.connections[str(served.db)].conn.execute("PRAGMA busy_timeout = 50")  # wait 50 ms, not seconds
    holder = sqlite3.connect(served.db, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock (a long import)
    try:
        response = client.post("/v1/events", json={"customer_id": "C0001", "product_id": "P0001", "event_type": "view"})
    finally:
        holder.rollback()
        holder.close()
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.get_json()["error"]["code"] == "unavailable"
