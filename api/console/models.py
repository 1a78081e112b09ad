"""Models: every version with its metrics over time, its consent snapshot, and rollback (admin).

Rollback is :func:`recommender.models.registry.rollback`, the same atomic pointer
swap (checksums verified first) as ``recommender models --rollback``; the
workers follow ``CURRENT`` within a second.
"""

from __future__ import annotations

from flask import redirect, request, url_for

from recommender.models import registry
from recommender.errors import ValidationError
from recommender.models.registry import Registry

from ..db import get_db
from . import charts
from . import session as auth
from .base import bp, page, settings
from .overview import refusal

ROLLBACK_STATUSES = ("published", "retired")


@bp.get("/models")
def models():
    rows = registry.list_models(get_db())
    current = Registry(settings().model_dir).current_version()
    for r in rows:
        r["current"] = r["version"] == current
        r["ndcg"] = r["metrics"].get("model", {}).get("ndcg")
        r["popularity"] = r["metrics"].get("popularity", {}).get("ndcg")
        r["k"] = r["metrics"].get("k")
        r["why"] = refusal(r) if r["status"] == "rejected" else ""
        r["can_roll_back"] = r["status"] in ROLLBACK_STATUSES and not r["current"]
    timeline = [r for r in reversed(rows) if r["ndcg"] is not None]  # oldest first
    chart = charts.lines([r["created_at"][:16].replace("T", " ") for r in timeline],
                         {"model NDCG": [r["ndcg"] for r in timeline],
                          "popularity NDCG": [r["popularity"] for r in timeline]},
                         "Offline NDCG of each trained version against popularity on the same split")
    return page("models.html", title="Models", rows=rows, chart=chart, current=current,
                rolled=request.args.get("rolled"))


@bp.post("/models/rollback")
@auth.needs("admin")
def rollback():
    version = request.form.get("version", "").strip()
    if not version:
        raise ValidationError("version: choose the version to serve again")
    if request.form.get("confirm") != "yes":
        raise ValidationError("confirm: tick the box that confirms the rollback")
    result = registry.rollback(get_db(), settings(), version)
    return redirect(url_for("console.models", rolled=result["current"]), 303)
