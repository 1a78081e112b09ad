"""Gate, manifest, privacy reconciliation, save and publish: the end every way of training shares.

The driver-side retrain (:mod:`recommender.training.run`) and the Spark retrain
from an export (:mod:`recommender.training.spark`) both finish here, so the
release gate, the manifest and the erasure-wins-every-race reconciliation are
one piece of code whichever machine held the history.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.errors import GateRefused, ModelError
from recommender.models import registry
from recommender.models.base import Recommender
from recommender.models.engines import Engine, get_engine
from recommender.privacy import reconcile as privacy_reconcile
from recommender.store.consents import PERSONALIZATION
from recommender.training import evaluation, gate

Log = Callable[[str], None]


@dataclass
class Evaluation:
    payload: dict[str, Any]
    model: Recommender
    split: evaluation.Split
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    # Standard error of the model's mean NDCG@k over the test customers.
    ndcg_se: float = 0.0


def consent_snapshot(user_ids: Any) -> dict[str, Any]:
    """How many customers trained the model and a hash of exactly which ones."""
    digest = hashlib.sha256()
    for uid in sorted(user_ids):
        digest.update(str(uid).encode())
        digest.update(b"\n")
    return {"purpose": PERSONALIZATION, "customers": len(user_ids), "customer_ids_sha256": digest.hexdigest()}


@dataclass
class TrainResult:
    version: str
    path: str
    published: bool
    metrics: dict[str, Any]
    data: dict[str, int]
    gate: str | None
    seconds: dict[str, float]
    # What the nightly housekeeping removed (with publish=True; see :func:`train`).
    maintenance: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _quiet(_: str) -> None:
    pass


@dataclass
class TrainingRun:
    """One retrain, whichever machine holds the history: where it writes, what it was asked, how it reports.

    Made once at the start of :func:`recommender.training.run.train` and handed to
    every step down to :func:`gate_and_publish`. ``timings`` collects the
    seconds of each step (:meth:`lap`); ``started`` is when the run began.
    """

    db: sqlite_utils.Database
    settings: Settings
    registry: registry.Registry
    engine: str
    fitter: Engine
    publish: bool = False
    force: bool = False
    log: Log = _quiet
    timings: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self._last = self.started

    def lap(self, name: str) -> None:
        """Record the seconds since the previous lap (or the start) as ``timings[name]``."""
        now = time.perf_counter()
        self.timings[name] = round(now - self._last, 3)
        self._last = now

    def restart_lap(self) -> None:
        """Start the next lap now (after a step that wrote its own timings)."""
        self._last = time.perf_counter()


@dataclass
class Candidate:
    """What a way of training hands to the gate: tonight's model, its evaluation and what it was read from.

    ``data`` and ``full_matrix`` are what :func:`gate.judge` checks (the driver's
    :class:`~recommender.data.interactions.Interactions` and matrix, or counts
    computed where the data lives); ``refit(recipe, engine, fitter)`` scores
    the current model's recorded recipe on tonight's split; ``epoch`` is the
    privacy epoch noted before the data was read.
    """

    model: Recommender
    payload: dict[str, Any]
    data: Any
    full_matrix: Any
    counts: dict[str, int]
    user_ids: Any
    epoch: int
    refit: Callable[[dict[str, Any], str, Engine], dict[str, Any]]


def gate_and_publish(run: TrainingRun, candidate: Candidate) -> TrainResult:
    """Gate, manifest, privacy reconciliation, save and publish: shared by every way of training."""
    db, settings, reg, log = run.db, run.settings, run.registry, run.log
    model, payload = candidate.model, candidate.payload
    current_version = reg.current_version()
    incumbent = None
    if current_version:
        try:
            incumbent = reg.manifest(current_version)
        except ModelError as exc:
            log(f"current model {current_version} cannot be loaded ({exc}); gating on tonight's checks only")

    def refit_incumbent(theirs: dict[str, Any]) -> dict[str, Any]:
        log(
            f"recipe differs from the current model {current_version}'s ({gate.recipe_family(theirs)}): fitting "
            f"its recipe on the same split"
        )
        their_engine = theirs.get("engine", run.engine)
        their_fitter = run.fitter if their_engine == run.engine else get_engine(their_engine)
        return candidate.refit(theirs, their_engine, their_fitter)

    params = payload["params"]
    decision = gate.judge(
        payload,
        params,
        candidate.data,
        model,
        candidate.full_matrix,
        incumbent,
        current_version,
        settings.gate,
        refit_incumbent,
    )
    refusal = decision.refusal
    run.lap("gate")
    version = registry.new_version()
    model.manifest.update(
        version=version,
        created_at=store.utcnow(),
        engine=run.engine,
        params=params,
        data=candidate.counts,
        metrics=payload,
        consent_snapshot=consent_snapshot(candidate.user_ids),
        gate={**decision.record, "forced": bool(refusal and run.force and run.publish)},
    )
    if hasattr(model, "attach_ann") and model.attach_ann(settings.ann, log):  # large catalogues: recommender.models.ann
        run.lap("ann")

    # Erasure wins every race: whoever was erased or withdrew after the read (epoch) leaves
    # the model in memory, again on disk once saved (forget may have scanned before the rename),
    # and once more right before CURRENT moves.
    def reconcile(path: Path) -> None:
        privacy_reconcile.reconcile_artifact(db, settings, path, candidate.epoch)

    privacy_reconcile.reconcile_model(db, settings, model, candidate.epoch)
    path = registry.publish(db, reg, model, version, make_current=False, check=reconcile)
    run.lap("save")
    published = False
    if run.publish:
        if refusal and not run.force:
            registry.set_status(db, version, "rejected")
            reg.remove(version)
            raise GateRefused(f"not published: {refusal} (use --force to publish anyway)")
        registry.promote(db, reg, version, check=reconcile)
        published = True
        log(f"published {version}")
    run.lap("publish")
    if refusal:
        log(f"gate: {refusal}")
    run.timings["total"] = round(time.perf_counter() - run.started, 3)
    return TrainResult(version, str(path), published, payload, candidate.counts, refusal, run.timings)
