"""Consent is last-writer-wins by the time the customer decided; the log keeps both clocks and the actor."""

import json

from conftest import SAMPLE_DIR, write_csv

from recommender import store
from recommender.cli import cli
from recommender.ingest import consent, imports
from recommender.serving import keys
from recommender.store.rows import ConsentDecision

CONSENTS = "customer_id,purpose,granted,updated_at,source"


def log_of(db, cid, purpose):
    return list(
        db.query(
            "SELECT old_granted, new_granted, source, changed_at, decided_at, actor FROM consent_log "
            "WHERE customer_id = ? AND purpose = ? ORDER BY id",
            [cid, purpose],
        )
    )


def test_a_stale_consents_csv_cannot_undo_a_newer_withdrawal(runner, settings):
    started = store.utcnow()
    assert runner.invoke(cli, ["load-sample"]).exit_code == 0
    db = store.connect(settings.db)
    # sample_data/consents.csv line 7: C0005,personalization,true,2023-01-07T18:50:36Z,signup
    first = log_of(db, "C0005", "personalization")
    assert [(r["new_granted"], r["decided_at"], r["actor"]) for r in first] == [
        (1, "2023-01-07T18:50:36Z", "import:consents.csv")
    ]
    assert first[0]["changed_at"] >= started  # recorded now, not backdated to the CSV's date

    out = runner.invoke(cli, ["consent", "set", "C0005", "personalization", "withdrawn", "--source", "support"])
    assert out.exit_code == 0, out.output
    again = runner.invoke(cli, ["import", "consents", str(SAMPLE_DIR / "consents.csv"), "--json"])
    assert again.exit_code == 0, again.output
    body = json.loads(again.output)
    # Only C0005/personalization disagrees with the file, and the file's decision (2023) is older.
    assert (body["changed"], body["skipped"]["stale"]) == (0, 1)
    assert "skipped stale=1" in runner.invoke(cli, ["import", "consents", str(SAMPLE_DIR / "consents.csv")]).output

    assert store.has_consent(db, "C0005", "personalization") is False
    log = log_of(db, "C0005", "personalization")
    assert len(log) == 2 and (log[1]["old_granted"], log[1]["new_granted"]) == (1, 0)
    assert log[1]["actor"] == "cli:support" and log[1]["source"] == "support"
    assert log[1]["decided_at"] >= started and log[1]["changed_at"] >= started
    history = runner.invoke(cli, ["consent", "history", "C0005"]).output
    assert "decided 2023-01-07T18:50:36Z" in history and "actor cli:support" in history and "recorded " in history


def test_a_newer_row_wins_and_an_older_contrary_one_is_stale(db, settings, small_shop, tmp_path):
    # c1 personalization: granted, decided 2025-01-01 (fixture). Withdrawn on 2025-03-01 by support:
    state = consent.set_consents(
        db,
        settings,
        "c1",
        {"personalization": False},
        "support",
        decided_at="2025-03-01T09:00:00+01:00",
        actor="cli:support",
    )
    assert state["consents"]["personalization"]["updated_at"] == "2025-03-01T08:00:00Z" and state["stale"] == []
    path = write_csv(
        tmp_path / "late.csv",
        CONSENTS,
        "c1,personalization,true,2025-02-01T00:00:00Z,signup",  # before the withdrawal: stale
        "c1,marketing,true,2025-06-01T00:00:00Z,preference_centre",  # after the Jan decision: applies
        "c2,marketing,false,2020-01-01T00:00:00Z,signup",
    )  # first record: applies
    result = imports.import_file(db, "consents", path, settings)
    assert (result.changed, result.skipped) == (2, {"stale": 1})
    assert not store.has_consent(db, "c1", "personalization") and store.has_consent(db, "c1", "marketing")
    # Repeats lean to the side that uses less data. A repeated grant (August) does not stop an older
    # withdrawal (July) that arrives late ...
    store.apply_consents(db, [ConsentDecision("c1", "marketing", True, "2025-08-01T00:00:00Z", "support", "x")])
    outcome = store.apply_consents(
        db, [ConsentDecision("c1", "marketing", False, "2025-07-01T00:00:00Z", "support", "x")]
    )
    assert outcome == {"changed": 1, "stale": 0, "withdrawals": 1}
    # ... while a repeated withdrawal (September) keeps an older grant (August 15) out.
    store.apply_consents(db, [ConsentDecision("c1", "marketing", False, "2025-09-01T00:00:00Z", "support", "x")])
    outcome = store.apply_consents(
        db, [ConsentDecision("c1", "marketing", True, "2025-08-15T00:00:00Z", "support", "x")]
    )
    assert outcome == {"changed": 0, "stale": 1, "withdrawals": 0}
    assert not store.has_consent(db, "c1", "marketing")
    # first record (false, fixture), the June grant, the July withdrawal; repeats log nothing
    assert [r["new_granted"] for r in log_of(db, "c1", "marketing")] == [0, 1, 0]


def test_every_withdrawal_is_a_privacy_event(db, settings, small_shop):
    def events():
        return [
            (r[0], r[1])
            for r in db.execute("SELECT customer_id, purpose FROM privacy_events WHERE kind = 'withdrawal' ORDER BY id")
        ]

    assert events() == []  # the fixture's first records (one 'false') withdraw nothing
    consent.set_consents(db, settings, "c1", {"personalization": False, "marketing": False}, "support")
    consent.set_consents(db, settings, "c1", {"personalization": True}, "support")
    consent.set_consents(db, settings, "c1", {"personalization": False}, "support")
    consent.set_consents(db, settings, "c3", {"marketing": False}, "support")  # never granted: no withdrawal
    assert events() == [("c1", "personalization"), ("c1", "personalization")]
    assert store.privacy_epoch(db) == 2


def test_the_consent_log_names_the_api_key_that_made_the_change(client, served):
    db = store.connect(served.db)
    key_id, secret = keys.create(db, "admin", "dpo-desk")
    client.application.extensions["recommender_auth"]["checked"] = -1e9
    auth = {"Authorization": f"Bearer {secret}"}
    response = client.put(
        "/v1/customers/C0005/consents",
        headers=auth,
        json={"consents": {"marketing": False}, "source": "preference_centre"},
    )
    assert response.status_code == 200, response.get_json()
    history = client.get("/v1/customers/C0005/consents/history", headers=auth).get_json()["history"]
    assert history[-1]["actor"] == f"key:{key_id}:dpo-desk" and history[-1]["source"] == "preference_centre"
    assert history[-1]["decided_at"] == response.get_json()["decided_at"]


def test_api_decided_at_orders_changes_and_is_validated(client, served):
    url = "/v1/customers/C0005/consents"
    now = client.put(url, json={"consents": {"personalization": False}}).get_json()
    assert now["stale"] == [] and now["changed"] == 1
    old = client.put(url, json={"consents": {"personalization": True}, "decided_at": "2024-02-02T10:00:00Z"})
    assert old.status_code == 200
    body = old.get_json()
    assert body["stale"] == ["personalization"] and body["changed"] == 0
    assert body["consents"]["personalization"]["granted"] is False
    history = client.get(f"{url}/history").get_json()["history"]
    assert history[-1]["actor"] == "open-mode" and history[-1]["new"] is False
    future = client.put(url, json={"consents": {"personalization": True}, "decided_at": "2999-01-01T00:00:00Z"})
    assert future.status_code == 422 and future.get_json()["error"]["message"].startswith("decided_at: ")
    garbage = client.put(url, json={"consents": {"personalization": True}, "decided_at": "last tuesday"})
    assert garbage.status_code == 422 and "decided_at" in garbage.get_json()["error"]["message"]


def test_cli_decided_at_and_stale_report(runner, settings, small_shop):
    out = runner.invoke(
        cli,
        [
            "consent",
            "set",
            "c1",
            "personalization",
            "withdrawn",
            "--source",
            "phone",
            "--decided-at",
            "2024-12-31T23:00:00Z",
        ],
    )
    assert out.exit_code == 0 and "stale: not applied to personalization" in out.output  # fixture: 2025-01-01
    out = runner.invoke(
        cli,
        [
            "consent",
            "set",
            "c1",
            "personalization",
            "withdrawn",
            "--source",
            "phone",
            "--decided-at",
            "2025-01-02",
            "--json",
        ],
    )
    body = json.loads(out.output)
    assert body["stale"] == [] and body["consents"]["personalization"]["updated_at"] == "2025-01-02T00:00:00Z"
    bad = runner.invoke(cli, ["consent", "set", "c1", "marketing", "granted", "--decided-at", "soon"])
    assert bad.exit_code == 1 and "Error: decided_at: bad timestamp" in bad.output
    assert "--decided-at" in runner.invoke(cli, ["consent", "set", "--help"]).output
