"""Training engines. Each one fits factors; all of them write the same artifact."""

from __future__ import annotations

from recommender.errors import ConfigError
from recommender.models.engines.base import Engine

ENGINES = ("implicit", "spark")


def get_engine(name: str, **options) -> Engine:
    """The engine called ``name``; Spark is imported only when asked for."""
    if name == "implicit":
        from recommender.models.engines.implicit_als import ImplicitALS

        return ImplicitALS(**options)
    if name == "spark":
        try:
            from recommender.models.engines.spark import SparkALS
        except ImportError as exc:
            raise ConfigError(f"the spark engine is not available here ({exc}); pip install -e '.[spark]'") from None
        return SparkALS(**options)
    raise ConfigError(f"unknown engine {name!r} (one of {', '.join(ENGINES)})")
