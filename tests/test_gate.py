"""The release gate compares like with like: one split, and no model scored on what it was trained on."""

import json
import time

import numpy as np
import pytest

from recommender.data import interactions
from recommender.errors import GateRefused
from recommender.models import registry
from recommender.models.factor import FACTOR_FILES, MANIFEST_FILE, _sha256
from recommender.training import run as training


@pytest.fixture
def fast_settings(fast_settings):
    """Enough capacity that the demo shop's model clearly beats popularity (0.17 vs 0.15 at 16 x 10)."""
    fast_settings.als.iterations = 10
    return fast_settings


def manifest_path(settings, version):
    return registry.Registry(settings.model_dir).path(version) / MANIFEST_FILE


def rewrite_manifest(settings, version, change):
    path = manifest_path(settings, version)
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_a_routine_retrain_is_not_refused_because_an_older_split_scored_higher(sample_db, fast_settings):
    first = training.train(sample_db, fast_settings, publish=True)
    # The current model's stored number came from another split (here: an unbeatable one).
    # The old gate compared tonight's NDCG with it and refused every night.
    rewrite_manifest(fast_settings, first.version, lambda m: m["metrics"]["model"].update(ndcg=0.99))
    again = training.train(sample_db, fast_settings, publish=True)
    assert again.published and again.gate is None
    record = registry.Registry(fast_settings.model_dir).manifest(again.version)["gate"]
    assert record["incumbent"]["version"] == first.version
    assert record["incumbent"]["same_recipe"] is True
    assert record["incumbent"]["ndcg"] is None  # nothing of the old model was scored
    assert record["split"]["cut_time"] == again.metrics["cut_time"]


def test_changed_settings_are_compared_on_the_same_split(sample_db, fast_settings):
    first = training.train(sample_db, fast_settings, publish=True)
    old_recipe = training.evaluate(sample_db, fast_settings).payload  # the current settings on tonight's split
    fast_settings.als.factors = 8
    second = training.train(sample_db, fast_settings, publish=False)
    record = registry.Registry(fast_settings.model_dir).manifest(second.version)["gate"]
    theirs = record["incumbent"]
    assert theirs["version"] == first.version and theirs["same_recipe"] is False
    assert theirs["cut_time"] == record["split"]["cut_time"] == second.metrics["cut_time"]
    assert theirs["ndcg"] == pytest.approx(old_recipe["model"]["ndcg"], abs=1e-9)
    assert [c["name"] for c in record["checks"]][-1] == "settings_vs_current"


def test_the_current_models_own_factors_are_never_scored(sample_db, fast_settings):
    """It was refitted on all data, test period included: its factors must not influence the gate."""
    first = training.train(sample_db, fast_settings, publish=True)
    fast_settings.als.factors = 8
    before = training.train(sample_db, fast_settings, publish=False)
    # Replace the serving model's factors with noise (checksums kept valid, so it still loads).
    directory = registry.Registry(fast_settings.model_dir).path(first.version)
    for name in FACTOR_FILES:
        array = np.load(directory / name)
        np.save(directory / name, np.random.default_rng(0).normal(size=array.shape).astype(np.float32))
    rewrite_manifest(
        fast_settings, first.version, lambda m: m["checksums"].update({n: _sha256(directory / n) for n in FACTOR_FILES})
    )
    after = training.train(sample_db, fast_settings, publish=False)
    reg = registry.Registry(fast_settings.model_dir)
    assert (
        reg.manifest(after.version)["gate"]["incumbent"]["ndcg"]
        == reg.manifest(before.version)["gate"]["incumbent"]["ndcg"]
    )


def plant_future_events(db, n, when="2100-01-01"):
    epoch = int(time.mktime(time.strptime(when, "%Y-%m-%d")))
    rows = db.execute(
        "SELECT i.customer_id, i.product_id FROM interactions i JOIN consents c ON c.customer_id = "
        "i.customer_id AND c.purpose = 'personalization' AND c.granted = 1 ORDER BY i.id LIMIT ?",
        [n],
    ).fetchall()
    db.conn.executemany(
        "INSERT INTO interactions (customer_id, product_id, event_type, quantity, occurred_at) "
        "VALUES (?, ?, 'purchase', 1, ?)",
        [(c, p, epoch + i) for i, (c, p) in enumerate(rows)],
    )
    return epoch


def test_a_future_dated_batch_is_refused_and_the_next_clean_night_publishes(sample_db, fast_settings):
    good = training.train(sample_db, fast_settings, publish=True)
    plant_future_events(sample_db, 500)  # a broken import that bypassed the doors
    with pytest.raises(GateRefused, match=r"500 of [\d,]+ events .* are dated after the training time .*2100-01-01"):
        training.train(sample_db, fast_settings, publish=True)
    assert registry.Registry(fast_settings.model_dir).current_version() == good.version
    sample_db.execute("DELETE FROM interactions WHERE occurred_at > strftime('%s', 'now')")
    assert training.train(sample_db, fast_settings, publish=True).published


def test_one_future_dated_event_moves_nothing(sample_db, fast_settings):
    clean = interactions.load(sample_db, fast_settings)
    epoch = plant_future_events(sample_db, 1, "2027-12-01")
    dirty = interactions.load(sample_db, fast_settings)
    assert dirty.future_events == 1 and dirty.newest_future == epoch
    assert dirty.reference_time == clean.reference_time  # the decay reference did not jump
    assert (dirty.matrix(fast_settings.als) != clean.matrix(fast_settings.als)).nnz == 0
    result = training.train(sample_db, fast_settings, publish=True)
    assert result.published and result.data["future_events_left_out"] == 1


def test_a_history_that_lost_most_of_its_rows_is_refused(sample_db, fast_settings):
    training.train(sample_db, fast_settings, publish=True)
    sample_db.execute("DELETE FROM interactions WHERE id % 5 != 0")  # 80 % gone: a partial import
    with pytest.raises(GateRefused, match=r"history shrank from [\d,]+ to [\d,]+ interactions \(80%\)"):
        training.train(sample_db, fast_settings, publish=True)


def test_withdrawals_do_not_make_the_nightly_retrain_fail(sample_db, fast_settings):
    """The reproduction of the issue: 10 % withdraw, the same settings retrain nightly."""
    training.train(sample_db, fast_settings, publish=True)
    customers = [
        r[0]
        for r in sample_db.execute(
            "SELECT customer_id FROM consents WHERE purpose = 'personalization' AND granted = 1 ORDER BY customer_id"
        )
    ]
    for night in range(3):
        chosen = customers[night::30][: len(customers) // 30]
        sample_db.execute(
            "UPDATE consents SET granted = 0 WHERE purpose = 'personalization' AND customer_id IN "
            "(SELECT value FROM json_each(?))",
            [json.dumps(chosen)],
        )
        assert training.train(sample_db, fast_settings, publish=True).published
