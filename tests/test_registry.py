"""A registry that heals: kills at every step of a publish, retention, rollback, paths anchored to the database."""

import datetime as dt
import json
import os

import pytest

from recommender import store
from recommender.cli import cli
from recommender.errors import ModelError, NotFoundError, ValidationError
from recommender.models import registry
from recommender.training import run as training


def consistent(runner, settings):
    """Run the next command (`models`), then check the registry tells the truth."""
    result = runner.invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    reg = registry.Registry(settings.model_dir)
    current = reg.current_version()
    rows = {r["version"]: r for r in listing["models"]}
    published = [v for v, r in rows.items() if r["status"] == "published"]
    assert published == ([current] if current else [])
    assert set(reg.versions()) <= set(rows)  # every directory has a row
    assert all(rows[v]["status"] == "pruned" for v in set(rows) - set(reg.versions()))
    assert not [p for p in settings.model_dir.iterdir() if p.name.startswith(".tmp-")]
    reg.load()  # CURRENT names a complete, verified artifact
    return listing


@pytest.mark.parametrize("step", ["write", "rename", "record", "pointer", "status"])
def test_a_kill_at_each_step_of_publish_is_healed_by_the_next_command(
    step, runner, sample_db, fast_settings, monkeypatch
):
    first = training.train(sample_db, fast_settings, publish=True)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt(f"killed at {step}")

    target = {
        "write": (registry.Recommender, "save"),
        "rename": (registry.os, "rename"),
        "record": (registry, "record"),
        "pointer": (registry.os, "replace"),
        "status": (registry, "set_status"),
    }[step]
    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(*target, killed)
        training.train(sample_db, fast_settings, publish=True, force=True)
    listing = consistent(runner, fast_settings)
    if step == "status":  # the pointer had moved: the new model is the one serving, and says so
        assert listing["current"] != first.version
    else:
        assert listing["current"] == first.version
    if step == "record":  # the directory was complete but had no row: registered from its manifest
        assert len(listing["healed"]["registered"]) == 1


def test_retention_keeps_current_previous_and_young(runner, sample_db, fast_settings):
    versions = [training.train(sample_db, fast_settings, publish=True, force=True).version for _ in range(4)]
    candidate = training.train(sample_db, fast_settings, publish=False).version
    fast_settings.models.keep_previous = 1
    fast_settings.models.max_age_days = 7
    done = registry.prune(sample_db, fast_settings)
    # published before the one previous: gone however young; the young candidate stays a while
    assert done["kept"] == {versions[-1]: "current", versions[-2]: "rollback", candidate: "young"}
    assert sorted(done["removed"]) == sorted(versions[:2])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=8)
    assert registry.prune(sample_db, fast_settings, now=later)["removed"] == [candidate]
    assert sorted(registry.Registry(fast_settings.model_dir).versions()) == sorted(versions[-2:])
    statuses = {r["version"]: r["status"] for r in registry.list_models(sample_db)}
    assert [statuses[v] for v in versions] == ["pruned", "pruned", "retired", "published"]
    assert statuses[candidate] == "pruned"
    consistent(runner, fast_settings)


def test_rollback_swaps_the_pointer_and_refuses_what_was_never_published(runner, sample_db, fast_settings):
    old = training.train(sample_db, fast_settings, publish=True).version
    new = training.train(sample_db, fast_settings, publish=True, force=True).version
    candidate = training.train(sample_db, fast_settings, publish=False).version
    result = runner.invoke(cli, ["models", "--rollback", old, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"current": old, "previous": new}
    assert registry.Registry(fast_settings.model_dir).current_version() == old
    statuses = {r["version"]: r["status"] for r in registry.list_models(sample_db)}
    assert (statuses[old], statuses[new]) == ("published", "retired")
    with pytest.raises(ValidationError, match="never published"):
        registry.rollback(sample_db, fast_settings, candidate)
    with pytest.raises(NotFoundError):
        registry.rollback(sample_db, fast_settings, "20990101T000000Z-abcdef")
    refused = runner.invoke(cli, ["models", "--rollback", candidate])
    assert refused.exit_code == 1 and refused.output.startswith("Error:") and len(refused.output.splitlines()) == 1
    consistent(runner, fast_settings)


def test_rollback_refuses_a_corrupt_artifact(sample_db, fast_settings):
    old = training.train(sample_db, fast_settings, publish=True).version
    training.train(sample_db, fast_settings, publish=True, force=True)
    (registry.Registry(fast_settings.model_dir).path(old) / "item_factors.npy").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="checksum"):
        registry.rollback(sample_db, fast_settings, old)


def test_a_directory_deleted_by_hand_is_marked_pruned(runner, sample_db, fast_settings):
    import shutil

    first = training.train(sample_db, fast_settings, publish=True).version
    second = training.train(sample_db, fast_settings, publish=False).version
    shutil.rmtree(registry.Registry(fast_settings.model_dir).path(second))
    listing = consistent(runner, fast_settings)
    assert listing["healed"]["missing"] == [second]
    assert {r["version"]: r["status"] for r in listing["models"]} == {first: "published", second: "pruned"}


def test_the_model_folder_follows_the_database_not_the_current_directory(trained_template, tmp_path, monkeypatch):
    import shutil

    shop = tmp_path / "shop"
    shutil.copytree(trained_template, shop)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for var in ("RECOMMENDER_DB", "RECOMMENDER_MODEL_DIR", "RECOMMENDER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    from click.testing import CliRunner

    result = CliRunner().invoke(
        cli,
        [
            "campaign",
            "run",
            "--db",
            str(shop / "shop.db"),
            "--occasion",
            "all",
            "--date",
            "2026-06-01",
            "--days-ahead",
            "30",
            "--dry-run",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    expected = (shop / "models" / "CURRENT").read_text().strip()
    assert summary["model_version"] == expected
    assert summary["modes"].get("personalized", 0) > 0
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "name, content", [("no/such/dir/x.db", None), ("typo.db", None), ("data.csv", b"id,name\n1,a\n"), ("empty.db", b"")]
)
def test_commands_refuse_a_database_that_is_not_ours(name, content, tmp_path, monkeypatch):
    from click.testing import CliRunner

    monkeypatch.chdir(tmp_path)
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for args in (["stats"], ["models"], ["serve", "--port", "1"], ["train"]):
        result = CliRunner().invoke(cli, [*args, "--db", str(path)])
        assert result.exit_code == 1, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:") and str(path) in lines[0], result.output
        assert "recommender init" in lines[0] or "not a" in lines[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing created
    if content is not None:
        assert path.read_bytes() == content  # nothing changed


def test_the_nightly_job_applies_retention_and_checkpoints(sample_db, fast_settings, tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=200)).strftime("%Y-%m-%dT%H:%M:%SZ")
    store.insert_decisions(sample_db, [(None, old, "recommendations", None, "non_personalized", "popular", "[]")] * 7)
    env = {
        **os.environ,
        "RECOMMENDER_DB": str(fast_settings.db),
        "RECOMMENDER_MODEL_DIR": str(fast_settings.model_dir),
        "RECOMMENDER_ALS_FACTORS": "16",
        "RECOMMENDER_MODELS_KEEP_PREVIOUS": "1",
    }
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "retrain.py")], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["status"] == "published"
    assert report["maintenance"]["decisions_deleted"] == 7
    assert report["maintenance"]["wal"]["busy"] == 0
    assert (
        sample_db.execute("SELECT count(*) FROM decisions WHERE created_at < ?", [old[:4] + "-12-31"]).fetchone()[0]
        == 0
    )


def _tiny_model():
    import numpy as np

    from recommender.models.factor import FactorModel

    rng = np.random.default_rng(0)
    return FactorModel(
        rng.random((2, 3), dtype=np.float32),
        rng.random((2, 3), dtype=np.float32),
        ["c1", "c2"],
        ["p1", "p2"],
        0.1,
        {"created_at": "2025-01-01T00:00:00Z"},
    )


def test_publish_saves_records_and_moves_the_pointer_checking_before_each_step(db, settings):
    reg = registry.Registry(settings.model_dir)
    seen = []

    def check(path):
        seen.append((path.name, reg.current_version(), store.model_rows(db) and store.model_rows(db)[0]["status"]))

    path = registry.publish(db, reg, _tiny_model(), "v1", check=check)
    assert path == reg.path("v1") and reg.load().user_ids == ["c1", "c2"]
    assert reg.current_version() == "v1"
    assert [(r["version"], r["status"]) for r in registry.list_models(db)] == [("v1", "published")]
    # once on the saved directory before its row, once more right before the pointer moves
    assert seen == [("v1", None, []), ("v1", None, "candidate")]

    registry.publish(db, reg, _tiny_model(), "v2", make_current=False)
    assert reg.current_version() == "v1"
    assert {r["version"]: r["status"] for r in registry.list_models(db)} == {"v1": "published", "v2": "candidate"}
    registry.promote(db, reg, "v2")
    assert reg.current_version() == "v2"
    assert {r["version"]: r["status"] for r in registry.list_models(db)}["v2"] == "published"
    with pytest.raises(ModelError, match="already exists"):
        registry.publish(db, reg, _tiny_model(), "v2")


def test_rewrite_replaces_an_artifact_in_place_and_artifacts_lists_only_complete_ones(db, settings):
    reg = registry.Registry(settings.model_dir)
    registry.publish(db, reg, _tiny_model(), "v1")
    (reg.root / "not-an-artifact").mkdir()  # no manifest
    (reg.root / ".rewrite-1").mkdir()
    assert reg.artifacts() == [reg.path("v1")]
    model = reg.load("v1", mmap=False)
    model.manifest["note"] = "rewritten"
    with reg.lock():
        reg.rewrite("v1", model)
    again = reg.load("v1")  # checksums verified: the rewrite is complete
    assert again.manifest["note"] == "rewritten"
    assert sorted(p.name for p in reg.path("v1").iterdir() if p.name.startswith(".")) == []
