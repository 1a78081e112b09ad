"""``recommender report``: reports read from the database (online measurement, campaign offers)."""

from __future__ import annotations

from typing import Any

import click

from recommender.cli.common import EngineGroup, emit, json_option, open_db, with_settings
from recommender.config import Settings


@click.group("report", cls=EngineGroup)
def report() -> None:
    """Reports on what the engine served and what came of it."""


@report.command("online")
@click.option(
    "--since",
    default=None,
    metavar="TIME",
    help="Only lists served (and events) from this ISO 8601 date or date-time on "
    "[default: every list the decision log holds].",
)
@json_option
@with_settings
def online_report(settings: Settings, since: str | None, as_json: bool) -> None:
    """Lists served, click-through, conversion and revenue per A/B arm and surface, and the uplift over control."""
    from recommender import online

    db = open_db(settings)
    try:
        payload = online.report(db, settings, since=since)
    finally:
        db.conn.close()
    emit(as_json, payload, human(payload))


@report.command("campaigns")
@click.option(
    "--since",
    default=None,
    metavar="DATE",
    help="Only offers made on or after this date (YYYY-MM-DD) [default: every offer in the ledger].",
)
@click.option(
    "--kind",
    type=click.Choice(["birthday", "anniversary", "winback", "second_purchase", "thank_you"]),
    default=None,
    help="Only offers of this kind [default: every kind].",
)
@json_option
@with_settings
def campaigns_report(settings: Settings, since: str | None, kind: str | None, as_json: bool) -> None:
    """Campaign offers in customer terms: revenue per customer and the share who bought again 30 and 90 days
    after the offer, sent against held out, with 95 % intervals, and the incremental revenue."""
    from recommender.campaigns import report as campaign_report

    db = open_db(settings)
    try:
        payload = campaign_report.report(db, settings, since=since, kind=kind)
    finally:
        db.conn.close()
    emit(as_json, payload, campaign_report.human(payload))


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}%"


def human(payload: dict[str, Any]) -> str:
    """A table per arm and one line per uplift, for a person at a terminal."""
    lines = [
        f"online report since {payload['since'] or 'the start of the decision log'} "
        f"(window {payload['window_hours']:g} h, control share {payload['control_share']:g})"
    ]
    if not payload["arms"]:
        lines.append("no lists served yet")
    else:
        lines.append(
            f"{'surface':<16} {'arm':<11} {'model':<24} {'lists':>7} {'cust.':>6} {'CTR':>8} "
            f"{'cart':>8} {'conv.':>8} {'revenue':>10} {'flagged':>13}"
        )
        for a in payload["arms"]:
            lines.append(
                f"{a['surface']:<16} {a['arm']:<11} {a['model_version'] or '–'!s:<24} {a['lists']:>7} "
                f"{a['customers']:>6} {_pct(a['ctr']):>8} {_pct(a['add_to_cart_rate']):>8} "
                f"{_pct(a['conversion']):>8} {a['revenue']:>10.2f} "
                f"{a['flagged']:>5} ({_pct(a['flagged_share'])})"
            )
    for u in payload["uplift"]:
        lo, hi = u["ci95"]
        fmt = (lambda v: f"{v:+.2f}") if u["metric"] == "revenue_per_list" else (lambda v: f"{100 * v:+.2f} pt")
        rel = "" if u["relative"] is None else f" ({100 * u['relative']:+.1f} %)"
        lines.append(
            f"uplift {u['surface']} {u['metric']}: {u['treatment']} - {u['control']} = {fmt(u['difference'])}"
            f"{rel}, 95 % CI [{fmt(lo)}, {fmt(hi)}], n = {u['n_treatment']} / {u['n_control']} lists"
        )
    lines.extend(rule_lines(payload.get("rules") or []))
    e = payload["events"]
    lines.append(
        f"events attributed: {e['attributed_by_list_id']} by list_id, {e['attributed_by_window']} by window; "
        f"{e['unattributed']} not from a list"
    )
    lines.append(
        f"events flagged (implausible price or quantity above the cap, counted at the catalogue price and "
        f"the cap): {e['flagged']}; list_id of another customer (ignored): {e['list_id_of_another_customer']}"
    )
    return "\n".join(lines)


def rule_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Per rule, arm and surface: lists the rule touched against the lists of that arm and surface it did not."""
    if not rows:
        return ["by rule: no list was changed by a rule"]
    out = [
        "by rule (lists the rule touched vs the lists of the same arm and surface it did not):",
        f"{'rule':<20} {'surface':<16} {'arm':<11} {'':<9} {'lists':>7} {'clicks':>7} {'CTR':>8} "
        f"{'bought':>7} {'conv.':>8} {'revenue':>10} {'rev/list':>9}",
    ]
    for r in rows:
        for label, side in (("touched", r["touched"]), ("untouched", r["untouched"])):
            head = (
                f"{r['rule'][:20]:<20} {r['surface']:<16} {r['arm']:<11}"
                if label == "touched"
                else f"{'':<20} {'':<16} {'':<11}"
            )
            out.append(
                f"{head} {label:<9} {side['lists']:>7} {side['clicks']:>7} {_pct(side['ctr']):>8} "
                f"{side['purchases']:>7} {_pct(side['conversion']):>8} {side['revenue']:>10.2f} "
                f"{side['revenue_per_list']:>9.2f}"
            )
    return out
