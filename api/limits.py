"""Limits on what a request may be, answered as JSON errors wherever the app sees the request.

gunicorn refuses a request line over ``LIMIT_REQUEST_LINE`` bytes (414) and more
than ``LIMIT_REQUEST_FIELDS`` headers or a header over ``LIMIT_FIELD_SIZE``
bytes (431) before the app is called; :class:`api.server.JSONErrorWorker`
writes those answers in the API's JSON error shape. The same limits are
checked here, so a server that is not gunicorn (the test client, another WSGI
server) answers alike.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import HTTPException

# gunicorn's own maximum for a request line, and its default header count; both
# are passed to gunicorn by api.server.gunicorn_options.
LIMIT_REQUEST_LINE = 8190
LIMIT_REQUEST_FIELDS = 100
LIMIT_FIELD_SIZE = 8190


class URITooLong(HTTPException):
    code = 414
    description = "request line longer than the server accepts"


class HeadersTooLarge(HTTPException):
    code = 431
    description = "too many or too large request headers"


def register(app: Flask) -> None:
    @app.before_request
    def check_limits() -> None:
        environ = request.environ
        line = len(environ.get("REQUEST_METHOD", "")) + len(environ.get("RAW_URI") or request.full_path) + 10
        if line > LIMIT_REQUEST_LINE:
            raise URITooLong()
        headers = list(request.headers.items())
        if len(headers) > LIMIT_REQUEST_FIELDS or any(len(k) + len(v) + 2 > LIMIT_FIELD_SIZE for k, v in headers):
            raise HeadersTooLarge()
