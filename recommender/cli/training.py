"""Training and judging models: train, evaluate, tune, models."""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from recommender.cli.common import _stderr_log, emit, json_option, open_db, with_settings
from recommender.config import Settings
from recommender.data import bulk


def engine_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--engine`` plus the Spark engine's options, handed to the command as ``engine_options``."""

    @click.option(
        "--engine",
        type=click.Choice(["implicit", "spark"]),
        default="implicit",
        show_default=True,
        help="Training engine.",
    )
    @click.option(
        "--spark-master",
        default=None,
        metavar="URL",
        help="With --engine spark: local[*], spark://host:7077, yarn, ... [default: local[*]].",
    )
    @click.option(
        "--spark-conf",
        multiple=True,
        metavar="KEY=VALUE",
        help="With --engine spark: a Spark setting (repeatable), e.g. spark.executor.memory=8g.",
    )
    @click.option(
        "--interactions",
        "interactions_path",
        default=None,
        metavar="PATH",
        help="With --engine spark: the Parquet written by export-interactions, read by the cluster.",
    )
    @functools.wraps(func)
    def wrapper(
        engine: str, spark_master: str | None, spark_conf: tuple[str, ...], interactions_path: str | None, **kwargs: Any
    ) -> Any:
        options: dict[str, Any] = {}
        if engine == "spark":
            conf = {}
            for item in spark_conf:
                if "=" not in item:
                    raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--spark-conf")
                key, value = item.split("=", 1)
                conf[key.strip()] = value.strip()
            options = {"master": spark_master, "conf": conf, "interactions_path": interactions_path}
        elif spark_master or spark_conf or interactions_path:
            raise click.BadParameter("only with --engine spark", param_hint="--spark-*")
        return func(engine=engine, engine_options=options, **kwargs)

    return wrapper


def select_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--select`` (search now), ``--no-select`` (configured ALS only) and ``--verbose``; the command gets
    ``select`` (True with --select, else None) and ``verbose``."""

    @click.option(
        "--select",
        "do_select",
        is_flag=True,
        help="Run the model search now (else the recipe chosen by the last search is used; see "
        '"When the search runs").',
    )
    @click.option(
        "--no-select",
        "no_select",
        is_flag=True,
        help="Skip per-shop selection: fit exactly the configured ALS settings (as selection.enabled = false).",
    )
    @click.option(
        "--verbose", is_flag=True, help="Log one line per candidate of the search (the report keeps them all anyway)."
    )
    @functools.wraps(func)
    def wrapper(settings: Settings, do_select: bool, no_select: bool, **kwargs: Any) -> Any:
        if do_select and no_select:
            raise click.UsageError("--select and --no-select contradict each other; give one")
        if no_select:
            settings.selection.enabled = False
        return func(settings=settings, select=True if do_select else None, **kwargs)

    return wrapper


def schedule_line(payload: dict[str, Any]) -> str:
    """One line: did this run search, and why (empty without selection)."""
    plan = payload.get("schedule")
    if not plan:
        return ""
    if plan.get("searched"):
        return f"model search: ran ({plan['reason']}: {plan['message']})"
    return f"model search: not run ({plan['message']}); recipe: {plan.get('recipe') or 'see params'}"


def families_table(payload: dict[str, Any]) -> str:
    """Every family's best validation and test NDCG beside popularity (empty without selection)."""
    sel = payload.get("selection")
    if not sel:
        return ""
    k = payload["k"]
    lines = [
        f"{'family':10}{'validation':>12}{'test':>9}  NDCG@{k}; best of each family on the validation split, "
        f"chosen by validation only"
    ]
    for name, entry in sel["families"].items():
        test = entry.get("test_ndcg")
        lines.append(
            f"{name:10}{entry['validation_ndcg']:>12.4f}{(test if test is not None else float('nan')):>9.4f}"
            f"  {'* ' if entry.get('chosen') else '  '}{entry['label']}"
        )
    lines.append(
        f"{'popularity':10}{sel['validation']['popularity_ndcg']:>12.4f}"
        f"{sel.get('test', {}).get('popularity_ndcg', float('nan')):>9.4f}"
    )
    lines.append(
        f"chosen: {sel['chosen']['label']} ({len(sel['candidates'])} candidates, {sel['seconds']:.1f} s"
        f"{', stopped at the time budget' if sel.get('stopped_early') else ''})"
    )
    plan = payload.get("schedule") or {}
    if plan and not plan.get("searched") and plan.get("last_search_at"):
        lines.append(
            f"(the table is the last search's, run at {plan['last_search_at']}; `recommender select` searches again)"
        )
    return "\n".join(lines)


def _metrics_table(payload: dict[str, Any]) -> str:
    k = payload["k"]
    lines = [
        f"{'':12}{'precision':>11}{'recall':>9}{'ndcg':>9}{'map':>9}{'coverage':>10}   @{k}, {payload['users']:,} customers"
    ]
    for name in ("model", "popularity"):
        m = payload[name]
        lines.append(
            f"{name:12}{m['precision']:>11.4f}{m['recall']:>9.4f}{m['ndcg']:>9.4f}{m['map']:>9.4f}{m['coverage']:>10.4f}"
        )
    return "\n".join(lines)


@click.command()
@with_settings
@select_option
@engine_option
@click.option("--publish", is_flag=True, help="Publish the new model if it passes the release gate.")
@click.option("--force", is_flag=True, help="With --publish: publish even if the gate refuses.")
@json_option
def train(
    settings: Settings,
    engine: str,
    engine_options: dict[str, Any],
    publish: bool,
    force: bool,
    as_json: bool,
    select: bool | None,
    verbose: bool,
) -> None:
    """Retrain: build the matrix, fit, evaluate, gate, and (with --publish) publish.

    The release gate judges tonight's model on tonight's split only: it must
    beat popularity, have no data accident (events dated after now, a collapsed
    fit, a history that shrank by half) and, when the settings changed, score
    at least as well as the current model's settings fitted on the same split.
    A refusal exits with status 1 and says what failed; the current model keeps
    serving. With --publish the nightly housekeeping runs afterwards, whatever
    the gate said: decision-log and model retention, and a WAL checkpoint.
    Erasures and withdrawals recorded while it runs are removed from the model
    before it is saved and again before it is published. SIGTERM stops it
    cleanly (no temporary files left). Unless --no-select, the recipe (model
    family and the settings that do not transfer between shops) is the one
    the last model search chose on a validation split of the training period,
    refitted on tonight's data; the search runs again with --select, before
    the first train, when the last one is selection.every_days old (weekly),
    after a settings change, or when the recipe loses ground on tonight's test
    period (see "When the search runs").
    """
    from recommender.training import run as training

    db = open_db(settings)
    with bulk.terminate_cleanly():  # SIGTERM/SIGHUP: temporary folders are removed on the way out
        result = training.train(
            db,
            settings,
            engine=engine,
            publish=publish,
            force=force,
            progress=not as_json and sys.stderr.isatty(),
            log=_stderr_log(not as_json),
            engine_options=engine_options,
            select=select,
            verbose=verbose,
        )
    state = "published" if result.published else f"saved as candidate (gate: {result.gate or 'would publish'})"
    families = families_table(result.metrics)
    plan = schedule_line(result.metrics)
    emit(
        as_json,
        result.to_dict(),
        f"model {result.version} {state}\n{_metrics_table(result.metrics)}\n"
        + (families + "\n" if families else "")
        + (plan + "\n" if plan else "")
        + f"{result.seconds['total']:.1f} s",
    )


@click.command()
@with_settings
@select_option
@engine_option
@click.option(
    "--k", "k", type=click.IntRange(1, 100), default=None, help="Cut-off of the ranking metrics [default: 10]."
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write report.md, metrics.json and a plot of the metrics at k = 1..20 to this folder.",
)
@json_option
def evaluate(
    settings: Settings,
    engine: str,
    engine_options: dict[str, Any],
    k: int | None,
    report_dir: Path | None,
    as_json: bool,
    select: bool | None,
    verbose: bool,
) -> None:
    """Score the current recipe on the temporal split, next to the popularity baseline.

    The recipe is the one the last model search chose (before any search, the
    serving model's, else the configured ALS), and the last search's table is
    shown: every family's best with its validation and test NDCG (the test
    numbers are reported, never used to choose). It does not search unless
    --select is given (then the search is recorded as the last one, as with
    `recommender select`).
    """
    from recommender.training import report, run as training

    if k is not None:
        settings.evaluation.k = k
    db = open_db(settings)
    with bulk.terminate_cleanly():
        result = training.evaluate_selected(
            db,
            settings,
            engine=engine,
            progress=not as_json and sys.stderr.isatty(),
            curve_k=20 if report_dir else 0,
            log=_stderr_log(not as_json),
            engine_options=engine_options,
            select=bool(select),
            verbose=verbose,
        )
    payload = result.payload
    human = _metrics_table(payload)
    if payload.get("selection"):
        human += "\n" + families_table(payload)
    if schedule_line(payload):
        human += "\n" + schedule_line(payload)
    if report_dir:
        written = report.write(report_dir, payload, result.curves)
        payload = {**payload, "report": str(written)}
        human += f"\nreport: {written}"
    emit(as_json, payload, human)


@click.command()
@with_settings
@click.option(
    "--verbose", is_flag=True, help="Log one line per candidate of the search (the report keeps them all anyway)."
)
@json_option
def select(settings: Settings, verbose: bool, as_json: bool) -> None:
    """Run the model search now and record its choice for the next retrains.

    Candidates (families and settings) are fitted on a validation split of the
    training period and the best is chosen by validation NDCG; each family's
    best is also scored on the test period for the report. Nothing is
    published: the next `recommender train --publish` refits the chosen recipe
    (and the gate judges it). Retrains search by themselves weekly
    (selection.every_days), after a settings change, or when the recipe loses
    ground; see "When the search runs". Needs selection on (not
    selection.enabled = false) and the implicit engine.
    """
    from recommender.training import run as training

    if not settings.selection.enabled:
        raise click.UsageError("selection is off (selection.enabled = false): nothing to search")
    db = open_db(settings)
    with bulk.terminate_cleanly():
        result = training.evaluate_selected(
            db,
            settings,
            progress=not as_json and sys.stderr.isatty(),
            log=_stderr_log(not as_json),
            select=True,
            verbose=verbose,
        )
    payload = result.payload
    human = _metrics_table(payload) + "\n" + families_table(payload)
    emit(as_json, payload, human + "\n" + schedule_line(payload))


@click.command()
@with_settings
@engine_option
@click.option(
    "--trials",
    type=click.IntRange(1, 500),
    default=24,
    show_default=True,
    help="Candidates to try (the first is the current settings).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random search.")
@click.option("--max-seconds", type=click.FloatRange(min=1), default=None, help="Stop after this much time.")
@click.option(
    "--write",
    "write_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the chosen settings as TOML to this file (use it with --config or as recommender.toml).",
)
@json_option
def tune(
    settings: Settings,
    engine: str,
    engine_options: dict[str, Any],
    trials: int,
    seed: int,
    max_seconds: float | None,
    write_path: Path | None,
    as_json: bool,
) -> None:
    """Search hyper-parameters on a validation split carved from the training period only.

    The test period of `recommender evaluate` is never looked at, so its
    numbers stay honest after tuning.
    """
    from recommender import config
    from recommender.training import tuning

    db = open_db(settings)
    best, trials_run, cut = tuning.tune(
        db,
        settings,
        trials=trials,
        seed=seed,
        engine=engine,
        max_seconds=max_seconds,
        log=_stderr_log(not as_json),
        engine_options=engine_options,
    )
    toml_text = config.to_toml(best)
    if write_path:
        write_path.write_text(toml_text)
    ranked = sorted(trials_run, key=lambda t: -t.ndcg)
    payload = {
        "best": {"als": dataclasses.asdict(best.als), "event_weights": best.event_weights},
        "validation_ndcg": ranked[0].ndcg,
        "baseline_validation_ndcg": trials_run[0].ndcg,
        "validation_cut_time": cut,
        "trials": [dataclasses.asdict(t) for t in trials_run],
        "written": str(write_path) if write_path else None,
    }
    human = (
        f"best validation NDCG@{settings.evaluation.k} {ranked[0].ndcg:.4f} "
        f"(current settings {trials_run[0].ndcg:.4f}, {len(trials_run)} trials)\n" + toml_text
    )
    if write_path:
        human += f"written to {write_path}"
    emit(as_json, payload, human.rstrip())


@click.command()
@with_settings
@click.option(
    "--customer",
    default=None,
    help="Also say, per model, whether this customer was in its training data "
    '("yes, since erased" when they were erased or withdrew after it was trained).',
)
@click.option(
    "--prune",
    "do_prune",
    is_flag=True,
    help="Delete artifacts the retention does not keep (current, models.keep_previous published, "
    "anything younger than models.max_age_days); their rows stay as 'pruned'.",
)
@click.option(
    "--rollback",
    "rollback_to",
    default=None,
    metavar="VERSION",
    help="Serve VERSION (an earlier published model still on disk) again: the same atomic pointer swap as a publish.",
)
@json_option
def models(settings: Settings, customer: str | None, do_prune: bool, rollback_to: str | None, as_json: bool) -> None:
    """List trained models: status, metrics, gate and the consent snapshot each was trained under.

    The registry is repaired first (statuses follow CURRENT, directories
    without a row are registered, temporaries of dead jobs deleted).
    """
    from recommender import privacy
    from recommender.models import registry

    if do_prune and rollback_to:
        raise click.UsageError("--prune and --rollback are separate actions; run them one at a time")
    db = open_db(settings)
    if rollback_to:
        done = registry.rollback(db, settings, rollback_to)
        emit(
            as_json,
            done,
            f"now serving {done['current']} (was {done['previous'] or 'none'}); servers follow within a second",
        )
        return
    if do_prune:
        done = registry.prune(db, settings)
        emit(
            as_json,
            done,
            f"removed {len(done['removed'])} model artifact(s) ({done['bytes_freed']:,} bytes); "
            f"kept {len(done['kept'])} ({done['bytes_kept']:,} bytes): "
            + ", ".join(f"{v} ({why})" for v, why in sorted(done["kept"].items())),
        )
        return
    healed = registry.heal(db, settings)
    rows = registry.list_models(db)
    current = registry.Registry(settings.model_dir).current_version()
    subject = privacy.subject_of(db, settings, customer) if customer else None
    trained_on = dict(privacy.trained_on(settings, customer, subject)) if customer else {}
    for row in rows:
        row["current"] = row["version"] == current
        if customer:
            row["trained_on_customer"] = row["version"] in trained_on
            # "erased" / "withdrawn": trained on them, removed from the artifact since (item factors still learnt).
            how = trained_on.get(row["version"])
            row["customer_removed_since"] = how if how in ("erased", "withdrawn") else None
    lines = [
        f"{'version':28}{'status':11}{'engine':10}{'family':9}{'ndcg':>8}{'customers':>11}"
        + (f"  trained on {customer}" if customer else "")
    ]
    for r in rows:
        ndcg = r["metrics"].get("model", {}).get("ndcg")
        family = (r.get("params") or {}).get("family") or "als"
        lines.append(
            f"{r['version'] + (' *' if r['current'] else ''):28}{r['status']:11}{r['engine']:10}{family:9}"
            f"{(ndcg if ndcg is not None else float('nan')):>8.4f}{r['consent_snapshot'].get('customers', 0):>11,}"
            + (
                (
                    ("  yes" if r["trained_on_customer"] else "  no")
                    + (f", since {r['customer_removed_since']}" if r["customer_removed_since"] else "")
                )
                if customer
                else ""
            )
        )
        sel = (r.get("metrics") or {}).get("selection")
        if sel:
            lines.append(
                "    "
                + "  ".join(
                    f"{name} {e['validation_ndcg']:.4f}/{e['test_ndcg'] if e.get('test_ndcg') is not None else float('nan'):.4f}"
                    + ("*" if e.get("chosen") else "")
                    for name, e in sel["families"].items()
                )
                + f"  popularity {sel['validation']['popularity_ndcg']:.4f}/"
                f"{sel.get('test', {}).get('popularity_ndcg', float('nan')):.4f}  (validation/test NDCG)"
            )
    emit(
        as_json,
        {"current": current, "customer": customer, "models": rows, "healed": healed.to_dict()},
        "\n".join(lines),
    )
