import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from recommender import store
from recommender.cli import cli
from recommender.errors import GateRefused, ValidationError
from recommender.models import registry
from recommender.training import run as training


def current(settings):
    reg = registry.Registry(settings.model_dir)
    return reg.current_version(), reg.load()


def test_train_publishes_a_versioned_artifact(sample_db, fast_settings):
    result = training.train(sample_db, fast_settings, publish=True)
    assert result.published and result.gate is None
    version, model = current(fast_settings)
    assert version == result.version
    m = model.manifest
    assert m["engine"] == "implicit" and m["params"]["als"]["factors"] == 16
    assert m["data"]["interactions"] > 50_000 and m["data"]["customers"] == len(model.user_ids)
    assert m["metrics"]["model"]["ndcg"] > m["metrics"]["popularity"]["ndcg"]
    snapshot = m["consent_snapshot"]
    assert snapshot["customers"] == len(model.user_ids)
    # The hash, by its definition (each trained id, sorted, one per line), over the ids the artifact holds on disk.
    on_disk = json.loads((Path(result.path) / "ids.json").read_text(encoding="utf-8"))["users"]
    assert on_disk == list(model.user_ids)
    expected = hashlib.sha256("".join(f"{uid}\n" for uid in sorted(on_disk)).encode()).hexdigest()
    assert snapshot == {"purpose": "personalization", "customers": len(on_disk), "customer_ids_sha256": expected}
    row = sample_db["models"].get(result.version)
    assert row["status"] == "published" and json.loads(row["consent_snapshot"]) == snapshot
    # Every trained customer granted personalization consent.
    granted = {
        r[0]
        for r in sample_db.execute("SELECT customer_id FROM consents WHERE purpose='personalization' AND granted=1")
    }
    assert set(model.user_ids) <= granted


def test_without_publish_the_model_is_only_a_candidate(sample_db, fast_settings):
    result = training.train(sample_db, fast_settings, publish=False)
    assert not result.published
    assert registry.Registry(fast_settings.model_dir).current_version() is None
    assert sample_db["models"].get(result.version)["status"] == "candidate"


def test_gate_refuses_a_worse_model_and_keeps_the_current_one(sample_db, fast_settings):
    good = training.train(sample_db, fast_settings, publish=True)
    fast_settings.als.regularization = 1e6  # factors collapse to zero: no better than chance
    fast_settings.als.iterations = 2
    with pytest.raises(GateRefused) as info:
        training.train(sample_db, fast_settings, publish=True)
    message = str(info.value)
    assert "not above the popularity baseline" in message or "below the current model" in message
    assert f"{good.metrics['popularity']['ndcg']:.4f}" in message or f"{good.metrics['model']['ndcg']:.4f}" in message
    version, model = current(fast_settings)
    assert version == good.version
    statuses = [r["status"] for r in registry.list_models(sample_db)]
    assert sorted(statuses) == ["published", "rejected"]
    # --force publishes anyway.
    forced = training.train(sample_db, fast_settings, publish=True, force=True)
    assert forced.published and current(fast_settings)[0] == forced.version
    assert sample_db["models"].get(good.version)["status"] == "retired"


def test_a_publish_that_fails_midway_leaves_the_old_model_serving(sample_db, fast_settings, monkeypatch):
    good = training.train(sample_db, fast_settings, publish=True)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while moving the pointer")

    monkeypatch.setattr(registry.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        training.train(sample_db, fast_settings, publish=True, force=True)
    monkeypatch.undo()
    version, model = current(fast_settings)
    assert version == good.version and model.manifest["version"] == good.version

    def crash_rename(*args, **kwargs):
        raise KeyboardInterrupt("killed while renaming the artifact")

    monkeypatch.setattr(registry.os, "rename", crash_rename)
    with pytest.raises(KeyboardInterrupt):
        training.train(sample_db, fast_settings, publish=True, force=True)
    monkeypatch.undo()
    assert current(fast_settings)[0] == good.version
    leftovers = [p.name for p in fast_settings.model_dir.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers  # visible only as a temporary directory, never as a version
    training.train(sample_db, fast_settings, publish=True, force=True)
    assert not [p for p in fast_settings.model_dir.iterdir() if p.name.startswith(".tmp-")]


def test_retrain_killed_at_random_moments_never_breaks_current(sample_db, fast_settings, tmp_path):
    """Real processes, really killed (SIGKILL) at several points of a retrain."""
    good = training.train(sample_db, fast_settings, publish=True)
    env = {
        **os.environ,
        "RECOMMENDER_DB": str(fast_settings.db),
        "RECOMMENDER_MODEL_DIR": str(fast_settings.model_dir),
        "RECOMMENDER_ALS_FACTORS": "16",
        "RECOMMENDER_ALS_ITERATIONS": "8",
    }
    versions = {good.version}
    for delay in (0.3, 0.9, 1.5, 2.2):
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "retrain.py"), "--force"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        version, model = current(fast_settings)  # loads and verifies checksums
        assert model.manifest["version"] == version
        versions.add(version)
    assert good.version in versions


def test_cron_script_exit_codes(sample_db, fast_settings):
    env = {
        **os.environ,
        "RECOMMENDER_DB": str(fast_settings.db),
        "RECOMMENDER_MODEL_DIR": str(fast_settings.model_dir),
        "RECOMMENDER_ALS_FACTORS": "16",
        "RECOMMENDER_ALS_ITERATIONS": "8",
    }
    script = [sys.executable, str(ROOT / "scripts" / "retrain.py")]
    ok = subprocess.run(script, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "published"
    worse = subprocess.run(
        script,
        env={**env, "RECOMMENDER_ALS_REGULARIZATION": "1000000", "RECOMMENDER_ALS_ITERATIONS": "1"},
        capture_output=True,
        text=True,
    )
    assert worse.returncode == 3 and json.loads(worse.stdout)["status"] == "refused"
    store.connect(fast_settings.db.parent / "empty.db", create=True).conn.close()
    empty = subprocess.run(
        script + ["--db", str(fast_settings.db.parent / "empty.db")], env=env, capture_output=True, text=True
    )
    assert empty.returncode == 1 and "nothing to train on" in empty.stderr
    missing = subprocess.run(
        script + ["--db", str(fast_settings.db.parent / "typo.db")], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert not (fast_settings.db.parent / "typo.db").exists()


def test_nothing_to_train_on_is_a_clear_error(db, settings):
    with pytest.raises(ValidationError, match="nothing to train on"):
        training.train(db, settings)


def test_cli_train_evaluate_models_and_report(runner, sample_db, fast_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("RECOMMENDER_ALS_FACTORS", "16")
    result = runner.invoke(cli, ["train", "--publish", "--json"])
    assert result.exit_code == 0, result.output
    trained = json.loads(result.output)
    assert trained["published"] is True
    for key in ("precision", "recall", "ndcg", "map", "coverage"):
        assert key in trained["metrics"]["model"] and key in trained["metrics"]["popularity"]

    result = runner.invoke(cli, ["evaluate", "--json", "--k", "5", "--report", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["k"] == 5 and payload["users"] > 100 and payload["params"]["als"]["factors"] == 16
    assert {"model", "popularity", "k", "users", "params"} <= set(payload)
    assert (tmp_path / "rep" / "metrics_at_k.png").stat().st_size > 10_000
    assert "metrics_at_k.png" in (tmp_path / "rep" / "report.md").read_text()
    curves = json.loads((tmp_path / "rep" / "metrics.json").read_text())["curves"]
    assert len(curves["model"]["ndcg"]) == 20

    listed_result = runner.invoke(cli, ["models", "--json"])
    assert listed_result.exit_code == 0, (listed_result.output, listed_result.exception)
    listed = json.loads(listed_result.output)
    assert listed["current"] == trained["version"]
    assert listed["models"][0]["consent_snapshot"]["customers"] > 1000

    human = runner.invoke(cli, ["train"])
    assert human.exit_code == 0 and "candidate" in human.output


def test_cli_gate_refusal_exits_non_zero_with_both_numbers(runner, sample_db, fast_settings, monkeypatch):
    assert runner.invoke(cli, ["train", "--publish"]).exit_code == 0
    monkeypatch.setenv("RECOMMENDER_ALS_REGULARIZATION", "1000000")
    result = runner.invoke(cli, ["train", "--publish"])
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]  # progress lines go to stderr before it
    assert last.startswith("Error: not published: new model NDCG@10 ")
    assert last.count("0.") >= 2 and "--force" in last


def test_cli_tune_never_uses_the_test_period_and_writes_config(runner, sample_db, tmp_path):
    out = tmp_path / "tuned.toml"
    result = runner.invoke(cli, ["tune", "--trials", "3", "--json", "--write", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    evaluation = json.loads(runner.invoke(cli, ["evaluate", "--json"]).output)
    assert payload["validation_cut_time"] < evaluation["cut_time"]
    assert len(payload["trials"]) == 3
    assert payload["validation_ndcg"] == max(t["ndcg"] for t in payload["trials"])
    from recommender.config import load_settings

    tuned = load_settings(out, environ={})
    assert tuned.als.factors == payload["best"]["als"]["factors"]


def test_evaluate_with_an_export_goes_to_the_cluster_without_reading_events_on_the_driver(
    db, settings, tmp_path, monkeypatch
):
    """``recommender evaluate --engine spark --interactions PATH`` (evaluate_selected) and ``evaluate`` alike."""
    from recommender.models.engines import spark as spark_engine
    from recommender.training import spark as spark_training
    from recommender.training.publish import Evaluation

    calls = []
    # The routing is under test, not the cluster: this runs where the spark extra is not installed.
    monkeypatch.setattr(spark_engine, "check_prerequisites", lambda: None)

    def on_the_cluster(db_, settings_, fitter, **kwargs):
        calls.append(fitter.interactions_path)
        return Evaluation({"on": "cluster"}, None, None)  # type: ignore[arg-type]

    monkeypatch.setattr(spark_training, "evaluate", on_the_cluster)
    monkeypatch.setattr(training, "load_data", lambda *a: pytest.fail("the driver read the events"))
    export = tmp_path / "export"
    export.mkdir()
    options = {"master": "local[1]", "conf": {}, "interactions_path": str(export)}
    assert training.evaluate(db, settings, engine="spark", engine_options=options).payload == {"on": "cluster"}
    assert training.evaluate_selected(db, settings, engine="spark", engine_options=options).payload == {"on": "cluster"}
    assert calls == [str(export)] * 2
    assert training.on_cluster("spark", {"interactions_path": None}) is None
    assert training.on_cluster("implicit", options) is None
