"""Operations: liveness, readiness, metrics, the OpenAPI document, docs, model reload."""

from __future__ import annotations

import html

from flask import Blueprint, Response, jsonify

from recommender import __version__

from .db import get_db, get_service
from .metrics import exposition
from .schema import endpoint, openapi

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Ready = database reachable and a model loaded (503 with what is missing otherwise)."""
    service = get_service()
    problems = []
    try:
        get_db().execute("SELECT 1").fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        problems.append(f"database: {exc}")
    model = service.live.get(get_db())
    if model is None:
        problems.append("model: " + (service.live.last_error or "none published (recommender train --publish)"))
    body = {"status": "ready" if not problems else "not_ready", "model_version": model.version if model else None,
            "problems": problems}
    # privacy2: a stale model still answers (non-personalized past the cap), so it is reported, not failed.
    hours = service.live.stale_hours() if model else None
    cap = service.settings.privacy.max_stale_hours
    body["model_stale"] = {"stale": hours is not None, "stale_since": service.live.stale.get("stale_since"),
                           "hours": None if hours is None else round(hours, 3), "max_stale_hours": cap,
                           "serving_factors": hours is None or hours <= cap}
    return (jsonify(body), 200 if not problems else 503)


@bp.get("/metrics")
def metrics():
    model = get_service().live.model
    data, content_type = exposition(model.version if model else None)
    return Response(data, content_type=content_type)


@bp.get("/openapi.json")
def openapi_json():
    return openapi("recommender", __version__)


@bp.post("/v1/admin/reload")
@endpoint("/v1/admin/reload", "POST", role="admin")
def reload():
    """Load the current model now instead of within the next second; an unloadable one is refused."""
    live = get_service().live
    version = live.reload(force=True)
    if live.last_error:
        return jsonify({"error": {"code": "model_unavailable", "message": live.last_error},
                        "model_version": version}), 503
    return {"model_version": version}


@bp.get("/docs")
def docs():
    """A plain page generated from the same OpenAPI document."""
    spec = openapi("recommender", __version__)
    parts = ["<!doctype html><meta charset=utf-8><title>recommender API</title>",
             "<style>body{font:15px/1.5 system-ui;max-width:60em;margin:2em auto}code{background:#f3f3f3}"
             "td,th{padding:2px 8px;text-align:left;vertical-align:top}</style>",
             f"<h1>recommender API {html.escape(__version__)}</h1>",
             "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. "
             "Authenticate with <code>Authorization: Bearer &lt;key&gt;</code>.</p>"]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            parts.append(f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>")
            parts.append(f"<p><b>{html.escape(op['summary'])}</b></p><p>{html.escape(op['description'])}</p>")
            rows = [f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{p['in']}</td>"
                    f"<td>{html.escape(str(p['schema'].get('type', p['schema'].get('anyOf', ''))))}</td>"
                    f"<td>{html.escape(p.get('description', ''))}</td></tr>" for p in op["parameters"]]
            if rows:
                parts.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr>" + "".join(rows) + "</table>")
    return Response("\n".join(parts), content_type="text/html; charset=utf-8")

