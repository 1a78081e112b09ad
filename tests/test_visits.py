"""Visit lists (POST /v1/recommendations): consent, filters, diversity, rules, logging and attribution."""

from __future__ import annotations

import pytest

from recommender import store
from recommender.training import sessions

VISIT = [{"product_id": "P0002", "event_type": "view"}, {"product_id": "P0058", "event_type": "add_to_cart"}]


def post(client, **body):
    body.setdefault("products", VISIT)
    return client.post("/v1/recommendations", json=body)


def decisions(app):
    service = app.extensions["recommender"]
    db = store.connect(service.settings.db)
    service.decisions.flush(db)
    rows = list(
        db.query(
            "SELECT customer_id, endpoint, list_id, mode, product_ids FROM decisions "
            "WHERE endpoint = 'visit' ORDER BY id"
        )
    )
    db.conn.close()
    return rows


def customer(app, consenting: bool) -> str:
    db = store.connect(app.config["SETTINGS"].db)
    row = db.execute(
        "SELECT customer_id FROM consents WHERE purpose = 'personalization' AND granted = ? "
        "ORDER BY customer_id LIMIT 1",
        [1 if consenting else 0],
    ).fetchone()
    db.conn.close()
    assert row, "the demo shop has customers of both kinds"
    return row[0]


def test_a_visit_gets_a_session_list_without_its_own_products(client, app):
    got = post(client, n=5)
    assert got.status_code == 200, got.get_json()
    body = got.get_json()
    assert body["mode"] == "session" and body["reason"] is None and body["list_id"] and body["arm"] is None
    ids = [i["product_id"] for i in body["items"]]
    assert len(ids) == 5 and not {"P0002", "P0058"} & set(ids)
    assert post(client, n=5, exclude_visited=False).status_code == 200
    # the order of a visit matters only through `at` when given; the same visit answers the same list
    again = post(client, n=5).get_json()
    assert [i["product_id"] for i in again["items"]] == ids


def test_a_non_consenting_customers_stored_history_is_never_read(client, app, monkeypatch):
    who = customer(app, consenting=False)
    real = store.customer_events

    def guarded(db, customer_id):
        if customer_id == who:
            raise AssertionError("the stored history of a customer without consent was read")
        return real(db, customer_id)

    # every way in: the flat name, the module, and what serving and rules imported
    from recommender.serving import rulesets
    from recommender.store import events

    monkeypatch.setattr(store, "customer_events", guarded)
    monkeypatch.setattr(events, "customer_events", guarded)
    monkeypatch.setattr(rulesets.store, "customer_events", guarded)
    got = post(client, customer_id=who, n=4)
    assert got.status_code == 200, got.get_json()
    body = got.get_json()
    assert body["mode"] == "session" and body["arm"] is None
    rows = decisions(app)
    assert rows[-1]["customer_id"] is None and rows[-1]["list_id"] == body["list_id"]  # logged anonymously


def test_a_consenting_customer_is_logged_and_attributed_like_a_personal_list(client, app):
    who = customer(app, consenting=True)
    body = post(client, customer_id=who, n=3).get_json()
    assert body["mode"] in ("session", "non_personalized") and body["list_id"]
    row = decisions(app)[-1]
    assert row["customer_id"] == who and row["endpoint"] == "visit"
    # an event naming the list counts for it in the online report
    product = body["items"][0]["product_id"]
    event = {"customer_id": who, "product_id": product, "event_type": "view", "list_id": body["list_id"]}
    assert client.post("/v1/events", json=event).status_code == 201
    report = client.get("/v1/admin/metrics/online").get_json()
    visit = [a for a in report["arms"] if a["surface"] == "visit"]
    assert visit and sum(a["clicks"] for a in visit) >= 1


def test_an_anonymous_visitors_list_is_attributed_by_its_list_id(client, app):
    body = post(client, visitor_id="v-123", n=3).get_json()
    assert decisions(app)[-1]["customer_id"] is None
    who = customer(app, consenting=True)
    event = {
        "customer_id": who,
        "product_id": body["items"][0]["product_id"],
        "event_type": "view",
        "list_id": body["list_id"],
    }
    assert client.post("/v1/events", json=event).status_code == 201
    report = client.get("/v1/admin/metrics/online").get_json()
    assert report["events"]["attributed_by_list_id"] >= 1


def test_filters_and_diversity(client, app):
    body = post(client, n=6, category=["home-decor"]).get_json()
    assert body["items"] and {i["category"] for i in body["items"]} == {"home-decor"}
    body = post(client, n=5, max_price=15).get_json()
    assert all(i["price"] is not None and i["price"] <= 15 for i in body["items"])
    plain = [i["product_id"] for i in post(client, n=5).get_json()["items"]]
    body = post(client, n=5, exclude=plain[:2]).get_json()
    assert not set(plain[:2]) & {i["product_id"] for i in body["items"]}
    body = post(client, n=5, diversity=1.0).get_json()
    categories = [i["category"] for i in body["items"]]
    assert len(categories) == len(set(categories))
    body = post(client, n=100, category=["home-decor"], max_price=1).get_json()
    assert body["short"] is not None and "max_price" in body["short"]["because"]


@pytest.mark.parametrize(
    "scorer, params",
    [
        ("vsknn", {"k": 100, "m": 1000}),
        ("cooccurrence", {}),
        ("mix", {"k": 100, "m": 1000, "w": 0.5}),
        ("popularity", {}),
    ],
)
def test_the_recorded_scorer_scores_the_visit(client, app, scorer, params):
    db = store.connect(app.config["SETTINGS"].db)
    sessions.record_choice(db, {"choice": {"scorer": scorer, "params": params, "evaluated": True}})
    db.conn.close()
    visits = app.extensions["recommender.visits"]
    visits._choice = None
    body = post(client, n=5).get_json()
    assert body["mode"] == "session" and len(body["items"]) == 5
    model = app.extensions["recommender"].live.model
    scorer_obj = visits.scorer(store.connect(app.config["SETTINGS"].db), model)
    assert scorer_obj.kind == scorer
    if scorer != "popularity":
        # the same list as the scorer's own ranking of the visit
        from recommender.serving.visits import VisitEvent, visit_items

        items, weights = visit_items(
            model, app.config["SETTINGS"], [VisitEvent(p["product_id"], p["event_type"]) for p in VISIT]
        )
        state = scorer_obj.state(items, weights)
        top, _ = scorer_obj.recommend(
            state,
            5,
            exclude=items,
            allow=app.extensions["recommender"].live.catalogue.allowed(
                __import__("recommender.serving.catalogue", fromlist=["x"]).ListFilters()
            )[0],
        )
        assert [model.item_ids[i] for i in top] == [i["product_id"] for i in body["items"]]


def test_a_withdrawal_rebuilds_the_session_index(client, app):
    db = store.connect(app.config["SETTINGS"].db)
    sessions.record_choice(db, {"choice": {"scorer": "vsknn", "params": {"k": 50, "m": 500}, "evaluated": True}})
    db.conn.close()
    visits = app.extensions["recommender.visits"]
    visits._choice = None
    assert post(client).status_code == 200
    before = visits._index
    who = customer(app, consenting=True)
    change = client.put(f"/v1/customers/{who}/consents", json={"consents": {"personalization": False}})
    assert change.status_code == 200, change.get_json()
    assert post(client).status_code == 200
    after = visits._index
    assert after[0] != before[0] and len(after[1]) <= len(before[1])


def test_what_a_visit_list_refuses(client):
    assert post(client, products=[{"product_id": "NOPE", "event_type": "view"}]).status_code == 422
    assert post(client, products=[{"product_id": "P0002", "event_type": "wish"}]).status_code == 422
    assert post(client, products=[{"product_id": "P0002", "event_type": "view", "at": "yesterday"}]).status_code == 422
    assert post(client, n=0).status_code == 422
    assert post(client, surprise=1).status_code == 400
    empty = post(client, products=[]).get_json()
    assert empty["mode"] == "non_personalized" and empty["reason"] == "no_history" and empty["list_id"]
