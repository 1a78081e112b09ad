"""Where customer value shows, and that it follows consent: the stored table, the API, the CLI, the CSV, the console.

The shop is made by hand so that every segment and share below is computed by hand:
six consenting buyers whose recency and purchase days are those of
``test_value.test_segments_of_a_hand_made_shop`` (with the most recent at 0 days),
one buyer without personalization consent and one consenting customer who never bought.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re

import pytest

from recommender import privacy, store
from recommender.serving import keys
from recommender.store.rows import ConsentDecision, CustomerRow, EventRow, ProductRow
from recommender.value import refresh, stored
from recommender.value.transactions import day_number

LAST = day_number("2025-06-30")
# id: (days since the last purchase, purchase days); C's id starts a spreadsheet formula on purpose
SHOP = {"A": (0, 10), "B": (10, 1), "=C": (50, 5), "D": (100, 8), "E": (300, 1), "F": (200, 9)}
# R (recency, 5 = most recent) and F (purchase days) quintiles by hand, ceil(5 x average rank / 6):
#   R: A 5, B 5, =C 4, D 3, F 2, E 1;  F: B/E tie at rank 1.5 -> 2, =C 3, D 4, F 5, A 5
SEGMENTS = {"A": "champions", "B": "promising", "=C": "promising", "D": "loyal", "E": "lost", "F": "at risk"}
PRICE = 10.0  # one unit per purchase day: spend so far = 10 x purchase days
REVENUE = {c: PRICE * n for c, (_, n) in SHOP.items()}  # A 100, B 10, =C 50, D 80, E 10, F 90: 340 in all
JAN, FEB = dt.datetime(2026, 1, 15, 3, tzinfo=dt.UTC), dt.datetime(2026, 2, 10, 3, tzinfo=dt.UTC)


def make_shop(db) -> None:
    store.upsert_products(db, [ProductRow("p1", "Mug", price=PRICE)])
    ids = [*SHOP, "G", "H"]
    store.upsert_customers(db, [CustomerRow(c, created_at="2024-01-01T00:00:00Z") for c in ids])
    events = []
    for c, (recency, n) in {**SHOP, "G": (5, 3)}.items():
        for k in range(n):
            events.append(EventRow(c, "p1", "purchase", 1.0, (LAST - recency - 7 * k) * 86400 + 3600))
    store.upsert_interactions(db, events)
    store.apply_consents(
        db, [ConsentDecision(c, "personalization", c != "G", "2024-01-01T00:00:00Z", "test") for c in ids]
    )


@pytest.fixture
def shop(db, settings):
    make_shop(db)
    refresh.refresh(db, settings, now=JAN)
    return db


def stored_ids(db) -> set[str]:
    return {r[0] for r in db.execute("SELECT customer_id FROM customer_values")}


def csv_ids(path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [r["customer_id"] for r in csv.DictReader(fh)]


# --- the stored table ---------------------------------------------------------------------------------------------


def test_refresh_stores_every_profiled_buyer_with_the_hand_computed_segment(shop, settings):
    rows = {r["customer_id"]: r for r in shop.query("SELECT * FROM customer_values")}
    assert {c: r["segment"] for c, r in rows.items()} == SEGMENTS  # G (no consent) and H (no purchase): no row
    assert {c: r["purchase_days"] for c, r in rows.items()} == {c: n for c, (_, n) in SHOP.items()}
    assert {c: r["recency_days"] for c, r in rows.items()} == {c: r for c, (r, _) in SHOP.items()}
    assert {c: r["spend_to_date"] for c, r in rows.items()} == REVENUE
    for r in rows.values():
        assert set(json.loads(r["spend"])) == {"90", "180", "365"} and 0 <= r["p_active"] <= 1
    run = store.latest_value_run(shop)
    assert run["as_of"] == "2025-06-30" and run["computed_at"] == "2026-01-15T03:00:00Z"
    assert run["summary"]["profiled"] == 6 and run["summary"]["not_profiled"] == 1
    # replaced whole, not appended: a second refresh keeps one run and one row per customer
    refresh.refresh(shop, settings, now=JAN)
    assert shop.execute("SELECT count(*) FROM value_runs").fetchone()[0] == 1 and len(stored_ids(shop)) == 6
    # the monthly snapshot holds aggregates only: no customer id anywhere in it
    snapshot = json.dumps(store.value_snapshots(shop))
    assert not any(re.search(rf'"{re.escape(c)}"', snapshot) for c in [*SHOP, "G", "H"])


def test_a_withdrawal_during_the_fit_is_not_undone_by_the_write(shop, settings, monkeypatch):
    from recommender.value import model

    real = model.score

    def score_then_withdraw(tx, conf, as_of=None):
        scores = real(tx, conf, as_of)
        store.apply_consents(shop, [ConsentDecision("D", "personalization", False, "2025-12-01T00:00:00Z", "t")])
        return scores

    monkeypatch.setattr(model, "score", score_then_withdraw)
    done = refresh.refresh(shop, settings, now=JAN)
    assert done["stored"] == 5 and done["left_out_since_read"] == 1 and "D" not in stored_ids(shop)


# --- privacy: a withdrawn or erased customer has no score anywhere -------------------------------------------------


@pytest.fixture
def keyed_app(shop, settings):
    from api import create_app

    settings.serve.open = False
    tokens = {role: keys.create(shop, role, f"{role}-key")[1] for role in ("read", "write", "marketer", "admin")}
    return create_app(settings), tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def console_client(app, token: str):
    client = app.test_client()
    page = client.get("/console/sign-in").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/console/sign-in", data={"csrf": csrf, "key": token}).status_code == 303
    return client


UNSCORED = {
    "profiled": False,
    "segment": None,
    "segment_rule": None,
    "p_active": None,
    "expected": [],
    "recency_days": None,
    "purchase_days": None,
    "spend_to_date": None,
    "as_of": None,
    "computed_at": None,
    "estimator": None,
    "purpose": "personalization",
}


def test_a_withdrawal_removes_the_score_from_the_table_api_export_file_and_console(shop, settings, keyed_app, tmp_path):
    app, tokens = keyed_app
    api = app.test_client()
    out = tmp_path / "values.csv"
    stored.export_csv(shop, settings, out)
    assert sorted(csv_ids(out)) == sorted(["A", "B", "'=C", "D", "E", "F"])  # the formula id is neutralised
    before = api.get("/v1/customers/F/value", headers=bearer(tokens["marketer"])).get_json()
    assert before["profiled"] is True and before["segment"] == "at risk" and before["purchase_days"] == 9

    # F withdraws personalization through the API's consent door
    changed = api.put(
        "/v1/customers/F/consents",
        headers=bearer(tokens["admin"]),
        json={"consents": {"personalization": False}, "source": "preference_centre"},
    )
    assert changed.status_code == 200, changed.get_json()
    assert stored_ids(shop) == {"A", "B", "=C", "D", "E"}  # the table
    answer = api.get("/v1/customers/F/value", headers=bearer(tokens["marketer"])).get_json()
    assert answer == {**UNSCORED, "customer_id": "F", "reason": "no_consent"}  # the API
    assert sorted(csv_ids(out)) == sorted(["A", "B", "'=C", "D", "E"])  # the registered export file
    page = console_client(app, tokens["marketer"]).get("/console/customer?id=F").get_data(as_text=True)
    assert "not profiled: no personalization consent" in page and "at risk" not in page  # the console
    assert privacy.export(shop, settings, "F")["value"] is None  # export-customer
    # a new export leaves them out, and the next refresh does not bring them back
    again = tmp_path / "again.csv"
    stored.export_csv(shop, settings, again)
    assert "F" not in csv_ids(again)
    refresh.refresh(shop, settings, now=JAN)
    assert "F" not in stored_ids(shop)


def test_an_erasure_removes_the_score_from_the_table_api_export_file_and_console(shop, settings, keyed_app, tmp_path):
    app, tokens = keyed_app
    out = tmp_path / "values.csv"
    stored.export_csv(shop, settings, out)
    result = privacy.forget(shop, settings, "=C")
    assert result["deleted_rows"]["customer_values"] == 1
    assert stored_ids(shop) == {"A", "B", "D", "E", "F"}
    assert sorted(csv_ids(out)) == sorted(["A", "B", "D", "E", "F"])  # the neutralised '=C row too
    api = app.test_client()
    assert api.get("/v1/customers/=C/value", headers=bearer(tokens["admin"])).status_code == 404
    client = console_client(app, tokens["admin"])
    assert client.get("/console/customer?id=%3DC").status_code == 404
    assert "=C" not in client.get("/console/value/export.csv").get_data(as_text=True)


def test_consent_by_the_cli_and_re_granting_do_not_bring_a_score_back_before_the_refresh(shop, settings, runner):
    from recommender.cli import cli

    assert runner.invoke(cli, ["consent", "set", "A", "personalization", "withdrawn"]).exit_code == 0
    assert "A" not in stored_ids(shop)
    assert runner.invoke(cli, ["consent", "set", "A", "personalization", "granted"]).exit_code == 0
    assert stored.customer_value(shop, settings, "A")["reason"] == "not_scored"
    refresh.refresh(shop, settings, now=JAN)
    assert stored.customer_value(shop, settings, "A")["segment"] == "champions"


# --- the API ------------------------------------------------------------------------------------------------------


def test_the_value_endpoint_is_for_marketer_and_admin_keys_only(shop, keyed_app):
    app, tokens = keyed_app
    api = app.test_client()
    assert api.get("/v1/customers/A/value").status_code == 401
    for role in ("read", "write"):
        assert api.get("/v1/customers/A/value", headers=bearer(tokens[role])).status_code == 403, role
    for role in ("marketer", "admin"):
        body = api.get("/v1/customers/A/value", headers=bearer(tokens[role])).get_json()
        assert body["profiled"] is True and body["segment"] == "champions" and body["spend_to_date"] == 100.0
        assert [e["days"] for e in body["expected"]] == [90, 180, 365]
    m = bearer(tokens["marketer"])
    assert api.get("/v1/customers/nobody/value", headers=m).status_code == 404
    assert api.get("/v1/customers/G/value", headers=m).get_json() == {
        **UNSCORED,
        "customer_id": "G",
        "reason": "no_consent",
    }
    assert api.get("/v1/customers/H/value", headers=m).get_json() == {
        **UNSCORED,
        "customer_id": "H",
        "reason": "not_scored",
    }


def test_campaign_previews_filter_on_stored_segments(shop, keyed_app):
    app, tokens = keyed_app
    born = ["A", "B", "D", "G"]  # champions, promising, loyal, and G: no personalization consent, no segment
    store.upsert_customers(
        shop, [CustomerRow(c, birth_date="1990-03-05", created_at="2024-01-01T00:00:00Z") for c in born]
    )
    store.apply_consents(shop, [ConsentDecision(c, "marketing", True, "2024-01-01T00:00:00Z", "t") for c in born])
    store.upsert_products(shop, [ProductRow(f"q{i}", f"Gift {i}", price=20.0, in_stock=100) for i in range(4)])
    api = app.test_client()

    def preview(segments=None):
        body = {"occasion": "birthday", "date": "2026-03-01", "days_ahead": 7}
        if segments is not None:
            body["segments"] = segments
        answer = api.post("/v1/admin/campaigns/preview", headers=bearer(tokens["marketer"]), json=body)
        assert answer.status_code == 200, answer.get_json()
        payload = answer.get_json()
        return sorted(o["customer_id"] for o in payload["offers"]), payload["summary"]["skipped_by_occasion"]

    assert preview()[0] == ["A", "B", "D", "G"]
    offered, skipped = preview(["champions"])
    assert offered == ["A"] and skipped["birthday"]["not_in_segment"] == 3
    assert preview(["promising", "loyal"])[0] == ["B", "D"]
    assert preview(["lost"])[0] == []
    bad = api.post(
        "/v1/admin/campaigns/preview",
        headers=bearer(tokens["marketer"]),
        json={"occasion": "birthday", "date": "2026-03-01", "days_ahead": 7, "segments": ["vip"]},
    )
    assert bad.status_code == 422


# --- the CLI ------------------------------------------------------------------------------------------------------


def test_segments_report_and_movement_since_last_month_by_hand(shop, settings, runner):
    from recommender.cli import cli

    first = json.loads(runner.invoke(cli, ["segments", "--json"]).output)
    by = {r["segment"]: r for r in first["segments"]}
    assert first["profiled"] == 6 and first["not_profiled"] == 1 and first["previous_month"] is None
    assert {s: r["customers"] for s, r in by.items() if r["customers"]} == {
        "champions": 1,
        "promising": 2,
        "loyal": 1,
        "at risk": 1,
        "lost": 1,
    }
    assert by["promising"]["revenue_share"] == pytest.approx(60 / 340)  # B 10 + =C 50 of 340
    assert by["at risk"]["revenue_share"] == pytest.approx(90 / 340)
    assert by["champions"]["customer_share"] == pytest.approx(1 / 6)
    # in February F has withdrawn: five customers, ranks of five (R: A 5, B 4, =C 3, D 2, E 1;
    # F: B/E tie at 1.5 -> 2, =C 3, D 4, A 5), so =C is "needs attention" and D "at risk"
    store.apply_consents(shop, [ConsentDecision("F", "personalization", False, "2026-02-01T00:00:00Z", "t")])
    refresh.refresh(shop, settings, now=FEB)
    second = json.loads(runner.invoke(cli, ["segments", "--json"]).output)
    moved = {r["segment"]: (r["customers"], r["customers_change"]) for r in second["segments"]}
    assert second["previous_month"] == "2026-01" and second["profiled_change"] == -1
    assert moved == {
        "champions": (1, 0),
        "loyal": (0, -1),
        "promising": (1, -1),
        "new": (0, 0),
        "needs attention": (1, 1),
        "at risk": (1, 0),
        "can't lose": (0, 0),
        "hibernating": (0, 0),
        "lost": (1, 0),
    }
    champions = next(r for r in second["segments"] if r["segment"] == "champions")
    assert champions["revenue_share_change"] == pytest.approx(100 / 250 - 100 / 340)
    human = runner.invoke(cli, ["segments"]).output
    assert "since 2026-01" in human and "needs attention" in human and "+1 customers" in human


def test_value_command_refreshes_and_exports_a_neutralised_csv(shop, settings, runner, tmp_path):
    from recommender.cli import cli

    done = runner.invoke(cli, ["value", "--json"])
    assert done.exit_code == 0, done.output
    payload = json.loads(done.output)
    assert payload["stored"] == 6 and payload["not_profiled"] == 1 and payload["as_of"] == "2025-06-30"
    human = runner.invoke(cli, ["value"]).output
    assert "6 customers scored as of 2025-06-30, 1 not profiled" in human and "champions" in human
    out = tmp_path / "v.csv"
    written = runner.invoke(cli, ["value", "export", str(out), "--json"])
    assert written.exit_code == 0, written.output
    assert json.loads(written.output)["rows"] == 6
    with open(out, newline="", encoding="utf-8") as fh:
        rows = {r["customer_id"]: r for r in csv.DictReader(fh)}
    assert {c: r["segment"] for c, r in rows.items()} == {
        ("'" + c if c.startswith("=") else c): s for c, s in SEGMENTS.items()
    }
    assert float(rows["A"]["spend_to_date"]) == 100.0 and rows["A"]["as_of"] == "2025-06-30"
    assert [r["kind"] for r in store.registered_copies(shop)] == ["value_export"]
    again = runner.invoke(cli, ["value", "export", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output
    assert runner.invoke(cli, ["value", "export", str(tmp_path / "v.txt")]).exit_code == 1


def test_export_customer_includes_value_and_segment(shop, runner):
    from recommender.cli import cli

    body = json.loads(runner.invoke(cli, ["export-customer", "D"]).output)
    assert body["value"]["segment"] == "loyal" and body["value"]["purchase_days"] == 8
    assert body["value"]["spend_to_date"] == 80.0 and set(body["value"]["spend"]) == {"90", "180", "365"}
    assert json.loads(runner.invoke(cli, ["export-customer", "G"]).output)["value"] is None


# --- the console ----------------------------------------------------------------------------------------------------


def test_console_pages_show_value_in_words_for_marketers(shop, settings, keyed_app):
    app, tokens = keyed_app
    client = console_client(app, tokens["marketer"])
    page = client.get("/console/customer?id=F").get_data(as_text=True)
    # F: 9 purchase days, the last 200 days before 30 Jun 2025 (~7 months)
    assert (
        "segment: at risk — bought fairly often, but not for a while: bought 9 times, the last 7 months "
        "before 30 Jun 2025" in page
    )
    assert re.search(
        r"Expected to spend about [0-9.,]+ in the next 6 months; (\d+ %|over 99 %|under 1 %) likely "
        r"still active",
        page,
    )
    assert "Technical details" in page and "Estimator" in page
    value = client.get("/console/value").get_data(as_text=True)
    assert 'id="segments"' in value and "can&#39;t lose" in value and "<svg" in value
    assert "6 customers are expected to spend" in value
    overview = client.get("/console/").get_data(as_text=True)
    assert 'id="segment-panel"' in overview and "Customers by segment" in overview
    download = client.get("/console/value/export.csv")
    assert download.status_code == 200 and download.headers["Cache-Control"] == "no-store"
    assert sorted(csv_ids_text(download.get_data(as_text=True))) == sorted(["A", "B", "'=C", "D", "E", "F"])
    for role in ("read", "write"):
        other = app.test_client()
        page = other.get("/console/sign-in").get_data(as_text=True)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        other.post("/console/sign-in", data={"csrf": csrf, "key": tokens[role]})
        assert other.get("/console/value").status_code in (302, 303, 403), role


def test_the_words_of_a_value():
    assert [stored.chance(p) for p in (0.8, 0.996, 0.004, 0.5)] == ["80 %", "over 99 %", "under 1 %", "50 %"]
    assert [stored.money(x, "£") for x in (119.6, 1250.0, 8.5)] == ["£120", "£1,250", "£8.50"]
    assert [stored.span(d) for d in (1, 12, 21, 122, 800)] == ["1 day", "12 days", "3 weeks", "4 months", "2 years"]
    assert [stored.horizon_words(h) for h in (90, 180, 365, 30)] == ["3 months", "6 months", "12 months", "30 days"]
    value = {
        "segment": "at risk",
        "p_active": 0.8,
        "purchase_days": 7,
        "recency_days": 122,
        "as_of": "2025-06-30",
        "expected": [{"days": 90, "purchases": 1.0, "spend": 60.0}, {"days": 180, "purchases": 2.0, "spend": 119.6}],
    }
    from recommender.config import Settings

    conf = Settings()
    conf.value.currency = "£"
    assert stored.sentence(value, conf) == (
        "Expected to spend about £120 in the next 6 months; 80 % likely still active; segment: at risk — bought "
        "fairly often, but not for a while: bought 7 times, the last 4 months before 30 Jun 2025"
    )


def csv_ids_text(text: str) -> list[str]:
    return [r["customer_id"] for r in csv.DictReader(text.splitlines())]


def test_pages_before_the_first_refresh_say_so(db, settings):
    from api import create_app

    make_shop(db)
    settings.serve.open = False
    token = keys.create(db, "marketer", "m")[1]
    client = console_client(create_app(settings), token)
    assert "has not been computed yet" in client.get("/console/value").get_data(as_text=True)
    assert "has not been computed yet" in client.get("/console/").get_data(as_text=True)
    assert "customer value has not been computed" in client.get("/console/customer?id=A").get_data(as_text=True)
    assert stored.report(db, settings)["computed"] is False
