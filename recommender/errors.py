"""The engine's own exception types.

Faces translate these in one place each: the CLI prints ``error: <message>`` and
exits non-zero, the API maps them to HTTP status codes. Nothing else should need
to know which failure is which.
"""

from __future__ import annotations


class RecommenderError(Exception):
    """Base class; ``code`` is a stable machine-readable name."""

    code = "error"


class ConfigError(RecommenderError):
    code = "invalid_config"


class DatabaseError(ConfigError):
    """The database path is missing, not a database, or not one of this engine's."""

    code = "database_unavailable"


class ValidationError(RecommenderError):
    """Input that breaks a rule: a bad row in an import, a bad event, a bad parameter."""

    code = "invalid_input"


class NotFoundError(RecommenderError):
    code = "not_found"


class ModelError(RecommenderError):
    """No usable model: none published, or an artifact that cannot be loaded."""

    code = "model_unavailable"


class GateRefused(RecommenderError):
    """The release gate kept the current model; the message carries both scores."""

    code = "gate_refused"
