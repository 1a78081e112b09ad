"""The Spark engine end to end: train with ``local[2]``, publish, serve; the Parquet export; the errors.

Skipped unless pyspark (``pip install -e '.[spark]'``) and Java are present,
and deselected by default (run with ``pytest -m spark``). One SparkSession
serves the whole module, and the trained shop is shared, so the module runs
in a couple of minutes on two cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="needs the spark extra: pip install -e '.[spark]'")
if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
    pytest.skip("needs Java 17+ on PATH or JAVA_HOME for Spark", allow_module_level=True)

import pyarrow.dataset as ds
from click.testing import CliRunner

from recommender import store
from recommender.cli import cli
from recommender.config import load_settings
from recommender.data import interactions
from recommender.errors import ConfigError
from recommender.ingest import imports
from recommender.models import registry
from recommender.models.engines import get_engine, spark as spark_engine
from recommender.models.factor import FactorModel
from recommender.training import evaluation, run as training

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = {"master": "local[2]", "conf": {}, "interactions_path": None}


def shop_settings(root: Path):
    """Settings both engines train with. ``regularization = 10`` suits the 400-product sample shop
    (the default 30 was tuned on Online Retail and over-regularises ``implicit`` here)."""
    settings = load_settings(environ={}, overrides={"db": root / "shop.db", "model_dir": root / "models"})
    settings.als.factors = 16
    settings.als.regularization = 10.0
    settings.serve.model_check_seconds = 0.0
    settings.serve.catalogue_ttl_seconds = 0.0
    return settings


@pytest.fixture(scope="module")
def spark():
    """The module's one SparkSession; the engines below reuse it."""
    session = spark_engine.spark_session("local[2]", {})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark-shop")
    settings = shop_settings(root)
    db = store.connect(settings.db, create=True)
    imports.load_sample(db, settings)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return settings, db


@pytest.fixture(scope="module")
def trained(spark, shop):
    """The sample shop retrained and published by the Spark engine."""
    settings, db = shop
    return training.train(db, settings, engine="spark", engine_options=dict(OPTIONS), publish=True, force=True)


@pytest.fixture(scope="module")
def exported(shop, tmp_path_factory):
    settings, db = shop
    out = tmp_path_factory.mktemp("export") / "interactions"
    result = CliRunner().invoke(cli, ["export-interactions", str(out), "--db", str(settings.db), "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.output)


def test_spark_model_is_published_and_served(trained, shop):
    settings, db = shop
    assert trained.published
    reg = registry.Registry(settings.model_dir)
    assert reg.current_version() == trained.version
    model = reg.load()
    assert model.manifest["engine"] == "spark"
    assert model.manifest["spark"]["master"] == "local[2]" and model.manifest["spark"]["input"] == "driver"
    data = interactions.load(db, settings)
    assert model.user_ids == list(data.user_ids) and model.item_ids == list(data.item_ids)
    assert model.user_factors.dtype == np.float32 and model.user_factors.shape == (len(data.user_ids), 16)
    # Every customer and product with a pair got factors from Spark.
    full = data.matrix(settings.als)
    assert np.all(np.abs(model.user_factors[np.diff(full.indptr) > 0]).sum(axis=1) > 0)

    from api import create_app

    settings.serve.open = True  # as `serve --open`: no key needed from loopback
    client = create_app(settings).test_client()
    cid = db.execute(
        "SELECT customer_id FROM interactions i JOIN consents c USING (customer_id) "
        "WHERE c.purpose = 'personalization' AND c.granted = 1 "
        "GROUP BY customer_id HAVING count(*) > 20 ORDER BY customer_id LIMIT 1"
    ).fetchone()[0]
    response = client.get(f"/v1/customers/{cid}/recommendations?n=5")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["mode"] == "personalized" and body["model_version"] == trained.version
    assert len(body["items"]) == 5


def test_spark_ndcg_is_within_15_percent_of_implicit(trained, shop):
    settings, db = shop
    implicit = training.evaluate(db, settings, engine="implicit").payload
    spark_ndcg, implicit_ndcg = trained.metrics["model"]["ndcg"], implicit["model"]["ndcg"]
    assert trained.metrics["users"] == implicit["users"]  # the same split
    assert abs(spark_ndcg - implicit_ndcg) <= 0.15 * implicit_ndcg, (spark_ndcg, implicit_ndcg)
    assert spark_ndcg > trained.metrics["popularity"]["ndcg"]


def test_export_is_partitioned_parquet_of_consenting_customers_only(exported, shop):
    settings, db = shop
    out, summary = exported
    months = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert months and all(len(m) == len("month=2025-05") and m.startswith("month=") for m in months)
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    assert set(table.column_names) == {
        "event_id",
        "customer_id",
        "product_id",
        "event_type",
        "quantity",
        "weight",
        "occurred_at",
        "month",
    }
    assert table.num_rows == summary["rows"] == len(interactions.load(db, settings))
    customers = set(table.column("customer_id").to_pylist())
    granted = set(store.consenting_customers(db, "personalization"))
    refused = {r[0] for r in db.execute("SELECT DISTINCT customer_id FROM interactions")} - granted
    assert refused, "the sample shop should have customers without personalization consent"
    assert customers <= granted and not customers & refused
    # Each row sits in the folder of its own month; weights are type weight x quantity.
    rows = table.slice(0, 500).to_pylist()
    assert all(r["occurred_at"].strftime("%Y-%m") == r["month"] for r in rows)
    assert all(r["weight"] == pytest.approx(settings.event_weights[r["event_type"]] * r["quantity"]) for r in rows)


def test_export_refuses_to_overwrite_anything_but_an_export(shop, tmp_path):
    settings, _db = shop
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["export-interactions", str(tmp_path), "--db", str(settings.db)])
    assert result.exit_code == 1 and "not an earlier export" in result.output
    assert len(result.output.strip().splitlines()) == 1 and (tmp_path / "keep.txt").exists()


def test_spark_reads_the_export_when_it_matches_the_matrix(trained, exported, shop, spark):
    """From the export, Spark builds the same confidences and so the same factors as from the driver."""
    settings, db = shop
    out, _ = exported
    data = interactions.load(db, settings)
    engine = get_engine("spark", master="local[2]", conf={}, interactions_path=str(out))
    full = engine.fit(data.matrix(settings.als), data.user_ids, data.item_ids, settings.als)
    assert full.manifest["spark"]["input"] == "export"
    published = registry.Registry(settings.model_dir).load()  # its refit: the full matrix, from the driver
    np.testing.assert_allclose(full.user_factors, published.user_factors, atol=1e-4)
    np.testing.assert_allclose(full.item_factors, published.item_factors, atol=1e-4)
    # The evaluation split is not what the export holds: the driver's matrix is used.
    split = evaluation.temporal_split(data, settings.als, settings.evaluation)
    past = engine.fit(split.train, data.user_ids, data.item_ids, settings.als, iterations=1)
    assert past.manifest["spark"]["input"] == "driver" and past.manifest["spark"]["iterations"] == 1


def test_a_missing_export_is_a_one_line_config_error(spark, shop, tmp_path):
    settings, db = shop
    data = interactions.load(db, settings)
    with pytest.raises(ConfigError, match="cannot read interactions from .*nowhere") as info:
        spark_engine.SparkALS(interactions_path=tmp_path / "nowhere")  # checked before any data is loaded
    assert "\n" not in str(info.value)
    (tmp_path / "empty").mkdir()  # there, but no Parquet: Spark's own error, in one line
    with pytest.raises(ConfigError, match="cannot read interactions from .*empty") as info:
        spark_engine.SparkALS(interactions_path=tmp_path / "empty").fit(
            data.matrix(settings.als), data.user_ids, data.item_ids, settings.als
        )
    assert "\n" not in str(info.value)


def test_cluster_path_ships_the_same_triplets_through_the_driver(spark, shop, tmp_path):
    """Executors of a real cluster cannot read the driver's temp files; the Arrow path needs none."""
    settings, db = shop
    matrix = interactions.load(db, settings).matrix(settings.als)
    table = spark_engine.ratings_from_matrix(matrix, settings.als)
    engine = spark_engine.SparkALS()
    shipped = engine._to_spark(spark, table, tmp_path, via="arrow")
    via_arrow = spark_engine._to_arrow(shipped).sort_by([("user", "ascending"), ("item", "ascending")])
    assert via_arrow.num_rows == matrix.nnz
    assert (
        via_arrow.column("rating").to_pylist()
        == table.sort_by([("user", "ascending"), ("item", "ascending")]).column("rating").to_pylist()
    )
    # Spark's confidence 1 + alpha * rating is our matrix value (log scaling on).
    ratings = np.asarray(table.column("rating"))
    np.testing.assert_allclose(1 + settings.als.alpha * ratings, matrix.data, rtol=1e-5)


def test_regularisation_matches_the_heavier_side(shop):
    settings, db = shop
    matrix = interactions.load(db, settings).matrix(settings.als)
    per_customer = matrix.nnz / np.count_nonzero(np.diff(matrix.indptr))
    per_product = matrix.nnz / np.count_nonzero(np.bincount(matrix.indices, minlength=matrix.shape[1]))
    assert per_product > per_customer  # 400 products, 2,000 customers
    assert spark_engine.reg_param(matrix, 10.0) == pytest.approx(10.0 / per_product)


def test_missing_java_is_a_one_line_config_error(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    with pytest.raises(ConfigError) as info:
        spark_engine.find_java({"PATH": str(empty)})
    assert "Java 17" in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "jdk").mkdir()
    with pytest.raises(ConfigError, match="JAVA_HOME=.*has no bin/java"):
        spark_engine.find_java({"PATH": str(empty), "JAVA_HOME": str(tmp_path / "jdk")})
    assert Path(spark_engine.find_java()).name == "java"


def test_cli_without_java_exits_with_one_line(shop, tmp_path):
    """The real command in a fresh process whose PATH has no java: one line, status 1, before any loading."""
    settings, _ = shop
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PYSPARK_GATEWAY_PORT")}
    env["PATH"] = str(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from recommender.cli import main; main()",
            "train",
            "--engine",
            "spark",
            "--db",
            str(settings.db),
            "--json",
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "Java 17" in proc.stderr
    assert proc.stdout == ""


def test_missing_pyspark_is_a_one_line_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(ConfigError, match=r"pyspark is not installed .*pip install -e '\.\[spark\]'"):
        spark_engine.check_prerequisites()


def test_session_runs_without_ui(spark):
    assert spark.conf.get("spark.ui.enabled") == "false"
    assert spark.sparkContext.uiWebUrl is None


def test_cli_trains_on_spark_from_the_export_quietly(shop, exported, tmp_path):
    """``recommender train --engine spark --interactions``: one JSON object on stdout, no Spark log lines."""
    settings, _ = shop
    out, _ = exported
    shutil.copy(settings.db, tmp_path / "shop.db")
    env = {
        **os.environ,
        "RECOMMENDER_MODEL_DIR": str(tmp_path / "models"),
        "RECOMMENDER_ALS_FACTORS": "8",
        "RECOMMENDER_ALS_ITERATIONS": "3",
        "RECOMMENDER_ALS_REGULARIZATION": "10",
    }
    env.pop("RECOMMENDER_CONFIG", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from recommender.cli import main; main()",
            "train",
            "--engine",
            "spark",
            "--spark-master",
            "local[2]",
            "--spark-conf",
            "spark.sql.shuffle.partitions=4",
            "--interactions",
            str(out),
            "--db",
            str(tmp_path / "shop.db"),
            "--publish",
            "--force",
            "--json",
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["published"]
    manifest = FactorModel.read_manifest(result["path"])
    assert manifest["engine"] == "spark" and manifest["spark"]["input"] == "export"
    assert manifest["factors"] == 8
    noisy = [line for line in proc.stderr.splitlines() if " WARN " in line or " INFO " in line]
    assert not noisy, noisy
