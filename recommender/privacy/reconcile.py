"""Reconciling what a long job built with the erasures and withdrawals recorded while it ran.

A retrain or an export notes the privacy epoch (``max(privacy_events.id)``)
before it reads any data. Before it publishes, it asks this module for every
event after that epoch and removes those customers from what it built: an
erased customer (matched by hashing the model's ids, since the event keeps
only the tombstone) and a customer who withdrew ``personalization``.

Removal takes the customer's row out entirely: ids are sorted, so a
placeholder would say where the id sat. The artifact keeps the tombstones of
the customers erased from it (``erased_subjects``) and of those who withdrew
(``withdrawn_subjects``), so "was this model trained on X?" stays truthful and
the model knows it is stale (its item factors still carry their influence).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.errors import RecommenderError
from recommender.models import registry
from recommender.models.base import Recommender
from recommender.privacy.counts import signals_for
from recommender.store.consents import PERSONALIZATION
from recommender.store.privacy import Pending, pending
from recommender.store.tombstones import ensure_key, subject_hash, subjects_of

APPLIED = "privacy_applied_epoch"


def _drop(db: sqlite_utils.Database, settings: Settings, model: Recommender, todo: Pending) -> dict[str, int]:
    """Remove the pending customers' rows from ``model`` in memory; records their tombstones."""
    hashes = subjects_of(db, settings, model.user_ids) if todo.erased else {}
    erased = [i for i, u in enumerate(model.user_ids) if todo.erased and hashes[u] in todo.erased]
    withdrawn = [i for i, u in enumerate(model.user_ids) if u in todo.withdrawn and i not in set(erased)]
    rows = sorted(set(erased) | set(withdrawn))
    if rows:
        gone_erased = [hashes[model.user_ids[i]] for i in erased]
        gone_withdrawn = list(subjects_of(db, settings, [model.user_ids[i] for i in withdrawn]).values())
        keep = np.ones(len(model.user_ids), dtype=bool)
        keep[rows] = False
        model.drop_users(keep)
        m = model.manifest
        m["erased_subjects"] = sorted(set(m.get("erased_subjects", [])) | set(gone_erased))
        m["withdrawn_subjects"] = sorted(set(m.get("withdrawn_subjects", [])) | set(gone_withdrawn))
    return {"erased": len(erased), "withdrawn": len(withdrawn)}


def reconcile_model(db: sqlite_utils.Database, settings: Settings, model: Recommender, epoch: int) -> dict[str, Any]:
    """Remove from an in-memory model everyone erased or withdrawn after ``epoch``.

    When anyone was removed, the per-item signals (popularity, bought-together)
    are recomputed from the consent-filtered database, which no longer holds them.
    Returns the counts and the new epoch (also stamped in the manifest).
    """
    model.manifest.setdefault("data", {}).setdefault("privacy_epoch", epoch)
    todo = pending(db, epoch)
    counts = _drop(db, settings, model, todo)
    refreshed = bool(counts["erased"] or counts["withdrawn"]) and bool(model.signals)
    if refreshed:
        model.signals = signals_for(db, settings, model.item_ids)
    model.manifest[APPLIED] = max(todo.epoch, int(model.manifest.get(APPLIED, 0)))
    return {**counts, "epoch": todo.epoch, "signals_refreshed": refreshed}


def artifact_epoch(manifest: dict[str, Any]) -> int:
    """The privacy epoch an artifact is known to be reconciled with (0 when unknown)."""
    return int(manifest.get(APPLIED, manifest.get("data", {}).get("privacy_epoch", 0)) or 0)


def reconcile_artifact(
    db: sqlite_utils.Database,
    settings: Settings,
    directory: str | Path,
    epoch: int | None = None,
    *,
    signals: dict[str, np.ndarray] | None = None,
    data: Any = None,
    refresh_signals: bool = False,
) -> dict[str, Any]:
    """Reconcile one artifact on disk, rewriting its files atomically when anything changes.

    ``epoch`` defaults to the artifact's own (see :func:`artifact_epoch`).
    ``refresh_signals`` recomputes its signals from the database (``data``: an
    already loaded :class:`~recommender.data.interactions.Interactions`) even when no
    row was removed, which is what a withdrawal of someone outside the model needs.
    The files are the registry's: read, and rewritten, under its lock
    (:meth:`~recommender.models.registry.Registry.rewrite`).
    """
    directory = Path(directory)
    reg = registry.Registry(directory.parent)
    with reg.lock():
        model = reg.load(directory.name, mmap=False)
        since = artifact_epoch(model.manifest) if epoch is None else epoch
        todo = pending(db, since)
        counts = _drop(db, settings, model, todo)
        removed = counts["erased"] + counts["withdrawn"]
        refresh = (refresh_signals or removed > 0) and bool(model.signals)
        if refresh:
            model.signals = signals_for(db, settings, model.item_ids, data)
        if removed or refresh or artifact_epoch(model.manifest) < todo.epoch:
            model.manifest[APPLIED] = max(todo.epoch, int(model.manifest.get(APPLIED, 0)))
            reg.rewrite(directory.name, model)
    return {"version": directory.name, **counts, "epoch": todo.epoch, "signals_refreshed": refresh}


def staleness(
    db: sqlite_utils.Database, manifest: dict[str, Any], user_ids: Any = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Since when a model's factors carry someone erased or withdrawn after its data epoch.

    Item factors cannot forget without a retrain. A model is stale from the first
    privacy event, recorded after the epoch of the data it was trained on, that
    touches a customer it was trained on: an erasure whose tombstone it lists in
    ``erased_subjects``, or a withdrawal of an id in ``user_ids`` or listed (as
    a tombstone) in ``withdrawn_subjects``. Returns ``stale``, ``stale_since``
    (ISO UTC or None) and ``hours`` (how long, or None). Matching a withdrawal
    against ``withdrawn_subjects`` needs the tombstone key (``settings``).
    """
    base = int(manifest.get("data", {}).get("privacy_epoch", 0) or 0)
    erased = set(manifest.get("erased_subjects", []))
    withdrawn = set(manifest.get("withdrawn_subjects", []))
    users = user_ids if user_ids is not None else ()
    since = None
    events = store.privacy_events_since(db, base)
    key = None
    if withdrawn and settings is not None:
        try:
            key = ensure_key(db, settings)
        except RecommenderError:  # no readable key: withdrawals can still be matched by id
            key = None
    for ev in events:
        if ev["kind"] == "erasure":
            hit = ev["subject_hash"] in erased
        else:
            hit = ev["purpose"] == PERSONALIZATION and (
                ev["customer_id"] in users or (key is not None and subject_hash(key, ev["customer_id"]) in withdrawn)
            )
        if hit and (since is None or ev["recorded_at"] < since):
            since = ev["recorded_at"]
    hours = None
    if since is not None:
        at = dt.datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        hours = round((dt.datetime.now(dt.UTC) - at).total_seconds() / 3600.0, 4)
    return {"stale": since is not None, "stale_since": since, "hours": hours}
