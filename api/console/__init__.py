"""The console at ``/console``: pages for marketers and operators, rendered on the server.

Flask + Jinja templates (``api/templates/console/``), charts as inline SVG, no
script from anywhere and no build step. One module per page group:
:mod:`.signin`, :mod:`.overview`, :mod:`.campaigns`, :mod:`.customers`,
:mod:`.models`, :mod:`.values` (customer value), :mod:`.rules` (merchandising rules); :mod:`.session` holds sign-in, CSRF and roles, :mod:`.base`
the blueprint and error pages, :mod:`.charts` the SVG. The API stays bearer-only:
the session cookie is scoped to ``/console`` and no API view reads it.
"""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Mount the console on ``app`` (the session secret is read from its file on first use)."""
    from . import campaigns, customers, models, overview, rules, session, signin, values  # noqa: F401 - they add views to bp
    from .base import bp

    session.configure(app)
    app.register_blueprint(bp)
