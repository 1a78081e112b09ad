"""The console through Flask's test client: sign-in, CSRF, roles, sign-out, every page, the marketer role.

Expected values come from the database read with plain SQL and from hand-written
tables (which role may do what), never from the console's own helpers.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import stat

import pytest

from api import create_app
from recommender import store
from recommender.serving import keys
from recommender.store.schema import MIGRATIONS

TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def console(served):
    """The app on a private copy of the trained demo shop, with one key of each role."""
    db = store.connect(served.db)
    tokens = {role: keys.create(db, role, f"{role}-person")[1] for role in ("read", "write", "admin", "marketer")}
    db.conn.close()
    app = create_app(served)
    return app, tokens, served


def csrf_of(client, path="/console/sign-in") -> str:
    return TOKEN.search(client.get(path).get_data(as_text=True)).group(1)


def signed_in(app, token: str):
    client = app.test_client()
    response = client.post("/console/sign-in", data={"csrf": csrf_of(client), "key": token})
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def fresh_csrf(client) -> str:
    return csrf_of(client, "/console/campaigns")


def count(settings, sql: str, *args) -> int:
    with sqlite3.connect(settings.db) as conn:
        return conn.execute(sql, args).fetchone()[0]


def some_customer(settings) -> str:
    with sqlite3.connect(settings.db) as conn:
        return conn.execute("SELECT id FROM customers ORDER BY id LIMIT 1").fetchone()[0]


PAGES = [
    "/console/",
    "/console/campaigns",
    "/console/customer",
    "/console/customer?id=C0002",
    "/console/models",
    "/console/campaigns/ledger",
    "/console/campaigns/ledger?q=C0002",
]


def test_every_page_answers_200_for_admin_and_redirects_without_a_session(console):
    app, tokens, _ = console
    anonymous = app.test_client()
    for path in PAGES:
        response = anonymous.get(path)
        assert response.status_code == 302 and "/console/sign-in" in response.headers["Location"], path
    client = signed_in(app, tokens["admin"])
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Content-Type"].startswith("text/html")
        assert response.headers["Cache-Control"] == "no-store"
        assert "<strong>admin-person</strong>" in response.get_data(as_text=True)


def test_sign_in_refuses_unknown_and_storefront_keys(console):
    app, tokens, _ = console
    client = app.test_client()
    for key, status in (("rk_not-a-key", 401), (tokens["read"], 403), (tokens["write"], 403), ("", 400)):
        response = client.post("/console/sign-in", data={"csrf": csrf_of(client), "key": key})
        assert response.status_code == status, key
        assert client.get("/console/").status_code == 302  # still not signed in


def test_sign_in_goes_back_only_to_console_pages(console):
    app, tokens, _ = console
    for target, expected in (
        ("/console/models", "/console/models"),
        ("https://evil.example/", "/console/"),
        ("//evil.example/console", "/console/"),
    ):
        client = app.test_client()
        response = client.post(
            "/console/sign-in", data={"csrf": csrf_of(client), "key": tokens["admin"], "next": target}
        )
        assert response.status_code == 303 and response.headers["Location"] == expected


def test_posts_without_the_csrf_token_are_refused(console):
    app, tokens, settings = console
    client = app.test_client()
    assert client.post("/console/sign-in", data={"key": tokens["admin"]}).status_code == 400
    client = signed_in(app, tokens["admin"])
    form = {"occasion": "all", "days_ahead": "7"}
    assert client.post("/console/campaigns/preview", data=form).status_code == 400
    assert client.post("/console/campaigns/preview", data={**form, "csrf": "forged"}).status_code == 403
    victim = some_customer(settings)
    assert client.post(f"/console/customer/{victim}/erase", data={"confirm": victim}).status_code == 400
    assert (
        client.post(f"/console/customer/{victim}/erase", data={"confirm": victim, "csrf": "x" * 43}).status_code == 403
    )
    assert count(settings, "SELECT count(*) FROM customers WHERE id = ?", victim) == 1
    # a token from another session is not this session's token
    other = signed_in(app, tokens["admin"])
    assert client.post("/console/campaigns/preview", data={**form, "csrf": fresh_csrf(other)}).status_code == 403
    assert client.post("/console/campaigns/preview", data={**form, "csrf": fresh_csrf(client)}).status_code == 200


def test_the_token_changes_at_sign_in(console):
    app, tokens, _ = console
    client = app.test_client()
    before = csrf_of(client)
    client.post("/console/sign-in", data={"csrf": before, "key": tokens["admin"]})
    after = fresh_csrf(client)
    assert before != after
    response = client.post("/console/campaigns/preview", data={"occasion": "all", "days_ahead": "7", "csrf": before})
    assert response.status_code == 403


def test_sign_out_ends_the_session_and_a_copied_cookie(console):
    app, tokens, _ = console
    client = signed_in(app, tokens["admin"])
    cookie = client.get_cookie("recommender_console", path="/console")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("recommender_console", cookie.value, path="/console")
    assert thief.get("/console/models").status_code == 200
    response = client.post("/console/sign-out", data={"csrf": fresh_csrf(client)})
    assert response.status_code == 303
    assert client.get("/console/models").status_code == 302
    assert thief.get("/console/models").status_code == 302  # the copy died with the sign-out
    assert signed_in(app, tokens["admin"]).get("/console/models").status_code == 200  # signing in again works


def test_a_revoked_key_ends_its_sessions_on_the_next_request(console):
    app, tokens, settings = console
    client = signed_in(app, tokens["marketer"])
    assert client.get("/console/").status_code == 200
    db = store.connect(settings.db)
    keys.revoke(db, keys.lookup(db, tokens["marketer"])["id"])
    db.conn.close()
    assert client.get("/console/").status_code == 302


def test_cookie_flags_and_the_secret_outside_the_database(console):
    app, tokens, settings = console
    client = app.test_client()
    csrf_of(client)
    response = client.post("/console/sign-in", data={"csrf": csrf_of(client), "key": tokens["admin"]})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie
    secure = app.test_client()
    page = secure.get("/console/sign-in", base_url="https://localhost").get_data(as_text=True)
    answer = secure.post(
        "/console/sign-in",
        base_url="https://localhost",
        data={"csrf": TOKEN.search(page).group(1), "key": tokens["admin"]},
    )
    assert "Secure" in answer.headers["Set-Cookie"]
    secret = settings.privacy.key_file.parent / (settings.privacy.key_file.name + ".console-secret")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.read_bytes() not in settings.db.read_bytes()
    # the API ignores the cookie: it stays bearer-only
    api = client.get("/v1/admin/campaigns/preview")
    assert api.status_code in (401, 405)


def test_open_mode_does_not_open_the_console(served):
    served.serve.open = True
    client = create_app(served).test_client()
    assert client.get("/console/").status_code == 302
    assert client.get("/v1/products/popular").status_code == 200  # the API is open from this machine


# --- roles ----------------------------------------------------------------------------

# Hand-written: what each role may do (the wording, not the code's table).
MAY = {
    ("read", "read"): True,
    ("read", "write"): False,
    ("read", "admin"): False,
    ("read", "marketer"): False,
    ("write", "read"): True,
    ("write", "write"): True,
    ("write", "admin"): False,
    ("write", "marketer"): False,
    ("admin", "read"): True,
    ("admin", "write"): True,
    ("admin", "admin"): True,
    ("admin", "marketer"): True,
    ("marketer", "read"): True,
    ("marketer", "write"): False,
    ("marketer", "admin"): False,
    ("marketer", "marketer"): True,
}


def test_roles_allow_what_the_table_says():
    for (role, needed), expected in MAY.items():
        assert keys.allows(role, needed) is expected, (role, needed)
    assert not keys.allows(None, "read") and not keys.allows("root", "read")


def test_marketer_previews_and_runs_a_campaign_but_cannot_erase_export_or_roll_back(console):
    app, tokens, settings = console
    client = signed_in(app, tokens["marketer"])
    today = dt.datetime.now(dt.UTC).date().isoformat()
    form = {"occasion": "all", "date": today, "days_ahead": "30"}
    preview = client.post("/console/campaigns/preview", data={**form, "csrf": fresh_csrf(client)})
    assert preview.status_code == 200
    shown = int(re.search(r'id="eligible">([\d,]+)<', preview.get_data(as_text=True)).group(1).replace(",", ""))
    assert count(settings, "SELECT count(*) FROM offers") == 0  # a preview writes nothing
    refused = client.post("/console/campaigns/run", data={**form, "csrf": fresh_csrf(client)})
    assert refused.status_code == 422 and "confirm" in refused.get_data(as_text=True)
    assert count(settings, "SELECT count(*) FROM offers") == 0
    ran = client.post("/console/campaigns/run", data={**form, "confirm": "yes", "csrf": fresh_csrf(client)})
    assert ran.status_code == 303
    made = count(settings, "SELECT count(*) FROM offers")
    assert made == shown > 0
    result = client.get(ran.headers["Location"])
    assert result.status_code == 200
    name = re.search(r'/console/campaigns/exports/([^"]+)"', result.get_data(as_text=True)).group(1)
    download = client.get(f"/console/campaigns/exports/{name}")
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    lines = download.get_data(as_text=True).strip().splitlines()
    assert len(lines) == made + 1 and lines[0].startswith("customer_id,")
    codes = {line.split(",")[5] for line in lines[1:]}
    with sqlite3.connect(settings.db) as conn:
        assert codes == {c for (c,) in conn.execute("SELECT code FROM offers")}

    victim = some_customer(settings)
    erase = client.post(f"/console/customer/{victim}/erase", data={"confirm": victim, "csrf": fresh_csrf(client)})
    assert erase.status_code == 403 and "admin" in erase.get_data(as_text=True)
    assert count(settings, "SELECT count(*) FROM customers WHERE id = ?", victim) == 1
    assert client.get(f"/console/customer/{victim}/export.json").status_code == 403
    with sqlite3.connect(settings.db) as conn:
        version = conn.execute("SELECT version FROM models LIMIT 1").fetchone()[0]
    assert (
        client.post(
            "/console/models/rollback", data={"version": version, "confirm": "yes", "csrf": fresh_csrf(client)}
        ).status_code
        == 403
    )
    assert client.get(f"/console/customer?id={victim}").status_code == 200  # reading the page is allowed


def test_admin_exports_and_erases_with_a_typed_confirmation(console):
    app, tokens, settings = console
    client = signed_in(app, tokens["admin"])
    victim = some_customer(settings)
    export = client.get(f"/console/customer/{victim}/export.json")
    assert export.status_code == 200 and "attachment" in export.headers["Content-Disposition"]
    body = json.loads(export.get_data(as_text=True))
    assert body["profile"]["id"] == victim
    assert len(body["interactions"]) == count(
        settings, "SELECT count(*) FROM interactions WHERE customer_id = ?", victim
    )
    wrong = client.post(
        f"/console/customer/{victim}/erase", data={"confirm": victim.lower() + "?", "csrf": fresh_csrf(client)}
    )
    assert wrong.status_code == 422 and "confirm" in wrong.get_data(as_text=True)
    assert count(settings, "SELECT count(*) FROM customers WHERE id = ?", victim) == 1
    done = client.post(f"/console/customer/{victim}/erase", data={"confirm": victim, "csrf": fresh_csrf(client)})
    assert done.status_code == 200 and "Customer erased" in done.get_data(as_text=True)
    assert count(settings, "SELECT count(*) FROM customers WHERE id = ?", victim) == 0
    assert count(settings, "SELECT count(*) FROM interactions WHERE customer_id = ?", victim) == 0
    page = client.get(f"/console/customer?id={victim}")
    assert page.status_code == 404 and "erased on" in page.get_data(as_text=True)


def test_bad_form_values_are_named_pages_not_tracebacks(console):
    app, tokens, _ = console
    client = signed_in(app, tokens["admin"])
    for field, value in (
        ("days_ahead", "soon"),
        ("days_ahead", "999"),
        ("date", "2026-02-30"),
        ("items", "0"),
        ("occasion", "wedding"),
        ("max_per_product", "-1"),
    ):
        form = {"occasion": "all", "days_ahead": "7", field: value, "csrf": fresh_csrf(client)}
        response = client.post("/console/campaigns/preview", data=form)
        assert response.status_code == 422, (field, value)
        text = response.get_data(as_text=True)
        assert field in text and "Traceback" not in text and response.headers["Content-Type"].startswith("text/html")


def test_exports_are_served_only_from_their_folder(console):
    app, tokens, _ = console
    client = signed_in(app, tokens["admin"])
    for name in ("..%2Fshop.db", "shop.db", "20261201-all-00000000.csv", "%2Fetc%2Fpasswd"):
        assert client.get(f"/console/campaigns/exports/{name}").status_code == 404, name


def test_ledger_finds_offers_by_customer_code_prefix_and_campaign(console):
    app, tokens, settings = console
    client = signed_in(app, tokens["admin"])
    today = dt.datetime.now(dt.UTC).date().isoformat()
    client.post(
        "/console/campaigns/run",
        data={"occasion": "all", "date": today, "days_ahead": "30", "confirm": "yes", "csrf": fresh_csrf(client)},
    )
    with sqlite3.connect(settings.db) as conn:
        customer, code, campaign = conn.execute("SELECT customer_id, code, campaign_id FROM offers LIMIT 1").fetchone()
        total = conn.execute("SELECT count(*) FROM offers").fetchone()[0]
        of_customer = conn.execute("SELECT count(*) FROM offers WHERE customer_id = ?", [customer]).fetchone()[0]

    def rows(q):
        return client.get("/console/campaigns/ledger", query_string={"q": q}).get_data(as_text=True).count("<tr><td>")

    assert rows(customer) == of_customer
    assert rows(code) == 1 and rows(code[:14].lower()) == 1
    assert rows(campaign) == min(total, 100)
    assert rows("NOPE-") == 0 and rows("%") == 0


def test_marketer_keys_through_the_cli_and_the_api(console, runner):
    app, tokens, settings = console
    from recommender.cli import cli

    made = runner.invoke(
        cli, ["keys", "create", "--role", "marketer", "--name", "mia", "--json", "--db", str(settings.db)]
    )
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["role"] == "marketer"
    listed = runner.invoke(cli, ["keys", "list", "--db", str(settings.db)])
    assert "marketer" in listed.output and "mia" in listed.output
    api = app.test_client()
    bearer = {"Authorization": f"Bearer {tokens['marketer']}"}
    preview = api.post(
        "/v1/admin/campaigns/preview", headers=bearer, json={"occasion": "all", "date": "2026-06-01", "days_ahead": 7}
    )
    assert preview.status_code == 200
    victim = some_customer(settings)
    assert api.delete(f"/v1/customers/{victim}", headers=bearer).status_code == 403
    assert api.get(f"/v1/customers/{victim}/export", headers=bearer).status_code == 403
    assert (
        api.post(
            "/v1/events", headers=bearer, json={"customer_id": victim, "product_id": "P0001", "event_type": "view"}
        ).status_code
        == 403
    )


def test_the_marketer_migration_keeps_existing_keys(tmp_path):
    """A database made before the role existed: keys survive the table rebuild, and marketer is accepted after."""
    step = next(i for i, m in enumerate(MIGRATIONS) if any("api_keys_marketer" in s for s in m))
    db = store.connect(tmp_path / "old.db", create=True, migrate=False)
    store.migrate_schema(db, target_version=step)
    _, old_token = keys.create(db, "admin", "before")
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_api_key(db, "too-early", "0" * 64, "marketer")
    store.migrate_schema(db)
    assert keys.lookup(db, old_token)["name"] == "before"
    key_id, token = keys.create(db, "marketer", "after")
    assert keys.lookup(db, token) == {"id": key_id, "name": "after", "role": "marketer"}


def test_overview_shows_the_online_report_per_arm(console, monkeypatch):
    """With recommender.online present, its report (here a hand-made one in its documented shape) is shown."""
    import sys
    import types

    import recommender

    report = {
        "since": "2026-11-01T00:00:00Z",
        "window_hours": 24,
        "arms": [
            {
                "arm": "model",
                "surface": "recommendations",
                "model_version": "v1",
                "lists": 1200,
                "customers": 300,
                "clicks": 96,
                "ctr": 0.08,
                "add_to_cart": 30,
                "purchases": 18,
                "conversion": 0.015,
                "revenue": 412.5,
            },
            {
                "arm": "control",
                "surface": "recommendations",
                "model_version": None,
                "lists": 400,
                "customers": 100,
                "clicks": 20,
                "ctr": 0.05,
                "add_to_cart": 6,
                "purchases": 4,
                "conversion": 0.01,
                "revenue": 80.0,
            },
        ],
        "uplift": [
            {
                "surface": "recommendations",
                "metric": "ctr",
                "treatment": 0.08,
                "control": 0.05,
                "difference": 0.03,
                "relative": 0.6,
                "ci95": [0.004, 0.056],
                "n_treatment": 1200,
                "n_control": 400,
            }
        ],
    }
    fake = types.ModuleType("recommender.online")
    fake.report = lambda db, settings, since=None: json.loads(json.dumps(report))
    monkeypatch.setitem(sys.modules, "recommender.online", fake)
    monkeypatch.setattr(recommender, "online", fake, raising=False)
    app, tokens, _ = console
    page = signed_in(app, tokens["marketer"]).get("/console/").get_data(as_text=True)
    assert "No online measurement yet" not in page
    for text in (
        "8.00 %",
        "5.00 %",
        "412.50",
        "1,200",
        "+60.0 %",
        "+0.40 to +5.60 pt: above zero",
        "1,200 / 400",
        "+3.00 pt",
        "lists that were clicked",
        "what we compare against",
    ):
        assert text in page, text
    assert page.count("<svg") >= 2  # the events chart and the uplift chart

    fake.report = lambda db, settings, since=None: 1 / 0
    page = signed_in(app, tokens["marketer"]).get("/console/")
    assert page.status_code == 200 and "the online report failed" in page.get_data(as_text=True)


def test_overview_says_when_there_is_no_online_measurement(console, monkeypatch):
    """Nothing served yet (the demo shop's decision log is empty): the overview says so, and says why when the
    decision log is off; once the log holds one served list (written here with plain SQL) the arms' table shows it."""
    app, tokens, served = console
    client = signed_in(app, tokens["admin"])
    nothing = "No online measurement yet: the decision log holds no served list"
    off = "The decision log is off (<code>privacy.decision_log</code>)"
    arms_table = '<table id="arms">'
    assert count(served, "SELECT count(*) FROM decisions") == 0

    page = client.get("/console/").get_data(as_text=True)
    assert nothing in page and off not in page and arms_table not in page

    monkeypatch.setattr(served.privacy, "decision_log", False)
    page = client.get("/console/").get_data(as_text=True)
    assert nothing in page and off in page and arms_table not in page
    monkeypatch.undo()

    customer = some_customer(served)
    with sqlite3.connect(served.db) as conn:
        conn.execute(
            "INSERT INTO decisions (customer_id, created_at, endpoint, model_version, mode, reason, "
            "product_ids, list_id, arm) VALUES (?, ?, 'recommendations', 'v-hand', 'personalized', NULL, "
            "'[\"P0001\", \"P0002\"]', 'L-hand-written', 'model')",
            [customer, dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")],
        )
    page = client.get("/console/").get_data(as_text=True)
    assert "No online measurement yet" not in page and arms_table in page
    row = re.search(
        r'<tr><th scope="row">customers who get the model&#39;s picks</th><td>recommendations</td>\s*'
        r'<td class="num">([\d,]+)</td><td class="num">([\d,]+)</td>',
        page,
    )
    assert "<code>v-hand</code>" in page  # the version is under "Technical details"
    assert row and row.groups() == ("1", "1"), page[page.index('id="h-online"') :][:2000]  # 1 list, 1 customer
