"""RFM segments with names a marketer knows.

Each customer gets two scores from 1 to 5 relative to the shop's other profiled
customers: **R** (recency: 5 = the fifth who bought most recently) and **F**
(frequency: 5 = the fifth with the most purchase days). A score is
``ceil(5 x average rank / customers)``, so customers tied on a value share a score.
The segment is then read from this grid (rows R, columns F):

| R \\ F | 1 | 2 | 3 | 4 | 5 |
|---|---|---|---|---|---|
| 5, 4 | new | promising | promising | champions | champions |
| 3 | hibernating | hibernating | needs attention | loyal | loyal |
| 2 | hibernating | hibernating | at risk | at risk | at risk |
| 1 | lost | lost | at risk | can't lose | can't lose |

In words: **champions** bought recently and often; **loyal** buy often but not
lately; **promising** bought recently, a few times; **new** bought recently, once
(or as rarely as the least frequent fifth); **needs attention** are middling on
both; **at risk** bought fairly often but not for a while; **can't lose** were
among the most frequent and have been gone longest; **hibernating** bought rarely
and not lately; **lost** bought rarely, long ago.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

SEGMENTS = ("champions", "loyal", "promising", "new", "needs attention", "at risk", "can't lose", "hibernating", "lost")

# _GRID[R - 1][F - 1]
_GRID = (
    ("lost", "lost", "at risk", "can't lose", "can't lose"),
    ("hibernating", "hibernating", "at risk", "at risk", "at risk"),
    ("hibernating", "hibernating", "needs attention", "loyal", "loyal"),
    ("new", "promising", "promising", "champions", "champions"),
    ("new", "promising", "promising", "champions", "champions"),
)

_WHY = {
    "champions": "bought recently and often",
    "loyal": "buys often, but not lately",
    "promising": "bought recently, a few times",
    "new": "bought recently, for the first time (or rarely)",
    "needs attention": "middling recency and frequency",
    "at risk": "bought fairly often, but not for a while",
    "can't lose": "was among the most frequent buyers and has been gone the longest",
    "hibernating": "bought rarely, and not lately",
    "lost": "bought rarely, long ago",
}


def quintile_scores(values: np.ndarray) -> np.ndarray:
    """1..5 by average rank (higher value, higher score); ties share a score."""
    values = np.asarray(values, float)
    if len(values) == 0:
        return np.zeros(0, dtype=int)
    return np.clip(np.ceil(5 * rankdata(values) / len(values)), 1, 5).astype(int)


def rfm_scores(recency_days: np.ndarray, purchase_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(R, F)`` scores of each customer."""
    return quintile_scores(-np.asarray(recency_days, float)), quintile_scores(purchase_days)


def segment(r: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Segment names (object array) from R and F scores."""
    grid = np.array(_GRID, dtype=object)
    return grid[np.asarray(r) - 1, np.asarray(f) - 1]


def assign(recency_days: np.ndarray, purchase_days: np.ndarray) -> np.ndarray:
    """Segment names of customers from days since their last purchase and their number of purchase days."""
    return segment(*rfm_scores(recency_days, purchase_days))


def why(name: str) -> str:
    """The rule of a segment, in words."""
    return _WHY[name]
