"""scripts/simulate.py: days of a shop through the real CLI and a real server, and the checks it applies.

The checks are first tried on hand-built databases and folders whose right
answer is counted by hand; then a short simulation (3 days, a generated shop
of 300 customers and 60 products) runs once as a subprocess and its days are
inspected.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

from recommender import store

# A simulated month's shop takes most of a minute to build: .ci/run runs it with the slow tests.
pytestmark = pytest.mark.slow

pytest.importorskip("gunicorn")

SCRIPT = ROOT / "scripts" / "simulate.py"


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = load("_simulate_checks")
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def stamp(days_ago: float) -> str:
    return (NOW - dt.timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def shop_db(tmp_path):
    db = store.connect(tmp_path / "shop.db", create=True)
    db.conn.executemany(
        "INSERT INTO customers (id, email, created_at) VALUES (?, ?, ?)",
        [("C0001", "ann@example.com", stamp(30)), ("C0002", None, stamp(30))],
    )
    db.conn.executemany(
        "INSERT INTO products (id, name, in_stock) VALUES (?, ?, ?)",
        [("P1", "Mug", 2), ("P2", "Pan", None), ("P3", "Rose", 1)],
    )
    yield tmp_path / "shop.db", db
    db.conn.close()


def add_offer(db, n, customer, products, valid_until):
    db.execute(
        "INSERT INTO offers (customer_id, occasion, occasion_year, code, products, discount, valid_from, "
        "valid_until, campaign_id, created_at) VALUES (?, 'birthday', ?, ?, ?, 15, '2026-11-01', ?, 'c', ?)",
        [customer, 2000 + n, f"CODE{n}", json.dumps(products), valid_until, stamp(1)],
    )


def test_stock_counts_every_still_valid_offer_across_runs(shop_db):
    path, db = shop_db
    add_offer(db, 1, "C0001", ["P1", "P2"], "2026-12-20")  # run 1
    add_offer(db, 2, "C0002", ["P1", "P3"], "2026-12-10")  # run 2
    add_offer(db, 3, "C0001", ["P1"], "2026-12-01")  # valid through the check day itself
    add_offer(db, 4, "C0002", ["P1", "P3"], "2026-11-30")  # expired the day before: no longer promised
    # P1: 3 valid offers for 2 units; P2 untracked; P3: 1 valid offer for 1 unit.
    assert checks.over_promised(path, "2026-12-01") == ["P1: 3 valid offers > 2 in stock"]
    assert checks.over_promised(path, "2026-12-02") == []


def test_decisions_older_than_the_retention_are_counted(shop_db):
    path, db = shop_db
    rows = [
        ("C0001", stamp(91), "e", None, "non_personalized", "no_model", "[]"),
        ("C0002", stamp(120), "e", None, "non_personalized", "no_model", "[]"),
        ("C0001", stamp(89), "e", None, "non_personalized", "no_model", "[]"),
    ]
    store.insert_decisions(db, rows)
    assert checks.stale_decisions(path, 90, NOW) == ["2 decision(s) older than 90 days"]
    assert checks.stale_decisions(path, 150, NOW) == []


def test_artifacts_beyond_current_previous_and_young_candidates_are_excess(shop_db, tmp_path):
    path, db = shop_db
    models = tmp_path / "models"
    for version, status, age in (
        ("A", "published", 0.1),
        ("B", "published", 1),
        ("C", "published", 2),
        ("D", "candidate", 0.5),
        ("E", "rejected", 10),
        ("F", None, 0),
    ):
        (models / version).mkdir(parents=True)
        if status:
            db.execute(
                "INSERT INTO models (version, created_at, path, params, metrics, consent_snapshot, status) "
                "VALUES (?, ?, '', '{}', '{}', '{}', ?)",
                [version, stamp(age), status],
            )
    (models / ".tmp-G").mkdir()  # a temporary is not an artifact
    (models / "CURRENT").write_text("A\n")
    # 6 directories; allowed = current A + 1 previous + young candidate D = 3; B and C are 2 previous,
    # E is a rejected model 10 days old, F has no row.
    assert checks.excess_artifacts(path, models, 1, 7, NOW) == [
        "1 directory with no model row",
        "6 directories > 3 allowed (current + 1 previous + 1 young candidates; 2 previous, 1 too old)",
    ]
    for version in ("C", "E", "F"):
        (models / version).rmdir()
    assert checks.excess_artifacts(path, models, 1, 7, NOW) == []


def test_erased_values_are_found_in_rows_bytes_and_model_files(shop_db, tmp_path):
    path, db = shop_db
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (tmp_path / "models" / "v1").mkdir(parents=True)
    (tmp_path / "models" / "v1" / "ids.json").write_text('{"users": ["C0002", "C0001"]}')
    found = checks.erased_traces(path, tmp_path / "models", ["C0001", "ann@example.com"])
    assert "1 row(s) in customers.id" in found and "1 row(s) in customers.email" in found
    assert "2 erased value(s) in the bytes of shop.db" in found
    assert "1 erased value(s) in the bytes of models/v1/ids.json" in found
    assert checks.erased_traces(path, tmp_path / "models", ["C0009", "zed@example.com"]) == []


def test_a_list_is_explained_by_its_mode_and_fallback_reason():
    answers = [
        ("a", 200, {"mode": "personalized", "reason": None}),
        ("b", 200, {"mode": "non_personalized", "reason": "no_consent"}),
        ("c", 200, {"mode": "non_personalized", "reason": None}),
        ("d", 200, {"items": []}),
        ("e", 500, {"error": {}}),
    ]
    assert checks.unexplained(answers) == ["c: non-personalized without a reason", "d: no mode", "e: HTTP 500"]


def test_consent_drift_compares_the_last_decision_with_the_table_and_the_lists(shop_db):
    path, db = shop_db
    store.set_consents(
        db, [("C0001", "personalization", True, stamp(1), "import"), ("C0002", "marketing", False, stamp(1), "import")]
    )
    expected = {("C0001", "personalization"): False, ("C0002", "marketing"): False, ("C0002", "personalization"): False}
    answers = [("C0001", 200, {"mode": "personalized"}), ("C0002", 200, {"mode": "non_personalized"})]
    assert checks.consent_drift(path, expected, answers) == [
        "1 consent state(s) differ from the last decision (first: C0001 personalization should be withdrawn)",
        "C0001: personalized list without personalization consent",
    ]
    assert checks.consent_drift(path, {("C0001", "personalization"): True}, answers) == []


# --- a short simulation ------------------------------------------------------------------------

DAYS = 3
LINE = re.compile(
    r"^day +(\d+)/3 (\d{4}-\d\d-\d\d): .*; retrain (published|refused|error)\b.*; (\d+) offers; "
    r"(checks ok|FAILED .+)$"
)


@pytest.fixture(scope="module")
def simulation(tmp_path_factory):
    """Three days (accident on day 2) of the generated shop; one model kept besides the current one."""
    work = tmp_path_factory.mktemp("sim") / "shop"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    env["RECOMMENDER_MODELS_KEEP_PREVIOUS"] = "1"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--days", str(DAYS), "--seed", "3", "--json", "--workdir", str(work)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    days = json.loads(proc.stdout) if proc.stdout.strip().startswith("[") else None
    return proc, days, work


def test_every_day_is_reported_once_on_consecutive_dates_ending_today(simulation):
    proc, days, _ = simulation
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    lines = [m for m in map(LINE.match, proc.stderr.splitlines()) if m]
    assert [int(m.group(1)) for m in lines] == [1, 2, 3]
    today = dt.datetime.now(dt.UTC).date()
    want = [(today - dt.timedelta(days=DAYS - i)).isoformat() for i in range(1, DAYS + 1)]
    assert [m.group(2) for m in lines] == want
    assert [d["date"] for d in days] == want
    assert [m.group(3) for m in lines] == [d["retrain"] for d in days]
    assert [d.get("accident", "").split(" ")[0] for d in days] == ["", "planted", "removed"]
    assert all(d["events"] > 0 and d["new_customers"] >= 0 for d in days)
    assert "| day | date |" in proc.stderr and "model artifacts:" in proc.stderr


def test_every_served_list_says_how_it_was_made(simulation):
    _, days, _ = simulation
    for d in days:
        assert "lists" not in d["failures"], d["failures"]
        # the unknown visitor of each day gets a non-personalized list with a reason
        assert d["lists"]["non_personalized"] >= 1 and sum(d["lists"].values()) >= 5


def test_the_erasures_really_happened_and_left_no_working_api_error(simulation):
    _, days, _ = simulation
    assert sum(d["erased"]["api"] for d in days) >= 1 and sum(d["erased"]["cli"] for d in days) >= 1
    assert all(not any("erasure" in m for m in d["failures"].get("erased", [])) for d in days)


def test_routine_nights_publish_the_accident_night_refuses_and_every_invariant_holds(simulation):
    proc, days, _ = simulation
    assert [d["retrain"] for d in days] == ["published", "refused", "published"]
    day_two = next(line for line in proc.stderr.splitlines() if line.startswith("day  2/"))
    assert "retrain refused" in day_two and "dated after the training time" in day_two
    assert [d["failures"] for d in days] == [{}, {}, {}]
    assert proc.returncode == 0


def test_the_storefront_answers_lists_and_the_online_report_compares_the_arms(simulation):
    proc, days, work = simulation
    shown = sum(d["storefront"]["lists"] for d in days)
    assert shown == 3 * 60 and sum(d["storefront"]["events"] for d in days) > 0
    report = json.loads((work / "online-report.json").read_text())
    rows: dict[str, dict[str, int]] = {}  # per arm, summed over the model versions of the run
    for a in report["arms"]:
        if a["surface"] == "recommendations":
            row = rows.setdefault(a["arm"], {"lists": 0})
            row["lists"] += a["lists"]
    assert {"model", "control"} <= set(rows)
    # the storefront's lists plus the day checks' lists of consenting customers, in the two arms
    assert rows["model"]["lists"] + rows["control"]["lists"] >= 0.7 * shown
    uplift = {u["metric"]: u for u in report["uplift"] if u["surface"] == "recommendations"}
    assert set(uplift) == {"conversion", "ctr", "revenue_per_list"}
    for u in uplift.values():
        lo, hi = u["ci95"]
        assert lo < u["difference"] < hi and u["n_control"] == rows["control"]["lists"]
    # shoppers click what matches their taste (40 % vs 3 % per item): the model's lists are
    # clicked more than popular ones; with ~90 / ~40 lists that is about 3 standard errors
    assert uplift["ctr"]["difference"] > 0
    assert "online uplift recommendations conversion" in proc.stderr


@pytest.mark.slow
def test_a_month_of_the_sample_shop_runs_clean(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--days", "30", "--sample", "--workdir", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
