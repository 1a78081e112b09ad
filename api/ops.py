"""Operations: liveness, readiness, metrics, the OpenAPI document, docs, model reload."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from recommender import __version__, store

from .db import get_db, get_service
from .metrics import exposition
from .schema import Health, Readiness, Reloaded, endpoint, openapi

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
@endpoint("/healthz", role=None, response=Health)
def healthz():
    """Liveness: the process answers (no key needed; for the load balancer)."""
    return {"status": "ok"}


@bp.get("/readyz")
@endpoint(
    "/readyz",
    role=None,
    response=Readiness,
    responses={503: ("Not ready: what is missing is in `problems`", Readiness)},
)
def readyz():
    """Readiness: the database is reachable and a model is loaded (no key needed).

    Answers 503 with what is missing otherwise; lists still work without a
    model (popular products), so this is for deployments that want a model.
    """
    service = get_service()
    problems = []
    try:
        store.ping(get_db())
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        problems.append(f"database: {exc}")
    model = service.live.get(get_db())
    if model is None:
        problems.append("model: " + (service.live.last_error or "none published (recommender train --publish)"))
    body = {
        "status": "ready" if not problems else "not_ready",
        "model_version": model.version if model else None,
        "problems": problems,
    }
    # A stale model still answers (non-personalized past the cap), so it is reported, not failed.
    hours = service.live.stale_hours() if model else None
    cap = service.settings.privacy.max_stale_hours
    body["model_stale"] = {
        "stale": hours is not None,
        "stale_since": service.live.stale.get("stale_since"),
        "hours": None if hours is None else round(hours, 3),
        "max_stale_hours": cap,
        "serving_factors": hours is None or hours <= cap,
    }
    return (jsonify(body), 200 if not problems else 503)


@bp.get("/metrics")
@endpoint("/metrics", role=None, media="text/plain")
def metrics():
    """Prometheus metrics in the text exposition format, summed over all workers (no key needed)."""
    model = get_service().live.model
    data, content_type = exposition(model.version if model else None)
    return Response(data, content_type=content_type)


@bp.get("/openapi.json")
def openapi_json():
    return openapi("recommender", __version__)


@bp.post("/v1/admin/reload")
@endpoint(
    "/v1/admin/reload",
    "POST",
    role="admin",
    response=Reloaded,
    responses={503: "The current model cannot be loaded; the one loaded before keeps serving"},
)
def reload():
    """Load the current model now instead of within the next second; an unloadable one is refused."""
    live = get_service().live
    version = live.reload(force=True)
    if live.last_error:
        return jsonify(
            {"error": {"code": "model_unavailable", "message": live.last_error}, "model_version": version}
        ), 503
    return {"model_version": version}


@bp.get("/docs")
def docs():
    """The page a storefront developer integrates from, generated from the same OpenAPI document."""
    from .docs import render

    return Response(render(openapi("recommender", __version__)), content_type="text/html; charset=utf-8")
