"""``recommender value``: customer value (expected purchases and spend, chance of buying, segment).

``recommender value`` refits and stores every profiled customer's score (what the
nightly job does), ``value export`` writes them for the e-mail tool, ``value
evaluate`` runs the evaluation protocol, and ``recommender segments`` reports the
segments with their movement since last month.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from recommender.cli.common import EngineGroup, emit, json_option, open_db, with_settings
from recommender.config import Settings, load_settings
from recommender.errors import RecommenderError


def _group_settings() -> Settings:
    """Settings for the group's own callback (its --db/--config are the group's, remembered by EngineGroup)."""
    meta = click.get_current_context().meta
    db_path, config_path = meta.get("recommender.db_path"), meta.get("recommender.config_path")
    try:
        return load_settings(config_path, overrides={"db": db_path} if db_path else None)
    except RecommenderError as exc:
        raise click.ClickException(str(exc)) from None


def refresh_text(done: dict[str, Any]) -> str:
    from recommender.value import stored

    s = done["summary"]
    h = stored.horizon_words(done["horizon"])
    secs = done["seconds"]
    lines = [
        f"customer value refreshed: {done['stored']:,} customers scored as of {done['as_of'] or '–'}, "
        f"{done['not_profiled']:,} not profiled (no {done['purpose']} consent)",
        f"estimator: {done['estimator']}",
        f"expected in the next {h}: {s['expected_purchases']:,.0f} purchases, {s['expected_spend']:,.2f} spend",
        f"{'segment':17}{'customers':>10}{'revenue so far':>16}{'expected ' + h:>20}",
    ]
    for r in s["segments"]:
        lines.append(f"{r['segment']:17}{r['customers']:>10,}{r['revenue']:>16,.2f}{r['expected_spend']:>20,.2f}")
    lines.append(
        f"{secs['total']:.1f} s (read {secs['read']:.1f}, fit and score {secs['fit_and_score']:.1f}, "
        f"write {secs['write']:.1f})"
    )
    return "\n".join(lines)


@click.group("value", cls=EngineGroup, invoke_without_command=True)
@json_option
@click.pass_context
def value(ctx: click.Context, as_json: bool) -> None:
    """Customer value: refit and store every profiled customer's score (docs/value.md).

    Without a subcommand: expected purchases and spend per horizon, chance
    still active and segment of every customer who grants value.purpose,
    fitted on the whole history and stored at once (the nightly job does the
    same after every retrain); prints a summary per segment.
    """
    if ctx.invoked_subcommand is not None:
        return
    from recommender.value import refresh

    settings = _group_settings()
    db = open_db(settings)
    try:
        done = refresh.refresh(db, settings)
    finally:
        db.conn.close()
    emit(as_json, done, refresh_text(done))


@value.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@json_option
@with_settings
def export(settings: Settings, out: Path, force: bool, as_json: bool) -> None:
    """Write every stored customer value to OUT.csv for the e-mail tool.

    One row per profiled customer (segment, chance still active, expected
    purchases and spend per horizon); cells that a spreadsheet would run as a
    formula are neutralised. The file is registered as a copy: an erasure, or
    a withdrawal of value.purpose, rewrites it without the customer.
    """
    from recommender.value import stored

    db = open_db(settings)
    try:
        done = stored.export_csv(db, settings, out, force=force)
    finally:
        db.conn.close()
    emit(as_json, done, f"wrote {done['rows']:,} customers to {done['out']} (values as of {done['as_of']})")


@click.command("segments")
@json_option
@with_settings
def segments(settings: Settings, as_json: bool) -> None:
    """Customers and revenue share per segment, and the movement since last month.

    From the last stored refresh (`recommender value`, or the nightly job);
    the movement compares with the last snapshot of an earlier month.
    """
    from recommender.value import stored

    db = open_db(settings)
    try:
        payload = stored.report(db, settings)
    finally:
        db.conn.close()
    emit(as_json, payload, stored.report_table(payload))


@value.command("evaluate")
@click.option(
    "--cut",
    default=None,
    metavar="DATE",
    help="Last day of the calibration period, YYYY-MM-DD [default: the last --horizon days are the holdout].",
)
@click.option(
    "--horizon",
    type=click.IntRange(min=1),
    default=None,
    metavar="DAYS",
    help="Length of the holdout in days [default: to the last purchase with --cut; else "
    "value.evaluation_days, at most a third of the history].",
)
@click.option(
    "--report",
    "report_dir",
    default=None,
    metavar="DIR",
    help="Also write value.json, report.md and deciles.png (calibration by decile) to DIR.",
)
@json_option
@with_settings
def evaluate(settings: Settings, cut: str | None, horizon: int | None, report_dir: str | None, as_json: bool) -> None:
    """Every estimator and anchor side by side on a calibration/holdout split by time."""
    from recommender.value import evaluate as protocol, transactions

    db = open_db(settings)
    try:
        tx = transactions.load(db, settings)
    finally:
        db.conn.close()
    payload = protocol.evaluate(tx, settings, cut=cut, horizon=horizon)
    if report_dir:
        payload["report"] = str(protocol.write_report(report_dir, payload))
    emit(as_json, payload, protocol.table(payload))
