"""Merchandising rules (issue 26) on a hand-made shop whose model is set by hand, so every list is written down.

Every product has the factor (f, 0) and the customers' history is one view of H0, so a
customer's vector is (x, 0) with x > 0 and the model ranks by f alone:

    id    category  f     stock  hidden   model rank (after the hard filters)
    P11   kitchen   20    5      yes      -   (hidden: never listed)
    P12   kitchen   15    0               -   (out of stock: never listed)
    P01   kitchen   10    5               0
    P02   kitchen   9     5               1
    ...   kitchen                         ...
    P05   kitchen   6     5               4
    P06   garden    5     5               5
    ...   garden                          ...
    P10   garden    1     5               9
    H0    other     0.5   5               10

So the list of five without rules is [P01, P02, P03, P04, P05]. A rule's amount is a share
of max(POOL, n) = 50 candidates: the candidate at model rank r scores -r/50, and 0.1 is
five places. Ties keep the model's order.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time

import numpy as np
import pytest

from recommender import store
from recommender.config import load_settings
from recommender.models import registry
from recommender.models.factor import FactorModel
from recommender.online import rulelog
from recommender.serving import merchandising
from recommender.serving.catalogue import Catalogue
from recommender.serving.context import Context, listed
from recommender.serving.rules import RuleError, parse_rule
from recommender.serving.rulesets import Rulebook
from recommender.serving.service import ListOptions, Service

F = {"P11": 20, "P12": 15, **{f"P{k:02d}": 11 - k for k in range(1, 11)}, "H0": 0.5}
BASE = ["P01", "P02", "P03", "P04", "P05"]


def _category(pid: str) -> str:
    return "other" if pid == "H0" else "garden" if pid in {f"P{k:02d}" for k in range(6, 11)} else "kitchen"


@pytest.fixture
def shop(tmp_path):
    settings = load_settings(environ={}, overrides={"db": tmp_path / "shop.db", "model_dir": tmp_path / "models"})
    settings.privacy.decision_log_flush_seconds = 3600  # flushed by hand in the tests
    db = store.connect(settings.db, create=True)
    store.upsert_products(
        db,
        [
            (p, f"Product {p}", _category(p), 10.0 + F[p], 0 if p == "P12" else 5, 1 if p == "P11" else 0, None)
            for p in F
        ],
    )
    customers = ["C1", "C2", "BUYER"]
    store.upsert_customers(db, [(c, None, None, None, None, "UTC", "2025-01-01T00:00:00Z") for c in customers])
    store.set_consents(db, [(c, "personalization", True, "2025-01-01T00:00:00Z", "test") for c in customers])
    now = int(time.time()) - 3600
    store.upsert_interactions(
        db, [(c, "H0", "view", 1.0, now) for c in customers] + [("BUYER", "P02", "purchase", 1.0, now + 1)]
    )
    ids = list(F)
    model = FactorModel(
        np.zeros((1, 2), np.float32), np.array([(F[p], 0.0) for p in ids], np.float32), ["C1"], ids, 0.1
    )
    version = registry.new_version()
    model.manifest.update(
        version=version,
        created_at=store.utcnow(),
        engine="numpy",
        data={"reference_time": now + 10, "privacy_epoch": store.privacy_epoch(db)},
    )
    registry.publish(db, registry.Registry(settings.model_dir), model, version)
    yield settings, db
    db.conn.close()


def add(db, *rules):
    for rule in rules:
        merchandising.create_rule(db, rule, "test")


def served(settings, db, customer="C1", n=5, service=None, **options):
    service = service or Service(settings)
    result = service.recommend(db, customer, ListOptions(n=n, **options))
    service.decisions.flush(db)
    return result


def rule(name, action, **extra):
    return {"name": name, "action": action, **extra}


# --- each action on exact lists ---------------------------------------------------------------


def test_without_rules_the_list_is_the_models(shop):
    settings, db = shop
    result = served(settings, db)
    assert result.product_ids == BASE and result.rules is None


@pytest.mark.parametrize(
    "action, expected, effects",
    [
        # garden (ranks 5..9) up 5 places: P06 ties P01 at 0 and P07 ties P02 at -0.02; the model's order breaks ties
        (
            {"type": "boost", "condition": {"categories": ["garden"]}, "amount": 0.1},
            ["P01", "P06", "P02", "P07", "P03"],
            {"placed": ["P06", "P07"]},
        ),
        # P01 down 5 places: -0.1 ties P06 (rank 5), and P01's rank 0 comes first
        (
            {"type": "bury", "condition": {"products": ["P01"]}, "amount": 0.1},
            ["P02", "P03", "P04", "P05", "P01"],
            {"moved": ["P01"]},
        ),
        # down 6 places: -0.12, after P06 (-0.10): out of the five
        (
            {"type": "bury", "condition": {"products": ["P01"]}, "amount": 0.12},
            ["P02", "P03", "P04", "P05", "P06"],
            {"removed": ["P01"]},
        ),
        ({"type": "pin", "product": "P09", "position": 2}, ["P01", "P09", "P02", "P03", "P04"], {"placed": ["P09"]}),
        # 2 of the first 5 to garden, the model's best of it (P06, P07) in place of the lowest others (P04, P05)
        (
            {"type": "promote", "condition": {"categories": ["garden"]}, "slots": 2, "of": 5},
            ["P01", "P02", "P03", "P06", "P07"],
            {"placed": ["P06", "P07"]},
        ),
        (
            {"type": "exclude", "condition": {"categories": ["kitchen"]}},
            ["P06", "P07", "P08", "P09", "P10"],
            {"removed": BASE},
        ),
        (
            {"type": "include_only", "condition": {"attribute": {"name": "category", "one_of": ["garden"]}}},
            ["P06", "P07", "P08", "P09", "P10"],
            {"removed": BASE},
        ),
        # price = 10 + f: P03 costs 18, P04 17
        (
            {"type": "exclude", "condition": {"min_price": 17, "max_price": 18}},
            ["P01", "P02", "P05", "P06", "P07"],
            {"removed": ["P03", "P04"]},
        ),
        (
            {"type": "boost", "condition": {"attribute": {"name": "name", "contains": "product p08"}}, "amount": 1},
            ["P08", "P01", "P02", "P03", "P04"],
            {"placed": ["P08"]},
        ),
    ],
)
def test_each_action_on_an_exact_list(shop, action, expected, effects):
    settings, db = shop
    add(db, rule("r", action))
    result = served(settings, db)
    assert result.product_ids == expected
    assert result.rules == {"r": effects}
    logged = db.execute("SELECT product_ids, rules FROM decisions WHERE list_id = ?", [result.list_id]).fetchone()
    assert json.loads(logged[0]) == expected
    # the log names the rule by its position in the worker's rule set: rule 0 of ["r"], bit 1
    ((set_id, names),) = db.execute("SELECT id, names FROM rule_sets").fetchall()
    assert json.loads(names) == ["r"]
    assert json.loads(logged[1]) == {"set": set_id, **{e: dict.fromkeys(ps, "1") for e, ps in effects.items()}}
    assert rulelog.decode(logged[1], lambda s: store.rule_set_names(db, s)) == {"r": effects}


def test_overlapping_pins_go_by_priority_then_name(shop):
    settings, db = shop
    add(
        db,
        rule("a-pin", {"type": "pin", "product": "P09", "position": 1}),
        rule("b-pin", {"type": "pin", "product": "P08", "position": 1}),
    )
    # same priority: by name, a-pin first; b-pin takes the next free position
    assert served(settings, db).product_ids == ["P09", "P08", "P01", "P02", "P03"]
    merchandising.update_rule(
        db, "b-pin", rule("b-pin", {"type": "pin", "product": "P08", "position": 1}, priority=5), "test"
    )
    assert served(settings, db).product_ids == ["P08", "P09", "P01", "P02", "P03"]
    # a pin beyond a shorter list does not show
    assert served(settings, db, n=1).product_ids == ["P08"]


def test_pins_keep_their_place_through_the_diversity_cap(shop):
    settings, db = shop
    add(db, rule("pin", {"type": "pin", "product": "P03", "position": 4}))
    # diversity 0.5 at n=4: at most 2 per category; the pin is not capped and keeps position 4
    assert served(settings, db, n=4, diversity=0.5).product_ids == ["P01", "P02", "P06", "P03"]


def test_hard_filters_win_over_rules(shop):
    settings, db = shop
    add(
        db,
        rule("hidden", {"type": "pin", "product": "P11", "position": 1}),
        rule("bought", {"type": "pin", "product": "P02", "position": 2}),
        rule("no-stock", {"type": "boost", "condition": {"products": ["P12"]}, "amount": 1}),
    )
    assert served(settings, db).product_ids == ["P01", "P02", "P03", "P04", "P05"]  # P02 pinned: C1 did not buy it
    buyer = served(settings, db, customer="BUYER")
    assert "P02" not in buyer.product_ids and "P11" not in buyer.product_ids and "P12" not in buyer.product_ids
    assert buyer.product_ids == ["P01", "P03", "P04", "P05", "P06"]
    # the caller's filters too: a pinned product outside the category asked for is not placed
    kitchen_only = served(
        settings,
        db,
        filters=__import__("recommender.serving.catalogue", fromlist=["x"]).ListFilters(categories=("garden",)),
    )
    assert kitchen_only.product_ids == ["P06", "P07", "P08", "P09", "P10"]


def test_rotation_across_two_workers_and_a_restart(shop):
    """Impressions come from the decision log: two Service instances (workers) and a new one (restart) agree."""
    settings, db = shop
    add(db, rule("rotate", {"type": "rotate", "after": 2, "days": 7}))
    one, two = Service(settings), Service(settings)
    assert served(settings, db, service=one).product_ids == BASE  # shown once
    assert served(settings, db, service=two).product_ids == BASE  # shown twice, by another worker
    # a third list: every product shown twice without a click is demoted by a whole pool
    third = served(settings, db, service=one)
    assert third.product_ids == ["P06", "P07", "P08", "P09", "P10"]
    assert third.rules == {"rotate": {"removed": BASE}}
    # a restarted worker reads the same log; a click on P03 keeps it
    store.upsert_interactions(db, [("C1", "P03", "view", 1.0, int(time.time()) - 5)])
    restarted = served(settings, db, service=Service(settings))
    assert restarted.product_ids == ["P03", "P06", "P07", "P08", "P09"]
    # another customer was shown nothing yet
    assert served(settings, db, customer="C2").product_ids == BASE


def test_a_worker_counts_lists_with_the_rules_version_and_a_changed_window_is_counted_again(shop):
    """A rotating worker reads the rules' version and the customer's list count in one statement; a count made
    under the old rules' window never decides for new ones."""
    settings, db = shop
    add(db, rule("rotate", {"type": "rotate", "after": 3, "days": 7}))
    worker = Service(settings)
    reads: list[str] = []
    db.conn.set_trace_callback(reads.append)
    try:
        assert served(settings, db, service=worker).product_ids == BASE  # the first read learns the rules
        reads.clear()
        assert served(settings, db, service=worker).product_ids == BASE  # 1 list before it: fewer than 3
        decisions_reads = [q for q in reads if "FROM decisions" in q]
        assert len(decisions_reads) == 1 and "rules_version" in decisions_reads[0]
        # now two lists were shown; the rule changes to act after two showings. The read that notices the change
        # counted for the old window (2 < 3): the new one must look at the lists again, and demote all five
        merchandising.update_rule(db, "rotate", {"action": {"type": "rotate", "after": 2, "days": 7}}, "test")
        third = served(settings, db, service=worker)
    finally:
        db.conn.set_trace_callback(None)
    assert third.product_ids == ["P06", "P07", "P08", "P09", "P10"]
    assert third.rules == {"rotate": {"removed": BASE}}


def test_a_change_reaches_every_worker_on_its_next_request(shop):
    settings, db = shop
    worker = Service(settings)
    assert served(settings, db, service=worker).product_ids == BASE
    add(db, rule("pin", {"type": "pin", "product": "P10", "position": 1}))
    assert served(settings, db, service=worker).product_ids[0] == "P10"
    merchandising.set_status(db, "pin", "paused", "test")
    assert served(settings, db, service=worker).product_ids == BASE
    merchandising.set_status(db, "pin", "active", "test")
    merchandising.delete_rule(db, "pin", "test")
    assert served(settings, db, service=worker).product_ids == BASE
    trail = merchandising.audit(db, "pin")
    assert [a["action"] for a in trail] == ["delete", "resume", "pause", "create"]
    assert (
        trail[0]["before"]["action"] == {"type": "pin", "product": "P10", "position": 1} and trail[0]["after"] is None
    )


def test_audience_arms_and_visitors(shop):
    settings, db = shop
    add(
        db,
        rule("returning", {"type": "pin", "product": "P10", "position": 1}, audience={"visitors": ["returning"]}),
        rule("anon", {"type": "pin", "product": "P09", "position": 1}, audience={"visitors": ["anonymous"]}),
    )
    assert served(settings, db, customer="C1").product_ids[0] != "P10"  # new: bought nothing
    assert served(settings, db, customer="BUYER").product_ids[0] == "P10"
    assert (
        Service(settings)
        .popular(db, 3, __import__("recommender.serving.catalogue", fromlist=["x"]).ListFilters(), None)
        .product_ids[0]
        == "P09"
    )


# --- the schedule, in a non-UTC zone across a DST change ---------------------------------------------


def _active(rules, when: dt.datetime, catalogue) -> bool:
    book = Rulebook([parse_rule(r) for r in rules])
    return book.active(None, catalogue, Context("recommendations", now=when)) is not None


def test_the_schedule_at_its_edges_in_auckland(shop):
    settings, db = shop
    catalogue = Catalogue(list(F), ttl=0)
    catalogue.refresh(db, force=True)
    # NZ daylight time starts 2026-09-27 02:00 NZST (+12) -> 03:00 NZDT (+13); it ends 2026-04-05 03:00 NZDT -> 02:00
    spring = rule(
        "spring",
        {"type": "pin", "product": "P10", "position": 1},
        schedule={"start": "2026-09-27T03:00", "end": "2026-10-01T00:00", "timezone": "Pacific/Auckland"},
    )
    utc = dt.UTC
    start = dt.datetime(2026, 9, 26, 14, 0, tzinfo=utc)  # 03:00 NZDT
    assert not _active([spring], start - dt.timedelta(seconds=1), catalogue)
    assert _active([spring], start, catalogue)
    end = dt.datetime(2026, 9, 30, 11, 0, tzinfo=utc)  # midnight NZDT
    assert _active([spring], end - dt.timedelta(seconds=1), catalogue)
    assert not _active([spring], end, catalogue)
    # 02:30 does not exist that night: read with the offset before the change (+12), i.e. 03:30 NZDT
    gap = rule(
        "gap",
        {"type": "pin", "product": "P10", "position": 1},
        schedule={"start": "2026-09-27T02:30", "timezone": "Pacific/Auckland"},
    )
    assert not _active([gap], dt.datetime(2026, 9, 26, 14, 29, 59, tzinfo=utc), catalogue)
    assert _active([gap], dt.datetime(2026, 9, 26, 14, 30, tzinfo=utc), catalogue)
    # 02:30 on 2026-04-05 happens twice: the first (daylight, +13) is meant
    autumn = rule(
        "autumn",
        {"type": "pin", "product": "P10", "position": 1},
        schedule={"end": "2026-04-05T02:30", "timezone": "Pacific/Auckland"},
    )
    assert _active([autumn], dt.datetime(2026, 4, 4, 13, 29, 59, tzinfo=utc), catalogue)
    assert not _active([autumn], dt.datetime(2026, 4, 4, 13, 30, tzinfo=utc), catalogue)


# --- campaigns and the API rank alike -----------------------------------------------------------


def test_campaigns_and_the_api_apply_the_same_rules_identically(shop):
    from recommender.campaigns import choice
    from recommender.campaigns.eligibility import Candidate

    settings, db = shop
    add(
        db,
        rule("pin", {"type": "pin", "product": "P05", "position": 2}, surfaces=["recommendations", "offers"]),
        rule(
            "promote",
            {"type": "promote", "condition": {"categories": ["garden"]}, "slots": 1, "of": 4},
            surfaces=["recommendations", "offers"],
        ),
        rule("only-api", {"type": "exclude", "condition": {"products": ["P01"]}}, surfaces=["recommendations"]),
    )
    api_list = served(settings, db, n=6).product_ids
    today = (dt.date.today() - dt.date(1970, 1, 1)).days
    candidate = Candidate("C1", "birthday", today + 3, dt.date.today().year, today)
    model = choice.load_model(settings)
    chosen = choice.choose(db, settings, model, [candidate], k=3)
    offer = [chosen.catalogue.ids[j] for j in candidate.personal[:6]]
    # pin P05 at 2; then one of the first four to garden: the three unpinned slots are P01-P03, P06 replaces P03.
    # The offers surface has no "only-api" rule, so P01 stays.
    assert offer == ["P01", "P05", "P02", "P06", "P03", "P04"]
    merchandising.update_rule(
        db,
        "only-api",
        rule(
            "only-api", {"type": "exclude", "condition": {"products": ["P01"]}}, surfaces=["recommendations", "offers"]
        ),
        "test",
    )
    chosen = choice.choose(db, settings, model, [candidate], k=3)
    assert [chosen.catalogue.ids[j] for j in candidate.personal[:6]] == api_list
    assert api_list == ["P02", "P05", "P03", "P06", "P04", "P07"]


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        (rule("x", {"type": "pin", "product": "P01", "position": 101}), "action.position"),
        (rule("x", {"type": "pin", "product": "NOPE", "position": 1}), "action.product"),
        (rule("x", {"type": "boost", "condition": {"categories": ["garden"]}, "amount": 0}), "action.amount"),
        (rule("x", {"type": "boost", "condition": {}, "amount": 0.1}), "action.condition"),
        (rule("x", {"type": "promote", "condition": {"categories": ["garden"]}, "slots": 3, "of": 2}), "action.slots"),
        (
            rule("x", {"type": "exclude", "condition": {"attribute": {"name": "brand", "equals": "Acme"}}}),
            "action.condition.attribute.name",
        ),
        (rule("x", {"type": "exclude", "condition": {"categories": ["garden"]}}, surfaces=["homepage"]), "surfaces[0]"),
        (
            rule(
                "x",
                {"type": "exclude", "condition": {"categories": ["garden"]}},
                schedule={"start": "2026-03-02", "end": "2026-03-01", "timezone": "Europe/Paris"},
            ),
            "schedule.end",
        ),
        (
            rule(
                "x", {"type": "exclude", "condition": {"categories": ["garden"]}}, schedule={"timezone": "Mars/Olympus"}
            ),
            "schedule.timezone",
        ),
        (rule("x", {"type": "launch"}), "action.type"),
        (rule("x", {"type": "include_only", "condition": {"categories": ["nothing"]}}), "action.condition"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(shop, body, field):
    _, db = shop
    with pytest.raises(RuleError) as raised:
        merchandising.create_rule(db, body, "test")
    assert raised.value.field == field and str(raised.value).startswith(field + ":")
    assert merchandising.list_rules(db) == []


def test_a_condition_that_matches_nothing_is_warned(shop):
    _, db = shop
    saved, warnings = merchandising.create_rule(
        db, rule("x", {"type": "boost", "condition": {"categories": ["toys"]}, "amount": 0.2}), "test"
    )
    assert saved["name"] == "x" and warnings == ["action.condition: matches no product in the catalogue now"]


# --- the API --------------------------------------------------------------------------------------


@pytest.fixture
def api(shop):
    from api import create_app
    from recommender.serving import keys

    settings, db = shop
    app = create_app(settings)
    app.config["TESTING"] = True
    tokens = {role: keys.create(db, role, role)[1] for role in ("read", "marketer", "admin")}
    client = app.test_client()

    def call(method, url, role="marketer", **kw):
        return getattr(client, method)(url, headers={"Authorization": f"Bearer {tokens[role]}"}, **kw)

    return call


def test_the_api_manages_rules_and_shows_effects_to_an_admin_only(api, shop):
    _, db = shop
    body = rule("pin", {"type": "pin", "product": "P10", "position": 1})
    assert api("post", "/v1/admin/rules", role="read", json=body).status_code == 403
    created = api("post", "/v1/admin/rules", json=body)
    assert created.status_code == 201 and created.get_json()["rule"]["status"] == "active"
    assert api("get", "/v1/admin/rules", role="read").status_code == 403
    assert [r["name"] for r in api("get", "/v1/admin/rules").get_json()["rules"]] == ["pin"]
    as_read = api("get", "/v1/customers/C1/recommendations?n=3", role="read").get_json()
    as_admin = api("get", "/v1/customers/C1/recommendations?n=3", role="admin").get_json()
    assert [i["product_id"] for i in as_read["items"]] == ["P10", "P01", "P02"] and "rules" not in as_read
    assert as_admin["rules"] == {"pin": {"placed": ["P10"]}}
    assert api("post", "/v1/admin/rules/pin/pause").get_json()["status"] == "paused"
    assert [
        i["product_id"] for i in api("get", "/v1/customers/C1/recommendations?n=3", role="read").get_json()["items"]
    ] == ["P01", "P02", "P03"]
    assert api("post", "/v1/admin/rules/pin/resume").status_code == 200
    changed = api("put", "/v1/admin/rules/pin", json={**body, "action": {**body["action"], "position": 2}})
    assert changed.status_code == 200 and changed.get_json()["rule"]["action"]["position"] == 2
    assert api("delete", "/v1/admin/rules/pin").get_json() == {"deleted": "pin"}
    assert api("get", "/v1/admin/rules/pin").status_code == 404
    actors = {a["actor"] for a in merchandising.audit(db)}
    assert actors == {"key:2:marketer"}


@pytest.mark.parametrize(
    "body, fragment",
    [
        (rule("x", {"type": "pin", "product": "P01", "position": 101}), "action.position"),
        (
            rule(
                "x",
                {"type": "exclude", "condition": {"categories": ["garden"]}},
                schedule={"start": "2026-03-02T10:00", "end": "2026-03-02T09:00"},
            ),
            "schedule.end: the schedule ends",
        ),
        (
            rule("x", {"type": "exclude", "condition": {"attribute": {"name": "brand", "equals": "Acme"}}}),
            "unknown attribute",
        ),
        (rule("x", {"type": "exclude", "condition": {"categories": ["garden"]}}, surfaces=["homepage"]), "surfaces"),
        (
            rule(
                "x", {"type": "exclude", "condition": {"categories": ["garden"]}}, schedule={"timezone": "Nowhere/City"}
            ),
            "unknown time zone",
        ),
    ],
)
def test_the_api_refuses_bad_rules_with_422_naming_the_field(api, body, fragment):
    response = api("post", "/v1/admin/rules", json=body)
    assert response.status_code == 422 and fragment in response.get_json()["error"]["message"]


def test_a_condition_matching_nothing_is_created_with_a_warning(api):
    response = api(
        "post",
        "/v1/admin/rules",
        json=rule("x", {"type": "boost", "condition": {"categories": ["toys"]}, "amount": 0.5}),
    )
    assert response.status_code == 201 and response.get_json()["warnings"]


def test_preview_shows_before_and_after_and_refuses_a_rule_set_that_empties_every_list(api):
    promote = rule("promote", {"type": "promote", "condition": {"categories": ["garden"]}, "slots": 1, "of": 3})
    body = api("post", "/v1/admin/rules/preview", json={"rule": promote, "n": 3}).get_json()
    assert body["lists"] == 3 and body["touched"] == 3 and body["emptied"] == 0
    by_customer = {c["customer_id"]: c for c in body["customers"]}
    assert by_customer["C1"]["before"] == ["P01", "P02", "P03"]
    assert by_customer["C1"]["after"] == ["P01", "P02", "P06"]
    assert by_customer["C1"]["rules"] == {"promote": {"placed": ["P06"]}}
    assert api("get", "/v1/admin/rules").get_json()["rules"] == []  # nothing saved
    # every product of the only category it keeps is out of stock or hidden: every list would be empty
    empty = rule("empty", {"type": "include_only", "condition": {"products": ["P11", "P12"]}})
    refused = api("post", "/v1/admin/rules/preview", json={"rule": empty})
    assert refused.status_code == 422 and "empty every list" in refused.get_json()["error"]["message"]


def test_rerank_reorders_but_keeps_the_callers_products(shop):
    settings, db = shop
    add(
        db,
        rule("bury", {"type": "exclude", "condition": {"products": ["P01"]}}),
        rule("pin", {"type": "pin", "product": "P05", "position": 1}),
    )
    result = Service(settings).rerank(db, "C1", ["P05", "P01", "P03"])
    assert result.product_ids == ["P05", "P03", "P01"]


def test_yaml_and_json_files_load(tmp_path):
    pytest.importorskip("yaml")
    (tmp_path / "r.yaml").write_text("rules:\n  - name: a\n    action: {type: pin, product: P01, position: 1}\n")
    (tmp_path / "r.json").write_text(json.dumps([rule("b", {"type": "pin", "product": "P02", "position": 1})]))
    assert merchandising.load_file(tmp_path / "r.yaml")[0]["name"] == "a"
    assert merchandising.load_file(tmp_path / "r.json")[0]["name"] == "b"


def test_a_rule_past_the_sixty_fourth_acts_and_is_logged_by_its_position(shop):
    """Rule 69 of 70 (names sort: a-00 ... a-68, then zz-boost) lives in the second 64-bit word of a product's bits."""
    settings, db = shop
    add(db, *(rule(f"a-{k:02d}", {"type": "exclude", "condition": {"products": ["H0"]}}) for k in range(69)))
    add(db, rule("zz-boost", {"type": "boost", "condition": {"categories": ["garden"]}, "amount": 0.1}))
    result = served(settings, db)
    # as the first garden boost above: P06 and P07 up five places each
    assert result.product_ids == ["P01", "P06", "P02", "P07", "P03"]
    assert result.rules == {"zz-boost": {"placed": ["P06", "P07"]}}
    logged = db.execute("SELECT rules FROM decisions WHERE list_id = ?", [result.list_id]).fetchone()[0]
    # bit 69 = 2 * 16**17: "2" and seventeen zeros
    assert json.loads(logged)["placed"] == {"P06": "2" + "0" * 17, "P07": "2" + "0" * 17}


def test_a_rule_set_the_database_is_too_busy_to_record_logs_its_lists_by_name(shop):
    """The rule set is written the first time a worker compiles it; when another writer holds the database past the
    busy timeout, the list is still served and logged, naming its rules in full."""
    settings, db = shop
    add(db, rule("r", {"type": "boost", "condition": {"categories": ["garden"]}, "amount": 0.1}))
    db.conn.execute("PRAGMA busy_timeout = 50")
    writer = sqlite3.connect(settings.db)
    writer.execute("BEGIN IMMEDIATE")
    try:
        service = Service(settings)
        result = service.recommend(db, "C1", ListOptions(n=5))
    finally:
        writer.rollback()
        writer.close()
    service.decisions.flush(db)
    assert result.product_ids == ["P01", "P06", "P02", "P07", "P03"]  # as the garden boost's own test
    logged = db.execute("SELECT rules FROM decisions WHERE list_id = ?", [result.list_id]).fetchone()[0]
    assert json.loads(logged) == {"r": {"placed": ["P06", "P07"]}}
    assert db.execute("SELECT count(*) FROM rule_sets").fetchone()[0] == 0


def test_a_logged_list_reads_back_as_its_ids_whatever_they_hold():
    """Rotation reads a customer's logged lists on every list: plain ids are split, anything escaped is parsed."""
    assert listed('["P01", "P02", "P01"]') == {"P01", "P02"}
    assert listed("[]") == frozenset()
    assert listed('["one"]') == {"one"}
    assert listed('["a, b", "c"]') == {"a, b", "c"}  # a comma and a space inside an id: no quote, so one id
    assert listed('["a\\", \\"b", "c"]') == {'a", "b', "c"}  # an id holding quote-comma-quote, escaped
    assert listed('["caf\\u00e9", "x"]') == {"café", "x"}  # written with ensure_ascii
    assert listed('["a","b"]') == {"a", "b"}  # compact separators


def test_the_logs_window_is_the_requests_second_that_many_days_back():
    at = dt.datetime(2026, 3, 29, 1, 30, 59, 999_999, tzinfo=dt.UTC)  # the night clocks move in Europe: UTC has none
    assert Context("recommendations", now=at).since(7) == "2026-03-22T01:30:59Z"
    assert Context("recommendations", now=at).since(1) == "2026-03-28T01:30:59Z"
    auckland = dt.datetime(2026, 3, 29, 14, 30, 59, tzinfo=dt.timezone(dt.timedelta(hours=13)))  # the same instant
    assert Context("recommendations", now=auckland).since(7) == "2026-03-22T01:30:59Z"


@pytest.mark.parametrize(
    "rules, expected, effects",
    [
        # every kitchen product is boosted alike, so the boost changes no order; the pin pushes P01-P04 down one
        # place and P05 out. They moved because of the pin, not of their boost: the boost is not credited
        (
            [
                rule("kitchen", {"type": "boost", "condition": {"categories": ["kitchen"]}, "amount": 0.05}),
                rule("pin", {"type": "pin", "product": "P09", "position": 1}),
            ],
            ["P09", "P01", "P02", "P03", "P04"],
            {"pin": {"placed": ["P09"]}},
        ),
        # P05 carries a bury too small to move it (-0.08 - 0.01 stays above P06's -0.10); it moves *up* because the
        # exclusion took P01 out: the bury did not move it and is not credited
        (
            [
                rule("small-bury", {"type": "bury", "condition": {"products": ["P05"]}, "amount": 0.01}),
                rule("no-p01", {"type": "exclude", "condition": {"products": ["P01"]}}),
            ],
            ["P02", "P03", "P04", "P05", "P06"],
            {"no-p01": {"removed": ["P01"]}},
        ),
    ],
)
def test_a_rule_is_credited_only_for_what_it_moved_in_its_own_direction(shop, rules, expected, effects):
    settings, db = shop
    add(db, *rules)
    result = served(settings, db)
    assert result.product_ids == expected
    assert result.rules == effects
