"""The console's rules pages through Flask's test client: list, form, field errors, preview, save, pause,
resume, delete with confirmation, the audit under the console key's name, CSRF and roles.

Expected values come from the database read with plain SQL and from the library's own
preview (the page must show what ``merchandising.preview`` computes), never from the
page module's helpers.
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from api import create_app
from recommender import store
from recommender.serving import keys

TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def console(served):
    db = store.connect(served.db)
    tokens = {role: keys.create(db, role, f"{role}-person")[1] for role in ("read", "write", "admin", "marketer")}
    db.conn.close()
    return create_app(served), tokens, served


def signed_in(app, token: str):
    client = app.test_client()
    csrf = TOKEN.search(client.get("/console/sign-in").get_data(as_text=True)).group(1)
    assert client.post("/console/sign-in", data={"csrf": csrf, "key": token}).status_code == 303
    return client


def csrf(client) -> str:
    return TOKEN.search(client.get("/console/rules").get_data(as_text=True)).group(1)


def promotion(**extra) -> dict:
    form = {
        "name": "candles-week",
        "owner": "mia",
        "description": "candles first",
        "action.type": "promote",
        "action.condition.categories": "candles",
        "action.slots": "2",
        "action.of": "5",
        "surfaces": ["recommendations", "offers"],
        "schedule.timezone": "Europe/Paris",
        "priority": "0",
    }
    form.update(extra)
    return form


def rows(settings, sql: str, *args):
    with sqlite3.connect(settings.db) as conn:
        return conn.execute(sql, args).fetchall()


def test_marketer_previews_creates_pauses_resumes_and_deletes_a_rule(console):
    app, tokens, settings = console
    client = signed_in(app, tokens["marketer"])
    page = client.get("/console/rules")
    assert page.status_code == 200 and "No rule yet" in page.get_data(as_text=True)
    assert client.get("/console/rules/new").status_code == 200

    preview = client.post("/console/rules/save", data={**promotion(), "do": "preview", "csrf": csrf(client)})
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200, html
    assert rows(settings, "SELECT count(*) FROM rules") == [(0,)]  # a preview saves nothing
    touched = int(re.search(r'id="touched">([\d,]+)<', html).group(1))
    previewed = int(re.search(r'id="previewed">([\d,]+)<', html).group(1))
    assert previewed == 20 and 0 < touched <= previewed
    assert html.count('class="customer"') == previewed and "Before" in html and "After" in html

    saved = client.post("/console/rules/save", data={**promotion(), "do": "activate", "csrf": csrf(client)})
    assert saved.status_code == 303 and "/console/rules?saved=candles-week" in saved.headers["Location"]
    ((body, status),) = rows(settings, "SELECT body, status FROM rules WHERE name = 'candles-week'")
    rule = json.loads(body)
    assert status == "active" and rule["action"] == {
        "type": "promote",
        "condition": {"categories": ["candles"]},
        "slots": 2,
        "of": 5,
    }
    assert rule["surfaces"] == ["recommendations", "offers"] and rule["schedule"] == {"timezone": "Europe/Paris"}
    listing = client.get("/console/rules").get_data(as_text=True)
    assert "Reserve 2 of the first 5 places for products in candles" in listing
    assert "recommendations, campaign offers" in listing and "running" in listing

    token = csrf(client)
    assert (
        client.post("/console/rules/status/candles-week", data={"status": "paused", "csrf": token}).status_code == 303
    )
    assert rows(settings, "SELECT status FROM rules") == [("paused",)]
    assert (
        client.post("/console/rules/status/candles-week", data={"status": "active", "csrf": token}).status_code == 303
    )
    assert rows(settings, "SELECT status FROM rules") == [("active",)]

    edit = client.get("/console/rules/edit/candles-week").get_data(as_text=True)
    assert 'value="candles"' in edit and 'name="original" value="candles-week"' in edit
    changed = client.post(
        "/console/rules/save",
        data={**promotion(**{"action.slots": "3"}), "original": "candles-week", "do": "activate", "csrf": token},
    )
    assert changed.status_code == 303
    assert json.loads(rows(settings, "SELECT body FROM rules")[0][0])["action"]["slots"] == 3

    assert client.get("/console/rules/delete/candles-week").status_code == 200
    wrong = client.post("/console/rules/delete/candles-week", data={"confirm": "candles", "csrf": token})
    assert wrong.status_code == 422 and rows(settings, "SELECT count(*) FROM rules") == [(1,)]
    assert (
        client.post("/console/rules/delete/candles-week", data={"confirm": "candles-week", "csrf": token}).status_code
        == 303
    )
    assert rows(settings, "SELECT count(*) FROM rules") == [(0,)]
    audit = rows(settings, "SELECT actor, action FROM rule_audit ORDER BY id")
    assert audit == [("console:marketer-person", a) for a in ("create", "pause", "resume", "update", "delete")]


@pytest.mark.parametrize(
    "extra, field, words",
    [
        (
            {"schedule.start": "2026-03-09T09:00", "schedule.end": "2026-03-02T09:00"},
            "schedule-end",
            "the schedule ends before it starts",
        ),
        ({"schedule.timezone": "Mars/Olympus"}, "schedule-timezone", "unknown time zone"),
        (
            {"action.type": "pin", "action.product": "P0001", "action.position": "500"},
            "action-position",
            "beyond the list size",
        ),
        ({"action.type": "pin", "action.product": "NOPE", "action.position": "1"}, "action-product", "unknown product"),
        ({"action.slots": "two"}, "action-slots", "is not a number"),
        ({"action.condition.categories": ""}, "action-condition", "needs a condition"),
        ({"attribute_name": "colour", "attribute_value": "red"}, "action-condition-attribute", "unknown attribute"),
        ({"surfaces": []}, "surfaces", "at least one"),
        ({"name": "../etc"}, "name", "letters, digits"),
    ],
)
def test_bad_fields_are_shown_beside_the_field(console, extra, field, words):
    app, tokens, settings = console
    client = signed_in(app, tokens["marketer"])
    form = promotion(**extra)
    if not form["surfaces"]:
        del form["surfaces"]
    got = client.post("/console/rules/save", data={**form, "do": "activate", "csrf": csrf(client)})
    html = got.get_data(as_text=True)
    assert got.status_code == 422, html
    error = re.search(rf'<span class="field-error" id="error-{field}" role="alert">([^<]*)</span>', html)
    assert error and words in error.group(1), html[html.find("field-error") - 300 : html.find("field-error") + 300]
    assert rows(settings, "SELECT count(*) FROM rules") == [(0,)]
    assert 'value="mia"' in html  # what was typed stays


def test_a_condition_that_matches_nothing_is_previewed_with_a_warning(console):
    app, tokens, _ = console
    client = signed_in(app, tokens["admin"])
    got = client.post(
        "/console/rules/save",
        data={**promotion(**{"action.condition.categories": "nothing-here"}), "do": "preview", "csrf": csrf(client)},
    )
    assert got.status_code == 200 and "matches no product" in got.get_data(as_text=True)


def test_storefront_keys_and_forged_posts_cannot_change_rules(console):
    app, tokens, settings = console
    anonymous = app.test_client()
    assert anonymous.get("/console/rules").status_code == 302
    for role in ("read", "write"):
        client = app.test_client()
        token = TOKEN.search(client.get("/console/sign-in").get_data(as_text=True)).group(1)
        assert client.post("/console/sign-in", data={"csrf": token, "key": tokens[role]}).status_code == 403
        assert client.get("/console/rules").status_code == 302
    client = signed_in(app, tokens["marketer"])
    assert client.post("/console/rules/save", data={**promotion(), "do": "activate"}).status_code == 400
    assert (
        client.post("/console/rules/save", data={**promotion(), "do": "activate", "csrf": "forged"}).status_code == 403
    )
    assert rows(settings, "SELECT count(*) FROM rules") == [(0,)]


def test_the_overview_shows_what_each_rule_earned(console, monkeypatch):
    from recommender import online

    app, tokens, _ = console
    side = {
        "lists": 4,
        "customers": 3,
        "clicks": 2,
        "ctr": 0.5,
        "purchases": 1,
        "conversion": 0.25,
        "revenue": 1234.5,
        "revenue_per_list": 308.625,
    }
    report = {
        "since": None,
        "window_hours": 24,
        "arms": [
            {
                "arm": "model",
                "surface": "recommendations",
                "model_version": "v",
                "lists": 10,
                "customers": 5,
                "clicks": 3,
                "ctr": 0.3,
                "add_to_cart": 0,
                "add_to_cart_rate": 0,
                "purchases": 1,
                "conversion": 0.1,
                "revenue": 5.0,
                "revenue_per_list": 0.5,
            }
        ],
        "uplift": [],
        "events": {},
        "rules": [
            {
                "rule": "candles-week",
                "arm": "model",
                "surface": "recommendations",
                "placed": 3,
                "moved": 1,
                "removed": 0,
                "touched": side,
                "untouched": {**side, "lists": 6},
            }
        ],
    }
    monkeypatch.setattr(online, "report", lambda *a, **k: report)
    html = signed_in(app, tokens["marketer"]).get("/console/").get_data(as_text=True)
    card = html[html.index('id="rule-report"') :]
    assert "What rules earned" in card and 'data-rule="candles-week"' in card
    assert "1,234.50 / 1,234.50" in card and "308.62 / 308.62" in card
