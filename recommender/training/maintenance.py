"""Housekeeping that a nightly job applies after every retrain, so nothing grows without bound.

``scripts/retrain.py`` and ``recommender train`` call :func:`run` whatever the
gate decided: the decision-log retention (``privacy.retention_days``), the
model-artifact retention (``models.keep_previous`` / ``models.max_age_days``),
the registry's own repair, and a WAL checkpoint, so the ``-wal`` file (which
keeps old page images, erased rows included) is folded back and truncated.
It reports what it removed; each step is safe to run at any time.

After an erasure it also VACUUMs the database. ``secure_delete`` zeroes the
cells a DELETE removes, but a multi-row delete rebalances b-tree pages as it
goes, and a rebalanced page keeps stale copies of cells that moved (the
erased customer's next rows included) in its unallocated space, where no
later delete zeroes them. VACUUM rewrites every page, so after the night of an
erasure nothing of the customer is left in the file's bytes. It runs only
when an erasure was recorded since the last one (``meta.vacuumed_through``).
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from recommender import privacy, store
from recommender.models import registry
from recommender.config import Settings


def checkpoint(db: sqlite_utils.Database) -> dict[str, int]:
    """Fold the WAL into the database and truncate it; ``busy`` = 1 when a reader kept it from finishing."""
    busy, log_pages, moved = store.wal_checkpoint(db)
    return {"busy": int(busy), "wal_pages": int(log_pages), "checkpointed": int(moved)}


VACUUMED = "vacuumed_through"


def vacuum_after_erasure(db: sqlite_utils.Database) -> dict[str, Any]:
    """VACUUM when an erasure was recorded since the last VACUUM (see the module docstring)."""
    import time

    newest = store.newest_erasure_event(db)
    through = store.meta_value(db, VACUUMED)
    if newest == 0 or (through is not None and int(through) >= newest):
        return {"vacuumed": False}
    started = time.perf_counter()
    store.vacuum(db)
    store.set_meta(db, VACUUMED, str(newest))
    return {"vacuumed": True, "seconds": round(time.perf_counter() - started, 3)}


def run(db: sqlite_utils.Database, settings: Settings) -> dict[str, Any]:
    """Apply every retention, VACUUM after erasures, and checkpoint the WAL; returns what each step removed."""
    from recommender.privacy.erasure import checkpoint_wal

    decisions = privacy.prune(db, settings)
    artifacts = registry.prune(db, settings)
    changes = store.compact_product_changes(db)
    vacuum = vacuum_after_erasure(db)
    return {
        "decisions_deleted": decisions["deleted"],
        "decisions_before": decisions["before"],
        "models_removed": artifacts["removed"],
        "models_kept": sorted(artifacts["kept"]),
        "model_bytes_freed": artifacts["bytes_freed"],
        "model_bytes_kept": artifacts["bytes_kept"],
        "product_changes_compacted": changes,
        "vacuum": vacuum,
        # after a VACUUM the whole file is in the WAL: retry while a reader holds an old snapshot
        "wal": checkpoint(db) if not vacuum["vacuumed"] else {**checkpoint_wal(db), **checkpoint(db)},
    }
