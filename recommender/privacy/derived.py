"""Derived data that follows consent and erasure at once: the signals of the served artifacts.

Popularity and bought-together are counted at training time and stored in the
model artifact, so every worker serves them from memory. A withdrawal or an
erasure must not wait for the next retrain to leave those counts, so whenever
one is recorded, :func:`refresh` recomputes the signals of every artifact on
disk (current, the published ones kept for rollback, candidates) from the
consent-filtered database — the same :func:`recommender.data.interactions.load`
door training uses — removes the customers concerned from the id maps, and
rewrites the files atomically with new checksums. Workers notice the new
privacy epoch on their next request and reload (see ``LiveModel``).

The cost is one read of the consent-filtered events plus one signal computation,
shared by all artifacts (see docs/benchmarks.md for the measured time).
"""

from __future__ import annotations

import time
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.errors import ModelError
from recommender.models import registry
from recommender.privacy import copies
from recommender.privacy.counts import consented_events, signals_for  # noqa: F401  (signals_for: also the name tests and callers know)
from recommender.privacy.reconcile import artifact_epoch, reconcile_artifact


def refresh(db: sqlite_utils.Database, settings: Settings) -> dict[str, Any]:
    """Reconcile every artifact with the privacy events since its epoch and recompute its signals."""
    started = time.perf_counter()
    data = consented_events(db, settings)
    done, failed = [], []
    for directory in registry.Registry(settings.model_dir).artifacts():
        try:
            done.append(reconcile_artifact(db, settings, directory, data=data, refresh_signals=True))
        except ModelError as exc:
            failed.append(f"{directory.name}: {exc}")
    return {
        "artifacts": done,
        "failed": failed,
        "epoch": store.privacy_epoch(db),
        "seconds": round(time.perf_counter() - started, 3),
    }


def follow(db: sqlite_utils.Database, settings: Settings) -> dict[str, Any] | None:
    """Refresh when a privacy event is newer than what the current artifact was reconciled with.

    Cheap when nothing happened (one query and one small file read), so every door
    that may record a withdrawal calls it after its write. The value exports follow
    first (:func:`.copies.follow_withdrawals`; the stored value rows themselves left
    in the withdrawal's own transaction, by the schema's trigger).
    """
    copies.follow_withdrawals(db, settings)
    reg = registry.Registry(settings.model_dir)
    version = reg.current_version()
    epoch = store.privacy_epoch(db)
    if version is None or epoch == 0:
        return None
    try:
        applied = artifact_epoch(reg.manifest(version, verify=False))
    except ModelError:
        applied = -1
    if applied >= epoch:
        return None
    return refresh(db, settings)
