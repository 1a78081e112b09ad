"""The rights of the people in the data: access (export), erasure, and a decision log.

One module per job: :mod:`.tombstones` (proof of erasure without the id),
:mod:`.access` (export, which models learnt from a customer), :mod:`.erasure`
(tables, artifacts and copies), :mod:`.reconcile` and :mod:`.derived` (long jobs and derived data
that follow erasures and withdrawals), :mod:`.copies` (exports), :mod:`.decisions` (the decision log and its
retention), :mod:`.signup` (an erased person who really signs up again).
The names below are the package's public face.

They are loaded on first use (PEP 562), not when the package is imported:
the doors (``consent``, ``imports``, ``events``) sit below this package and
need :mod:`.tombstones`, while :mod:`.access` sits above ``consent``; eager
re-exports would make ``consent -> privacy -> access -> consent`` a cycle.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "export": "access", "models_containing": "access",
    "DecisionLog": "decisions", "prune": "decisions",
    "forget": "erasure", "scrub_artifact": "erasure",
    "subject_hash": "tombstones", "erased": "tombstones", "erased_on": "tombstones", "ensure_key": "tombstones",
    "resignup": "signup", "trained_on": "access",
    "reconcile_artifact": "reconcile", "reconcile_model": "reconcile", "staleness": "reconcile",
    "subject_of": "reconcile",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
