"""``recommender coldstart evaluate``: new products for their buyers, against the category baselines (docs/new-products.md)."""

from __future__ import annotations

import click

from recommender.cli.common import EngineGroup, _stderr_log, emit, json_option, open_db, with_settings
from recommender.config import Settings


@click.group("coldstart", cls=EngineGroup)
def coldstart() -> None:
    """New products: evaluate their content mapping against the category baselines (docs/new-products.md)."""


@coldstart.command("evaluate")
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of the random baseline and of exploration.")
@json_option
@with_settings
def evaluate(settings: Settings, seed: int, as_json: bool) -> None:
    """Products first sold in the test period: content mapping vs newest and random in the category.

    The split, recipe and test customers of `recommender evaluate`; for the new
    products' buyers, recall and NDCG at k of each method, and the overall NDCG
    of personal lists with and without the new products and the exploration share.
    """
    from recommender.training import coldstart as protocol

    db = open_db(settings)
    try:
        payload = protocol.evaluate(db, settings, log=_stderr_log(not as_json), seed=seed)
    finally:
        db.conn.close()
    emit(as_json, payload, protocol.table(payload))
