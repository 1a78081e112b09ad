"""The request's database connection and the service handle, as in Flask's tutorial ``db.py``.

Blueprints import these from here, never from their own package.
"""

from __future__ import annotations

import threading

from flask import current_app, g

from recommender import store
from recommender.serving.service import Service

_local = threading.local()


def get_db():
    """The request's database handle.

    One SQLite connection per worker thread, opened on first use and reused by
    later requests: opening one (and setting its pragmas) costs more than the
    queries of a typical request.
    """
    if "db" not in g:
        path = str(current_app.config["SETTINGS"].db)
        cached = getattr(_local, "connections", None)
        if cached is None:
            cached = _local.connections = {}
        if path not in cached:
            cached[path] = store.connect(path, migrate=False)
        g.db = cached[path]
    return g.db


def get_service() -> Service:
    return current_app.extensions["recommender"]
