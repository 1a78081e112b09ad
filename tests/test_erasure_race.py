"""Erasure wins every race: a retrain overlapping an erasure publishes nothing of the erased customer,
and a stopped retrain leaves no temporary files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from recommender import privacy, store
from recommender.cli import cli
from recommender.data import bulk
from recommender.models import registry
from recommender.models.factor import FactorModel
from recommender.privacy import reconcile

RECOMMENDER = str(Path(sys.executable).parent / "recommender")


def _env(settings) -> dict[str, str]:
    """The child's environment: this test's database and model folder, small quick ALS settings."""
    config = Path(settings.db).with_name("quick.toml")
    config.write_text("[als]\nfactors = 16\niterations = 8\n[selection]\nenabled = false\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    env.update(
        RECOMMENDER_DB=str(settings.db), RECOMMENDER_MODEL_DIR=str(settings.model_dir), RECOMMENDER_CONFIG=str(config)
    )
    return env


def _active(db, offset: int = 0) -> str:
    return db.execute(
        "SELECT c.customer_id FROM consents c JOIN interactions i ON i.customer_id = c.customer_id "
        "WHERE c.purpose = 'personalization' AND c.granted = 1 GROUP BY c.customer_id HAVING count(*) > 20 "
        "ORDER BY c.customer_id LIMIT 1 OFFSET ?",
        [offset],
    ).fetchone()[0]


def _popularity_by_sql(db, settings, item_ids) -> np.ndarray:
    """Distinct consenting customers per product over weighted event types, counted by SQL."""
    types = [t for t, w in settings.event_weights.items() if w > 0]
    rows = dict(
        db.execute(
            "SELECT i.product_id, count(DISTINCT i.customer_id) FROM interactions i JOIN consents c "
            "ON c.customer_id = i.customer_id AND c.purpose = 'personalization' AND c.granted = 1 "
            f"WHERE i.event_type IN ({', '.join('?' * len(types))}) AND i.quantity > 0 GROUP BY i.product_id",
            types,
        ).fetchall()
    )
    return np.array([rows.get(p, 0) for p in item_ids], dtype=np.float32)


def test_a_train_overlapping_an_erasure_publishes_no_trace_of_them(served, runner, monkeypatch):
    db = store.connect(served.db)
    cid = _active(db)
    old = registry.Registry(served.model_dir).current_version()
    proc = subprocess.Popen(
        [RECOMMENDER, "train", "--publish", "--force"],
        env=_env(served),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in proc.stderr:  # erase right after the trainer has read the data and starts fitting
        seen.append(line)
        if line.startswith("fitting"):
            break
    assert seen and seen[-1].startswith("fitting"), "".join(seen)
    erased = privacy.forget(db, served, cid)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err

    reg = registry.Registry(served.model_dir)
    new = reg.current_version()
    assert new != old
    model = reg.load(new)
    # The trainer read them (its consent snapshot counts them) and removed their row before publishing.
    assert model.manifest["consent_snapshot"]["customers"] == len(model.user_ids) + 1
    assert cid not in model.user_ids and model.user_factors.shape[0] == len(model.user_ids)
    assert model.manifest["erased_subjects"] == [erased["tombstone"]]
    assert reconcile.artifact_epoch(model.manifest) >= store.privacy_epoch(db)
    # Its popularity no longer counts them: compare with a count made by SQL over what is left.
    assert np.array_equal(model.signals["popularity"], _popularity_by_sql(db, served, model.item_ids))
    for path in Path(served.model_dir).rglob("*"):
        if path.is_file():
            assert cid.encode() not in path.read_bytes(), path

    listed = json.loads(runner.invoke(cli, ["models", "--customer", cid, "--json"]).output)
    by_version = {m["version"]: m for m in listed["models"]}
    for version in (old, new):
        assert by_version[version]["trained_on_customer"] is True
        assert by_version[version]["customer_removed_since"] == "erased"


def _tiny_model(user_ids):
    rng = np.random.default_rng(0)
    return FactorModel(
        rng.random((len(user_ids), 3), dtype=np.float32),
        rng.random((2, 3), dtype=np.float32),
        list(user_ids),
        ["P0001", "P0002"],
        0.1,
        {"version": "v"},
    )


def test_reconcile_model_removes_only_those_erased_or_withdrawn_after_the_epoch(served):
    db = store.connect(served.db)
    a, b, c, d = (_active(db, i) for i in range(4))
    privacy.forget(db, served, a)  # before the epoch: not this job's business
    epoch = store.privacy_epoch(db)
    model = _tiny_model(sorted([a, b, c, d]))
    rows = {u: np.array(model.user_factors[i]) for i, u in enumerate(model.user_ids)}
    privacy.forget(db, served, b)
    store.set_consents(db, [(c, "personalization", False, store.utcnow(), "test")])
    store.set_consents(db, [(d, "marketing", False, store.utcnow(), "test")])  # not personalization
    result = reconcile.reconcile_model(db, served, model, epoch)
    assert result["erased"] == 1 and result["withdrawn"] == 1 and result["epoch"] == store.privacy_epoch(db)
    assert model.user_ids == sorted([a, d])
    assert [model.user_index[u] for u in model.user_ids] == [0, 1]
    for u in model.user_ids:
        assert np.array_equal(model.user_factors[model.user_index[u]], rows[u])
    assert model.manifest["erased_subjects"] == [privacy.subject_of(db, served, b)]
    assert model.manifest["withdrawn_subjects"] == [privacy.subject_of(db, served, c)]
    again = reconcile.reconcile_model(db, served, model, result["epoch"])
    assert again["erased"] == again["withdrawn"] == 0


def test_an_erasure_after_the_persons_own_withdrawal_is_newer_than_any_epoch_read_before_it(served):
    """The erasure deletes the person's withdrawal event and records its own: when that withdrawal was the newest
    event, the erasure must still come after it, or a job that read the epoch in between misses the erasure."""
    db = store.connect(served.db)
    a, b = _active(db, 0), _active(db, 1)
    model = _tiny_model(sorted([a, b]))
    store.set_consents(db, [(a, "personalization", False, store.utcnow(), "test")])
    store.set_consents(db, [(a, "personalization", True, store.utcnow(), "test")])  # back: trained on again
    epoch = store.privacy_epoch(db)  # a retrain reads this, then a's data
    assert [(e["id"], e["kind"], e["customer_id"]) for e in store.privacy_events_since(db, epoch - 1)] == [
        (epoch, "withdrawal", a)
    ]
    privacy.forget(db, served, a)  # while it trains
    (event,) = store.privacy_events_since(db, epoch)  # the erasure, after the epoch the job read
    assert event["kind"] == "erasure" and event["id"] == epoch + 1
    result = reconcile.reconcile_model(db, served, model, epoch)
    assert result["erased"] == 1 and model.user_ids == [b]


def _scratch(pid: int) -> list[Path]:
    root = Path(bulk.scratch_root() or tempfile.gettempdir())
    return [p for p in root.iterdir() if p.name.startswith(f"{bulk.SCRATCH_PREFIX}{pid}-")]


def test_sigterm_during_the_read_leaves_no_scratch_folder(served):
    proc = subprocess.Popen(
        [RECOMMENDER, "train"], env=_env(served), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    found: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None and not found:
        found = _scratch(proc.pid)
        time.sleep(0.005)
    assert found, "the trainer never started its bulk read"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert not any(p.exists() for p in found) and _scratch(proc.pid) == []
