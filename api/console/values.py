"""Customer value on the console: the value page, the overview's segment panel and the customer page's card.

Everything is read from the last stored refresh (:mod:`recommender.value.stored`):
per-customer figures only for customers who grant ``value.purpose`` now,
aggregates (segments, distribution) without any customer id. Marketer and
admin roles (the console's default). Engineering terms (the estimator, BG/NBD)
are in each page's "Technical details".
"""

from __future__ import annotations

import io
from typing import Any

from flask import Response

from recommender import store
from recommender.value import stored

from ..db import get_db
from . import charts
from .base import bp, page, settings


def _money(amount: float | None) -> str:
    return "–" if amount is None else stored.money(amount, settings().value.currency)


def _bin_label(low: float, high: float) -> str:
    return f"{charts.short(low)}–{charts.short(high)}"


def segment_report() -> dict[str, Any]:
    """The segment report with words for the page (movement in customers and revenue-share points)."""
    report = stored.report(get_db(), settings())
    if not report["computed"]:
        return report
    for r in report["segments"]:
        r["movement"] = movement_words(r)
    report["horizon_words"] = stored.horizon_words(report["horizon"])
    report["as_of_words"] = stored.day_words(report["as_of"])
    report["expected_words"] = _money(report["expected_spend"])
    return report


def movement_words(row: dict[str, Any]) -> str:
    """ "+12 customers, revenue share +1.5 pts" (or "–" with no earlier month)."""
    if row.get("customers_change") is None:
        return "–"
    change = row["customers_change"]
    who = "no change" if change == 0 else f"{change:+,} customer" + ("" if abs(change) == 1 else "s")
    return f"{who}; revenue share {100 * row['revenue_share_change']:+.1f} pts"


def overview_panel() -> dict[str, Any]:
    """The overview's card: customers and revenue share per segment, movement since last month."""
    return segment_report()


def customer_card(customer_id: str) -> dict[str, Any]:
    """What the customer page shows about the customer's value (a reason instead when there is none)."""
    conf = settings()
    value = stored.customer_value(get_db(), conf, customer_id)
    out: dict[str, Any] = {"value": value, "purpose": conf.value.purpose}
    if not value["profiled"]:
        out["reason"] = stored.REASONS[value["reason"]].format(purpose=conf.value.purpose)
        return out
    out["sentence"] = stored.sentence(value, conf)
    out["expected"] = [
        {"words": stored.horizon_words(float(e["days"])), "spend": _money(e["spend"]), "purchases": e["purchases"]}
        for e in value["expected"]
    ]
    out["why"] = stored.segment_why(value)
    out["spent"] = _money(value["spend_to_date"])
    out["chance"] = stored.chance(value["p_active"])
    out["last"] = stored.span(value["recency_days"])
    out["as_of_words"] = stored.day_words(value["as_of"])
    out["first_horizon"] = stored.horizon_words(float(conf.value.horizons[0]))  # the horizon of p_active
    return out


@bp.get("/value")
def value_page():
    report = segment_report()
    chart = None
    if report["computed"]:
        chart = charts.bars(
            [(_bin_label(b["low"], b["high"]), b["customers"]) for b in report["distribution"]],
            f"Customers by expected spend in the next {report['horizon_words']}",
        )
    return page(
        "value.html",
        title="Customer value",
        report=report,
        chart=chart,
        money=_money,
        horizons=[float(h) for h in settings().value.horizons],
    )


@bp.get("/value/export.csv")
def value_export():
    """Every profiled customer's value as CSV (formula cells neutralised), for the e-mail tool."""
    db, conf = get_db(), settings()
    run = store.latest_value_run(db)
    buffer = io.StringIO()
    stored.write_rows(
        buffer, stored.export_rows(db, conf, run["as_of"] if run else None) if run else [], stored.export_columns(conf)
    )
    as_of = (run or {}).get("as_of") or "none"
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="customer-value-{as_of}.csv"',
            "Cache-Control": "no-store",
        },
    )
