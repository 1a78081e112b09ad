"""The rights of the people in the data: access (export), erasure, and a decision log.

One module per job: :mod:`.access` (export, which models learnt from a customer),
:mod:`.erasure` (tables, artifacts and copies), :mod:`.reconcile` and
:mod:`.derived` (long jobs and derived data that follow erasures and withdrawals),
:mod:`.copies` (exports), :mod:`.decisions` (the decision log and its retention),
:mod:`.counts` (popularity and bought-together from consent-filtered events).
Tombstones, the proof of erasure every import door checks, sit lower, in
:mod:`recommender.store.tombstones`, so the doors need nothing from here; a
returning sign-up is a door of its own (:mod:`recommender.ingest.signup`).

The names below are the package's public face.
"""

from __future__ import annotations

from recommender.privacy.access import export, models_containing, trained_on
from recommender.privacy.decisions import DecisionLog, prune
from recommender.privacy.erasure import forget, scrub_artifact
from recommender.privacy.reconcile import reconcile_artifact, reconcile_model, staleness
from recommender.store.tombstones import ensure_key, erased, erased_on, subject_hash, subject_of

__all__ = [
    "DecisionLog",
    "ensure_key",
    "erased",
    "erased_on",
    "export",
    "forget",
    "models_containing",
    "prune",
    "reconcile_artifact",
    "reconcile_model",
    "scrub_artifact",
    "staleness",
    "subject_hash",
    "subject_of",
    "trained_on",
]
