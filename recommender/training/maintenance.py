"""Housekeeping that a nightly job applies after every retrain, so nothing grows without bound.

``scripts/retrain.py`` and ``recommender train`` call :func:`run` whatever the
gate decided: the decision-log retention (``privacy.retention_days``), the
model-artifact retention (``models.keep_previous`` / ``models.max_age_days``),
the registry's own repair, and a WAL checkpoint, so the ``-wal`` file (which
keeps old page images, erased rows included) is folded back and truncated.
It reports what it removed; each step is safe to run at any time.

It also refits customer value (:func:`recommender.value.refresh.refresh`): every
profiled customer's expected purchases and spend, chance still active and
segment, replaced in one transaction; a failure there is reported under
``values`` and stops nothing else.

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
from recommender.config import Settings
from recommender.models import registry


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


def refresh_values(db: sqlite_utils.Database, settings: Settings) -> dict[str, Any]:
    """Refit customer value and store every profiled customer's score; ``{"error": ...}`` when it fails."""
    from recommender.value import refresh

    try:
        done = refresh.refresh(db, settings)
    except Exception as exc:  # noqa: BLE001 - the night's other steps must run whatever the value fit does
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "stored": done["stored"],
        "not_profiled": done["not_profiled"],
        "estimator": done["estimator"],
        "as_of": done["as_of"],
        "seconds": done["seconds"]["total"],
    }


def run(db: sqlite_utils.Database, settings: Settings) -> dict[str, Any]:
    """Apply every retention, refit customer value, VACUUM after erasures, and checkpoint the WAL.

    Returns what each step removed or stored.
    """
    from recommender.privacy.erasure import checkpoint_wal

    decisions = privacy.prune(db, settings)
    artifacts = registry.prune(db, settings)
    changes = store.compact_product_changes(db)
    values = refresh_values(db, settings)
    vacuum = vacuum_after_erasure(db)
    return {
        "decisions_deleted": decisions["deleted"],
        "decisions_before": decisions["before"],
        "models_removed": artifacts["removed"],
        "models_kept": sorted(artifacts["kept"]),
        "model_bytes_freed": artifacts["bytes_freed"],
        "model_bytes_kept": artifacts["bytes_kept"],
        "product_changes_compacted": changes,
        "values": values,
        "vacuum": vacuum,
        # after a VACUUM the whole file is in the WAL: retry while a reader holds an old snapshot
        "wal": checkpoint(db) if not vacuum["vacuumed"] else {**checkpoint_wal(db), **checkpoint(db)},
    }
