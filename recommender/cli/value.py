"""``recommender value``: customer value (expected purchases and spend, chance of buying, segment)."""

from __future__ import annotations

import click

from recommender.cli.common import EngineGroup, emit, json_option, open_db, with_settings
from recommender.config import Settings


@click.group("value", cls=EngineGroup)
def value() -> None:
    """Customer value: how it is estimated, and how well (docs/value.md)."""


@value.command("evaluate")
@click.option("--cut", default=None, metavar="DATE",
              help="Last day of the calibration period, YYYY-MM-DD [default: the last --horizon days are the holdout].")
@click.option("--horizon", type=click.IntRange(min=1), default=None, metavar="DAYS",
              help="Length of the holdout in days [default: to the last purchase with --cut; else "
                   "value.evaluation_days, at most a third of the history].")
@click.option("--report", "report_dir", default=None, metavar="DIR",
              help="Also write value.json, report.md and deciles.png (calibration by decile) to DIR.")
@json_option
@with_settings
def evaluate(settings: Settings, cut: str | None, horizon: int | None, report_dir: str | None,
             as_json: bool) -> None:
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
