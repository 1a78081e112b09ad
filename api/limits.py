"""Limits on what a request may be, answered as JSON errors wherever the app sees the request.

gunicorn refuses a request line over ``LIMIT_REQUEST_LINE`` bytes (414) and more
than ``LIMIT_REQUEST_FIELDS`` headers or a header over ``LIMIT_FIELD_SIZE``
bytes (431) before the app is called; :class:`api.server.JSONErrorWorker`
writes those answers in the API's JSON error shape. The same limits are
checked here, so a server that is not gunicorn (the test client, another WSGI
server) answers alike.

The body limit (``MAX_BODY_BYTES``, 1 MiB) holds whatever the framing. A body
with a ``Content-Length`` over it is refused before it is read (Werkzeug). A
chunked body (``Transfer-Encoding: chunked``, no length) is read here, before
any view, up to one byte past the limit: over it, the request gets the same 413;
within it, the body is handed on with its length now known, so no view ever
sees a body silently cut at the limit. What is left of an oversize chunked body
is drained (up to ``DRAIN_BYTES``) so the client reads the 413 rather than a
reset connection.
"""

from __future__ import annotations

import io

from flask import Flask, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

# gunicorn's own maximum for a request line, and its default header count; both
# are passed to gunicorn by api.server.gunicorn_options.
LIMIT_REQUEST_LINE = 8190
LIMIT_REQUEST_FIELDS = 100
LIMIT_FIELD_SIZE = 8190
# The largest request body, framed either way (1,000 events fit with room to spare).
MAX_BODY_BYTES = 1 << 20
# How much of an oversize chunked body is read and thrown away before the 413 is sent.
DRAIN_BYTES = 16 << 20
_BLOCK = 64 << 10


class URITooLong(HTTPException):
    code = 414
    description = "request line longer than the server accepts"


class HeadersTooLarge(HTTPException):
    code = 431
    description = "too many or too large request headers"


def _is_chunked(environ: dict) -> bool:
    """A request whose body has no declared length (``Transfer-Encoding: chunked``)."""
    return not environ.get("CONTENT_LENGTH") and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


def bound_chunked_body(environ: dict, limit: int = MAX_BODY_BYTES) -> None:
    """Read a chunked body whole (at most ``limit`` bytes) and give it a length; 413 past the limit."""
    stream = environ["wsgi.input"]
    data = bytearray()
    while len(data) <= limit:
        block = stream.read(min(_BLOCK, limit + 1 - len(data)))
        if not block:
            break
        data += block
    if len(data) > limit:
        drained = 0
        while drained < DRAIN_BYTES:
            block = stream.read(_BLOCK)
            if not block:
                break
            drained += len(block)
        raise RequestEntityTooLarge()
    environ["wsgi.input"] = io.BytesIO(bytes(data))
    environ["CONTENT_LENGTH"] = str(len(data))


def register(app: Flask) -> None:
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.before_request
    def check_limits() -> None:
        environ = request.environ
        line = len(environ.get("REQUEST_METHOD", "")) + len(environ.get("RAW_URI") or request.full_path) + 10
        if line > LIMIT_REQUEST_LINE:
            raise URITooLong()
        headers = list(request.headers.items())
        if len(headers) > LIMIT_REQUEST_FIELDS or any(len(k) + len(v) + 2 > LIMIT_FIELD_SIZE for k, v in headers):
            raise HeadersTooLarge()
        if _is_chunked(environ):
            bound_chunked_body(environ, request.max_content_length or MAX_BODY_BYTES)
