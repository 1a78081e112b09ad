"""The online report split by merchandising rule: lists a rule touched vs lists it did not, per arm and surface.

A hand-made shop: every list, its rules (what the decision log records) and every
event are written out below, and every expected figure was worked out by hand
from them (see the comments). The same figures are checked on every face: the
library, the CLI (text and --json) and ``/v1/admin/metrics/online``.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from recommender import online, store
from recommender.cli import cli
from recommender.store.rows import CustomerRow, DecisionLogRow, EventRow, ProductRow

T0 = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)
LISTS = {name: f"{n:032x}" for n, name in enumerate(("L1", "L2", "L3", "L4", "L5", "L6"), start=1)}


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(minutes: float) -> int:
    return int((T0 + dt.timedelta(minutes=minutes)).timestamp())


@pytest.fixture
def ruled(db, settings):
    """Three model-arm customers (t1, t2, t3), one control-arm (k1); two rules, push-b and hide-a."""
    store.upsert_customers(db, [CustomerRow(c, created_at="2026-01-01T00:00:00Z") for c in ("t1", "t2", "t3", "k1")])
    store.upsert_products(
        db, [ProductRow("pA", "A", "x", 10.0), ProductRow("pB", "B", "x", 20.0), ProductRow("pC", "C", "x", 5.0)]
    )

    def row(name, customer, minutes, endpoint, arm, products, rules=None):
        return DecisionLogRow(
            customer,
            at(minutes),
            endpoint,
            "v1",
            "personalized" if arm == "model" else "non_personalized",
            "control" if arm == "control" else None,
            json.dumps(products),
            LISTS[name],
            arm,
            json.dumps(rules) if rules else None,
        )

    store.insert_decisions(
        db,
        [
            row("L1", "t1", 0, "recommendations", "model", ["pA", "pB"], {"push-b": {"placed": ["pB"]}}),
            row(
                "L2",
                "t2",
                0,
                "recommendations",
                "model",
                ["pB", "pC"],
                {"push-b": {"moved": ["pB"]}, "hide-a": {"removed": ["pA"]}},
            ),
            row("L3", "t3", 0, "recommendations", "model", ["pA", "pC"]),
            row("L4", "k1", 0, "recommendations", "control", ["pB", "pA"], {"push-b": {"moved": ["pB"]}}),
            row("L5", "k1", 60, "recommendations", "control", ["pC"]),
            row("L6", "t1", 300, "campaign:birthday", None, ["pB"], {"push-b": {"placed": ["pB"]}}),
        ],
    )
    store.add_interactions(
        db,
        [
            EventRow("t1", "pB", "view", 1, epoch(5), LISTS["L1"]),  # L1 clicked
            EventRow("t1", "pB", "purchase", 2, epoch(6), LISTS["L1"]),  # L1 bought: 2 x 20 = 40
            EventRow("t2", "pC", "view", 1, epoch(10)),  # window: L2 clicked
            EventRow("t3", "pA", "purchase", 1, epoch(20)),  # window: L3 bought: 10
            EventRow("k1", "pB", "purchase", 1, epoch(30), LISTS["L4"], price=18.0),  # L4 bought at 18
            EventRow("k1", "pC", "view", 1, epoch(70)),  # window: L5 clicked
            EventRow("t1", "pB", "purchase", 1, epoch(310), LISTS["L6"]),  # the offer L6 bought: 20
        ],
    )
    settings.online.window_hours = 24
    return db, settings


def side(lists, customers, clicks, purchases, revenue):
    return {
        "lists": lists,
        "customers": customers,
        "clicks": clicks,
        "ctr": round(clicks / lists, 6) if lists else 0.0,
        "purchases": purchases,
        "conversion": round(purchases / lists, 6) if lists else 0.0,
        "revenue": revenue,
        "revenue_per_list": round(revenue / lists, 6) if lists else 0.0,
    }


# Worked out by hand from the lists and events above.
EXPECTED = [
    # hide-a touched L2 only (clicked, nothing bought); the other model lists L1 (clicked, 40) and L3 (10).
    {
        "rule": "hide-a",
        "arm": "model",
        "surface": "recommendations",
        "placed": 0,
        "moved": 0,
        "removed": 1,
        "touched": side(1, 1, 1, 0, 0.0),
        "untouched": side(2, 2, 1, 2, 50.0),
    },
    # push-b on the birthday offer L6 (bought, 20); no other offer list to compare with.
    {
        "rule": "push-b",
        "arm": "unassigned",
        "surface": "offers",
        "placed": 1,
        "moved": 0,
        "removed": 0,
        "touched": side(1, 1, 0, 1, 20.0),
        "untouched": side(0, 0, 0, 0, 0.0),
    },
    # push-b touched L1 (clicked, 40) and L2 (clicked): 2 lists, 2 clicks, 1 purchase, 40; L3 untouched (10).
    {
        "rule": "push-b",
        "arm": "model",
        "surface": "recommendations",
        "placed": 1,
        "moved": 1,
        "removed": 0,
        "touched": side(2, 2, 2, 1, 40.0),
        "untouched": side(1, 1, 0, 1, 10.0),
    },
    # control: push-b moved pB on L4 (bought at 18); L5 untouched (clicked).
    {
        "rule": "push-b",
        "arm": "control",
        "surface": "recommendations",
        "placed": 0,
        "moved": 1,
        "removed": 0,
        "touched": side(1, 1, 0, 1, 18.0),
        "untouched": side(1, 1, 1, 0, 0.0),
    },
]


def test_the_report_splits_lists_by_rule_on_a_hand_made_shop(ruled):
    db, settings = ruled
    got = online.report(db, settings)
    assert got["rules"] == EXPECTED
    # the per-arm figures are the rule rows' touched + untouched, for every rule on that arm and surface
    arms = {(a["surface"], a["arm"]): a for a in got["arms"]}
    for r in got["rules"]:
        whole = arms[r["surface"], r["arm"]]
        for key in ("lists", "clicks", "purchases"):
            assert r["touched"][key] + r["untouched"][key] == whole[key], (r["rule"], key)
        assert r["touched"]["revenue"] + r["untouched"]["revenue"] == pytest.approx(whole["revenue"])


def test_since_cuts_the_rule_rows_too(ruled):
    db, settings = ruled
    got = online.report(db, settings, since=at(60))  # L5 and L6 remain; only L6 was touched
    assert got["rules"] == [EXPECTED[1]]


def test_no_rule_no_rule_rows(db, settings):
    assert online.report(db, settings)["rules"] == []


def test_a_malformed_rules_value_is_skipped(ruled):
    db, settings = ruled
    db.execute("UPDATE decisions SET rules = 'not json' WHERE list_id = ?", [LISTS["L4"]])
    db.conn.commit()
    rows = online.report(db, settings)["rules"]
    assert [(r["rule"], r["arm"]) for r in rows] == [("hide-a", "model"), ("push-b", "unassigned"), ("push-b", "model")]


def test_cli_report_online_by_rule(runner, ruled):
    result = runner.invoke(cli, ["report", "online", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rules"] == EXPECTED
    human = runner.invoke(cli, ["report", "online"])
    assert human.exit_code == 0, human.output
    lines = human.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("by rule"))
    table = lines[start + 2 : start + 2 + 2 * len(EXPECTED)]
    assert table[4].split() == [
        "push-b",
        "recommendations",
        "model",
        "touched",
        "2",
        "2",
        "100.00%",
        "1",
        "50.00%",
        "40.00",
        "20.00",
    ]
    assert table[5].split() == ["untouched", "1", "0", "0.00%", "1", "100.00%", "10.00", "10.00"]


def test_cli_report_without_rules_says_so(runner, db, settings):
    human = runner.invoke(cli, ["report", "online"])
    assert human.exit_code == 0 and "by rule: no list was changed by a rule" in human.output


def test_api_report_by_rule(ruled):
    from api import create_app
    from recommender.serving import keys

    db, settings = ruled
    _, marketer = keys.create(db, "marketer", "crm")
    client = create_app(settings).test_client()
    got = client.get("/v1/admin/metrics/online", headers={"Authorization": f"Bearer {marketer}"})
    assert got.status_code == 200, got.get_data(as_text=True)
    assert got.get_json()["rules"] == EXPECTED
