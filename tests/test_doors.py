"""Tombstones at every door: imports, import-transactions, the events and consents API; the one way back."""

import datetime as dt
import json
import time

import pytest
from conftest import write_csv

from recommender import privacy, store
from recommender.cli import cli
from recommender.errors import ErasedCustomerError, ValidationError
from recommender.ingest import imports

TODAY = dt.date.today().isoformat()
TX_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID"


def traces(db, value, substring=False):
    """(table, column) pairs holding ``value``: the whole cell, inside a JSON list, or (``substring``) anywhere."""
    found = []
    for table in db.table_names():
        for column in db[table].columns_dict:
            cell = f'CAST("{column}" AS TEXT)'
            test = f"instr({cell}, ?) > 0" if substring else f"{cell} = ? OR {cell} LIKE ?"
            args = [value] if substring else [value, f'%"{value}"%']
            if db.execute(f'SELECT count(*) FROM "{table}" WHERE {test}', args).fetchone()[0]:
                found.append((table, column))
    return found


def test_reimporting_a_full_export_does_not_bring_an_erased_customer_back(small_shop, settings, tmp_path):
    db = small_shop  # imported from tmp_path/{customers,interactions,consents}.csv: the export made before
    privacy.forget(db, settings, "c1")
    before = store.counts(db)
    expected = {  # lines of c1 in the fixture's files (hand-counted)
        "customers": (2, 1),
        "interactions": (2, 2),
        "consents": (2, 2),
    }
    for kind, (first_line, n) in expected.items():
        path = tmp_path / f"{kind}.csv"
        with pytest.raises(ErasedCustomerError) as info:
            imports.import_file(db, kind, path, settings)
        message = str(info.value)
        assert message.startswith(f"{path}:{first_line}: customer 'c1' was erased on {TODAY}")
        assert "nothing was imported" in message and info.value.count == n
        assert store.counts(db) == before
    for kind, (_, n) in expected.items():
        result = imports.import_file(db, kind, tmp_path / f"{kind}.csv", settings, skip_erased=True)
        assert result.skipped["erased"] == n, kind
    assert store.counts(db) == before  # the others were already there: idempotent
    assert traces(db, "c1") == []
    assert store.consenting_customers(db, "personalization") == ["c2"]


def test_skipping_keeps_line_numbers_of_other_errors(small_shop, settings, tmp_path):
    db = small_shop
    privacy.forget(db, settings, "c1")
    path = write_csv(
        tmp_path / "events.csv",
        "customer_id,product_id,event_type,quantity,occurred_at",
        "c1,p1,view,1,2025-05-01T00:00:00Z",
        "c2,p1,view,1,2025-05-01T00:00:00Z",
        "c2,p1,view,1,yesterday",
    )
    with pytest.raises(ValidationError) as info:
        imports.import_file(db, "interactions", path, settings, skip_erased=True)
    assert str(info.value).startswith(f"{path}:4: occurred_at: bad timestamp")
    # gzip input goes through the same door
    import gzip

    gz = tmp_path / "events.csv.gz"
    gz.write_bytes(
        gzip.compress(
            b"customer_id,product_id,event_type,occurred_at\n"
            b"c2,p2,view,2025-06-01T00:00:00Z\nc1,p2,view,2025-06-01T00:00:00Z\n"
        )
    )
    result = imports.import_file(db, "interactions", gz, settings, skip_erased=True)
    assert (result.rows, result.new, result.skipped) == (2, 1, {"erased": 1})  # rows read: every line counted once


def test_import_cli_refuses_or_skips_erased_lines(runner, settings, small_shop, tmp_path):
    privacy.forget(small_shop, settings, "c1")
    path = tmp_path / "customers.csv"
    refused = runner.invoke(cli, ["import", "customers", str(path)])
    assert refused.exit_code == 1
    assert refused.output.startswith(f"Error: {path}:2: customer 'c1' was erased on {TODAY}")
    assert "--skip-erased" in refused.output
    human = runner.invoke(cli, ["import", "customers", str(path), "--skip-erased"])
    assert human.exit_code == 0 and "skipped erased=1" in human.output, human.output
    as_json = json.loads(
        runner.invoke(cli, ["import", "consents", str(tmp_path / "consents.csv"), "--skip-erased", "--json"]).output
    )
    assert as_json["skipped"]["erased"] == 2 and as_json["rows"] == 3 and sum(as_json["outcomes"].values()) == 3
    events = runner.invoke(cli, ["import", "interactions", str(tmp_path / "interactions.csv"), "--skip-erased"])
    assert events.exit_code == 0 and "skipped erased=2" in events.output, events.output
    assert "--skip-erased" in runner.invoke(cli, ["import", "interactions", "--help"]).output
    consent = runner.invoke(cli, ["consent", "set", "c1", "marketing", "granted", "--source", "phone"])
    assert consent.exit_code == 1 and "Error: customer_id: customer 'c1' was erased on" in consent.output
    assert "--skip-erased" not in runner.invoke(cli, ["import", "products", "--help"]).output


def test_import_transactions_door(runner, settings, small_shop, tmp_path):
    privacy.forget(small_shop, settings, "c1")
    path = write_csv(
        tmp_path / "orders.csv",
        TX_HEADER,
        "5001,p1,Mug,1,2025-07-01 10:00:00,9.5,NEW1",
        "5001,p2,Pan,2,2025-07-01 10:00:00,25,c1",
        "5002,p2,Pan,1,2025-07-02 10:00:00,25,c1",
        "C5003,p2,Pan,-1,2025-07-03 10:00:00,25,NEW1",
    )
    refused = runner.invoke(cli, ["import-transactions", str(path), "--grant", "personalization"])
    assert refused.exit_code == 1 and f"{path}:3: customer 'c1' was erased" in refused.output
    assert "and 1 more line" in refused.output
    assert store.get_customer(store.connect(settings.db), "NEW1") is None  # nothing was written
    done = runner.invoke(
        cli, ["import-transactions", str(path), "--grant", "personalization", "--skip-erased", "--json"]
    )
    assert done.exit_code == 0, done.output
    body = json.loads(done.output)
    assert body["skipped"]["erased"] == 2 and body["skipped"]["cancelled"] == 1 and body["new"] == 1
    db = store.connect(settings.db)
    assert traces(db, "c1") == [] and store.has_consent(db, "NEW1", "personalization")
    assert db.execute("SELECT actor FROM consent_log WHERE customer_id = 'NEW1'").fetchone()[0] == "import:orders.csv"


def test_events_api_names_the_erased_event(client, served):
    db = store.connect(served.db)
    privacy.forget(db, served, "C0002")
    before = db["interactions"].count
    events = [{"customer_id": "C0001", "product_id": "P0001", "event_type": "view"} for _ in range(3)]
    events += [{"customer_id": "C0002", "product_id": "P0001", "event_type": "view"}] * 2
    response = client.post("/v1/events", json={"events": events})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "erased_customer"
    assert error["message"].startswith(f"events[3].customer_id: customer 'C0002' was erased on {TODAY} (and 1 more")
    assert db["interactions"].count == before
    assert client.post("/v1/events", json={"events": events[:3]}).status_code == 201
    ghost = client.post("/v1/events", json={"customer_id": "ghost", "product_id": "P0001", "event_type": "view"})
    assert ghost.status_code == 422 and ghost.get_json()["error"]["code"] == "invalid_input"


def test_consent_api_refuses_an_erased_customer(client, served):
    privacy.forget(store.connect(served.db), served, "C0002")
    response = client.put("/v1/customers/C0002/consents", json={"consents": {"marketing": True}})
    assert response.status_code == 422
    assert response.get_json()["error"]["message"].startswith("customer_id: customer 'C0002' was erased on")
    assert client.put("/v1/customers/ghost/consents", json={"consents": {"marketing": True}}).status_code == 404


def test_resignup_is_the_one_way_back(runner, settings, small_shop, tmp_path):
    privacy.forget(small_shop, settings, "c1")
    assert runner.invoke(cli, ["resignup", "c2", "--source", "signup"]).exit_code == 1  # exists
    never = runner.invoke(cli, ["resignup", "zed", "--source", "signup"])
    assert never.exit_code == 1 and "never erased" in never.output
    bad = runner.invoke(cli, ["resignup", "c1", "--source", "signup", "--grant", "telepathy"])
    assert bad.exit_code == 1 and "unknown purpose" in bad.output
    bad_tz = runner.invoke(cli, ["resignup", "c1", "--source", "signup", "--timezone", "Mars/Olympus"])
    assert bad_tz.exit_code == 1 and "Error: --timezone: unknown time zone" in bad_tz.output
    assert store.erasure_count(store.connect(settings.db)) == 1  # refused attempts keep the tombstone
    started = store.utcnow()
    out = runner.invoke(
        cli,
        [
            "resignup",
            "c1",
            "--grant",
            "personalization",
            "--source",
            "signup",
            "--email",
            "new@example.com",
            "--name",
            "Ann Again",
            "--timezone",
            "Europe/Paris",
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert body["tombstone_removed"] is True
    assert body["consents"]["personalization"]["granted"] is True
    assert body["consents"]["marketing"] == {
        "granted": False,
        "recorded": True,
        "updated_at": body["created_at"],
        "source": "signup",
    }
    db = store.connect(settings.db)
    assert store.erasure_count(db) == 0
    profile = db["customers"].get("c1")
    assert (profile["email"], profile["name"], profile["timezone"]) == ("new@example.com", "Ann Again", "Europe/Paris")
    assert profile["birth_date"] is None  # the erased profile had 1990-02-28: nothing of it returns
    log = list(
        db.query(
            "SELECT purpose, new_granted, actor, decided_at FROM consent_log WHERE customer_id = 'c1' ORDER BY purpose"
        )
    )
    assert [(r["purpose"], r["new_granted"], r["actor"]) for r in log] == [
        ("marketing", 0, "cli:signup"),
        ("personalization", 1, "cli:signup"),
    ]
    assert all(r["decided_at"] >= started for r in log)
    assert db["interactions"].count_where("customer_id = 'c1'") == 0  # nothing of the erased record came back
    # Now the doors let them in again.
    result = imports.import_file(db, "interactions", tmp_path / "interactions.csv", settings)
    assert result.new == 2
    assert "resignup" in runner.invoke(cli, ["--help"]).output


def test_decision_log_keeps_nothing_personal_for_unknown_or_non_consenting(client, app, served):
    db = store.connect(served.db)
    consenting = db.execute(
        "SELECT customer_id FROM consents WHERE purpose = 'personalization' AND granted = 1 "
        "ORDER BY customer_id LIMIT 1"
    ).fetchone()[0]
    refusing = db.execute(
        "SELECT id FROM customers WHERE id NOT IN (SELECT customer_id FROM consents WHERE "
        "purpose = 'personalization' AND granted = 1) ORDER BY id LIMIT 1"
    ).fetchone()[0]
    email = "someone.private@example.org"
    client.get(f"/v1/customers/{email}/recommendations?n=3")
    client.get(f"/v1/customers/{refusing}/recommendations?n=3")
    client.post(f"/v1/customers/{refusing}/rerank", json={"products": ["P0003", "P0001"]})
    client.get(f"/v1/customers/{consenting}/recommendations?n=3")
    assert app.extensions["recommender"].decisions.flush() == 4
    rows = list(db.query("SELECT customer_id, endpoint, reason, product_ids FROM decisions ORDER BY id"))
    assert [(r["customer_id"], r["reason"]) for r in rows] == [
        (None, "unknown_customer"),
        (None, "no_consent"),
        (None, "no_consent"),
        (consenting, None),
    ]
    assert rows[2]["endpoint"] == "rerank" and json.loads(rows[2]["product_ids"]) == []
    assert traces(db, email, substring=True) == [] and ("decisions", "customer_id") not in traces(db, refusing)


def test_decision_log_thread_prunes_old_entries_by_itself(served):
    db = store.connect(served.db)
    db.execute(
        "INSERT INTO decisions (customer_id, created_at, endpoint, mode, product_ids) "
        "VALUES (NULL, '2020-01-01T00:00:00Z', 'recommendations', 'non_personalized', '[]')"
    )
    log = privacy.DecisionLog(served.db, interval=0.02, retention_days=30, prune_every=0.05)
    log.record(None, "recommendations", None, "non_personalized", "unknown_customer", ["P0001"])
    deadline = time.time() + 10
    rows = []
    while time.time() < deadline:
        rows = [r[0] for r in db.execute("SELECT created_at FROM decisions")]
        if len(rows) == 1 and not rows[0].startswith("2020"):
            break
        time.sleep(0.05)
    assert len(rows) == 1 and not rows[0].startswith("2020")
