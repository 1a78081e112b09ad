"""The HTTP face of the engine: a Flask application factory and one blueprint per resource.

Views parse, call one function of :mod:`recommender.serving.service` and return its
result (the request's database and the service handle come from :mod:`api.db`); every error becomes ``{"error": {"code", "message"}}`` in
:mod:`api.errors`, the one place that maps exceptions to status codes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, g

from recommender import store
from recommender.config import Settings, load_settings
from recommender.serving.service import LiveModel, Service

log = logging.getLogger("recommender.api")


def create_app(config: Settings | Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` is a :class:`Settings`, a mapping of overrides, or None (environment)."""
    settings = config if isinstance(config, Settings) else load_settings(overrides=dict(config or {}))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1 << 20  # 1 MiB: 1,000 events fit with room to spare
    app.config["SETTINGS"] = settings
    live = LiveModel(
        str(settings.model_dir),
        check_interval=settings.serve.model_check_seconds,
        catalogue_ttl=settings.serve.catalogue_ttl_seconds,
        settings=settings,
    )
    app.extensions["recommender"] = Service(settings, live)
    from recommender.serving.visits import Visits

    app.extensions["recommender.visits"] = Visits(app.extensions["recommender"])  # visit lists and their index
    store.connect(settings.db).conn.close()  # refuse a missing database; migrate once, not per request

    from . import (
        auth,
        customers,
        errors,
        events,
        ids,
        limits,
        metrics,
        offers,
        online,
        ops,
        privacy,
        products,
        rules,
        values,
        visits,
    )

    ids.register(app)  # <id:...> in paths, before any route is added
    errors.register(app)
    limits.register(app)
    metrics.register(app)
    auth.register(app)
    for module in (customers, products, events, offers, privacy, ops, online, rules, values, visits):
        app.register_blueprint(module.bp)
    from . import console

    console.register(app)  # /console: session sign-in; its secret lives beside the privacy key file

    @app.teardown_appcontext
    def end_transaction(_exc: BaseException | None) -> None:
        db = g.pop("db", None)
        if db is not None and db.conn.in_transaction:
            db.conn.rollback()  # a failed request never leaves a transaction open

    return app
