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


class ErasedCustomerError(ValidationError):
    """Data for a customer who was erased: refused at every door (``count`` = how many rows or events).

    Only :func:`recommender.privacy.resignup` brings such a person back.
    """

    code = "erased_customer"

    def __init__(self, message: str, count: int = 1) -> None:
        super().__init__(message)
        self.count = count
