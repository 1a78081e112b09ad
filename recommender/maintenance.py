"""Housekeeping that a nightly job applies after every retrain, so nothing grows without bound.

``scripts/retrain.py`` and ``recommender train`` call :func:`run` whatever the
gate decided: the decision-log retention (``privacy.retention_days``), the
model-artifact retention (``models.keep_previous`` / ``models.max_age_days``),
the registry's own repair, and a WAL checkpoint, so the ``-wal`` file (which
keeps old page images, erased rows included) is folded back and truncated.
It reports what it removed; each step is safe to run at any time.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from . import privacy, registry
from .config import Settings


def checkpoint(db: sqlite_utils.Database) -> dict[str, int]:
    """Fold the WAL into the database and truncate it; ``busy`` = 1 when a reader kept it from finishing."""
    busy, log_pages, moved = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return {"busy": int(busy), "wal_pages": int(log_pages), "checkpointed": int(moved)}


def run(db: sqlite_utils.Database, settings: Settings) -> dict[str, Any]:
    """Apply every retention and checkpoint the WAL; returns what each step removed."""
    decisions = privacy.prune(db, settings)
    artifacts = registry.prune(db, settings)
    return {
        "decisions_deleted": decisions["deleted"],
        "decisions_before": decisions["before"],
        "models_removed": artifacts["removed"],
        "models_kept": sorted(artifacts["kept"]),
        "model_bytes_freed": artifacts["bytes_freed"],
        "model_bytes_kept": artifacts["bytes_kept"],
        "wal": checkpoint(db),
    }
