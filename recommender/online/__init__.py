"""Online measurement: list ids, the A/B holdout, attribution of events to lists, and the report.

* :mod:`.ids` — every served list and every campaign offer gets a random id;
  responses return it and events may carry it back (``list_id``).
* :mod:`.assignment` — a stable keyed-hash assignment of customers to arms
  (``control`` gets the non-personalized list; ``challenger`` an other model).
* :mod:`.measure` — the attribution rule and :func:`report` (per arm,
  surface and model version; uplift over control with a 95 % interval).
* :mod:`.stats` — the interval's arithmetic.

Nothing here stores data of its own: the lists are decision-log rows (same
consent rule, retention and erasure) and an event's list id lives on the
event row, so both go wherever the decision log and the events go.
"""

from __future__ import annotations

from recommender.online.assignment import ARMS, CHALLENGER, CONTROL, MODEL, Assigner
from recommender.online.ids import LIST_ID_PATTERN, is_list_id, new_list_id
from recommender.online.measure import report

__all__ = [
    "ARMS",
    "CHALLENGER",
    "CONTROL",
    "LIST_ID_PATTERN",
    "MODEL",
    "Assigner",
    "is_list_id",
    "new_list_id",
    "report",
]
