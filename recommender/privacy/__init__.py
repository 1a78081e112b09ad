"""The rights of the people in the data: access (export), erasure, and a decision log.

One module per job: :mod:`.tombstones` (proof of erasure without the id),
:mod:`.access` (export, which models learnt from a customer), :mod:`.erasure`
(tables, artifacts and copies), :mod:`.reconcile` and :mod:`.derived` (long jobs and
derived data that follow erasures and withdrawals), :mod:`.copies` (exports), :mod:`.decisions` (the decision log and its
retention). The names below are the package's public face.
"""

from __future__ import annotations

from .access import export, models_containing, trained_on
from .decisions import DecisionLog, prune
from .erasure import ERASED_PLACEHOLDER, forget, scrub_artifact
from .reconcile import reconcile_artifact, reconcile_model, staleness, subject_of
from .tombstones import subject_hash

__all__ = ["DecisionLog", "ERASED_PLACEHOLDER", "export", "forget", "models_containing", "prune",
           "reconcile_artifact", "reconcile_model", "scrub_artifact", "staleness", "subject_hash", "subject_of",
           "trained_on"]
