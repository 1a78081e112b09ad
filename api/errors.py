"""The one place where exceptions become HTTP status codes and JSON error bodies."""

from __future__ import annotations

import logging
import sqlite3

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from recommender.errors import ConfigError, GateRefused, ModelError, NotFoundError, RecommenderError, ValidationError

from .schema import BadRequest

log = logging.getLogger("recommender.api")

STATUS = [
    (BadRequest, 400),
    (ValidationError, 422),
    (NotFoundError, 404),
    (ModelError, 503),
    (GateRefused, 409),
    (ConfigError, 500),
]


class Unauthorized(RecommenderError):
    code = "unauthorized"


class Forbidden(RecommenderError):
    code = "forbidden"


HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
}
HTTP_MESSAGES = {
    413: "request body larger than 1 MiB",
    414: "request line longer than the server accepts",
    431: "too many or too large request headers",
}


def error(code: str, message: str, status: int):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def register(app: Flask) -> None:
    @app.errorhandler(RecommenderError)
    def engine_error(exc: RecommenderError):
        if isinstance(exc, Unauthorized):
            response = error(exc.code, str(exc), 401)
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        if isinstance(exc, Forbidden):
            return error(exc.code, str(exc), 403)
        for kind, status in STATUS:
            if isinstance(exc, kind):
                return error(exc.code, str(exc), status)
        return error(exc.code, str(exc), 500)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = HTTP_CODES.get(exc.code or 500, "http_error")
        message = HTTP_MESSAGES.get(exc.code or 500, exc.description or "")
        response = error(code, message, exc.code or 500)
        for name, value in exc.get_headers():
            if name.lower() in ("allow", "retry-after"):  # 405 says what the path does allow
                response.headers[name] = value
        return response

    @app.errorhandler(UnicodeEncodeError)
    def not_unicode(_exc: UnicodeEncodeError):
        # JSON may carry a lone surrogate ("\\ud800"), which no database text can hold.
        return error("bad_request", "text is not valid Unicode (a lone surrogate escape)", 400)

    @app.errorhandler(RecursionError)
    def too_deep(_exc: RecursionError):
        return error("bad_request", "JSON nested too deeply", 400)

    @app.errorhandler(sqlite3.OperationalError)
    def database_busy(exc: sqlite3.OperationalError):
        # A lock held longer than the busy timeout (a long import, a retrain's write) is
        # a moment of unavailability, not a bug: the client may retry.
        if "locked" in str(exc) or "busy" in str(exc):
            log.warning("database busy: %s", exc)
            response = error("unavailable", "the database is busy; retry shortly", 503)
            response.headers["Retry-After"] = "1"
            return response
        return unexpected(exc)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error("internal_error", "internal error; see the server log", 500)
