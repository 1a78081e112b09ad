"""Training from an export on a Spark cluster: the driver never reads the events table.

``train --engine spark --interactions PATH`` (and ``evaluate``) come here from
:mod:`recommender.training.run`. The executors read the export and do what
:func:`training.evaluate` and :func:`training._train` do on the driver —
temporal split, confidences, the evaluation fit, scoring against popularity,
the fit on all data, popularity and bought-together — by the same rules
(:mod:`recommender.training.spark_history`). The driver reads only the
database's small tables (consents, products, the registry, privacy events) and
receives counts, id lists, factors and metrics. The release gate, manifest,
privacy reconciliation, save and publish are the shared code
(:func:`recommender.training.publish.gate_and_publish`).

Consent is checked against tonight's consents table, not the export's: a
customer who withdrew or was erased since the export is left out before
anything is fitted; one who granted since is missing until the next export
(``export-interactions --incremental`` adds their history). The privacy epoch
is noted before the consents are read, so anything recorded during the run is
reconciled before the model is saved and published, as on the driver path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.data import exports
from recommender.errors import RecommenderError, ValidationError
from recommender.models.engines import Engine
from recommender.models.factor import FactorModel
from recommender.store.consents import PERSONALIZATION
from recommender.training import gate, publish as publishing
from recommender.training.evaluation import report_payload

Log = Callable[[str], None]


def _history(db: sqlite_utils.Database, settings: Settings, fitter: Engine, spark):
    """The export's events on the cluster, filtered by tonight's consents and products."""
    from recommender.training import spark_history

    path = fitter.interactions_path
    epoch = store.privacy_epoch(db)  # before the consents are read: later events are reconciled
    read_at = int(time.time())
    consenting = store.consenting_customers(db, PERSONALIZATION)
    item_ids = sorted(p["id"] for p in store.all_products(db))
    marker = exports.read_marker(path) if "://" not in path else None
    history = spark_history.load_history(
        spark,
        path,
        settings,
        consenting,
        item_ids,
        read_at=read_at,
        epoch=epoch,
        exported_weights=(marker or {}).get("event_weights"),
    )
    if len(history) == 0:
        raise ValidationError(
            "no interactions from customers with personalization consent in the export: nothing to train on"
        )
    return history


def _fit(spark, ratings, shape: tuple[int, int], settings: Settings, iterations: int):
    """Fit MLlib's ALS; returns the fitted Spark model and its regParam (factors stay on the cluster)."""
    from recommender.models.engines.spark import _first_line, als_estimator
    from recommender.training import spark_history

    regularization, _pairs = spark_history.reg_param(ratings, settings.als.regularization)
    try:
        return als_estimator(spark, settings.als, iterations, regularization).fit(ratings), regularization
    except Exception as exc:  # executor lost, out of memory, ...: one line for the CLI
        raise RecommenderError(f"Spark ALS failed: {_first_line(exc)}") from exc


def _evaluate(history, settings: Settings, spark, curve_k: int, log: Log, timings: dict[str, float]):
    """Split, fit on the past, score model and popularity on the future: all on the cluster."""
    from pyspark.sql import functions as F

    from recommender.models.engines.spark import _dense
    from recommender.training import spark_history

    started = time.perf_counter()
    log(f"{len(history):,} interactions, {history.shape[0]:,} customers x {history.shape[1]:,} products (on Spark)")
    cut = spark_history.cut_time(history.events, settings.evaluation.cut_quantile, len(history))
    train = spark_history.ratings(history, settings.als, mask=F.col("t") < cut, reference_time=cut)
    frame, eligible, evaluated = spark_history.evaluation_frame(
        history, train, cut, settings.evaluation.max_users, settings.evaluation.seed
    )
    timings["split"] = round(time.perf_counter() - started, 3)
    if evaluated == 0:
        raise ValidationError("no customer has both history before the cut and new items after it: cannot evaluate")
    started = time.perf_counter()
    fitted, _reg = _fit(spark, train, history.shape, settings, settings.als.iterations)
    item_factors = _dense(fitted.itemFactors, history.shape[1], settings.als.factors)
    timings["fit"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    k = settings.evaluation.k
    scores = spark_history.score_split(
        frame, fitted.userFactors, item_factors, spark_history.popularity_of(train, history.shape[1]), k, curve_k
    )
    train.unpersist()
    split = spark_history.SplitSummary(cut, range(evaluated), eligible)
    payload = report_payload(scores["model"], scores["popularity"], split, k, gate.recipe(settings, "spark"))
    timings["score"] = round(time.perf_counter() - started, 3)
    curves = {name: s.curve for name, s in scores.items()}
    return payload, curves


def evaluate(
    db: sqlite_utils.Database,
    settings: Settings,
    fitter: Engine,
    *,
    curve_k: int = 0,
    log: Log = lambda _: None,
    timings: dict[str, float] | None = None,
) -> publishing.Evaluation:
    """:func:`training.evaluate` for an export: the payload and curves; no model or split reach the driver."""
    timings = {} if timings is None else timings
    spark = fitter.session()
    history = _history(db, settings, fitter, spark)
    try:
        payload, curves = _evaluate(history, settings, spark, curve_k, log, timings)
    finally:
        history.events.unpersist()
    return publishing.Evaluation(payload, None, None, curves)  # type: ignore[arg-type]


def train(run: publishing.TrainingRun) -> publishing.TrainResult:
    """The retrain of :func:`training._train` with the history on the cluster (see the module docs)."""
    from recommender.models.engines.spark import _dense
    from recommender.training import spark_history

    db, settings, fitter, log, lap, timings = run.db, run.settings, run.fitter, run.log, run.lap, run.timings
    spark = fitter.session()
    history = _history(db, settings, fitter, spark)
    lap("load")
    try:
        payload, _curves = _evaluate(history, settings, spark, 0, log, timings)
        log(
            f"evaluated: NDCG@{payload['k']} model {payload['model']['ndcg']:.4f}, "
            f"popularity {payload['popularity']['ndcg']:.4f}"
        )
        lap("evaluate")
        log(f"fitting all data from scratch for {settings.als.iterations} iteration(s) (on Spark)")
        fit_started = time.perf_counter()
        full = spark_history.ratings(history, settings.als, reference_time=history.reference_time)
        fitted, regularization = _fit(spark, full, history.shape, settings, settings.als.iterations)
        user_factors = _dense(fitted.userFactors, history.shape[0], settings.als.factors)
        item_factors = _dense(fitted.itemFactors, history.shape[1], settings.als.factors)
        trained = spark_history.trained_rows(full)
        pairs = int(full.count())
        full.unpersist()
        details = {
            "version": spark.version,
            "master": spark.sparkContext.master,
            "input": "export",
            "driver_read_events": False,
            "export": fitter.interactions_path,
            "reg_param": regularization,
            "alpha": settings.als.alpha,
            "iterations": settings.als.iterations,
            "fit_seconds": round(time.perf_counter() - fit_started, 3),
        }
        model = FactorModel(
            user_factors=user_factors,
            item_factors=item_factors,
            user_ids=list(history.user_ids),
            item_ids=list(history.item_ids),
            regularization=settings.als.regularization,
            manifest={"engine": "spark", "spark": details},
        )
        model.signals = spark_history.signals(history, tuple(settings.purchase_events), _together_depth())
        lap("refit")
    finally:
        history.events.unpersist()
    counts = {
        "interactions": len(history),
        "customers": history.shape[0],
        "products": history.shape[1],
        "pairs": pairs,
        "reference_time": int(history.reference_time),
        "read_at": int(history.read_at),
        "future_events_left_out": int(history.future_events),
        "privacy_epoch": int(history.epoch),
    }

    def refit_incumbent(theirs: dict[str, Any], their_engine: str, _fitter: Engine) -> dict[str, Any]:
        if their_engine != "spark" or gate.recipe_family(theirs) != "als":
            raise RecommenderError(
                f"the current model's recipe ({their_engine}, {gate.recipe_family(theirs)}) needs "
                "the events on the driver; with --interactions only Spark ALS recipes are refitted"
            )
        return evaluate(db, gate.settings_for(theirs, settings), fitter).payload

    return publishing.gate_and_publish(
        run,
        publishing.Candidate(
            model, payload, history, trained, counts, history.user_ids, history.epoch, refit_incumbent
        ),
    )


def _together_depth() -> int:
    from recommender.data.signals import TOGETHER_DEPTH

    return TOGETHER_DEPTH
