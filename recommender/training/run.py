"""The retraining job: matrix → fit → evaluate → release gate → publish.

One fit is evaluated on the temporal split, then continued for a couple of
iterations on all data (warm start) to become the published model: the
metrics describe the recipe on unseen future data, and the published factors
still know this week's behaviour, for about the cost of one fit instead of two.

Which recipe: the one the last model search chose, refitted on tonight's data;
the search itself runs when asked, first, weekly, after a settings change or
when the recipe loses ground (:mod:`recommender.training.schedule` states the
rules), not every night.

The release gate (:mod:`recommender.training.gate`) judges tonight's model on
tonight's split only; when tonight's settings differ from the serving
model's, that recipe is refitted on the same split for the comparison.
Whatever happens, the previous ``CURRENT`` model keeps serving until the new
one is completely on disk and has passed the gate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.data import interactions, signals
from recommender.errors import GateRefused, ModelError, RecommenderError, ValidationError
from recommender.models import content, registry
from recommender.models.engines import Engine, get_engine
from recommender.training import evaluation, gate, recipes, schedule
from recommender.training.progress import Progress
from recommender.training.publish import (  # noqa: F401
    Candidate,
    Evaluation,
    TrainingRun,
    TrainResult,
    consent_snapshot,
    gate_and_publish,
)

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def model_params(settings: Settings, engine: str) -> dict[str, Any]:
    return gate.recipe(settings, engine)


def on_cluster(engine: str, engine_options: dict[str, Any] | None) -> ModuleType | None:
    """:mod:`recommender.training.spark` when the history stays on a Spark cluster, else None.

    That is ``--engine spark --interactions PATH``: the executors read the export,
    and the driver gets metrics and factors, never the events table.
    """
    if engine != "spark" or not (engine_options or {}).get("interactions_path"):
        return None
    from recommender.training import spark as spark_training

    return spark_training


def load_data(db: sqlite_utils.Database, settings: Settings) -> interactions.Interactions:
    data = interactions.load(db, settings)
    if len(data) == 0:
        raise ValidationError(
            "no interactions from customers with personalization consent: nothing to train on (record consent with `recommender import consents consents.csv`, or, if your shop's terms allow it, `recommender import-transactions orders.csv --grant personalization`)"
        )  # noqa: E501
    return data


def evaluate(
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    engine: str = "implicit",
    progress: bool = False,
    curve_k: int = 0,
    data: interactions.Interactions | None = None,
    log: Log = _quiet,
    timings: dict[str, float] | None = None,
    engine_options: dict[str, Any] | None = None,
    fitter: Engine | None = None,
    recipe: recipes.Recipe | None = None,
) -> Evaluation:
    """Fit on the past of the temporal split and score model and popularity on its future.

    ``recipe`` (default: ALS with ``settings``) is what is fitted; its event
    weights re-weight ``data``.
    """
    timings = {} if timings is None else timings
    started = time.perf_counter()
    cluster = on_cluster(engine, engine_options) if data is None else None
    if cluster is not None:  # split, fit and scoring on the cluster
        fitter = fitter or get_engine(engine, **(engine_options or {}))
        return cluster.evaluate(db, settings, fitter, curve_k=curve_k, log=log, timings=timings)
    recipe = recipe or recipes.Recipe("als", settings, label="als")
    settings = recipe.settings
    data = data if data is not None else load_data(db, settings)
    data = data.reweighted(settings.event_weights)
    log(f"{len(data):,} interactions, {data.shape[0]:,} customers x {data.shape[1]:,} products")
    split = evaluation.temporal_split(data, settings.als, settings.evaluation)
    timings["split"] = round(time.perf_counter() - started, 3)
    if len(split.users) == 0:
        raise ValidationError("no customer has both history before the cut and new items after it: cannot evaluate")
    log(
        f"fitting {recipe.label or recipe.family} on events before the {settings.evaluation.cut_quantile:.0%} "
        f"time cut ({split.train.nnz:,} pairs)"
    )
    started = time.perf_counter()
    fitter = fitter or get_engine(engine, **(engine_options or {}))
    fitted = recipes.fit(
        recipe, split.train, data.user_ids, data.item_ids, engine=engine, fitter=fitter, progress=progress
    )
    timings["fit"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    k = settings.evaluation.k
    model_scores = evaluation.evaluate_model(fitted, split, k, curve_k)
    popular_scores = evaluation.evaluate_popularity(split, k, curve_k)
    payload = evaluation.report_payload(model_scores, popular_scores, split, k, recipe.params(engine))
    timings["score"] = round(time.perf_counter() - started, 3)
    return Evaluation(
        payload, fitted, split, {"model": model_scores.curve, "popularity": popular_scores.curve}, model_scores.ndcg_se
    )


def choose(
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    engine: str = "implicit",
    data: interactions.Interactions | None = None,
    fitter: Engine | None = None,
    log: Log = _quiet,
    engine_options: dict[str, Any] | None = None,
    progress: bool = False,
    detail: Log = _quiet,
) -> tuple[recipes.Recipe, Any]:
    """Run the model search now: selection's choice, or the configured ALS with selection off.

    Returns ``(recipe, choice)``; ``choice`` is None when selection is off or the engine is not
    ``implicit`` (the Spark path stays ALS). ``progress``: a bar with an ETA on stderr;
    ``detail`` hears one line per candidate (``--verbose``).
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
    bar = Progress(
        "selection",
        selection.estimate_fits(settings, selection.available_families(settings), len(set(data.event.tolist()))),
        enabled=progress,
        log=log,
        detail=detail,
    )
    try:
        choice = selection.select(
            data, settings, engine=engine, fitter=fitter, log=log, incumbent=incumbent, progress=bar
        )
    finally:
        bar.close()
    return choice.recipe, choice


def _unsearched_recipe(plan: schedule.Plan, settings: Settings, engine: str) -> recipes.Recipe:
    """What runs without a search: the last search's recipe, else the serving model's, else the configured ALS."""
    if plan.last:
        return schedule.recipe_of(plan.last, settings)
    reg = registry.Registry(settings.model_dir)
    current = reg.current_version()
    if current:
        try:
            params = reg.manifest(current).get("params")
        except ModelError:
            params = None
        if params and params.get("engine", engine) == engine:
            recipe = recipes.Recipe.from_params(params, settings)
            recipe.label = f"{recipe.family} (the serving model {current}'s recipe; no search yet)"
            return recipe
    return recipes.Recipe("als", settings, label="als (configured; no search yet)")


def evaluate_selected(
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    engine: str = "implicit",
    progress: bool = False,
    curve_k: int = 0,
    data: interactions.Interactions | None = None,
    log: Log = _quiet,
    timings: dict[str, float] | None = None,
    engine_options: dict[str, Any] | None = None,
    fitter: Engine | None = None,
    select: bool | None = False,
    verbose: bool = False,
) -> Evaluation:
    """Evaluate on the test period the recipe the schedule says: the last search's, or a new search's choice.

    ``select``: True = search now (``recommender select``, ``--select``); False = never
    search (``evaluate``'s default: the last search's recipe, before any the serving
    model's, else the configured ALS); None = the schedule of
    :mod:`recommender.training.schedule` (``train``'s default). A search that runs is
    recorded as the last search. With selection on, ``payload["selection"]`` holds
    every family's best validation NDCG and, for the report only, its test NDCG
    (never used to choose), beside popularity's — from the last search when none
    ran now; ``payload["schedule"]`` says whether this run searched and why.
    """
    timings = {} if timings is None else timings
    if data is None and on_cluster(engine, engine_options) is not None:
        # The events stay on the cluster, and the Spark path stays ALS (see :func:`choose`): nothing to select.
        return evaluate(
            db,
            settings,
            engine=engine,
            curve_k=curve_k,
            log=log,
            timings=timings,
            engine_options=engine_options,
            fitter=fitter,
        )
    data = data if data is not None else load_data(db, settings)
    fitter = fitter or get_engine(engine, **(engine_options or {}))
    if not settings.selection.enabled or engine != "implicit":
        recipe, _ = choose(db, settings, engine=engine, data=data, fitter=fitter, log=log)
        return evaluate(
            db,
            settings,
            engine=engine,
            progress=progress,
            curve_k=curve_k,
            data=data,
            log=log,
            timings=timings,
            fitter=fitter,
            recipe=recipe,
        )
    plan = schedule.plan(db, settings, asked=select)
    if not plan.search:
        recipe = _unsearched_recipe(plan, settings, engine)
        log(f"model search not run: {plan.message}")
        result = evaluate(
            db,
            settings,
            engine=engine,
            progress=progress,
            curve_k=curve_k,
            data=data,
            log=log,
            timings=timings,
            fitter=fitter,
            recipe=recipe,
        )
        why = schedule.losing_ground(plan.last, result.payload, result.ndcg_se, settings) if select is None else None
        if why is None:
            result.payload["schedule"] = {**plan.to_dict(), "ndcg_standard_error": round(result.ndcg_se, 6)}
            if plan.last and plan.last.get("selection"):
                result.payload["selection"] = plan.last["selection"]
            return result
        log(f"{why}: searching again")
        plan = schedule.Plan(True, "losing_ground", why, plan.last)
    result = _search_and_evaluate(
        db,
        settings,
        engine=engine,
        progress=progress,
        curve_k=curve_k,
        data=data,
        log=log,
        timings=timings,
        fitter=fitter,
        verbose=verbose,
    )
    sel = result.payload.get("selection")
    if sel is not None:
        schedule.record(
            db,
            schedule.new_record(
                sel,
                result.payload["params"],
                sel["chosen"]["label"],
                result.payload,
                result.ndcg_se,
                plan.reason,
                settings,
                engine,
            ),
        )
    result.payload["schedule"] = {**plan.to_dict(), "searched": True, "ndcg_standard_error": round(result.ndcg_se, 6)}
    return result


def _search_and_evaluate(
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    engine: str,
    progress: bool,
    curve_k: int,
    data: interactions.Interactions,
    log: Log,
    timings: dict[str, float],
    fitter: Engine,
    verbose: bool,
) -> Evaluation:
    """Search, evaluate the choice on the test period, and each family's best on it for the report only."""
    detail = log if verbose else _quiet
    started = time.perf_counter()
    recipe, choice = choose(
        db, settings, engine=engine, data=data, fitter=fitter, log=log, progress=progress, detail=detail
    )
    if choice is not None:
        timings["select"] = round(time.perf_counter() - started, 3)
    result = evaluate(
        db,
        settings,
        engine=engine,
        progress=progress,
        curve_k=curve_k,
        data=data,
        log=log,
        timings=timings,
        fitter=fitter,
        recipe=recipe,
    )
    if choice is None:
        return result
    started = time.perf_counter()
    record = choice.record(engine)
    chosen_id = recipe.id(engine)
    bar = Progress(
        "report: each family's best on the test period",
        len(choice.best_by_family) - 1,
        enabled=progress,
        log=log,
        detail=detail,
    )
    try:
        for name, cand in choice.best_by_family.items():
            entry = record["families"][name]
            if cand.recipe.id(engine) == chosen_id:
                entry["test_ndcg"], entry["chosen"] = result.payload["model"]["ndcg"], True
                continue
            try:
                other = evaluate(db, settings, engine=engine, data=data, fitter=fitter, recipe=cand.recipe)
            except RecommenderError as exc:
                entry["test_ndcg"], entry["note"] = None, str(exc)
                bar.step(name)
                continue
            entry["test_ndcg"], entry["chosen"] = other.payload["model"]["ndcg"], False
            bar.detail(
                f"report only: best {name} on the test period NDCG@{result.payload['k']} {entry['test_ndcg']:.4f}"
            )
            bar.step(name)
    finally:
        bar.close()
    record["test"] = {
        "cut_time": result.payload["cut_time"],
        "users": result.payload["users"],
        "popularity_ndcg": result.payload["popularity"]["ndcg"],
    }
    timings["families_test"] = round(time.perf_counter() - started, 3)
    result.payload["selection"] = record
    return result


def train(
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    engine: str = "implicit",
    publish: bool = False,
    force: bool = False,
    progress: bool = False,
    log: Log = _quiet,
    engine_options: dict[str, Any] | None = None,
    select: bool | None = None,
    verbose: bool = False,
) -> TrainResult:
    """Run the whole retrain; raises :class:`GateRefused` (after recording why) when the gate says no.

    ``select``: None (default) = the search runs when the schedule says
    (:mod:`recommender.training.schedule`), else the last search's recipe is
    refitted; True = search now (``--select``). ``result.metrics["schedule"]``
    says which happened and why.

    With ``publish`` this is the nightly job, so the housekeeping of
    :mod:`recommender.training.maintenance` follows whatever happened (published,
    refused, failed): its report is ``result.maintenance``, or the
    ``maintenance`` attribute of the error raised.
    """
    try:
        result = _train(
            db,
            settings,
            engine=engine,
            publish=publish,
            force=force,
            progress=progress,
            log=log,
            engine_options=engine_options,
            select=select,
            verbose=verbose,
        )
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
    values = done.get("values") or {}
    log(
        f"housekeeping: {done['decisions_deleted']} old decision(s), {len(done['models_removed'])} old model "
        f"artifact(s) removed; WAL checkpointed; customer value: "
        + (
            f"failed ({values['error']})"
            if "error" in values
            else f"{values.get('stored', 0):,} customer(s) scored in {values.get('seconds', 0):.1f} s"
        )
    )
    return done


def _train(
    db: sqlite_utils.Database,
    settings: Settings,
    *,
    engine: str,
    publish: bool,
    force: bool,
    progress: bool,
    log: Log,
    engine_options: dict[str, Any] | None,
    select: bool | None = None,
    verbose: bool = False,
) -> TrainResult:
    started = time.perf_counter()
    reg = registry.Registry(settings.model_dir)
    registry.heal(db, settings)
    fitter = get_engine(engine, **(engine_options or {}))
    run = TrainingRun(db, settings, reg, engine, fitter, publish=publish, force=force, log=log, started=started)
    cluster = on_cluster(engine, engine_options)
    if cluster is not None:
        return cluster.train(run)
    data = load_data(db, settings)
    run.lap("load")
    result = evaluate_selected(
        db,
        settings,
        engine=engine,
        progress=progress,
        data=data,
        log=log,
        timings=run.timings,
        fitter=fitter,
        select=select,
        verbose=verbose,
    )
    run.restart_lap()
    log(
        f"evaluated: NDCG@{result.payload['k']} model {result.payload['model']['ndcg']:.4f}, "
        f"popularity {result.payload['popularity']['ndcg']:.4f}"
    )
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
            log(
                f"refitting from scratch on all {full.nnz:,} pairs for {chosen.settings.als.iterations} "
                f"iteration(s) ({fitter.name} cannot warm-start)"
            )
        model = recipes.refit(
            chosen, model, full, data.user_ids, data.item_ids, engine=engine, fitter=fitter, progress=progress
        )
    model.signals = signals.compute(data, settings.purchase_events)
    # new products get a place on day one: the mapping from content to this model's items (docs/new-products.md)
    mapping = content.attach_mapping(db, model, full)
    log(
        f"content mapping ({', '.join(mapping.kinds)}) over {mapping.featuriser.width:,} features; "
        f"{len(mapping.cold):,} products without interactions represented by content"
    )
    run.lap("refit")
    counts = {
        "interactions": len(data),
        "customers": int(data.shape[0]),
        "products": int(data.shape[1]),
        "pairs": int(full.nnz),
        "reference_time": int(data.reference_time),
        "read_at": int(data.read_at),
        "future_events_left_out": int(data.future_events),
        "privacy_epoch": int(data.epoch),
    }

    def refit_incumbent(theirs: dict[str, Any], their_engine: str, their_fitter: Engine) -> dict[str, Any]:
        key = gate.recipe_id(theirs)
        if key in scored:  # e.g. the incumbent's recipe is the best of its family tonight
            return scored[key]
        return evaluate(
            db,
            settings,
            engine=their_engine,
            data=data,
            fitter=their_fitter,
            recipe=recipes.Recipe.from_params(theirs, settings),
        ).payload

    serving = reg.current_version()
    try:
        done = gate_and_publish(
            run, Candidate(model, result.payload, data, full, counts, data.user_ids, data.epoch, refit_incumbent)
        )
    except GateRefused:
        _gate_kept_the_serving_recipe(db, reg, serving, model, result.payload, log)
        raise
    if done.gate:
        _gate_kept_the_serving_recipe(db, reg, serving, model, result.payload, log)
    return done


def _gate_kept_the_serving_recipe(
    db: sqlite_utils.Database,
    reg: registry.Registry,
    serving: str | None,
    model: Any,
    payload: dict[str, Any],
    log: Log,
) -> None:
    """When the gate refused the last search's recipe for scoring below the serving one, adopt the serving one."""
    last = store.last_search(db)
    if (
        not serving
        or not last
        or not last.get("recipe")
        or gate.recipe_id(last["recipe"]) != gate.recipe_id(payload["params"])
    ):
        return
    try:
        theirs = reg.manifest(serving).get("params")
    except ModelError:
        return
    amended = schedule.adopt_incumbent(db, last, model.manifest.get("gate") or {}, theirs)
    if amended is not None:
        log(
            f"the release gate kept the serving recipe: later retrains refit it until the next search "
            f"({amended['label']})"
        )
