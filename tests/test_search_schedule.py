"""The model search runs on a schedule; every other retrain refits the recipe the last search chose.

A hand-made tiny shop (pairs of products: EASE^R learns each link, see
tests/test_selection.py). What ran is read from the run's own report
(``metrics["schedule"]``, ``seconds["select"]``) and from the store's record
of the last search, never from timings.
"""

from __future__ import annotations

import datetime as dt
import json
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import ROOT
from test_selection import pairs_shop, tiny

from recommender import store
from recommender.config import Settings, load_settings
from recommender.errors import ConfigError
from recommender.models import families
from recommender.training import gate, memory, run as training, schedule, selection
from recommender.training.recipes import Recipe


@pytest.fixture
def shop(db, settings):
    pairs_shop(db, customers=320, pairs=40)
    tiny(settings, blend_weights=())
    return db


def _days_ago(db, days: float) -> None:
    """Move the recorded search back in time, as the store keeps it."""
    last = store.last_search(db)
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    store.record_search(db, {**last, "searched_at": when.strftime("%Y-%m-%dT%H:%M:%SZ")})


def _no_search(monkeypatch):
    """Make any search fail loudly: a run that should not search proves it did not."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model search ran")

    monkeypatch.setattr(selection, "select", refuse)


def test_the_first_train_searches_and_records_its_choice(shop, settings):
    assert store.last_search(shop) is None
    first = training.train(shop, settings, publish=True)
    plan = first.metrics["schedule"]
    assert plan["searched"] is True and plan["reason"] == "first"
    assert "select" in first.seconds
    last = store.last_search(shop)
    assert gate.recipe_id(last["recipe"]) == gate.recipe_id(first.metrics["params"])
    assert last["reason"] == "first" and last["test"]["ndcg"] == first.metrics["model"]["ndcg"]
    assert last["selection"]["chosen"]["recipe"] == gate.recipe_id(first.metrics["params"])


def test_a_nightly_train_after_a_recent_search_refits_the_chosen_recipe_without_searching(shop, settings, monkeypatch):
    first = training.train(shop, settings, publish=True)
    _no_search(monkeypatch)
    second = training.train(shop, settings, publish=True)
    plan = second.metrics["schedule"]
    assert plan["searched"] is False and plan["reason"] == "scheduled"
    assert "select" not in second.seconds and "families_test" not in second.seconds
    # The same recipe, refitted: same family and settings, same test NDCG on the same data.
    assert gate.recipe_id(second.metrics["params"]) == gate.recipe_id(first.metrics["params"])
    assert second.metrics["model"]["ndcg"] == pytest.approx(first.metrics["model"]["ndcg"], abs=1e-6)
    assert second.published
    # The last search's table is still reported, unchanged.
    assert second.metrics["selection"] == store.last_search(shop)["selection"]
    assert store.last_search(shop)["searched_at"] == plan["last_search_at"]


def test_select_flag_and_select_command_search_now(shop, settings, runner, monkeypatch):
    from recommender.cli import cli

    training.train(shop, settings, publish=True)
    for name in ("FAMILIES", "HALF_LIVES", "ALS_SCALES", "EASE_SCALES", "GRAPH_NEIGHBOURS"):
        value = getattr(settings.selection, name.lower())
        monkeypatch.setenv(f"RECOMMENDER_SELECTION_{name}", ",".join(str(v) for v in value))
    monkeypatch.setenv("RECOMMENDER_SELECTION_ENABLED", "1")
    monkeypatch.setenv("RECOMMENDER_SELECTION_WEIGHT_PROFILES", "0")
    monkeypatch.setenv("RECOMMENDER_SELECTION_BLEND_WEIGHTS", "")
    monkeypatch.setenv("RECOMMENDER_ALS_FACTORS", "2")
    monkeypatch.setenv("RECOMMENDER_ALS_ITERATIONS", "6")
    before = store.last_search(shop)["searched_at"]
    trained = runner.invoke(cli, ["train", "--select", "--json"])
    assert trained.exit_code == 0, trained.output
    out = json.loads(trained.stdout)
    assert out["metrics"]["schedule"]["searched"] is True and out["metrics"]["schedule"]["reason"] == "asked"
    assert "select" in out["seconds"]
    selected = runner.invoke(cli, ["select", "--json"])
    assert selected.exit_code == 0, selected.output
    payload = json.loads(selected.stdout)
    assert payload["schedule"]["reason"] == "asked" and payload["selection"]["families"]
    assert store.last_search(shop)["reason"] == "asked"
    assert store.last_search(shop)["searched_at"] >= before
    both = runner.invoke(cli, ["train", "--select", "--no-select"])
    assert both.exit_code != 0 and "contradict" in both.output


def test_a_search_older_than_the_cadence_runs_again(shop, settings, monkeypatch):
    training.train(shop, settings, publish=True)
    settings.selection.every_days = 7.0
    _days_ago(shop, 6.5)
    calls = []
    real = selection.select
    monkeypatch.setattr(selection, "select", lambda *a, **k: calls.append(1) or real(*a, **k))
    kept = training.train(shop, settings, publish=True)
    assert kept.metrics["schedule"]["reason"] == "scheduled" and calls == []
    _days_ago(shop, 7.5)
    again = training.train(shop, settings, publish=True)
    assert again.metrics["schedule"]["searched"] is True and again.metrics["schedule"]["reason"] == "cadence"
    assert calls == [1]
    assert store.last_search(shop)["reason"] == "cadence"
    # every_days = 0: every retrain searches, as before the schedule.
    settings.selection.every_days = 0.0
    assert training.train(shop, settings).metrics["schedule"]["reason"] == "cadence"


def test_changed_settings_start_a_search(shop, settings):
    training.train(shop, settings, publish=True)
    settings.selection.half_lives = (0.0, 30.0)
    assert training.train(shop, settings, publish=True).metrics["schedule"]["reason"] == "settings_changed"
    # Settings of the schedule itself start none.
    settings.selection.every_days = 3.0
    settings.selection.max_memory_bytes = 1 << 40
    assert training.train(shop, settings, publish=True).metrics["schedule"]["reason"] == "scheduled"


def test_losing_ground_rule_by_hand():
    s = Settings()
    s.selection.losing_ground_share, s.selection.losing_ground_standard_errors = 0.10, 2.0
    params = gate.recipe(s, "implicit")
    last = {"recipe": params, "test": {"ndcg": 0.20}}

    def tonight(ndcg):
        return {"params": params, "k": 10, "model": {"ndcg": ndcg}}

    # 0.17: 15 % and 3 SE below 0.20 -> fires; 0.185: 7.5 % -> no; 0.17 with SE 0.02: 1.5 SE -> no.
    assert "losing ground" in schedule.losing_ground(last, tonight(0.17), 0.01, s)
    assert schedule.losing_ground(last, tonight(0.185), 0.001, s) is None
    assert schedule.losing_ground(last, tonight(0.17), 0.02, s) is None
    # Another recipe than the recorded one is not compared; share 0 turns the rule off.
    other = dict(params, event_weights={"purchase": 1.0})
    assert schedule.losing_ground(last, {**tonight(0.01), "params": other}, 0.0, s) is None
    s.selection.losing_ground_share = 0.0
    assert schedule.losing_ground(last, tonight(0.01), 0.0, s) is None


def test_a_recipe_losing_ground_searches_again_in_the_same_run(shop, settings):
    first = training.train(shop, settings, publish=True)
    last = store.last_search(shop)
    # Constructed: the value recorded at the search is twice what the recipe scores tonight (on the same data).
    store.record_search(shop, {**last, "test": {**last["test"], "ndcg": 2 * first.metrics["model"]["ndcg"]}})
    again = training.train(shop, settings, publish=True)
    plan = again.metrics["schedule"]
    assert plan["searched"] is True and plan["reason"] == "losing_ground"
    assert "losing ground" in plan["message"]
    assert store.last_search(shop)["reason"] == "losing_ground"
    assert store.last_search(shop)["test"]["ndcg"] == again.metrics["model"]["ndcg"]


def test_evaluate_does_not_search_unless_asked(shop, settings, runner, monkeypatch):
    from recommender.cli import cli

    monkeypatch.setenv("RECOMMENDER_SELECTION_ENABLED", "1")
    real = selection.select
    _no_search(monkeypatch)
    # Before any search: the configured ALS, and nothing recorded.
    first = runner.invoke(cli, ["evaluate", "--json"])
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout)
    assert out["schedule"]["searched"] is False and out["schedule"]["reason"] == "none_yet"
    assert "family" not in out["params"] and store.last_search(shop) is None
    monkeypatch.setattr(selection, "select", real)
    training.train(shop, settings, publish=True)
    recorded = store.last_search(shop)
    _no_search(monkeypatch)
    # After one: the recorded recipe and the last search's table, still no search, even weeks later.
    _days_ago(shop, 30)
    again = runner.invoke(cli, ["evaluate"])
    assert again.exit_code == 0, again.output
    assert "the last search's" in again.output and "model search: not run" in again.output
    out = json.loads(runner.invoke(cli, ["evaluate", "--json"]).stdout)
    assert out["schedule"]["searched"] is False
    assert gate.recipe_id(out["params"]) == gate.recipe_id(recorded["recipe"])
    assert out["selection"]["families"] == recorded["selection"]["families"]


def test_select_is_documented():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quality = (ROOT / "docs" / "quality.md").read_text(encoding="utf-8")
    assert "recommender select" in readme and "--select" in readme
    for words in ("recommender select", "selection.every_days", "losing_ground_share", "max_memory_bytes"):
        assert words in quality


def test_bad_schedule_settings_are_refused_naming_them():
    with pytest.raises(ConfigError, match="every_days"):
        load_settings(environ={"RECOMMENDER_SELECTION_EVERY_DAYS": "-1"})
    with pytest.raises(ConfigError, match="losing_ground_share"):
        load_settings(environ={"RECOMMENDER_SELECTION_LOSING_GROUND_SHARE": "1.5"})


# --- progress and logs ------------------------------------------------------------------------


def test_a_search_logs_one_summary_line_without_a_terminal_and_every_candidate_with_verbose(shop, settings):
    lines: list[str] = []
    training.train(shop, settings, log=lines.append, select=True)
    assert not [x for x in lines if x.startswith("selection 1:")]
    assert len([x for x in lines if x.startswith("selection: chose")]) == 1
    verbose: list[str] = []
    training.train(shop, settings, log=verbose.append, select=True, verbose=True)
    assert [x for x in verbose if x.startswith("selection 1:")]


def test_train_json_prints_one_object_on_stdout(shop, settings, runner, monkeypatch):
    from recommender.cli import cli

    monkeypatch.setenv("RECOMMENDER_SELECTION_ENABLED", "1")
    monkeypatch.setenv("RECOMMENDER_SELECTION_FAMILIES", "als,ease")
    monkeypatch.setenv("RECOMMENDER_SELECTION_HALF_LIVES", "0")
    monkeypatch.setenv("RECOMMENDER_SELECTION_WEIGHT_PROFILES", "0")
    monkeypatch.setenv("RECOMMENDER_SELECTION_BLEND_WEIGHTS", "")
    monkeypatch.setenv("RECOMMENDER_ALS_FACTORS", "2")
    result = runner.invoke(cli, ["train", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["schedule"]["searched"] is True
    assert result.stderr == ""


# --- memory ---------------------------------------------------------------------------------------


def _matrix(users: int, items: int, nnz: int, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    m = sp.csr_matrix(
        (rng.random(nnz).astype(np.float32) + 1, (rng.integers(0, users, nnz), rng.integers(0, items, nnz))),
        shape=(users, items),
    )
    m.sum_duplicates()
    return m


def test_memory_predictions_follow_their_closed_forms():
    s = Settings()
    s.als.factors, s.itemgraph.neighbours = 32, 50
    m = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 0, 0]], dtype=np.float32))
    # 3 customers, 4 products (3 active), 5 pairs; degrees 2, 2, 1 -> sum of squares 9.
    assert memory._shape(m) == (3, 4, 5, 3, 9)
    assert memory.predict(Recipe("ease", s), m) == 12 * 3 * 3 + 33 * 3 * 3 + 12 * 9 + 48 * 5
    assert memory.predict(Recipe("als", s), m) == 2 * 4 * 32 * (3 + 4) + 2 * 8 * 5
    assert memory.predict(Recipe("rp3beta", s), m) == 5 * 12 * 5 + 24 * 9 + 2 * 8 * 4 * 4
    assert memory.predict(Recipe("itemknn", s), m) == 4 * 12 * 5 + 48 * 9 + 2 * 8 * 4 * 4
    blend = Recipe("blend", s, parts=("als", "ease"), weights=(0.5, 0.5))
    assert memory.predict(blend, m) == memory.predict(Recipe("als", s), m) + memory.predict(Recipe("ease", s), m)
    # EASE^R's m² term: 17,600 active products need more than 3.7 GB whatever the history.
    assert memory.ease_bytes(17_600, 0, 0) > 12 * 17_600**2 > 3.7e9
    assert memory.limit(s) == memory.machine_memory() // 2 > 0
    s.selection.max_memory_bytes = 12345
    assert memory.limit(s) == 12345


@pytest.mark.parametrize("family", ["ease", "als"])
def test_memory_prediction_bounds_a_measured_fit(family):
    """Tolerance: the prediction is an upper bound, at most 1.6 x the peak tracemalloc measures."""
    s = Settings()
    s.als.factors, s.als.iterations = 64, 2
    m = _matrix(20_000, 2_000, 200_000)
    users, items = [str(i) for i in range(m.shape[0])], [str(i) for i in range(m.shape[1])]
    families.fit(family, m[:50], users[:50], items, s)  # imports and first-call caches outside the measure
    tracemalloc.start()
    try:
        families.fit(family, m, users, items, s)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    predicted = memory.predict(Recipe(family, s), m)
    assert peak <= predicted <= 1.6 * peak, (family, peak, predicted)


def test_a_candidate_above_the_memory_limit_is_skipped_with_a_line_that_says_so(shop, settings):
    data = training.load_data(shop, settings)
    matrix = data.matrix(settings.als)
    als = memory.predict(Recipe("als", settings), matrix)
    ease = memory.predict(Recipe("ease", settings), matrix)
    assert ease > 4 * als
    settings.selection.max_memory_bytes = 2 * als  # room for ALS and what the search holds, not for EASE^R
    lines: list[str] = []
    recipe, choice = training.choose(shop, settings, data=data, log=lines.append)
    skipped = [x for x in lines if "skipped" in x and "selection.max_memory_bytes" in x]
    assert skipped and all(x.startswith("selection: ease") for x in skipped)
    assert "ease" in choice.record("implicit")["skipped"] and recipe.family == "als"


def test_a_choice_the_gate_refuses_gives_way_to_the_serving_recipe_for_later_nights(shop, settings):
    """Constructed: the last search 'chose' two-factor ALS while EASE^R serves; the gate refuses it once."""
    first = training.train(shop, settings, publish=True)
    assert first.metrics["params"]["family"] == "ease"
    last = store.last_search(shop)
    weak = gate.recipe(settings, "implicit")  # ALS with two factors cannot hold the sixty links
    # Its recorded test NDCG is low too, so the losing-ground rule does not search again first.
    store.record_search(shop, {**last, "recipe": weak, "label": "als f=2", "test": {**last["test"], "ndcg": 0.0}})
    with pytest.raises(Exception, match="below the current model"):
        training.train(shop, settings, publish=True)
    amended = store.last_search(shop)
    assert gate.recipe_id(amended["recipe"]) == gate.recipe_id(first.metrics["params"])
    assert amended["refused_choice"]["label"] == "als f=2"
    # The next night refits the serving recipe, without a search, and publishes.
    third = training.train(shop, settings, publish=True)
    assert third.metrics["schedule"]["reason"] == "scheduled" and third.published
    assert gate.recipe_id(third.metrics["params"]) == gate.recipe_id(first.metrics["params"])
