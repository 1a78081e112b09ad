"""The console's one blueprint, its page rendering and its HTML error pages.

The page modules (:mod:`.signin`, :mod:`.overview`, :mod:`.campaigns`,
:mod:`.customers`, :mod:`.models`) add their views to :data:`bp`. Errors inside
the console are pages, not the API's JSON: a person is reading them.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, g, render_template
from werkzeug.exceptions import HTTPException

from recommender.config import Settings
from recommender.errors import ConfigError, GateRefused, ModelError, NotFoundError, RecommenderError, ValidationError

from . import session as auth

bp = Blueprint("console", __name__, url_prefix="/console")

NAV = (("console.overview", "Overview"), ("console.campaigns_page", "Campaigns"), ("console.customer", "Customer"),
       ("console.models", "Models"))


def settings() -> Settings:
    return current_app.config["SETTINGS"]


def page(template: str, http_status: int = 200, **context: Any) -> tuple[str, int, dict[str, str]]:
    """Render a console page; no caching (pages show personal data), no framing by other sites."""
    started = g.get("console_started", time.perf_counter())
    body = render_template(f"console/{template}", nav=NAV, key=g.get("console_key"), may=auth.may,
                           csrf=auth.csrf_token, **context)
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
               "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                                          "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
               "Server-Timing": f"render;dur={(time.perf_counter() - started) * 1000:.1f}"}
    return body, http_status, headers


@bp.before_request
def start_clock() -> None:
    g.console_started = time.perf_counter()


bp.before_request(auth.guard)  # after the clock starts: the key lookup is part of a page's time


STATUS = ((NotFoundError, 404), (ValidationError, 422), (GateRefused, 409), (ModelError, 503), (ConfigError, 500))
TITLES = {400: "Bad request", 401: "Not signed in", 403: "Refused", 404: "Not found", 405: "Not allowed",
          409: "Refused", 413: "Too large", 422: "Cannot do that", 500: "Server error", 503: "Unavailable"}


@bp.errorhandler(RecommenderError)
def engine_error(exc: RecommenderError):
    status = next((s for kind, s in STATUS if isinstance(exc, kind)), 500)
    return page("error.html", status, status=status, title=TITLES.get(status, "Error"), message=str(exc))


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    status = exc.code or 500
    return page("error.html", status, status=status, title=TITLES.get(status, "Error"),
                message=exc.description or "")
