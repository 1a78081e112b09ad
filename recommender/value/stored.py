"""The stored scores as the faces show them: one customer, the segment report, the CSV for the e-mail tool.

Every read goes through the store's consent rule for ``value.purpose``: a customer
who does not grant it now gets ``{"profiled": false, "reason": "no_consent"}`` and
nothing else, whatever a stale row might say (the schema's triggers delete the row
with the withdrawal anyway). Aggregates (segment counts, revenue shares, the
distribution) are those of the last refresh and carry no customer id.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import sqlite_utils

from recommender import csvsafe, store
from recommender.config import Settings
from recommender.durable import new_private_file
from recommender.errors import NotFoundError, ValidationError
from recommender.privacy import copies
from recommender.value import segments
from recommender.value.refresh import display_horizon
from recommender.values import normalise_id

EXPORT_KIND = "value_export"  # its kind in the ``copies`` table: erasure and withdrawal rewrite the file

# Why a known customer has no score (the API's and the console's ``reason``).
REASONS = {
    "no_consent": "not profiled: no {purpose} consent (value and segment are profiling)",
    "not_scored": "no score yet: no purchase before the last refresh, or consent given since",
    "no_refresh": "no score yet: customer value has not been computed (recommender value)",
}


def horizon_key(h: float) -> str:
    return f"{float(h):g}"


def _unscored(customer_id: str, reason: str, purpose: str) -> dict[str, Any]:
    """The same keys as a score, every figure null: only the reason is said."""
    return {
        "customer_id": customer_id,
        "profiled": False,
        "reason": reason,
        "purpose": purpose,
        "segment": None,
        "segment_rule": None,
        "p_active": None,
        "expected": [],
        "recency_days": None,
        "purchase_days": None,
        "spend_to_date": None,
        "as_of": None,
        "computed_at": None,
        "estimator": None,
    }


def customer_value(db: sqlite_utils.Database, settings: Settings, customer_id: str) -> dict[str, Any]:
    """One customer's value as the API answers it; NotFoundError for an unknown customer."""
    customer_id = normalise_id(customer_id)
    purpose = settings.value.purpose
    exists, granted = store.customer_consent(db, customer_id, purpose)
    if not exists:
        raise NotFoundError(f"unknown customer {customer_id!r}")
    if not granted:
        return _unscored(customer_id, "no_consent", purpose)
    row = store.customer_value_row(db, customer_id, purpose)
    if row is None:
        return _unscored(customer_id, "not_scored" if store.latest_value_run(db) is not None else "no_refresh", purpose)
    horizons = sorted(float(h) for h in row["spend"])
    return {
        "customer_id": customer_id,
        "profiled": True,
        "reason": None,
        "purpose": purpose,
        "segment": row["segment"],
        "segment_rule": segments.why(row["segment"]),
        "p_active": round(float(row["p_active"]), 4),
        "expected": [
            {
                "days": int(h) if h == int(h) else h,
                "purchases": row["purchases"][horizon_key(h)],
                "spend": row["spend"][horizon_key(h)],
            }
            for h in horizons
        ],
        "recency_days": int(row["recency_days"]),
        "purchase_days": int(row["purchase_days"]),
        "spend_to_date": round(float(row["spend_to_date"]), 2),
        "as_of": row["as_of"],
        "computed_at": row["computed_at"],
        "estimator": row["estimator"],
    }


# --- words ------------------------------------------------------------------------------------------------------


def money(amount: float, currency: str = "") -> str:
    """An amount as a marketer reads it: "£120", "£1,250", "£8.50" under 10."""
    amount = float(amount)
    text = f"{amount:,.2f}" if abs(amount) < 10 else f"{round(amount):,.0f}"
    return f"{currency}{text}" if currency else text


def span(days: float) -> str:
    """A duration in words: "12 days", "3 weeks", "4 months", "2 years"."""
    days = float(days)
    if days < 14:
        n = round(days)
        return f"{n} day" + ("" if n == 1 else "s")
    if days < 61:
        n = round(days / 7)
        return f"{n} weeks"
    if days < 730:
        n = round(days / 30.44)
        return f"{n} months"
    return f"{days / 365.25:.0f} years"


def horizon_words(days: float) -> str:
    """90 -> "3 months", 180 -> "6 months", 365 -> "12 months", 30 -> "30 days"."""
    months = days / 30.44
    return f"{round(months)} months" if days >= 60 and abs(months - round(months)) < 0.15 else f"{days:g} days"


def day_words(iso: str | None) -> str:
    """2025-02-02 -> "2 Feb 2025"."""
    if not iso:
        return "–"
    day = dt.date.fromisoformat(iso)
    return f"{day.day} {day:%b} {day.year}"


def segment_why(value: dict[str, Any]) -> str:
    """The segment's rule with this customer's own figures: "…: bought 7 times, the last 4 months before 2 Feb 2025"."""
    times = int(value["purchase_days"])
    if times == 1:
        bought = f"bought once, {span(value['recency_days'])} before {day_words(value['as_of'])}"
    else:
        bought = f"bought {times} times, the last {span(value['recency_days'])} before {day_words(value['as_of'])}"
    return f"{segments.why(value['segment'])}: {bought}"


def chance(p: float) -> str:
    """A probability as a marketer reads it: "80 %", "over 99 %", "under 1 %" (never a certain 100 % or 0 %)."""
    pct = 100 * float(p)
    if pct >= 99.5:
        return "over 99 %"
    if pct < 0.5:
        return "under 1 %"
    return f"{round(pct)} %"


def sentence(value: dict[str, Any], settings: Settings) -> str:
    """The customer page's line: "Expected to spend about £120 in the next 6 months; 80 % likely still active; …"."""
    h = display_horizon(settings)
    row = next((e for e in value["expected"] if float(e["days"]) == h), value["expected"][0])
    return (
        f"Expected to spend about {money(row['spend'], settings.value.currency)} in the next "
        f"{horizon_words(float(row['days']))}; {chance(value['p_active'])} likely still active; "
        f"segment: {value['segment']} — {segment_why(value)}"
    )


# --- the segment report -------------------------------------------------------------------------------------------


def report(db: sqlite_utils.Database, settings: Settings) -> dict[str, Any]:
    """Customers and revenue share per segment at the last refresh, and the movement since last month."""
    run = store.latest_value_run(db)
    if run is None:
        return {"computed": False, "purpose": settings.value.purpose, "segments": [], "previous_month": None}
    summary = run["summary"]
    month = run["computed_at"][:7]
    earlier = [s for s in store.value_snapshots(db) if s["month"] < month]
    previous = earlier[-1] if earlier else None
    profiled, revenue, expected = summary["profiled"], summary["revenue"], summary["expected_spend"]
    rows = []
    for r in summary["segments"]:
        share = r["revenue"] / revenue if revenue else 0.0
        before = (previous["summary"]["segments"].get(r["segment"]) if previous else None) or None
        rows.append(
            {
                "segment": r["segment"],
                "rule": segments.why(r["segment"]),
                "customers": r["customers"],
                "customer_share": r["customers"] / profiled if profiled else 0.0,
                "revenue": r["revenue"],
                "revenue_share": share,
                "expected_spend": r["expected_spend"],
                "expected_share": r["expected_spend"] / expected if expected else 0.0,
                "p_active": r["p_active"],
                "customers_change": r["customers"] - before["customers"] if before else None,
                "revenue_share_change": share - before["revenue_share"] if before else None,
            }
        )
    return {
        "computed": True,
        "purpose": run["purpose"],
        "computed_at": run["computed_at"],
        "as_of": run["as_of"],
        "estimator": run["estimator"],
        "horizon": summary["horizon"],
        "profiled": profiled,
        "not_profiled": summary["not_profiled"],
        "revenue": revenue,
        "expected_spend": expected,
        "expected_purchases": summary["expected_purchases"],
        "segments": rows,
        "distribution": summary["distribution"],
        "previous_month": previous["month"] if previous else None,
        "profiled_change": profiled - previous["summary"]["profiled"] if previous else None,
    }


def report_table(payload: dict[str, Any]) -> str:
    """The report as text (``recommender segments``)."""
    if not payload["computed"]:
        return "no customer value computed yet: run `recommender value`"
    since = payload["previous_month"]
    lines = [
        f"customer value of {payload['as_of']} (computed {payload['computed_at']}): "
        f"{payload['profiled']:,} customers profiled, {payload['not_profiled']:,} not profiled "
        f"(no {payload['purpose']} consent)",
        f"{'segment':17}{'customers':>10}{'share':>8}{'revenue':>9}"
        f"{'exp. ' + horizon_words(payload['horizon']):>17}"
        + (f"   since {since}" if since else "   (no earlier month to compare)"),
    ]
    for r in payload["segments"]:
        line = (
            f"{r['segment']:17}{r['customers']:>10,}{100 * r['customer_share']:>7.1f}%{100 * r['revenue_share']:>8.1f}%"
            f"{100 * r['expected_share']:>16.1f}%"
        )
        if since:
            line += f"   {r['customers_change']:+,} customers, revenue share {100 * r['revenue_share_change']:+.1f} pts"
        lines.append(line)
    return "\n".join(lines)


# --- the CSV for the e-mail tool ------------------------------------------------------------------------------------


def export_columns(settings: Settings) -> list[str]:
    hs = [horizon_key(h) for h in settings.value.horizons]
    return [
        "customer_id",
        "segment",
        "p_active",
        *[f"purchases_{h}d" for h in hs],
        *[f"spend_{h}d" for h in hs],
        "recency_days",
        "purchase_days",
        "spend_to_date",
        "as_of",
    ]


def export_rows(db: sqlite_utils.Database, settings: Settings, as_of: str | None) -> Iterator[dict[str, Any]]:
    """One dict per stored score of a customer granting ``value.purpose`` now (:func:`export_columns`)."""
    hs = [horizon_key(h) for h in settings.value.horizons]
    for cid, segment, p_active, purchases, spend, recency, days, to_date in store.stored_customer_values(
        db, settings.value.purpose
    ):
        purchases, spend = json.loads(purchases), json.loads(spend)
        row = {
            "customer_id": cid,
            "segment": segment,
            "p_active": round(p_active, 4),
            "recency_days": recency,
            "purchase_days": days,
            "spend_to_date": round(to_date, 2),
            "as_of": as_of,
        }
        for h in hs:
            row[f"purchases_{h}d"] = purchases.get(h, "")
            row[f"spend_{h}d"] = spend.get(h, "")
        yield row


def write_rows(fh: IO[str], rows: Iterable[dict[str, Any]], columns: list[str]) -> list[str]:
    """Write ``rows`` as CSV through :mod:`recommender.csvsafe`; returns the customer ids written."""
    writer = csvsafe.writer(fh, columns)
    writer.writeheader()
    ids = []
    for row in rows:
        writer.writerow(row)
        ids.append(row["customer_id"])
    return ids


def export_csv(
    db: sqlite_utils.Database, settings: Settings, out: str | Path, *, force: bool = False
) -> dict[str, Any]:
    """Write every stored score of a consenting customer to ``out`` (CSV, formula cells neutralised).

    The file is registered as a copy (kind ``value_export``), so an erasure and a
    withdrawal of ``value.purpose`` rewrite it without the customer; after it is
    registered, anyone who stopped granting the purpose while it was written is
    removed from it at once. Without ``force`` an existing file is never replaced.
    """
    path = Path(out)
    if path.suffix.lower() != ".csv":
        raise ValidationError(f"export file must end in .csv, got {path.name!r}")
    if path.is_dir():
        raise ValidationError(f"export {path} is a folder; give a file name")
    if path.exists() and not force:
        raise ValidationError(f"export {path} already exists; choose a new name or pass --force to replace it")
    if not path.parent.is_dir():
        raise ValidationError(f"cannot write {path}: folder {path.parent} does not exist (create it first)")
    run = store.latest_value_run(db)
    if run is None:
        raise ValidationError("no customer value computed yet: run `recommender value` first")
    purpose = settings.value.purpose
    columns = export_columns(settings)
    copies.start_following(db)
    # per-customer profiling: owner-only, like the database; one read of the stored values
    with new_private_file(path, force=force) as fh, store.read_transaction(db):
        ids = write_rows(fh, export_rows(db, settings, run["as_of"]), columns)
    store.register_copy(db, path, EXPORT_KIND)
    # registered first, checked second: an erasure or withdrawal from now on reaches the file through
    # `copies`; one that committed while it was written is removed here
    gone = set(ids) - store.consented_among(db, ids, purpose)
    removed = copies.rewrite_campaign_file(path, gone) if gone else 0
    return {
        "out": str(path),
        "rows": len(ids) - removed,
        "removed_after_write": removed,
        "columns": columns,
        "as_of": run["as_of"],
        "computed_at": run["computed_at"],
    }
