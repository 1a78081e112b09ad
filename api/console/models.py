"""Models: every version with its metrics over time, its consent snapshot, and rollback (admin).

Rollback is :func:`recommender.models.registry.rollback`, the same atomic pointer
swap (checksums verified first) as ``recommender models --rollback``; the
workers follow ``CURRENT`` within a second.
"""

from __future__ import annotations

from flask import redirect, request, url_for

from recommender.errors import ValidationError
from recommender.models import registry
from recommender.models.registry import Registry

from ..db import get_db
from . import charts, session as auth
from .base import bp, describe_model, page, settings, version_label
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
        r["label"] = version_label(r["version"], r["created_at"])
        r["describe"] = describe_model(r.get("params"))
        r["lift"] = r["ndcg"] / r["popularity"] - 1 if r["ndcg"] is not None and r["popularity"] else None
        chosen = (r["metrics"].get("selection") or {}).get("chosen") or {}
        r["recipe"], r["recipe_hash"] = chosen.get("label"), chosen.get("recipe")
    timeline = [r for r in reversed(rows) if r["ndcg"] is not None]  # oldest first
    chart = charts.lines(
        [r["created_at"][5:16].replace("T", " ") for r in timeline],
        {"model": [r["ndcg"] for r in timeline], "bestsellers": [r["popularity"] for r in timeline]},
        "Hit rate of each trained model against bestsellers on the same test",
    )
    return page(
        "models.html", title="Models", rows=rows, chart=chart, current=current, rolled=request.args.get("rolled")
    )


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
