"""Bearer API keys with roles, checked on every request to a view that declares one.

No key means no access, whatever the key table holds: revoking the last key
locks the API, it does not open it. The key is looked up on every request (one
indexed query on the hash), so a key created or revoked with ``recommender
keys`` takes effect on the next request in every worker; nothing is cached.

The only way to run without keys is to say so: ``recommender serve --open``
(or the setting ``serve.open``), which the CLI refuses on anything but a
loopback address. Even then, anonymous access is granted only to requests that
come from a loopback peer, every response carries ``X-Recommender-Auth`` and
the log says so when the app starts.
"""

from __future__ import annotations

import logging

from flask import Flask, g, request

from recommender.serving import keys
from recommender.values import is_loopback  # noqa: F401  (part of this module's face: api.auth.is_loopback)

from .db import get_db
from .errors import Forbidden, Unauthorized

log = logging.getLogger("recommender.api")
OPEN_HEADER = "open (serve --open: no API key needed from this machine)"


def bearer_token(header: str) -> str | None:
    """The token of ``Authorization: Bearer <token>``; the scheme is case-insensitive (RFC 9110)."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def missing_key_message(header: str) -> str:
    """Why ``header`` carries no key, and what to send instead."""
    text = header.strip()
    if not text:
        return "missing API key (Authorization: Bearer <key>)"
    scheme, _, rest = text.partition(" ")
    if not rest.strip() and scheme.lower() != "bearer":
        return "the Authorization header has no scheme: add 'Bearer ' before the key (Authorization: Bearer <key>)"
    if scheme.lower() != "bearer":
        return f"the Authorization scheme must be Bearer, not {scheme[:20]!r}: send 'Authorization: Bearer <key>'"
    return "missing API key after 'Bearer ' (Authorization: Bearer <key>)"


def register(app: Flask) -> None:
    """Check the key of every request to a view that declares a role."""
    # The app's auth state: fixed when the app is made (tests may flip it); no key cache.
    state = app.extensions["recommender_auth"] = {"open": bool(app.config["SETTINGS"].serve.open)}
    if state["open"]:
        log.warning(
            "API OPEN: serve.open is set, requests from this machine need no API key. "
            "Never expose this server; create keys with: recommender keys create --role admin"
        )

    @app.before_request
    def check_key():
        view = app.view_functions.get(request.endpoint or "")
        needed = getattr(view, "required_role", None)
        if needed is None:
            return None
        header = request.headers.get("Authorization", "")
        if not header and state["open"] and is_loopback(request.remote_addr):
            g.auth_open = True
            return None
        token = bearer_token(header)
        if token is None:
            raise Unauthorized(missing_key_message(header))
        key = keys.lookup(get_db(), token)
        if key is None:
            raise Unauthorized("unknown or revoked API key")
        g.api_key = key  # {id, name, role}: the actor of what this request changes
        role = key["role"]
        if not keys.allows(role, needed):
            raise Forbidden(f"this endpoint needs the {needed!r} role; the key has {role!r}")
        return None

    @app.after_request
    def flag_open_mode(response):
        if state["open"]:
            response.headers["X-Recommender-Auth"] = OPEN_HEADER
        return response
