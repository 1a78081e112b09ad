"""Per-shop selection chooses on a validation split of the training period, never on the test period.

The shops here are synthetic and tiny, written to a real SQLite file; each is
built so that the expected outcome is known by construction, not by running
the code under test.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from recommender import store
from recommender.config import load_settings
from recommender.models import families, registry
from recommender.store.rows import ConsentDecision, CustomerRow, EventRow, ProductRow
from recommender.training import evaluation, gate, run as training

DAY = 86400
T0 = 1_700_000_000  # November 2023: every event is in the past


def pairs_shop(db, *, pairs: int = 60, customers: int = 480, seed: int = 0, noise: int = 0) -> None:
    """Products come in pairs (a_k, b_k); a customer buys a_k, then b_k ten days later, plus ``noise`` random views.

    What predicts a customer's next product is one specific item-item link
    (a_k → b_k), ``pairs`` of them: an item model (EASE^R) learns each link
    from the customers who bought both, while two-factor ALS cannot hold sixty
    independent links. Every event has its own second, so rewriting an event's
    product can never merge two events.
    """
    rng = np.random.default_rng(seed)
    products = 2 * pairs
    store.upsert_customers(db, [CustomerRow(f"c{i:04d}", created_at="2023-01-01T00:00:00Z") for i in range(customers)])
    store.upsert_products(db, [ProductRow(f"p{j:04d}", f"p{j}", category="cat", price=1.0) for j in range(products)])
    store.set_consents(
        db,
        [
            ConsentDecision(f"c{i:04d}", "personalization", True, "2023-01-01T00:00:00Z", "test")
            for i in range(customers)
        ],
    )
    rows, second = [], 0
    for c in range(customers):
        k = int(rng.integers(pairs))
        start = int(rng.integers(0, 200))
        events = [(2 * k, "purchase", start), (2 * k + 1, "purchase", start + 10)]
        events += [(int(rng.integers(products)), "view", int(rng.integers(0, 210))) for _ in range(noise)]
        for item, kind, day in events:
            second += 1
            rows.append(EventRow(f"c{c:04d}", f"p{item:04d}", kind, 1.0, T0 + day * DAY + second))
    store.upsert_interactions(db, rows)


def tiny(settings, families_=("als", "ease"), **changes):
    """Tiny grids: a handful of candidates per test."""
    settings.selection.enabled = True
    settings.selection.families = tuple(families_)
    settings.selection.half_lives = (0.0, 14.0)
    settings.selection.weight_profiles = False
    settings.selection.als_scales = (3.0,)
    settings.selection.ease_scales = (0.3, 3.0)
    settings.selection.graph_neighbours = (50.0,)
    settings.selection.graph_alphas = (1.0,)
    settings.selection.graph_betas = (0.3,)
    settings.selection.blend_weights = (0.5,)
    settings.als.factors = 2
    settings.als.iterations = 6
    for name, value in changes.items():
        setattr(settings.selection, name, value)
    return settings


@pytest.fixture
def pairs_db(db, settings):
    pairs_shop(db)
    return db


def test_a_planted_item_model_winner_is_chosen(pairs_db, settings):
    tiny(settings)
    recipe, choice = training.choose(pairs_db, settings)
    record = choice.record("implicit")
    fams = record["families"]
    assert set(fams) >= {"als", "ease"}
    # By construction the next product is the partner of the last one: EASE^R knows each link.
    assert recipe.family in ("ease", "blend")
    assert fams["ease"]["validation_ndcg"] > 0.6
    assert fams["als"]["validation_ndcg"] < 0.5 * fams["ease"]["validation_ndcg"]
    assert record["validation"]["cut_time"] < record["validation"]["test_cut_time"]


def test_selection_choice_ignores_everything_after_the_test_cut(tmp_path):
    """Property: rewrite the test period (products, event types, quantities) at random; nothing selection sees moves.

    Timestamps stay (they define the split itself); everything an event says
    after the test cut is replaced. The test numbers of the chosen recipe do
    move, which shows the corruption was real.
    """
    base = load_settings(environ={}, overrides={"db": tmp_path / "base.db", "model_dir": tmp_path / "m0"})
    tiny(base, families_=("als", "ease", "rp3beta"))
    db = store.connect(base.db, create=True)
    pairs_shop(db, noise=2, customers=320, pairs=40)
    recipe, choice = training.choose(db, base)
    original = choice.record("implicit")
    data = training.load_data(db, base)
    cut = evaluation.cut_time(data.time, base.evaluation)
    chosen = training.evaluate(db, base, data=data, recipe=recipe)
    products = [r[0] for r in db.execute("SELECT id FROM products").fetchall()]
    db.conn.close()

    def seen(record):
        return [(c["label"], c["recipe"], c["validation_ndcg"]) for c in record["candidates"]]

    moved_test_numbers = 0
    for seed in range(2):
        rng = np.random.default_rng(100 + seed)
        settings = dataclasses.replace(base, db=tmp_path / f"corrupt{seed}.db")
        (tmp_path / f"corrupt{seed}.db").write_bytes((tmp_path / "base.db").read_bytes())
        bad = store.connect(settings.db)
        rows = bad.execute("SELECT id FROM interactions WHERE occurred_at >= ?", [cut]).fetchall()
        assert len(rows) > 50
        with store.transaction(bad):
            for (row_id,) in rows:
                bad.conn.execute(
                    "UPDATE interactions SET product_id = ?, event_type = ?, quantity = ? WHERE id = ?",
                    [
                        products[int(rng.integers(len(products)))],
                        ["view", "purchase", "add_to_cart"][int(rng.integers(3))],
                        float(rng.integers(1, 20)),
                        row_id,
                    ],
                )
        again, choice = training.choose(bad, settings)
        corrupted = choice.record("implicit")
        assert seen(corrupted) == seen(original)
        assert corrupted["chosen"] == original["chosen"]
        assert corrupted["validation"] == original["validation"]
        after = training.evaluate(bad, settings, recipe=again)
        moved_test_numbers += after.payload["model"]["ndcg"] != chosen.payload["model"]["ndcg"]
        bad.conn.close()
    assert moved_test_numbers == 2


def test_no_select_keeps_the_configured_als(pairs_db, settings, runner, monkeypatch):
    monkeypatch.setenv("RECOMMENDER_SELECTION_ENABLED", "1")  # on, as for a shop: the flag turns it off
    result = runner.invoke(
        __import__("recommender.cli", fromlist=["cli"]).cli,
        ["train", "--no-select", "--json", "--db", str(settings.db)],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert "selection" not in out["metrics"] and "select" not in out["seconds"]
    params = out["metrics"]["params"]
    assert "family" not in params
    # The recipe is the configured one, hashed as before families existed.
    configured = load_settings(environ={}, overrides={"db": settings.db})
    assert params["als"] == dataclasses.asdict(configured.als)
    text = json.dumps(
        {"engine": "implicit", "als": dataclasses.asdict(configured.als), "event_weights": configured.event_weights},
        sort_keys=True,
    )
    import hashlib

    assert out["metrics"]["params"] and gate.recipe_id(params) == hashlib.sha256(text.encode()).hexdigest()[:12]


def test_the_gate_refits_an_incumbent_of_another_family_on_the_same_split(pairs_db, settings):
    tiny(settings)
    settings.selection.blend_weights = ()
    first = training.train(pairs_db, settings, publish=True)
    assert first.metrics["params"]["family"] == "ease"
    # Tonight selection is off: the configured ALS against the serving EASE^R recipe.
    settings.selection.enabled = False
    settings.als.factors = 16
    second = training.train(pairs_db, settings, publish=True, force=True)
    record = registry.Registry(settings.model_dir).manifest(second.version)["gate"]
    theirs = record["incumbent"]
    assert theirs["version"] == first.version and theirs["same_recipe"] is False
    assert theirs["cut_time"] == record["split"]["cut_time"] == second.metrics["cut_time"]
    # Independently: EASE^R with the incumbent's λ and half-life, fitted straight on tonight's split.
    recorded = first.metrics["params"]
    ease_settings = dataclasses.replace(settings)
    ease_settings.ease = dataclasses.replace(settings.ease, regularization=recorded["ease"]["regularization"])
    ease_settings.als = dataclasses.replace(settings.als, half_life_days=recorded["als"]["half_life_days"])
    data = training.load_data(pairs_db, settings)
    split = evaluation.temporal_split(data, ease_settings.als, settings.evaluation)
    model = families.fit("ease", split.train, list(data.user_ids), list(data.item_ids), ease_settings)
    expected = evaluation.evaluate_model(model, split, settings.evaluation.k).metrics["ndcg"]
    assert theirs["ndcg"] == pytest.approx(expected, abs=1e-6)
    # ALS with two factors cannot hold the links: the gate refuses it against EASE^R's recipe.
    assert second.gate and "below the current model" in second.gate


def test_selection_settings_from_the_environment():
    s = load_settings(
        environ={
            "RECOMMENDER_SELECTION_HALF_LIVES": "0,3.5",
            "RECOMMENDER_SELECTION_FAMILIES": "als,ease",
            "RECOMMENDER_SELECTION_ENABLED": "false",
        }
    )
    assert s.selection.half_lives == (0.0, 3.5) and s.selection.families == ("als", "ease")
    assert s.selection.enabled is False


def test_serving_folds_a_customer_in_by_the_models_recipe_not_the_servers_config(settings):
    """Selection may choose no decay while the config says 14 days: fold-in must follow the model."""
    from recommender.models.factor import FactorModel
    from recommender.serving import ranking

    model = FactorModel(np.ones((1, 2), np.float32), np.eye(2, dtype=np.float32), ["c1"], ["p1", "p2"], 1.0)
    recorded = dataclasses.replace(settings.als, half_life_days=0.0)
    model.manifest["params"] = {
        "engine": "implicit",
        "als": dataclasses.asdict(recorded),
        "event_weights": {"view": 1.0, "purchase": 5.0},
    }
    model.manifest["data"] = {"reference_time": T0}
    settings.als.half_life_days = 14.0
    events = [("p1", "purchase", 1.0, T0), ("p1", "purchase", 1.0, T0 - 14 * DAY), ("p2", "view", 2.0, T0)]
    _, items, conf = ranking.fold_in(model, settings, events)
    # No decay: p1 = 5 + 5 = 10, p2 = 1 x 2 = 2; confidence 1 + alpha·log1p(x) with the default alpha 2.
    assert items.tolist() == [0, 1]
    assert conf.tolist() == pytest.approx([1 + 2 * np.log1p(10.0), 1 + 2 * np.log1p(2.0)], rel=1e-6)
    # A model without a recorded recipe keeps the server's rules (14-day decay: 5 + 2.5).
    del model.manifest["params"]
    model._serving_settings = None
    _, _, conf = ranking.fold_in(model, settings, events)
    assert conf[0] == pytest.approx(1 + 2 * np.log1p(7.5), rel=1e-6)


def test_cli_train_models_and_report_show_every_family_beside_popularity(
    pairs_db, settings, runner, monkeypatch, tmp_path
):
    from recommender.cli import cli

    tiny_env = {
        "ENABLED": "1",
        "FAMILIES": "als,ease",
        "HALF_LIVES": "0",
        "WEIGHT_PROFILES": "0",
        "ALS_SCALES": "3",
        "EASE_SCALES": "1",
        "BLEND_WEIGHTS": "0.5",
    }
    for name, value in tiny_env.items():
        monkeypatch.setenv(f"RECOMMENDER_SELECTION_{name}", value)
    monkeypatch.setenv("RECOMMENDER_ALS_FACTORS", "2")
    trained = runner.invoke(cli, ["train", "--publish", "--json"])
    assert trained.exit_code == 0, trained.output
    sel = json.loads(trained.output)["metrics"]["selection"]
    assert set(sel["families"]) == {"als", "ease", "blend"}
    assert all(e["test_ndcg"] is not None for e in sel["families"].values())
    listed = runner.invoke(cli, ["models"])
    assert listed.exit_code == 0, listed.output
    line = listed.output.splitlines()[2]
    for name in ("als", "ease", "blend", "popularity"):
        assert f"{name} " in line
    report = runner.invoke(cli, ["evaluate", "--report", str(tmp_path / "rep")])
    assert report.exit_code == 0, report.output
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "How the model was chosen" in text
    assert "| ease" in text and "| popularity |" in text


def test_the_serving_recipe_is_kept_unless_clearly_beaten_on_validation():
    """Hand-made candidates: with a 2 % margin, 0.1015 does not unseat 0.1000, 0.1030 does."""
    import copy
    import types

    from recommender.config import Settings
    from recommender.training import gate
    from recommender.training.recipes import Recipe
    from recommender.training.selection import Candidate, _sticky

    base = Settings()
    base.selection.switch_margin = 0.02
    serving_settings = copy.deepcopy(base)
    serving_settings.als.half_life_days = 30.0
    serving = Recipe("als", serving_settings, label="als hl=30")
    incumbent = gate.recipe(serving_settings, "implicit")
    for best_ndcg, kept in ((0.1015, True), (0.1030, False)):
        challenger = Recipe("als", copy.deepcopy(base), label="als hl=14")
        mine, best = Candidate(serving, 0.1000, 1.0), Candidate(challenger, best_ndcg, 1.0)
        search = types.SimpleNamespace(engine="implicit", base=base, candidates=[mine, best], stopped=False)
        got = _sticky(search, base, best, incumbent, lambda _: None)
        assert (got is mine) == kept
    # Another engine's recipe (Spark) is never forced on the implicit path.
    assert _sticky(search, base, best, {**incumbent, "engine": "spark"}, lambda _: None) is None


def test_tie_rule_prefers_the_blend_within_one_paired_standard_error():
    """Hand-computed: A−B per customer = (0.1, −0.1, 0.1, −0.06): mean 0.01, SE √(0.0332/3/4) = 0.05260."""
    from recommender.training.finalists import FoldScores, pick, standard_error

    users = np.arange(4)

    def at(*cuts):
        f = FoldScores()
        for q, values in cuts:
            f.add(q, users, np.array(values))
        return f

    single = at((0.8, [0.4, 0.2, 0.5, 0.1]))
    blend = at((0.8, [0.3, 0.3, 0.4, 0.16]))
    far_blend = at((0.8, [0.0, 0.0, 0.0, 0.0]))
    assert standard_error(single, blend) == pytest.approx(np.sqrt(0.0332 / 12), abs=1e-9)
    assert single.mean() == pytest.approx(0.3) and blend.mean() == pytest.approx(0.29)
    assert pick([("A", single, 1), ("B", blend, 2)], 1.0)[0] == 1
    assert pick([("A", single, 1), ("B", blend, 2)], 0.0)[0] == 0  # rule off: plain best mean
    assert pick([("A", single, 1), ("B", blend, 2)], 0.1)[0] == 0  # 0.01 > 0.1 × 0.0526
    # 0.3 below, SE √(0.1/3/4) = 0.0913: not a tie, however many parts.
    assert pick([("A", single, 1), ("C", far_blend, 3)], 1.0)[0] == 0
    # Two cuts: the mean of the cuts' means decides; the SE adds the cuts' variances over 2².
    a2 = at((0.7, [0.2, 0.2, 0.2, 0.2]), (0.8, [0.4, 0.2, 0.5, 0.1]))  # mean (0.2 + 0.3) / 2 = 0.25
    b2 = at((0.7, [0.3, 0.3, 0.3, 0.3]), (0.8, [0.3, 0.3, 0.4, 0.16]))  # (0.3 + 0.29) / 2 = 0.295
    assert a2.mean() == pytest.approx(0.25) and b2.mean() == pytest.approx(0.295)
    assert standard_error(a2, b2) == pytest.approx(np.sqrt(0.0 + 0.0332 / 12) / 2, abs=1e-9)
    index, rule, tied = pick([("A", a2, 1), ("B", b2, 1)], 1.0)
    assert index == 1 and tied == [1] and rule == "best mean validation NDCG"


def test_finalists_are_scored_at_every_cut_of_the_training_period(pairs_db, settings):
    """Each finalist's score at the 0.7 cut equals the protocol's own evaluation of its recipe at that cut."""
    tiny(settings, folds=(0.7, 0.9))
    recipe, choice = training.choose(pairs_db, settings)
    record = choice.record("implicit")
    assert record["validation"]["cuts"] == [0.8, 0.7, 0.9]
    assert choice.chosen is not None and choice.chosen.recipe.id("implicit") == recipe.id("implicit")
    data = training.load_data(pairs_db, settings)
    test_cut = evaluation.cut_time(data.time, settings.evaluation)
    for name in ("als", "ease"):
        entry = record["families"][name]
        assert set(entry["validation_by_cut"]) == {"0.7", "0.8", "0.9"}
        cand = choice.best_by_family[name]
        ev = dataclasses.replace(settings.evaluation, cut_quantile=0.7)
        d = data.reweighted(cand.recipe.settings.event_weights)
        split = evaluation.temporal_split(d, cand.recipe.settings.als, ev, base_mask=data.time < test_cut)
        assert split.cut_time < record["validation"]["cut_time"]
        model = families.fit(name, split.train, list(data.user_ids), list(data.item_ids), cand.recipe.settings)
        expected = evaluation.evaluate_model(model, split, settings.evaluation.k).metrics["ndcg"]
        assert entry["validation_by_cut"]["0.7"] == pytest.approx(expected, abs=1e-6)
    # One cut only: the choice is the search's best, as before this rule.
    tiny(settings, folds=(), tie_standard_errors=0.0)
    _, single = training.choose(pairs_db, settings)
    assert single.record("implicit")["validation"]["cuts"] == [0.8]
    assert single.chosen is max(single.candidates, key=lambda c: c.ndcg)


def test_bad_selection_folds_are_refused_naming_the_setting():
    from recommender.errors import ConfigError

    with pytest.raises(ConfigError, match="folds"):
        load_settings(environ={"RECOMMENDER_SELECTION_FOLDS": "0.7,1.2"})
    with pytest.raises(ConfigError, match="tie_standard_errors"):
        load_settings(environ={"RECOMMENDER_SELECTION_TIE_STANDARD_ERRORS": "-1"})
