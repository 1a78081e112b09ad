"""Online measurement: list ids, the A/B holdout, attribution and the report's arithmetic.

The report is checked on a hand-made shop whose every number was worked out
by hand (see the comments); the faces (API, CLI, /metrics) and the privacy
rules on the real demo shop.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re

import pytest

from recommender import online, store
from recommender.cli import cli
from recommender.online.assignment import Assigner
from recommender.store.rows import CustomerRow, DecisionLogRow, EventRow, ProductRow

T0 = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)
HEX = re.compile(r"^[0-9a-f]{32}$")


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(minutes: float) -> int:
    return int((T0 + dt.timedelta(minutes=minutes)).timestamp())


LISTS = {name: f"{n:032x}" for n, name in enumerate(("L1", "L2", "L3", "L4", "L5", "L6", "L7"), start=1)}


@pytest.fixture
def measured(db, settings):
    """Two model-arm customers (t1, t2), two control-arm ones (k1, k2), one anonymous product-page list."""
    store.upsert_customers(db, [CustomerRow(c, created_at="2026-01-01T00:00:00Z") for c in ("t1", "t2", "k1", "k2")])
    store.upsert_products(
        db, [ProductRow("pA", "A", "x", 10.0), ProductRow("pB", "B", "x", 20.0), ProductRow("pC", "C", "x", 5.0)]
    )

    def row(name, customer, minutes, surface, arm, products):
        return DecisionLogRow(
            customer,
            at(minutes),
            surface,
            "v1",
            "personalized" if arm == "model" else "non_personalized",
            None if arm == "model" else "control",
            json.dumps(products),
            LISTS[name],
            arm,
        )

    store.insert_decisions(
        db,
        [
            row("L1", "t1", 0, "recommendations", "model", ["pA", "pB"]),
            row("L2", "t1", 60, "recommendations", "model", ["pB", "pC"]),
            row("L3", "t2", 0, "recommendations", "model", ["pA", "pC"]),
            row("L4", "k1", 0, "recommendations", "control", ["pA", "pB"]),
            row("L5", "k2", 0, "recommendations", "control", ["pB", "pC"]),
            row("L6", "k2", 120, "recommendations", "control", ["pA"]),
            DecisionLogRow(None, at(0), "similar", "v1", "model", None, json.dumps(["pA"]), LISTS["L7"]),
        ],
    )
    store.add_interactions(
        db,
        [
            EventRow("t1", "pB", "view", 1, epoch(30)),  # window: latest t1 list with pB by then = L1
            EventRow("t1", "pB", "purchase", 2, epoch(90)),  # window: L2 (T0+1h) is the latest: 2 x 20 = 40
            EventRow("t1", "pC", "view", 1, epoch(120), LISTS["L1"]),  # names L1, which never showed pC: nobody's
            EventRow("t2", "pA", "view", 1, epoch(10), LISTS["L3"]),  # by list id: L3
            EventRow("t2", "pA", "add_to_cart", 1, epoch(11), LISTS["L3"]),
            EventRow("t2", "pA", "purchase", 1, epoch(12), LISTS["L3"], price=8.0),  # the price paid: 1 x 8 = 8
            EventRow("t2", "pC", "purchase", 1, epoch(25 * 60)),  # 25 h after L3: outside the 24 h window
            EventRow("k1", "pA", "view", 1, epoch(5)),  # L4
            EventRow("k1", "pA", "purchase", 3, epoch(6)),  # L4: 3 x 10 = 30
            EventRow("k2", "pA", "view", 1, epoch(180)),  # L6 (L5 never showed pA)
            EventRow("k2", "pB", "view", 1, epoch(-60)),  # before any list: nobody's
            EventRow("t1", "pA", "view", 1, epoch(240), LISTS["L7"]),  # the anonymous list, by its id only
        ],
    )
    settings.online.window_hours = 24
    return db, settings


def test_the_report_on_a_hand_made_shop(measured):
    db, settings = measured
    got = online.report(db, settings)
    arms = {(a["surface"], a["arm"]): a for a in got["arms"]}
    assert set(arms) == {("recommendations", "model"), ("recommendations", "control"), ("similar", "unassigned")}
    model = arms["recommendations", "model"]
    # L1 clicked; L2 bought (40); L3 clicked, carted, bought (8)
    assert {k: model[k] for k in ("lists", "customers", "clicks", "add_to_cart", "purchases", "events")} == {
        "lists": 3,
        "customers": 2,
        "clicks": 2,
        "add_to_cart": 1,
        "purchases": 2,
        "events": 5,
    }
    assert model["ctr"] == pytest.approx(0.666667) and model["conversion"] == pytest.approx(0.666667)
    assert model["add_to_cart_rate"] == pytest.approx(0.333333)
    assert model["revenue"] == 48.0 and model["revenue_per_list"] == 16.0
    control = arms["recommendations", "control"]
    # L4 clicked and bought (30); L5 nothing; L6 clicked
    assert {k: control[k] for k in ("lists", "customers", "clicks", "add_to_cart", "purchases", "events")} == {
        "lists": 3,
        "customers": 2,
        "clicks": 2,
        "add_to_cart": 0,
        "purchases": 1,
        "events": 3,
    }
    assert control["ctr"] == pytest.approx(0.666667) and control["conversion"] == pytest.approx(0.333333)
    assert control["revenue"] == 30.0 and control["revenue_per_list"] == 10.0
    page = arms["similar", "unassigned"]
    assert (page["lists"], page["customers"], page["clicks"], page["ctr"]) == (1, 0, 1, 1.0)
    assert got["events"] == {
        "attributed_by_list_id": 4,
        "attributed_by_window": 5,
        "unattributed": 3,
        "flagged": 0,
        "list_id_of_another_customer": 0,
    }

    uplift = {u["metric"]: u for u in got["uplift"]}
    assert set(uplift) == {"conversion", "ctr", "revenue_per_list"}
    assert all(
        u["surface"] == "recommendations"
        and u["treatment"] == "model"
        and u["control"] == "control"
        and u["n_treatment"] == 3
        and u["n_control"] == 3
        for u in uplift.values()
    )
    # Conversion, customers as clusters (x lists, y bought lists): t1 (2, 1), t2 (1, 1) -> R = 2/3,
    # Var = ((1 - 4/3)^2 + (1 - 2/3)^2) / 3^2 = 2/81; k1 (1, 1), k2 (2, 0) -> R = 1/3,
    # Var = ((1 - 1/3)^2 + (0 - 2/3)^2) / 9 = 8/81. d = 1/3, relative 1.0,
    # half-width 1.959964 * sqrt(10/81) = 0.688661.
    c = uplift["conversion"]
    assert c["difference"] == pytest.approx(0.333333) and c["relative"] == pytest.approx(1.0)
    assert c["ci95"] == pytest.approx([-0.355328, 1.021994], abs=2e-6)
    # CTR: t1 (2, 1), t2 (1, 1) -> 2/3, Var 2/81; k1 (1, 1), k2 (2, 1) -> 2/3, Var 2/81.
    # d = 0, relative 0, half-width 1.959964 * 2/9 = 0.435548.
    t = uplift["ctr"]
    assert t["difference"] == 0.0 and t["relative"] == 0.0
    assert t["ci95"] == pytest.approx([-0.435548, 0.435548], abs=2e-6)
    # Revenue per list: t1 (2, 40), t2 (1, 8) -> 16, Var = ((40 - 32)^2 + (8 - 16)^2) / 9 = 128/9;
    # k1 (1, 30), k2 (2, 0) -> 10, Var = ((30 - 10)^2 + (0 - 20)^2) / 9 = 800/9.
    # d = 6, relative 0.6, half-width 1.959964 * sqrt(928/9) = 19.902188.
    r = uplift["revenue_per_list"]
    assert r["difference"] == pytest.approx(6.0) and r["relative"] == pytest.approx(0.6)
    assert r["ci95"] == pytest.approx([-13.902188, 25.902188], abs=2e-6)


def test_since_cuts_lists_and_events(measured):
    db, settings = measured
    got = online.report(db, settings, since=at(100))  # only L6 (T0+2h) and the events from T0+100 min on
    assert [(a["surface"], a["arm"], a["lists"], a["clicks"]) for a in got["arms"]] == [
        ("recommendations", "control", 1, 1)
    ]
    assert got["since"] == at(100) and got["uplift"] == []
    with pytest.raises(Exception, match="^since: "):
        online.report(db, settings, since="last tuesday")


def test_a_shorter_window_loses_the_late_events(measured):
    db, settings = measured
    settings.online.window_hours = 0.5  # 30 min: t1's view at +30 min still counts (<=), the +90 purchase
    got = online.report(db, settings)  # is 30 min after L2 (counts); k2's view is 60 min after L6 (lost)
    control = next(a for a in got["arms"] if a["arm"] == "control")
    assert (control["clicks"], control["purchases"]) == (1, 1)
    model = next(a for a in got["arms"] if a["arm"] == "model")
    assert (model["clicks"], model["purchases"], model["revenue"]) == (2, 2, 48.0)


def test_assignment_is_stable_and_close_to_the_configured_share(db, settings):
    settings.online.control_share = 0.2
    first = Assigner(settings.online)
    ids = [f"C{n:05d}" for n in range(10_000)]
    arms = [first.arm(db, c) for c in ids]
    again = Assigner(settings.online)  # a new worker: same key from the database, same arms
    assert [again.arm(db, c) for c in ids] == arms
    control = arms.count("control")
    # Binomial(10000, 0.2): mean 2000, sd 40; 4 sd either side
    assert abs(control - 2000) <= 160 and set(arms) == {"control", "model"}
    settings.online.salt = "experiment-2"
    reshuffled = [Assigner(settings.online).arm(db, c) for c in ids]
    # a new salt is a new draw: about 2 x 0.2 x 0.8 = 32 % of the ids change arm
    changed = sum(a != b for a, b in zip(arms, reshuffled))
    assert 2800 <= changed <= 3600
    settings.online.control_share, settings.online.challenger, settings.online.challenger_share = 0.1, "v2", 0.3
    three = [Assigner(settings.online).arm(db, c) for c in ids]
    assert abs(three.count("challenger") - 3000) <= 4 * math.sqrt(10_000 * 0.3 * 0.7)
    assert abs(three.count("control") - 1000) <= 4 * math.sqrt(10_000 * 0.1 * 0.9)


def test_no_holdout_puts_everyone_in_the_model_arm(db, settings):
    assert {Assigner(settings.online).arm(db, f"c{n}") for n in range(200)} == {"model"}


# --- the faces, on the demo shop -----------------------------------------------------------------


def consenting(client_app) -> str:
    db = store.connect(client_app.config["SETTINGS"].db)
    try:
        return db.execute(
            "SELECT c.customer_id FROM consents c JOIN interactions i ON i.customer_id = c.customer_id "
            "WHERE c.purpose = 'personalization' AND c.granted = 1 ORDER BY c.customer_id "
            "LIMIT 1"
        ).fetchone()[0]
    finally:
        db.conn.close()


def test_list_id_round_trip_through_the_api(app, client):
    customer = consenting(app)
    body = client.get(f"/v1/customers/{customer}/recommendations?n=3").get_json()
    assert HEX.match(body["list_id"]) and body["arm"] == "model" and body["mode"] == "personalized"
    product = body["items"][0]["product_id"]
    sent = client.post(
        "/v1/events",
        json={"customer_id": customer, "product_id": product, "event_type": "view", "list_id": body["list_id"]},
    )
    assert sent.status_code == 201
    report = client.get("/v1/admin/metrics/online").get_json()
    row = next(a for a in report["arms"] if a["surface"] == "recommendations" and a["arm"] == "model")
    assert (row["lists"], row["clicks"], row["customers"]) == (1, 1, 1)
    assert report["events"]["attributed_by_list_id"] == 1
    db = store.connect(app.config["SETTINGS"].db)
    try:
        assert db.execute("SELECT customer_id, arm FROM decisions WHERE list_id = ?", [body["list_id"]]).fetchone() == (
            customer,
            "model",
        )
        assert db.execute("SELECT count(*) FROM interactions WHERE list_id = ?", [body["list_id"]]).fetchone()[0] == 1
    finally:
        db.conn.close()
    other = client.get(f"/v1/products/{product}/similar?n=2").get_json()
    assert HEX.match(other["list_id"]) and other["arm"] is None and other["list_id"] != body["list_id"]


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"list_id": "not-a-list"}, "body.event.list_id"),
        ({"list_id": "ABCDEF0123456789ABCDEF0123456789"}, "body.event.list_id"),
        ({"list_id": 7}, "body.event.list_id"),
        ({"price": -1}, "body.event.price"),
    ],
)
def test_a_bad_list_id_or_price_is_a_422_naming_the_field(client, payload, field):
    event = {"customer_id": "C0001", "product_id": "P0001", "event_type": "view", **payload}
    response = client.post("/v1/events", json=event)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["message"].startswith(field)
    batch = client.post("/v1/events", json={"events": [event]})
    assert batch.status_code == 422 and "events.0." + field.rsplit(".", 1)[1] in batch.get_json()["error"]["message"]


def test_the_control_arm_gets_the_non_personalized_list(served):
    from api import create_app

    served.serve.open = True
    served.online.control_share = 1.0
    app = create_app(served)
    client = app.test_client()
    customer = consenting(app)
    body = client.get(f"/v1/customers/{customer}/recommendations?n=3").get_json()
    assert (body["mode"], body["reason"], body["arm"]) == ("non_personalized", "control", "control")
    rerank = client.post(f"/v1/customers/{customer}/rerank", json={"products": ["P0003", "P0001"]}).get_json()
    assert (rerank["reason"], rerank["arm"], rerank["products"]) == ("control", "control", ["P0003", "P0001"])
    # nobody assigns an unknown visitor: their list is the anonymous fallback, as without a holdout
    visitor = client.get("/v1/customers/visitor-1/recommendations").get_json()
    assert (visitor["reason"], visitor["arm"]) == ("unknown_customer", None)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert re.search(r'recommender_lists_served_total\{arm="control",surface="recommendations"\} [1-9]', metrics)
    report = client.get("/v1/admin/metrics/online").get_json()
    rows = {(a["surface"], a["arm"]): a["lists"] for a in report["arms"]}
    assert rows[("recommendations", "control")] == 1 and rows[("recommendations", "unassigned")] == 1
    assert client.get("/v1/admin/metrics/online?since=yesterday").status_code == 422


def test_the_report_needs_the_marketer_or_admin_role(served, db):
    from api import create_app
    from recommender.serving import keys

    app = create_app(served)
    client = app.test_client()
    assert client.get("/v1/admin/metrics/online").status_code == 401
    wdb = store.connect(served.db)
    _, write = keys.create(wdb, "write", "shop")
    _, admin = keys.create(wdb, "admin", "ops")
    _, marketer = keys.create(wdb, "marketer", "crm")
    wdb.conn.close()
    assert client.get("/v1/admin/metrics/online", headers={"Authorization": f"Bearer {write}"}).status_code == 403
    assert client.get("/v1/admin/metrics/online", headers={"Authorization": f"Bearer {marketer}"}).status_code == 200
    assert client.get("/v1/admin/metrics/online", headers={"Authorization": f"Bearer {admin}"}).status_code == 200


def test_erasure_removes_the_customers_lists_and_attribution(app, client):
    from recommender import privacy

    customer = consenting(app)
    body = client.get(f"/v1/customers/{customer}/recommendations?n=3").get_json()
    client.post(
        "/v1/events",
        json={
            "customer_id": customer,
            "product_id": body["items"][0]["product_id"],
            "event_type": "purchase",
            "list_id": body["list_id"],
        },
    )
    settings = app.config["SETTINGS"]
    app.extensions["recommender"].decisions.flush()
    db = store.connect(settings.db)
    try:
        before = online.report(db, settings)
        assert [a["purchases"] for a in before["arms"] if a["arm"] == "model"] == [1]
        privacy.forget(db, settings, customer)
        assert (
            db.execute(
                "SELECT count(*) FROM decisions WHERE list_id = ? OR customer_id = ?", [body["list_id"], customer]
            ).fetchone()[0]
            == 0
        )
        assert db.execute("SELECT count(*) FROM interactions WHERE list_id = ?", [body["list_id"]]).fetchone()[0] == 0
        after = online.report(db, settings)
        assert after["arms"] == [] and after["events"]["attributed_by_list_id"] == 0
    finally:
        db.conn.close()


def test_retention_drops_old_lists_and_the_list_ids_old_events_carry(measured):
    db, settings = measured
    got = store.prune_decisions(db, at(30))  # everything served before T0+30 min goes
    assert got == 5  # L1, L3, L4, L5, L7
    assert (
        db.execute("SELECT count(*) FROM interactions WHERE list_id IS NOT NULL").fetchone()[0] == 2
    )  # +120 and +240 min
    assert (
        db.execute(
            "SELECT count(*) FROM interactions WHERE list_id IS NOT NULL AND occurred_at < ?", [epoch(30)]
        ).fetchone()[0]
        == 0
    )


def test_the_prune_reads_only_the_events_that_carry_a_list_id(measured):
    db, _ = measured
    # A shop's history: many old events without a list id (and no ANALYZE statistics), where the
    # time index looks best to the planner and would visit all of them under the write lock.
    store.upsert_interactions(
        db, [EventRow(("t1", "t2", "k1", "k2")[i % 4], "pA", "view", 1.0, 1_000_000 + i) for i in range(3000)]
    )
    plan = " ".join(str(r[-1]) for r in db.execute("EXPLAIN QUERY PLAN " + store.CLEAR_OLD_LIST_IDS, [2_000_000_000]))
    assert "interactions_list" in plan and "interactions_time" not in plan, plan


def test_cli_report_online(runner, measured):
    result = runner.invoke(cli, ["report", "online", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert {(a["surface"], a["arm"], a["lists"]) for a in payload["arms"]} == {
        ("recommendations", "model", 3),
        ("recommendations", "control", 3),
        ("similar", "unassigned", 1),
    }
    human = runner.invoke(cli, ["report", "online", "--since", at(-5)])
    assert human.exit_code == 0 and "uplift recommendations conversion: model - control = +33.33 pt" in human.output
    bad = runner.invoke(cli, ["report", "online", "--since", "soon"])
    assert bad.exit_code == 1 and bad.output.startswith("Error: since: ") and "Traceback" not in bad.output


def test_the_challenger_arm_is_served_by_its_version_and_falls_back_when_it_cannot_load(served):
    from api import create_app
    from recommender.models import registry

    current = registry.Registry(served.model_dir).current_version()
    served.serve.open = True
    served.online.challenger, served.online.challenger_share = current, 1.0
    app = create_app(served)
    client = app.test_client()
    customer = consenting(app)
    body = client.get(f"/v1/customers/{customer}/recommendations?n=3").get_json()
    assert (body["arm"], body["mode"], body["model_version"]) == ("challenger", "personalized", current)
    served.online.challenger = "20000101T000000Z-000000"  # no such version: the current model serves
    missing = create_app(served).test_client()
    body = missing.get(f"/v1/customers/{customer}/recommendations?n=3").get_json()
    assert (body["arm"], body["mode"]) == ("model", "personalized")


def test_every_recorded_offer_has_a_list_id_and_a_purchase_from_it_counts_for_offers(db, settings):
    from recommender import campaigns
    from recommender.campaigns import CampaignRequest

    store.upsert_customers(
        db,
        [
            CustomerRow(c, f"{c}@example.com", c, birth_date="1990-06-03", created_at="2026-01-01T00:00:00Z")
            for c in ("A", "B")
        ],
    )
    store.upsert_products(db, [ProductRow(f"P{i}", f"Product {i}", "misc", 10.0) for i in range(1, 6)])
    store.set_consents(db, [(c, "marketing", True, "2026-01-01T00:00:00Z", "test") for c in ("A", "B")])
    result = campaigns.run(db, settings, CampaignRequest(occasion="birthday", date="2026-06-01", days_ahead=7))
    offers = {r["customer_id"]: dict(r) for r in db.query("SELECT customer_id, list_id, products FROM offers")}
    assert set(offers) == {"A", "B"} and all(HEX.match(o["list_id"]) for o in offers.values())
    assert {o.list_id for o in result.offers} == {o["list_id"] for o in offers.values()}
    logged = dict(db.execute("SELECT list_id, endpoint FROM decisions").fetchall())
    assert logged == {o["list_id"]: "campaign:birthday" for o in offers.values()}
    bought = json.loads(offers["A"]["products"])[0]
    created = db.execute("SELECT created_at FROM decisions WHERE list_id = ?", [offers["A"]["list_id"]]).fetchone()[0]
    when = int(dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp())
    store.add_interactions(db, [EventRow("A", bought, "purchase", 2, when + 60, offers["A"]["list_id"], 8.5)])
    row = next(a for a in online.report(db, settings)["arms"] if a["surface"] == "offers")
    assert (row["arm"], row["lists"], row["customers"], row["purchases"], row["revenue"]) == (
        "unassigned",
        2,
        2,
        1,
        17.0,
    )
