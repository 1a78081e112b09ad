"""``recommender sessions evaluate``: the session protocol, every scorer side by side (docs/sessions.md)."""

from __future__ import annotations

from typing import Any

import click

from recommender.cli.common import EngineGroup, _stderr_log, emit, json_option, open_db, with_settings
from recommender.config import Settings


@click.group("sessions", cls=EngineGroup)
def sessions() -> None:
    """Lists for a visit: evaluate the session scorers and choose the shop's (docs/sessions.md)."""


def _given(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        out = tuple(sorted({int(v) for v in value.split(",") if v.strip()}))
    except ValueError:
        raise click.BadParameter("a comma-separated list of whole numbers, e.g. 1,2,3") from None
    if not out or min(out) < 1 or max(out) > 50:
        raise click.BadParameter("each value from 1 to 50")
    return out


def table_text(payload: dict[str, Any]) -> str:
    lines = [
        f"sessions (customer-days): {payload['sessions']:,}; validation cut {payload['validation_cut']}, "
        f"test from {payload['test_cut']}; given the first {','.join(map(str, payload['given']))} products, "
        f"predict the rest (@{payload['k']})",
        f"validation: {payload['validation']['held_out_sessions']:,} held-out sessions "
        f"({payload['validation']['cases']:,} cases); test: {payload['test']['held_out_sessions']:,} "
        f"({payload['test']['cases']:,} cases)",
        f"model scorer: {payload['recipe']}",
        "",
        f"{'scorer':34}{'val NDCG':>10}{'test HR':>10}{'test MRR':>10}{'test NDCG':>11}{'± se':>8}",
    ]
    for row in payload["scorers"]:
        mark = " <- chosen" if row["chosen"] else (" (anchor)" if row["anchor"] else "")
        v, t = row["validation"], row["test"]
        lines.append(
            f"{row['label'][:33]:34}{v['ndcg']:>10.4f}{t['hit_rate']:>10.4f}{t['mrr']:>10.4f}"
            f"{t['ndcg']:>11.4f}{t['ndcg_se']:>8.4f}{mark}"
        )
    choice = payload["choice"]
    vs = payload["against_best_anchor"]
    lines += [
        "",
        f"shipped: {choice['label']} (best validation NDCG@10 {choice['validation_ndcg']:.4f}; the test "
        "numbers were not used to choose)",
        f"against the best anchor on test ({vs['anchor']}): {vs['difference']:+.4f} NDCG@10 "
        f"(paired se {vs['paired_se']:.4f}); beats every anchor: "
        f"{'yes' if payload['beats_every_anchor_on_test'] else 'no'}",
        "recorded for visit lists (POST /v1/recommendations)"
        if payload.get("recorded")
        else "not recorded (--no-record)",
        f"{payload['seconds']:.1f} s",
    ]
    return "\n".join(lines)


@sessions.command("evaluate")
@click.option(
    "--given",
    default="1,2,3",
    show_default=True,
    callback=_given,
    metavar="G,...",
    help="How many first products of each held-out session the scorers see (one case per value).",
)
@click.option(
    "--max-sessions",
    default=5000,
    show_default=True,
    type=click.IntRange(10, 1_000_000),
    help="Held-out sessions per period (a seeded sample beyond).",
)
@click.option("--no-record", is_flag=True, help="Print the table only: keep the scorer visit lists use now.")
@json_option
@with_settings
def evaluate(settings: Settings, given: tuple[int, ...], max_sessions: int, no_record: bool, as_json: bool) -> None:
    """Session protocol: popularity, co-occurrence, V-SKNN, the model and their mix side by side.

    Sessions are a customer's events of one day; the last 20 % (by start time)
    are the test period, the training period's own last 20 % the validation.
    V-SKNN's k and m and the mix's weight are tuned on validation, and the
    scorer with the best validation NDCG@10 is recorded for visit lists.
    """
    from recommender.training import sessions as protocol

    db = open_db(settings)
    try:
        payload = protocol.run(
            db, settings, given=given, max_sessions=max_sessions, record=not no_record, log=_stderr_log(not as_json)
        )
    finally:
        db.conn.close()
    emit(as_json, payload, table_text(payload))
