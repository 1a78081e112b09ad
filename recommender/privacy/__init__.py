"""The rights of the people in the data: access (export), erasure, and a decision log.

One module per job: :mod:`.tombstones` (proof of erasure without the id),
:mod:`.access` (export, which models learnt from a customer), :mod:`.erasure`
(tables, artifacts and copies), :mod:`.decisions` (the decision log and its
retention). The names below are the package's public face.
"""

from __future__ import annotations

from .access import export, models_containing
from .decisions import DecisionLog, prune
from .erasure import ERASED_PLACEHOLDER, forget, scrub_artifact
from .tombstones import subject_hash

__all__ = ["DecisionLog", "ERASED_PLACEHOLDER", "export", "forget", "models_containing", "prune", "scrub_artifact",
           "subject_hash"]
