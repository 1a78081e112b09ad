"""Spark training from an export: same numbers as the driver path, and the driver never reads the events.

The reference is the driver path (numpy split, matrix and scoring, fitted by
the same Spark ALS); the path under test computes all of it on the executors
(``recommender/engines/spark_history.py``). Proof that the driver reads no
event: the database it is given has an empty events table, and an SQLite
authorizer on its connection counts every read of that table.

Tolerance: the split, the evaluated customers and the popularity baseline are
computed exactly, so they must match to float rounding (1e-6). The model's
metrics may differ by 0.01 NDCG at most: MLlib's ALS sums in the order its
partitions deliver the ratings, which differs between a Parquet export and
the driver's triplets (identical on this shop in practice).
"""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="needs the spark extra: pip install -e '.[spark]'")
if not (shutil.which("java") or __import__("os").environ.get("JAVA_HOME")):
    pytest.skip("needs Java 17+ on PATH or JAVA_HOME for Spark", allow_module_level=True)

from recommender import store
from recommender.config import load_settings
from recommender.data import exports, interactions, signals
from recommender.ingest import imports
from recommender.models import registry
from recommender.models.engines import spark as spark_engine
from recommender.training import run as training

pytestmark = pytest.mark.spark

OPTIONS = {"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "4"}, "interactions_path": None}


def shop_settings(root):
    settings = load_settings(environ={}, overrides={"db": root / "shop.db", "model_dir": root / "models"})
    settings.als.factors = 16
    settings.als.regularization = 10.0
    settings.als.iterations = 6
    return settings


@pytest.fixture(scope="module")
def spark():
    session = spark_engine.spark_session("local[2]", OPTIONS["conf"])
    yield session
    session.stop()


@pytest.fixture(scope="module")
def case(spark, tmp_path_factory):
    """Export the sample shop; then one customer withdraws; the driver path scores tonight's data."""
    root = tmp_path_factory.mktemp("spark-export")
    settings = shop_settings(root)
    db = store.connect(settings.db, create=True)
    imports.load_sample(db, settings)
    out = root / "export"
    exports.export_interactions(db, settings, out)
    withdrawn = db.execute(
        "SELECT c.customer_id FROM consents c JOIN interactions i ON i.customer_id = c.customer_id "
        "WHERE c.purpose = 'personalization' AND c.granted = 1 GROUP BY c.customer_id HAVING count(*) > 20 "
        "ORDER BY c.customer_id LIMIT 1"
    ).fetchone()[0]
    store.set_consents(db, [(withdrawn, "personalization", False, store.utcnow(), "test")])
    data = interactions.load(db, settings)
    assert withdrawn not in set(data.user_ids)
    reference = training.evaluate(db, settings, engine="spark", engine_options=dict(OPTIONS)).payload
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return settings, db, out, data, reference, withdrawn


def blind_copy(settings, root):
    """A copy of the database whose events table is empty and whose reads of it are counted."""
    root.mkdir()
    shutil.copy(settings.db, root / "shop.db")
    blind = shop_settings(root)
    db = store.connect(blind.db)
    db.execute("DELETE FROM interactions")
    assert db.execute("SELECT count(*) FROM interactions").fetchone()[0] == 0
    reads: list[str] = []

    def authorizer(action, table, column, _db, _trigger):
        if action == sqlite3.SQLITE_READ and table in ("interactions", "event_keys", "interaction_updates"):
            reads.append(f"{table}.{column}")
        return sqlite3.SQLITE_OK

    db.conn.set_authorizer(authorizer)
    return blind, db, reads


def test_spark_from_export_matches_the_driver_path_without_reading_events(case, tmp_path, monkeypatch):
    settings, _db, out, data, reference, withdrawn = case
    blind, db, reads = blind_copy(settings, tmp_path / "blind")
    # The nightly housekeeping after the retrain sweeps expired list ids off events (measurement
    # retention, recommender.training.maintenance): it runs for real, but its reads are not the trainer's.
    from recommender.training import maintenance

    real_run = maintenance.run

    def housekeeping(*args, **kwargs):
        before = len(reads)
        try:
            return real_run(*args, **kwargs)
        finally:
            del reads[before:]

    monkeypatch.setattr(maintenance, "run", housekeeping)
    result = training.train(
        db, blind, engine="spark", publish=True, force=False, engine_options=dict(OPTIONS, interactions_path=str(out))
    )
    assert reads == [], reads[:5]
    assert result.published
    metrics = result.metrics
    for key in ("users", "eligible_users", "cut_time", "k"):
        assert metrics[key] == reference[key], key
    for name, value in reference["popularity"].items():
        assert metrics["popularity"][name] == pytest.approx(value, abs=1e-6), name
    for name in ("ndcg", "precision", "recall", "map"):
        assert abs(metrics["model"][name] - reference["model"][name]) <= 0.01, (name, metrics, reference)
    assert metrics["model"]["ndcg"] > metrics["popularity"]["ndcg"]
    # The counts the gate and manifest record are the driver's, though the export still held the withdrawer.
    full = data.matrix(blind.als)
    assert result.data["interactions"] == len(data)
    assert (result.data["customers"], result.data["products"], result.data["pairs"]) == (*data.shape, full.nnz)
    assert result.data["reference_time"] == data.reference_time
    model = registry.Registry(blind.model_dir).load()
    assert model.manifest["spark"]["input"] == "export" and model.manifest["spark"]["driver_read_events"] is False
    assert model.user_ids == list(data.user_ids) and withdrawn not in model.user_index
    assert model.item_ids == list(data.item_ids)
    assert model.manifest["gate"]["refusal"] is None
    trained = np.diff(full.indptr) > 0
    assert np.all(np.linalg.norm(model.user_factors[trained], axis=1) > 0)
    # Popularity and bought-together, counted on the executors, are the driver's.
    expected = signals.compute(data, blind.purchase_events)
    np.testing.assert_array_equal(model.signals["popularity"], expected["popularity"])
    same = np.all(model.signals["together_items"] == expected["together_items"], axis=1)
    assert same.mean() >= 0.98, same.mean()  # lifts tied up to float32 rounding may swap places
    np.testing.assert_allclose(model.signals["together_lift"][same], expected["together_lift"][same], rtol=1e-5)


def test_spark_evaluation_curves_from_the_export(case, tmp_path):
    settings, _db, out, _data, reference, _ = case
    blind, db, reads = blind_copy(settings, tmp_path / "blind")
    result = training.evaluate(
        db, blind, engine="spark", curve_k=3, engine_options=dict(OPTIONS, interactions_path=str(out))
    )
    assert reads == []
    assert result.payload["popularity"]["ndcg"] == pytest.approx(reference["popularity"]["ndcg"], abs=1e-6)
    assert set(result.curves) == {"model", "popularity"}
    assert len(result.curves["model"]["ndcg"]) == 3
    # At k = 1 precision and NDCG are the same number (one slot, discount 1).
    assert result.curves["popularity"]["ndcg"][0] == pytest.approx(result.curves["popularity"]["precision"][0])


def test_spark_reads_only_the_files_the_manifest_lists(case, spark, tmp_path):
    """A file a killed export left behind is not part of the export."""
    settings, db, out, _data, _reference, _ = case
    copy = tmp_path / "export"
    shutil.copytree(out, copy)
    marker = exports.read_marker(copy)
    first = copy / marker["files"][0]["path"]
    shutil.copy(first, first.with_name("part-killed-0.parquet"))  # not listed
    frame = spark_engine.read_export_frame(spark, str(copy))
    assert frame.count() == marker["rows"] == len(exports.read_export(copy))


def test_the_exact_quantile_is_numpys(spark):
    from recommender.training import spark_history

    rng = np.random.default_rng(3)
    times = np.concatenate(
        [rng.integers(1_700_000_000, 1_700_000_000 + 90 * 86400, 5000), np.full(300, 1_700_500_000)]
    )  # ties on one second
    frame = spark.createDataFrame([(int(t),) for t in times], "t long")
    for q in (0.8, 0.5, 0.999):
        assert spark_history.cut_time(frame, q, len(times)) == int(np.quantile(times, q, method="higher"))
