"""The one place where exceptions become HTTP status codes and JSON error bodies."""

from __future__ import annotations

import logging

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
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.code, "http_error")
        message = {413: "request body larger than 1 MiB"}.get(exc.code, exc.description)
        return error(code, message, exc.code or 500)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error("internal_error", "internal error; see the server log", 500)
