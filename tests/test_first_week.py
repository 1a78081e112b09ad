"""A shop's first week on the command line: customer exports through --map, and the hints that say what is missing.

Tiny real SQLite files and the real CLI (CliRunner). Expected values are written by hand
from the files each test writes, and read back from the database with plain SQL.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time

import pytest
from conftest import write_csv

from recommender.cli import cli

SHOPIFY_HEADER = (
    "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address City,Total Spent,Birthday"
)
CUSTOMERS_LINE = "recommender import customers --map shopify customers.csv"


def rows(settings, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(settings.db) as conn:
        return conn.execute(sql, args).fetchall()


def orders(tmp_path, *ids: str):
    """An Online Retail order export: one line per customer id, products A1/B2."""
    lines = [
        f"{1000 + n},{'A1' if n % 2 else 'B2'},THING {n},1,2011-01-0{n + 1} 10:00:00,2.5,{cid},UK"
        for n, cid in enumerate(ids)
    ]
    return write_csv(
        tmp_path / "orders.csv",
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
        *lines,
    )


def shopify_customers(tmp_path, name="customers.csv"):
    return write_csv(
        tmp_path / name,
        SHOPIFY_HEADER,
        "101,Ann,Lee,ann@example.com,yes,Leeds,12.50,1990-05-12",
        "102,Bob,Marr,bob@example.com,no,York,0.00,",
        "103,Cy,,cy@example.com,,Bath,3.00,1985-12-01",
    )


def test_shopify_preset_maps_email_name_birthday_and_marketing(runner, settings, tmp_path):
    path = shopify_customers(tmp_path)
    result = runner.invoke(cli, ["import", "customers", "--map", "shopify", str(path)])
    assert result.exit_code == 0, result.output
    seconds = result.stdout.splitlines()[0].rsplit("; ", 1)[1]
    assert result.stdout.splitlines() == [
        f"customers from {path}: 3 rows = 3 new; {seconds}",
        "columns: id=Email, email=Email, name=First Name+Last Name, birth_date=Birthday, "
        "marketing=Accepts Email Marketing",
        "consent from the file: marketing: 1 granted, 1 refused",
    ]
    assert rows(
        settings, "SELECT id, email, name, birth_date, anniversary_date, timezone FROM customers ORDER BY id"
    ) == [
        ("ann@example.com", "ann@example.com", "Ann Lee", "1990-05-12", None, "UTC"),
        ("bob@example.com", "bob@example.com", "Bob Marr", None, None, "UTC"),
        ("cy@example.com", "cy@example.com", "Cy", "1985-12-01", None, "UTC"),
    ]
    # yes -> granted, no -> refused, blank -> nothing recorded; the file is the source
    assert rows(settings, "SELECT customer_id, purpose, granted, source FROM consents ORDER BY customer_id") == [
        ("ann@example.com", "marketing", 1, "customers.csv"),
        ("bob@example.com", "marketing", 0, "customers.csv"),
    ]
    assert rows(settings, "SELECT DISTINCT actor FROM consent_log") == [("import:customers.csv",)]
    again = runner.invoke(cli, ["import", "customers", "--map", "shopify", str(path), "--json"])
    payload = json.loads(again.stdout)
    assert (payload["rows"], payload["new"], payload["changed"], payload["unchanged"]) == (3, 0, 0, 3)
    assert payload["consents"] == {"marketing": {"granted": 1, "refused": 1}}
    assert payload["columns"]["name"] == "First Name+Last Name"
    assert rows(settings, "SELECT count(*) FROM consent_log") == [(2,)]  # the same answers change nothing


def test_a_preset_with_an_added_column_and_fields_left_out_keep_what_is_stored(runner, settings, tmp_path):
    first = write_csv(tmp_path / "ours.csv", "id,email,timezone", "ann@example.com,ann@example.com,Europe/Paris")
    assert runner.invoke(cli, ["import", "customers", str(first)]).exit_code == 0
    path = write_csv(
        tmp_path / "customers.csv",
        "Email,First Name,Last Name,Date of birth,Wedding day",
        "ann@example.com,Ann,Lee,1990-05-12,2015-06-20",
    )
    result = runner.invoke(
        cli,
        ["import", "customers", "--map", "shopify,birth_date=Date of birth,anniversary_date=Wedding day", str(path)],
    )
    assert result.exit_code == 0, result.output
    assert "1 rows = 0 new + 1 updated;" in result.stdout
    # the Shopify export has no time zone: the stored one stays
    assert rows(settings, "SELECT name, birth_date, anniversary_date, timezone FROM customers") == [
        ("Ann Lee", "1990-05-12", "2015-06-20", "Europe/Paris")
    ]


def test_woocommerce_and_magento_presets_read_their_exports(runner, settings, tmp_path):
    woo = write_csv(
        tmp_path / "woo.csv",
        "customer_id,first_name,last_name,user_login,email,date_registered,billing_city,total_spent,order_count",
        "7,Dee,Moss,dee,dee@example.com,2020-02-03 10:00:00,Hull,10.00,1",
    )
    result = runner.invoke(cli, ["import", "customers", "--map", "woocommerce", str(woo), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["columns"] == {"id": "email", "email": "email", "name": "first_name+last_name"}
    magento = write_csv(
        tmp_path / "magento.csv",
        "email,_website,_store,created_at,dob,firstname,gender,lastname",
        "eve@example.com,base,default,2019-01-01 09:00:00,1979-03-04 00:00:00,Eve,2,Park",
    )
    result = runner.invoke(cli, ["import", "customers", "--map", "magento", str(magento)])
    assert result.exit_code == 0, result.output
    assert rows(settings, "SELECT id, name, birth_date FROM customers ORDER BY id") == [
        ("dee@example.com", "Dee Moss", None),
        ("eve@example.com", "Eve Park", "1979-03-04"),
    ]


@pytest.mark.parametrize(
    "mapping, message",
    [
        (
            "shopify,birth_date=Birthdate",
            "Error: {path}: --map birth_date=Birthdate: no column 'Birthdate' in the file; closest header: 'Birthday' "
            "(say which column holds it: --map birth_date=COLUMN)",
        ),
        (
            "magento",
            "Error: {path}: --map magento reads the customer id from column 'email', which the file lacks; closest "
            "header: 'Email' (say which column holds it: --map id=COLUMN)",
        ),
        (
            "shopfy",
            "Error: unknown --map preset 'shopfy' (presets: shopify, woocommerce, magento; or field=Column); "
            "did you mean 'shopify'?",
        ),
        (
            "shopify,emial=Email",
            "Error: unknown --map field 'emial' (known: id, email, name, birth_date, anniversary_date, timezone, "
            "created_at, personalization, marketing); did you mean 'email'?",
        ),
    ],
)
def test_a_wrong_map_is_one_error_line_naming_the_column_and_the_closest_header(
    runner, settings, tmp_path, mapping, message
):
    path = shopify_customers(tmp_path)
    result = runner.invoke(cli, ["import", "customers", "--map", mapping, str(path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == message.format(path=path)
    assert rows(settings, "SELECT count(*) FROM customers") == [(0,)]


def test_a_consent_answer_that_is_not_yes_or_no_fails_the_file(runner, settings, tmp_path):
    path = write_csv(
        tmp_path / "customers.csv",
        "Email,Accepts Email Marketing",
        "ann@example.com,subscribed",
        "bob@example.com,maybe",
    )
    result = runner.invoke(cli, ["import", "customers", "--map", "shopify", str(path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {path}:3: Accepts Email Marketing 'maybe' is not a consent answer (yes: yes, y, true, t, 1, "
        "subscribed; no: no, n, false, f, 0, unsubscribed; blank or pending: not recorded) (nothing was imported)"
    )
    assert rows(settings, "SELECT count(*) FROM customers") == [(0,)]


def test_a_withdrawal_recorded_after_the_export_wins_over_it(runner, settings, tmp_path):
    path = shopify_customers(tmp_path)
    assert runner.invoke(cli, ["import", "customers", "--map", "shopify", str(path)]).exit_code == 0
    withdrawn = runner.invoke(cli, ["consent", "set", "ann@example.com", "marketing", "withdrawn"])
    assert withdrawn.exit_code == 0, withdrawn.output
    a_day_ago = time.time() - 86400
    os.utime(path, (a_day_ago, a_day_ago))  # the export was written yesterday, before the withdrawal
    again = runner.invoke(cli, ["import", "customers", "--map", "shopify", str(path), "--json"])
    # Ann's "yes" is older than her withdrawal: stale; Bob's "no" is what is stored already: no change
    assert json.loads(again.stdout)["stale_consent"] == 1
    assert rows(settings, "SELECT granted FROM consents WHERE customer_id = 'ann@example.com'") == [(0,)]


def test_orders_without_a_customer_file_or_consent_say_what_is_missing(runner, settings, tmp_path):
    path = orders(tmp_path, "17850", "12000")
    result = runner.invoke(cli, ["import-transactions", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "note: campaigns need birthdays, e-mails and marketing consent, which an order file does not carry: "
        f"import the shop's customer export with `{CUSTOMERS_LINE}` (presets: shopify, woocommerce, magento; "
        "see docs/operations.md)",
        "note: training needs personalization consent and no customer has it: if your shop's terms allow it, "
        "import the orders again with `--grant personalization` (it records consent for customers with no "
        "decision yet); otherwise record each customer's decision with "
        "`recommender import consents consents.csv`",
    ]
    as_json = runner.invoke(cli, ["import-transactions", str(path), "--json"])
    payload = json.loads(as_json.stdout)
    assert CUSTOMERS_LINE in payload["missing_for_campaigns"]
    assert "--grant personalization" in payload["missing_for_training"]
    assert as_json.stderr == ""  # with --json the hints are fields of the one object, not notes

    trained = runner.invoke(cli, ["train"])
    assert trained.exit_code == 1
    assert trained.stderr.strip() == (
        "Error: no interactions from customers with personalization consent: nothing to train on (record consent "
        "with `recommender import consents consents.csv`, or, if your shop's terms allow it, "
        "`recommender import-transactions orders.csv --grant personalization`)"
    )


def test_grant_on_a_second_import_reaches_customers_without_a_decision_but_not_a_refusal(runner, settings, tmp_path):
    path = orders(tmp_path, "17850", "12000")
    assert runner.invoke(cli, ["import-transactions", str(path)]).exit_code == 0
    refused = runner.invoke(cli, ["consent", "set", "12000", "personalization", "withdrawn"])
    assert refused.exit_code == 0, refused.output
    result = runner.invoke(cli, ["import-transactions", str(path), "--grant", "personalization", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["missing_for_training"] == ""
    assert "personalization" not in result.stderr
    assert rows(
        settings,
        "SELECT customer_id, granted, source FROM consents WHERE purpose = 'personalization' ORDER BY customer_id",
    ) == [("12000", 0, "cli"), ("17850", 1, "import")]


def test_a_customer_file_that_meets_the_orders_silences_the_campaign_hint(runner, settings, tmp_path):
    path = orders(tmp_path, "ann@example.com", "bob@example.com")
    assert runner.invoke(cli, ["import-transactions", str(path), "--grant", "personalization"]).exit_code == 0
    assert (
        runner.invoke(cli, ["import", "customers", "--map", "shopify", str(shopify_customers(tmp_path))]).exit_code == 0
    )
    result = runner.invoke(cli, ["import-transactions", str(path), "--json"])
    payload = json.loads(result.stdout)
    assert payload["missing_for_campaigns"] == "" and payload["missing_for_training"] == ""
    assert result.stderr == ""


def test_checklist_names_each_missing_step_and_its_fix(runner, settings, tmp_path):
    assert runner.invoke(cli, ["import-transactions", str(orders(tmp_path, "17850"))]).exit_code == 0
    result = runner.invoke(cli, ["checklist"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "[ ] Data in: Orders are in (1 customer), but no birthdays or e-mails for campaigns: add the shop's "
        "customer export.",
        f"      fix: {CUSTOMERS_LINE}",
        "[ ] Consent: No customer has agreed to personalization, and the model learns only from those who have.",
        "      fix: recommender import consents consents.csv (or import-transactions --grant personalization, if "
        "your terms allow it)",
        "[ ] Model: No model is live: customers see bestsellers.",
        "      fix: recommender train --publish",
        "[ ] First campaign: No campaign has run yet.",
        "      fix: recommender campaign run --occasion all --days-ahead 7 (or in the console, the Campaigns page: "
        "preview, then run: /console/campaigns)",
        "[ ] Measurement on: Nobody is held back for comparison, so whether it earns cannot be measured.",
        "      fix: add [online] control_share = 0.1 to recommender.toml and restart the server",
        "5 step(s) to go",
    ]
    payload = json.loads(runner.invoke(cli, ["checklist", "--json"]).stdout)
    assert payload["done"] is False
    assert [(s["key"], s["done"]) for s in payload["steps"]] == [
        ("data", False),
        ("consent", False),
        ("model", False),
        ("campaign", False),
        ("measure", False),
    ]
    assert payload["counts"] == {
        "customers": 1,
        "events": 1,
        "with_email": 0,
        "with_occasion": 0,
        "reachable": 0,
        "offers": 0,
        "granted:personalization": 0,
        "granted:marketing": 0,
    }


def test_checklist_is_done_after_the_first_week(runner, settings, tmp_path, monkeypatch):
    today = dt.date.today()
    birthday = today.replace(year=1990) if (today.month, today.day) != (2, 29) else dt.date(1990, 3, 1)
    people = ["ann@example.com", "bob@example.com"] + [f"c{n}@example.com" for n in range(8)]
    lines = [
        f"{100 + 10 * i + k},P{(3 * i + k) % 12},THING,1,2011-01-{1 + 3 * k + i % 3:02d} 10:00:00,2.5,{who},UK"
        for i, who in enumerate(people)
        for k in range(5)
    ]
    path = write_csv(
        tmp_path / "orders.csv",
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
        *lines,
    )
    assert runner.invoke(cli, ["import-transactions", str(path), "--grant", "personalization"]).exit_code == 0
    customers = write_csv(
        tmp_path / "customers.csv",
        "Email,First Name,Last Name,Accepts Email Marketing,Birthday",
        f"ann@example.com,Ann,Lee,yes,{birthday.isoformat()}",
        f"bob@example.com,Bob,Marr,yes,{birthday.isoformat()}",
    )
    assert runner.invoke(cli, ["import", "customers", "--map", "shopify", str(customers)]).exit_code == 0
    trained = runner.invoke(cli, ["train", "--publish", "--force"])
    assert trained.exit_code == 0, trained.output
    run = runner.invoke(
        cli, ["campaign", "run", "--occasion", "all", "--days-ahead", "7", "--out", str(tmp_path / "offers.csv")]
    )
    assert run.exit_code == 0, run.output
    monkeypatch.setenv("RECOMMENDER_ONLINE_CONTROL_SHARE", "0.1")
    result = runner.invoke(cli, ["checklist"])
    assert result.stdout.splitlines()[-1] == "all done", result.stdout
    assert result.stdout.splitlines()[:2] == [
        "[x] Data in: Orders and 10 customers: 2 with a birthday or anniversary, 2 with an e-mail.",
        "[x] Consent: 10 agreed to personalization, 2 to marketing (2 of them with a birthday or anniversary).",
    ]


def test_the_console_overview_shows_the_same_checklist_with_its_fixes(runner, settings, tmp_path):
    import re

    from api import create_app
    from recommender import store
    from recommender.serving import keys

    assert runner.invoke(cli, ["import-transactions", str(orders(tmp_path, "17850"))]).exit_code == 0
    db = store.connect(settings.db)
    token = keys.create(db, "admin", "ops")[1]
    db.conn.close()
    client = create_app(settings).test_client()
    page = client.get("/console/sign-in").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/console/sign-in", data={"csrf": csrf, "key": token}).status_code == 303
    html = client.get("/console/").get_data(as_text=True)
    card = html[html.index('id="first-week"') : html.index("</section>", html.index('id="first-week"'))]
    assert "First week: 0 of 5 steps done" in card
    assert f"<code>{CUSTOMERS_LINE}</code>" in card
    assert "<code>recommender train --publish</code>" in card
    assert '<a href="/console/campaigns">the Campaigns page: preview, then run</a>' in card
    assert html.index('id="first-week"') < html.index('id="headline"')  # its own card, at the top
