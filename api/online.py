"""Online measurement: the per-arm report (marketer or admin), and the served-list counters behind /metrics."""

from __future__ import annotations

from flask import Blueprint

from recommender import online

from .db import get_db, get_service
from .schema import OnlineQuery, OnlineReport, endpoint

bp = Blueprint("online", __name__, url_prefix="/v1/admin/metrics")


@bp.get("/online")
@endpoint("/v1/admin/metrics/online", role="marketer", query=OnlineQuery, response=OnlineReport)
def online_report(query: OnlineQuery):
    """Lists served, click-through, conversion and revenue per A/B arm, surface and model; uplift over control.

    Events are attributed to lists by `list_id`, else by the latest list that
    showed the customer the product within `online.window_hours` (docs/online.md,
    "Online measurement"). Uplift is treatment minus control with a 95 %
    interval (normal approximation, customers as clusters) and the sample
    sizes it rests on. An unparseable `since` is a 422.
    """
    service = get_service()
    service.decisions.flush()  # lists served by this worker a moment ago count too
    return online.report(get_db(), service.settings, since=query.since)
