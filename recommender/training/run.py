"""The retraining job: matrix → fit → evaluate → release gate → publish.

One fit is evaluated on the temporal split, then continued for a couple of
iterations on all data (warm start) to become the published model: the
metrics describe the recipe on unseen future data, and the published factors
still know this week's behaviour, for about the cost of one fit instead of two.

The release gate (:mod:`recommender.training.gate`) judges tonight's model on
tonight's split only; when tonight's settings differ from the serving
model's, that recipe is refitted on the same split for the comparison.
Whatever happens, the previous ``CURRENT`` model keeps serving until the new
one is completely on disk and has passed the gate.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import sqlite_utils

from recommender.training import evaluation
from recommender.training import gate
from recommender.data import interactions
from recommender.training import recipes
from recommender.models import registry
from recommender.data import signals
from recommender.config import Settings
from recommender.models.engines import Engine, get_engine
from recommender.errors import ModelError, RecommenderError, ValidationError
from recommender.training.publish import Evaluation, TrainResult, consent_snapshot, gate_and_publish  # noqa: F401

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def model_params(settings: Settings, engine: str) -> dict[str, Any]:
    return gate.recipe(settings, engine)


def load_data(db: sqlite_utils.Database, settings: Settings) -> interactions.Interactions:
    data = interactions.load(db, settings)
    if len(data) == 0:
        raise ValidationError("no interactions from customers with personalization consent: nothing to train on")
    return data


def evaluate(db: sqlite_utils.Database, settings: Settings, *, engine: str = "implicit", progress: bool = False,
             curve_k: int = 0, data: interactions.Interactions | None = None, log: Log = _quiet,
             timings: dict[str, float] | None = None, engine_options: dict[str, Any] | None = None,
             fitter: Engine | None = None, recipe: recipes.Recipe | None = None) -> Evaluation:
    """Fit on the past of the temporal split and score model and popularity on its future.

    ``recipe`` (default: ALS with ``settings``) is what is fitted; its event
    weights re-weight ``data``.
    """
    timings = {} if timings is None else timings
    started = time.perf_counter()
    if data is None and engine == "spark" and (engine_options or {}).get("interactions_path"):
        from recommender.training import spark as spark_training  # split, fit and scoring on the cluster

        fitter = fitter or get_engine(engine, **(engine_options or {}))
        return spark_training.evaluate(db, settings, fitter, curve_k=curve_k, log=log, timings=timings)
    recipe = recipe or recipes.Recipe("als", settings, label="als")
    settings = recipe.settings
    data = data if data is not None else load_data(db, settings)
    data = data.reweighted(settings.event_weights)
    log(f"{len(data):,} interactions, {data.shape[0]:,} customers x {data.shape[1]:,} products")
    split = evaluation.temporal_split(data, settings.als, settings.evaluation)
    timings["split"] = round(time.perf_counter() - started, 3)
    if len(split.users) == 0:
        raise ValidationError("no customer has both history before the cut and new items after it: cannot evaluate")
    log(f"fitting {recipe.label or recipe.family} on events before the {settings.evaluation.cut_quantile:.0%} "
        f"time cut ({split.train.nnz:,} pairs)")
    started = time.perf_counter()
    fitter = fitter or get_engine(engine, **(engine_options or {}))
    fitted = recipes.fit(recipe, split.train, data.user_ids, data.item_ids, engine=engine, fitter=fitter,
                         progress=progress)
    timings["fit"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    k = settings.evaluation.k
    model_scores = evaluation.evaluate_model(fitted, split, k, curve_k)
    popular_scores = evaluation.evaluate_popularity(split, k, curve_k)
    payload = evaluation.report_payload(model_scores, popular_scores, split, k, recipe.params(engine))
    timings["score"] = round(time.perf_counter() - started, 3)
    return Evaluation(payload, fitted, split, {"model": model_scores.curve, "popularity": popular_scores.curve})


def choose(db: sqlite_utils.Database, settings: Settings, *, engine: str = "implicit",
           data: interactions.Interactions | None = None, fitter: Engine | None = None, log: Log = _quiet,
           engine_options: dict[str, Any] | None = None) -> tuple[recipes.Recipe, Any]:
    """The recipe to evaluate and publish: selection's choice, or the configured ALS with selection off.

    Returns ``(recipe, choice)``; ``choice`` is None when selection is off or the engine is not
    ``implicit`` (the Spark path stays ALS).
    """
    if not settings.selection.enabled:
        return recipes.Recipe("als", settings, label="als (configured, selection off)"), None
    if engine != "implicit":
        # Selection fits dozens of candidates on one machine; a Spark shop is one that outgrew it.
        log(f"selection: skipped with --engine {engine} (the Spark path stays ALS with the configured settings)")
        return recipes.Recipe("als", settings, label=f"als (configured, {engine})"), None
    from recommender.training import selection

    data = data if data is not None else load_data(db, settings)
    fitter = fitter or get_engine(engine, **(engine_options or {}))
    incumbent = None
    current = registry.Registry(settings.model_dir).current_version()
    if current:
        try:
            incumbent = registry.Registry(settings.model_dir).manifest(current).get("params")
        except ModelError:
            incumbent = None
    choice = selection.select(data, settings, engine=engine, fitter=fitter, log=log, incumbent=incumbent)
    return choice.recipe, choice


def evaluate_selected(db: sqlite_utils.Database, settings: Settings, *, engine: str = "implicit",
                      progress: bool = False, curve_k: int = 0, data: interactions.Interactions | None = None,
                      log: Log = _quiet, timings: dict[str, float] | None = None,
                      engine_options: dict[str, Any] | None = None, fitter: Engine | None = None) -> Evaluation:
    """Choose (unless selection is off), then evaluate the choice on the test period.

    With selection on, ``payload["selection"]`` holds every family's best
    validation NDCG and, for the report only, its test NDCG on the same split
    (never used to choose), beside popularity's.
    """
    timings = {} if timings is None else timings
    data = data if data is not None else load_data(db, settings)
    fitter = fitter or get_engine(engine, **(engine_options or {}))
    started = time.perf_counter()
    recipe, choice = choose(db, settings, engine=engine, data=data, fitter=fitter, log=log)
    if choice is not None:
        timings["select"] = round(time.perf_counter() - started, 3)
    result = evaluate(db, settings, engine=engine, progress=progress, curve_k=curve_k, data=data, log=log,
                      timings=timings, fitter=fitter, recipe=recipe)
    if choice is None:
        return result
    started = time.perf_counter()
    record = choice.record(engine)
    chosen_id = recipe.id(engine)
    for name, cand in choice.best_by_family.items():
        entry = record["families"][name]
        if cand.recipe.id(engine) == chosen_id:
            entry["test_ndcg"], entry["chosen"] = result.payload["model"]["ndcg"], True
            continue
        try:
            other = evaluate(db, settings, engine=engine, data=data, fitter=fitter, recipe=cand.recipe)
        except RecommenderError as exc:
            entry["test_ndcg"], entry["note"] = None, str(exc)
            continue
        entry["test_ndcg"], entry["chosen"] = other.payload["model"]["ndcg"], False
        log(f"report only: best {name} on the test period NDCG@{result.payload['k']} "
            f"{entry['test_ndcg']:.4f}")
    record["test"] = {"cut_time": result.payload["cut_time"], "users": result.payload["users"],
                      "popularity_ndcg": result.payload["popularity"]["ndcg"]}
    timings["families_test"] = round(time.perf_counter() - started, 3)
    result.payload["selection"] = record
    return result


def train(db: sqlite_utils.Database, settings: Settings, *, engine: str = "implicit", publish: bool = False,
          force: bool = False, progress: bool = False, log: Log = _quiet,
          engine_options: dict[str, Any] | None = None) -> TrainResult:
    """Run the whole retrain; raises :class:`GateRefused` (after recording why) when the gate says no.

    With ``publish`` this is the nightly job, so the housekeeping of
    :mod:`recommender.training.maintenance` follows whatever happened (published,
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
    from recommender.training import maintenance

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
    if engine == "spark" and (engine_options or {}).get("interactions_path"):
        from recommender.training import spark as spark_training  # the history stays on the cluster: the driver gets metrics and factors

        return spark_training.train(db, settings, reg, fitter, publish=publish, force=force, log=log, lap=lap,
                                    timings=timings, started=started)
    data = load_data(db, settings)
    lap("load")
    result = evaluate_selected(db, settings, engine=engine, progress=progress, data=data, log=log,
                               timings=timings, fitter=fitter)
    last = time.perf_counter()
    log(f"evaluated: NDCG@{result.payload['k']} model {result.payload['model']['ndcg']:.4f}, "
        f"popularity {result.payload['popularity']['ndcg']:.4f}")
    chosen = recipes.Recipe.from_params(result.payload["params"], settings)
    scored = {gate.recipe_id(result.payload["params"]): result.payload}
    full = data.reweighted(chosen.settings.event_weights).matrix(chosen.settings.als)
    model = result.model
    if chosen.family != "als" or chosen.settings.als.refit_iterations:
        if chosen.family != "als":
            log(f"refitting {chosen.family} on all {full.nnz:,} pairs (item models in closed form, ALS warm)")
        elif fitter.warm_starts:
            log(f"continuing on all {full.nnz:,} pairs for {chosen.settings.als.refit_iterations} iteration(s)")
        else:
            log(f"refitting from scratch on all {full.nnz:,} pairs for {chosen.settings.als.iterations} "
                f"iteration(s) ({fitter.name} cannot warm-start)")
        model = recipes.refit(chosen, model, full, data.user_ids, data.item_ids, engine=engine, fitter=fitter,
                              progress=progress)
    model.signals = signals.compute(data, settings.purchase_events)
    lap("refit")
    counts = {"interactions": int(len(data)), "customers": int(data.shape[0]), "products": int(data.shape[1]),
              "pairs": int(full.nnz), "reference_time": int(data.reference_time), "read_at": int(data.read_at),
              "future_events_left_out": int(data.future_events), "privacy_epoch": int(data.epoch)}

    def refit_incumbent(theirs: dict[str, Any], their_engine: str, their_fitter: Engine) -> dict[str, Any]:
        key = gate.recipe_id(theirs)
        if key in scored:  # e.g. the incumbent's recipe is the best of its family tonight
            return scored[key]
        return evaluate(db, settings, engine=their_engine, data=data, fitter=their_fitter,
                        recipe=recipes.Recipe.from_params(theirs, settings)).payload

    return gate_and_publish(db, settings, reg, engine=engine, fitter=fitter, payload=result.payload, model=model,
                            data=data, full_matrix=full, counts=counts, user_ids=data.user_ids, epoch=data.epoch,
                            refit=refit_incumbent, publish=publish, force=force, log=log, lap=lap,
                            timings=timings, started=started)


