"""Bearer API keys with roles, checked before every view that declares one.

With no live key in the database the API runs open (demo mode) and says so in
every response header and loudly in the log; creating the first key with
``recommender keys create`` turns authentication on for every worker.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app, g, request

from recommender import keys, store

from .db import get_db
from .errors import Forbidden, Unauthorized

log = logging.getLogger("recommender.api")
OPEN_CHECK_SECONDS = 5.0


def _open_mode() -> bool:
    state = current_app.extensions["recommender_auth"]
    if time.monotonic() - state["checked"] > OPEN_CHECK_SECONDS:
        state["open"] = store.live_api_keys(get_db()) == 0
        state["checked"] = time.monotonic()
        if state["open"] and not state.get("warned"):
            log.warning("NO API KEYS CONFIGURED: the API is open to anyone (demo mode). "
                        "Create one with: recommender keys create --role admin")
        state["warned"] = state["open"]
    return state["open"]


def register(app: Flask) -> None:
    # Whether any key exists is re-read every few seconds, so creating or revoking
    # the first key changes every worker's behaviour without a restart.
    app.extensions["recommender_auth"] = {"checked": -1e9, "open": True}
    @app.before_request
    def check_key():
        view = app.view_functions.get(request.endpoint or "")
        needed = getattr(view, "required_role", None)
        if needed is None:
            return None
        if _open_mode():
            g.auth_open = True
            return None
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise Unauthorized("missing API key (Authorization: Bearer <key>)")
        key = keys.lookup(get_db(), header[7:].strip())
        if key is None:
            raise Unauthorized("unknown or revoked API key")
        g.api_key = key  # {id, name, role}: the actor of what this request changes
        role = key["role"]
        if not keys.allows(role, needed):
            raise Forbidden(f"this endpoint needs the {needed!r} role; the key has {role!r}")
        return None

    @app.after_request
    def flag_open_mode(response):
        if g.get("auth_open"):
            response.headers["X-Recommender-Auth"] = "open-demo-mode (no API keys configured)"
        return response
