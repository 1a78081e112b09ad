"""Campaigns: upcoming occasions, a preview, a confirmed run, its export, and the ledger.

Everything goes through :mod:`recommender.campaigns` (the library the CLI
uses), never a subprocess. A run's export is written by the ledger's own
transaction into ``campaign-exports/`` beside the database and registered as a
copy, so an erasure scrubs it like any other; beside it a ``.summary.json``
holds the run's counts (no personal data) for the result page.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections import Counter
from pathlib import Path
from typing import Any

from flask import redirect, request, send_from_directory, url_for

from recommender import campaigns, store
from recommender.campaigns import eligibility, kinds as campaign_kinds, occasions
from recommender.durable import private_folder, private_folder_of
from recommender.errors import NotFoundError, ValidationError
from recommender.store import console as queries
from recommender.store.consents import MARKETING

from ..db import get_db, get_service
from . import charts
from .base import bp, page, settings

UPCOMING_DAYS = 30
EXPORT_NAME = re.compile(r"^[0-9]{8}-(birthday|anniversary|all)-[0-9a-f]{8}\.csv$")
SPREAD_ROWS = 15


def exports_dir() -> Path:
    """Where console runs write their exports: the database's private folder, which git ignores."""
    return private_folder(private_folder_of(settings().db)) / "campaign-exports"


def upcoming() -> dict[str, Any]:
    """Occasions in the next 30 days per local day and occasion, with how many may be contacted."""
    db, conf = get_db(), settings().campaigns
    instant = occasions.run_instant()
    found = eligibility.find(db, conf, occasions.OCCASIONS, instant, UPCOMING_DAYS, {})
    consenting = store.consented_among(db, sorted({c.customer_id for c in found}), MARKETING)
    by_day: dict[int, dict[str, list[int]]] = {}
    for c in found:
        cell = by_day.setdefault(c.date, {o: [0, 0] for o in occasions.OCCASIONS})[c.occasion]
        cell[0] += 1
        cell[1] += c.customer_id in consenting
    first = (instant.date() - dt.date(1970, 1, 1)).days
    days = []
    for d in range(first, first + UPCOMING_DAYS + 1):
        cells = by_day.get(d, {o: [0, 0] for o in occasions.OCCASIONS})
        days.append(
            {
                "day": (dt.date(1970, 1, 1) + dt.timedelta(days=d)).isoformat(),
                "cells": cells,
                "total": sum(v[0] for v in cells.values()),
            }
        )
    chart = charts.bars(
        [(d["day"][5:], d["total"]) for d in days], f"Birthdays and anniversaries per day, next {UPCOMING_DAYS} days"
    )
    return {
        "days": days,
        "chart": chart,
        "total": len(found),
        "consenting": sum(c.customer_id in consenting for c in found),
    }


def _int(name: str, low: int, high: int | None, default: int | None) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name}: {raw!r} is not a whole number") from None
    if value < low or (high is not None and value > high):
        raise ValidationError(
            f"{name}: must be between {low} and {high}" if high is not None else f"{name}: must be at least {low}"
        )
    return value


def request_from_form() -> campaigns.CampaignRequest:
    """The campaign asked for by the form; each bad field is named (422 page)."""
    occasion = request.form.get("occasion", "all")
    if occasion not in campaign_kinds.CHOICES:
        raise ValidationError(f"occasion: must be one of {', '.join(campaign_kinds.CHOICES)}, got {occasion!r}")
    date = request.form.get("date", "").strip() or dt.datetime.now(dt.UTC).date().isoformat()
    try:
        occasions.run_instant(date=date)
    except ValidationError as exc:
        raise ValidationError("date: " + str(exc).removeprefix("--date: ")) from None
    return campaigns.CampaignRequest(
        occasion=occasion,
        date=date,
        days_ahead=_int("days_ahead", 0, occasions.MAX_DAYS_AHEAD, 7),
        items=_int("items", 1, campaigns.MAX_ITEMS, None),
        max_per_product=_int("max_per_product", 1, None, None),
    )


def spread(result: campaigns.CampaignResult) -> list[dict[str, Any]]:
    """Offers per product (most offered first), with its stock, units already promised and the run's cap.

    ``share`` is the product's share of all products offered (an offer holds several), so the
    shares add to 100 %: the products past the first SPREAD_ROWS are summed in a last row.
    """
    counts = Counter(p for o in result.offers for p in o.product_ids)
    slots = max(sum(counts.values()), 1)
    top = [pid for pid, _ in counts.most_common(SPREAD_ROWS)]
    stock = queries.stock_of(get_db(), top)
    rows = [
        {
            "product_id": pid,
            "name": stock.get(pid, ("?", None))[0],
            "offers": counts[pid],
            "stock": stock.get(pid, (None, None))[1],
            "promised": result.outstanding.get(pid, 0),
            "share": counts[pid] / slots,
        }
        for pid in top
    ]
    rest = len(counts) - len(top)
    if rest > 0:
        others = sum(counts.values()) - sum(counts[p] for p in top)
        rows.append(
            {
                "product_id": None,
                "name": f"{rest:,} other products",
                "offers": others,
                "stock": None,
                "promised": None,
                "share": others / slots,
                "others": True,
            }
        )
    return rows


@bp.get("/campaigns")
def campaigns_page():
    return page(
        "campaigns.html",
        title="Campaigns",
        upcoming=upcoming(),
        runs=queries.campaign_runs(get_db()),
        today=dt.datetime.now(dt.UTC).date().isoformat(),
        form={},
    )


@bp.post("/campaigns/preview")
def preview():
    req = request_from_form()
    db = get_db()
    result = campaigns.run(db, settings(), req, dry_run=True, model=get_service().live.get(db))
    last = (dt.date.fromisoformat(req.date) + dt.timedelta(days=req.days_ahead)).isoformat()
    return page(
        "preview.html",
        title="Campaign preview",
        req=req,
        summary=result.summary(),
        offers=result.offers[:20],
        spread=spread(result),
        last_day=last,
    )


@bp.post("/campaigns/run")
def run():
    req = request_from_form()
    if request.form.get("confirm") != "yes":
        raise ValidationError(
            "confirm: tick the box that confirms the run (offers are recorded and cannot be taken back)"
        )
    folder = exports_dir()
    folder.mkdir(mode=0o700, exist_ok=True)
    campaign_id = f"{req.date.replace('-', '')}-{req.occasion}-{secrets.token_hex(4)}"
    name = f"{campaign_id}.csv"  # the export is named after its campaign: one id to search the ledger with
    db = get_db()
    ran_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = campaigns.run(
        db, settings(), req, out=folder / name, model=get_service().live.get(db), campaign_id=campaign_id
    )
    summary = result.summary()
    summary["export"] = name
    summary["ran_at"] = ran_at  # the wall-clock time of the run (run_at is the campaign's date at noon)
    (folder / (name + ".summary.json")).write_text(json.dumps(summary), encoding="utf-8")
    return redirect(url_for("console.run_result", name=name), 303)


def _export(name: str) -> Path:
    if not EXPORT_NAME.match(name) or not (exports_dir() / name).is_file():
        raise NotFoundError(f"no campaign export {name!r}")
    return exports_dir() / name


@bp.get("/campaigns/runs/<name>")
def run_result(name: str):
    path = _export(name)
    summary_file = path.with_name(name + ".summary.json")
    summary = json.loads(summary_file.read_text(encoding="utf-8")) if summary_file.exists() else {}
    return page("run.html", title="Campaign run", name=name, summary=summary, size=path.stat().st_size)


@bp.get("/campaigns/exports/<name>")
def download(name: str):
    _export(name)
    response = send_from_directory(exports_dir(), name, as_attachment=True, mimetype="text/csv")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/campaigns/ledger")
def ledger():
    text = request.args.get("q", "").strip()[:200]
    db = get_db()
    rows = queries.search_ledger(db, text)
    for r in rows:
        r["products"] = json.loads(r["products"])
    names = store.product_names(db, sorted({p for r in rows for p in r["products"]}))
    for r in rows:
        r["product_names"] = [(p, names.get(p)) for p in r["products"]]
    return page("ledger.html", title="Offers ledger", q=text, rows=rows)
