"""The console's one blueprint, its page rendering and its HTML error pages.

The page modules (:mod:`.signin`, :mod:`.overview`, :mod:`.campaigns`,
:mod:`.customers`, :mod:`.models`) add their views to :data:`bp`. Errors inside
the console are pages, not the API's JSON: a person is reading them.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from flask import Blueprint, current_app, g, render_template
from werkzeug.exceptions import HTTPException

from recommender.config import Settings
from recommender.errors import ConfigError, GateRefused, ModelError, NotFoundError, RecommenderError, ValidationError

from . import session as auth

bp = Blueprint("console", __name__, url_prefix="/console")

NAV = (
    ("console.overview", "Overview"),
    ("console.campaigns_page", "Campaigns"),
    ("console.rules_page", "Rules"),
    ("console.customer", "Customer"),
    ("console.value_page", "Value"),
    ("console.models", "Models"),
)


# What each model family learns, in a marketer's words (the technical name is under "Technical details").
FAMILY_WORDS = {
    "als": "similar customers' tastes",
    "ease": "products often bought together",
    "rp3beta": "a map of products bought by the same people",
    "itemknn": "similar products",
    "itemgraph": "a map of products bought by the same people",
    "popularity": "bestsellers",
}
COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def model_parts(params: dict[str, Any] | None) -> list[str]:
    """The families a model is made of (``["als", "ease", "rp3beta"]`` for a blend), from its params."""
    params = params or {}
    family = params.get("family") or "als"
    if family == "blend":
        return [str(p) for p in (params.get("blend") or {}).get("parts", [])] or ["blend"]
    return [str(family)]


def describe_model(params: dict[str, Any] | None) -> str:
    """What a model is, for a marketer: "a blend of three models: similar customers' tastes, …"."""
    parts = model_parts(params)
    words = [FAMILY_WORDS.get(p, p) for p in parts]
    if len(words) == 1:
        return f"one model: {words[0]}"
    listed = ", ".join(words[:-1]) + " and " + words[-1]
    return f"a blend of {COUNT_WORDS.get(len(words), str(len(words)))} models: {listed}"


def thousands(value: Any, digits: int = 0) -> str:
    """A number with thousands separators (``12,345``; ``1,234.50`` with ``digits=2``); "–" for none."""
    if value is None or value == "":
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if digits == 0 and number == int(number):
        return f"{int(number):,}"
    return f"{number:,.{digits}f}"


def percent(value: Any, digits: int = 1, sign: bool = False) -> str:
    """A share (0.123) as a percentage ("12.3 %"); "–" for none."""
    if value is None:
        return "–"
    return f"{100 * float(value):{'+' if sign else ''},.{digits}f} %"


def _moment(value: Any) -> dt.datetime | None:
    if not value:
        return None
    text = str(value).strip().replace("Z", "+00:00")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def when(value: Any, time_of_day: bool = True) -> str:
    """An ISO time as people write it: "6 Dec 2026, 04:29 UTC" (or "6 Dec 2026"); unparseable text as is."""
    moment = _moment(value)
    if moment is None:
        return "–" if not value else str(value)
    moment = moment.astimezone(dt.UTC)
    day = f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"
    return f"{day}, {moment:%H:%M} UTC" if time_of_day else day


def version_label(version: Any, created_at: Any = None) -> str:
    """A model version's short label: "model of 6 Dec 2026, 06:24 UTC" (the full version is a technical detail)."""
    moment = _moment(created_at)
    if moment is None and version:
        try:  # versions are named <UTC time>-<hash>: 20261206T062442Z-85272a
            moment = dt.datetime.strptime(str(version)[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            return str(version)
    return f"model of {when(moment.isoformat())}" if moment else "–"


def register_filters(state: Any) -> None:
    """The console's number and date filters, once, for every template (``{{ n|thousands }}``)."""
    env = state.app.jinja_env
    env.filters.update(thousands=thousands, percent=percent, when=when, version_label=version_label)


bp.record_once(register_filters)


def settings() -> Settings:
    return current_app.config["SETTINGS"]


def page(template: str, http_status: int = 200, **context: Any) -> tuple[str, int, dict[str, str]]:
    """Render a console page; no caching (pages show personal data), no framing by other sites."""
    started = g.get("console_started", time.perf_counter())
    body = render_template(
        f"console/{template}", nav=NAV, key=g.get("console_key"), may=auth.may, csrf=auth.csrf_token, **context
    )
    headers = {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        "Server-Timing": f"render;dur={(time.perf_counter() - started) * 1000:.1f}",
    }
    return body, http_status, headers


@bp.before_request
def start_clock() -> None:
    g.console_started = time.perf_counter()


bp.before_request(auth.guard)  # after the clock starts: the key lookup is part of a page's time


STATUS = ((NotFoundError, 404), (ValidationError, 422), (GateRefused, 409), (ModelError, 503), (ConfigError, 500))
TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Refused",
    404: "Not found",
    405: "Not allowed",
    409: "Refused",
    413: "Too large",
    422: "Cannot do that",
    500: "Server error",
    503: "Unavailable",
}


@bp.errorhandler(RecommenderError)
def engine_error(exc: RecommenderError):
    status = next((s for kind, s in STATUS if isinstance(exc, kind)), 500)
    return page("error.html", status, status=status, title=TITLES.get(status, "Error"), message=str(exc))


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    status = exc.code or 500
    return page("error.html", status, status=status, title=TITLES.get(status, "Error"), message=exc.description or "")
