"""The retraining job: matrix → fit → evaluate → release gate → publish.

One fit is evaluated on the temporal split, then continued for a couple of
iterations on all data (warm start) to become the published model: the
metrics describe the recipe on unseen future data, and the published factors
still know this week's behaviour, for about the cost of one fit instead of two.

The release gate (:mod:`recommender.gate`) judges tonight's model on
tonight's split only; when tonight's settings differ from the serving
model's, that recipe is refitted on the same split for the comparison.
Whatever happens, the previous ``CURRENT`` model keeps serving until the new
one is completely on disk and has passed the gate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import sqlite_utils

from . import evaluation, gate, interactions, registry, signals, store
from .config import Settings
from .engines import Engine, get_engine
from .errors import GateRefused, ModelError, RecommenderError, ValidationError
from .model_base import Recommender
from .privacy import reconcile as privacy_reconcile

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class Evaluation:
    payload: dict[str, Any]
    model: Recommender
    split: evaluation.Split
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)


def model_params(settings: Settings, engine: str) -> dict[str, Any]:
    return gate.recipe(settings, engine)


def consent_snapshot(user_ids: Any) -> dict[str, Any]:
    """How many customers trained the model and a hash of exactly which ones."""
    digest = hashlib.sha256()
    for uid in sorted(user_ids):
        digest.update(str(uid).encode())
        digest.update(b"\n")
    return {"purpose": interactions.PERSONALIZATION, "customers": len(user_ids), "customer_ids_sha256": digest.hexdigest()}


def load_data(db: sqlite_utils.Database, settings: Settings) -> interactions.Interactions:
    data = interactions.load(db, settings)
    if len(data) == 0:
        raise ValidationError("no interactions from customers with personalization consent: nothing to train on")
    return data


def evaluate(db: sqlite_utils.Database, settings: Settings, *, engine: str = "implicit", progress: bool = False,
             curve_k: int = 0, data: interactions.Interactions | None = None, log: Log = _quiet,
             timings: dict[str, float] | None = None, engine_options: dict[str, Any] | None = None,
             fitter: Engine | None = None) -> Evaluation:
    """Fit on the past of the temporal split and score model and popularity on its future."""
    timings = {} if timings is None else timings
    started = time.perf_counter()
    data = data if data is not None else load_data(db, settings)
    log(f"{len(data):,} interactions, {data.shape[0]:,} customers x {data.shape[1]:,} products")
    split = evaluation.temporal_split(data, settings.als, settings.evaluation)
    timings["split"] = round(time.perf_counter() - started, 3)
    if len(split.users) == 0:
        raise ValidationError("no customer has both history before the cut and new items after it: cannot evaluate")
    log(f"fitting on events before the {settings.evaluation.cut_quantile:.0%} time cut ({split.train.nnz:,} pairs)")
    started = time.perf_counter()
    fitter = fitter or get_engine(engine, **(engine_options or {}))
    fitted = fitter.fit(split.train, data.user_ids, data.item_ids, settings.als, progress=progress)
    timings["fit"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    k = settings.evaluation.k
    model_scores = evaluation.evaluate_model(fitted, split, k, curve_k)
    popular_scores = evaluation.evaluate_popularity(split, k, curve_k)
    payload = evaluation.report_payload(model_scores, popular_scores, split, k, model_params(settings, engine))
    timings["score"] = round(time.perf_counter() - started, 3)
    return Evaluation(payload, fitted, split, {"model": model_scores.curve, "popularity": popular_scores.curve})


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


def train(db: sqlite_utils.Database, settings: Settings, *, engine: str = "implicit", publish: bool = False,
          force: bool = False, progress: bool = False, log: Log = _quiet,
          engine_options: dict[str, Any] | None = None) -> TrainResult:
    """Run the whole retrain; raises :class:`GateRefused` (after recording why) when the gate says no.

    With ``publish`` this is the nightly job, so the housekeeping of
    :mod:`recommender.maintenance` follows whatever happened (published,
    refused, failed): its report is ``result.maintenance``, or the
    ``maintenance`` attribute of the error raised.
    """
    try:
        result = _train(db, settings, engine=engine, publish=publish, force=force, progress=progress, log=log,
                        engine_options=engine_options)
    except RecommenderError as exc:
        if publish:
            exc.maintenance = _housekeeping(db, settings, log)  # type: ignore[attr-defined]
        raise
    if publish:
        result.maintenance = _housekeeping(db, settings, log)
    return result


def _housekeeping(db: sqlite_utils.Database, settings: Settings, log: Log) -> dict[str, Any]:
    from . import maintenance

    try:
        done = maintenance.run(db, settings)
    except RecommenderError as exc:  # housekeeping must never hide what the retrain itself did
        log(f"housekeeping failed: {exc}")
        return {"error": str(exc)}
    log(f"housekeeping: {done['decisions_deleted']} old decision(s), {len(done['models_removed'])} old model "
        f"artifact(s) removed; WAL checkpointed")
    return done


def _train(db: sqlite_utils.Database, settings: Settings, *, engine: str, publish: bool, force: bool,
           progress: bool, log: Log, engine_options: dict[str, Any] | None) -> TrainResult:
    timings: dict[str, float] = {}
    started = last = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        timings[name] = round(now - last, 3)
        last = now

    reg = registry.Registry(settings.model_dir)
    registry.heal(db, settings)
    fitter = get_engine(engine, **(engine_options or {}))
    data = load_data(db, settings)
    lap("load")
    result = evaluate(db, settings, engine=engine, progress=progress, data=data, log=log, timings=timings,
                      fitter=fitter)
    last = time.perf_counter()
    log(f"evaluated: NDCG@{result.payload['k']} model {result.payload['model']['ndcg']:.4f}, "
        f"popularity {result.payload['popularity']['ndcg']:.4f}")
    full = data.matrix(settings.als)
    model = result.model
    if settings.als.refit_iterations:
        if fitter.warm_starts:
            log(f"continuing on all {full.nnz:,} pairs for {settings.als.refit_iterations} iteration(s)")
        else:
            log(f"refitting from scratch on all {full.nnz:,} pairs for {settings.als.iterations} iteration(s) "
                f"({fitter.name} cannot warm-start)")
        model = fitter.fit(full, data.user_ids, data.item_ids, settings.als, progress=progress,
                           warm_start=model, iterations=settings.als.refit_iterations)
    model.signals = signals.compute(data, settings.purchase_events)
    lap("refit")

    current_version = reg.current_version()
    incumbent = None
    if current_version:
        try:
            incumbent = reg.manifest(current_version)
        except ModelError as exc:
            log(f"current model {current_version} cannot be loaded ({exc}); gating on tonight's checks only")

    def refit_incumbent(theirs: dict[str, Any]) -> dict[str, Any]:
        log(f"settings differ from the current model {current_version}'s: fitting its settings on the same split")
        other = gate.settings_for(theirs, settings)
        their_engine = theirs.get("engine", engine)
        their_fitter = fitter if their_engine == engine else get_engine(their_engine)
        return evaluate(db, other, engine=their_engine, data=data.reweighted(other.event_weights),
                        fitter=their_fitter).payload

    params = model_params(settings, engine)
    decision = gate.judge(result.payload, params, data, model, full, incumbent, current_version, settings.gate,
                          refit_incumbent)
    refusal = decision.refusal
    lap("gate")
    version = registry.new_version()
    counts = {"interactions": int(len(data)), "customers": int(data.shape[0]), "products": int(data.shape[1]),
              "pairs": int(full.nnz), "reference_time": int(data.reference_time), "read_at": int(data.read_at),
              "future_events_left_out": int(data.future_events), "privacy_epoch": int(data.epoch)}
    model.manifest.update(
        version=version, created_at=store.utcnow(), engine=engine, params=params,
        data=counts, metrics=result.payload, consent_snapshot=consent_snapshot(data.user_ids),
        gate={**decision.record, "forced": bool(refusal and force and publish)},
    )
    if hasattr(model, "attach_ann") and model.attach_ann(settings.ann, log):  # large catalogues: recommender.ann
        lap("ann")
    # Erasure wins every race: whoever was erased or withdrew after the read (data.epoch) leaves
    # the model in memory, again on disk once saved (forget may have scanned before the rename),
    # and once more right before CURRENT moves.
    privacy_reconcile.reconcile_model(db, settings, model, data.epoch)
    path = reg.save(model, version)
    privacy_reconcile.reconcile_artifact(db, settings, path, data.epoch)
    registry.record(db, model, path, "candidate")
    lap("save")
    published = False
    if publish:
        if refusal and not force:
            registry.set_status(db, version, "rejected")
            reg.remove(version)
            raise GateRefused(f"not published: {refusal} (use --force to publish anyway)")
        privacy_reconcile.reconcile_artifact(db, settings, path, data.epoch)
        reg.set_current(version)
        registry.set_status(db, version, "published")
        published = True
        log(f"published {version}")
    lap("publish")
    if refusal:
        log(f"gate: {refusal}")
    timings["total"] = round(time.perf_counter() - started, 3)
    return TrainResult(version, str(path), published, result.payload, counts, refusal, timings)
