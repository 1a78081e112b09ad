"""The uplift's confidence interval: a difference of two ratio metrics, customers as the unit.

Each metric is a ratio of sums over lists, e.g. conversion = lists with a
purchase / lists served. Lists of one customer are not independent (the same
person sees many), and customers, not lists, are what the arms randomize. So
the variance of a ratio R = Σy / Σx is the linearization (delta-method)
estimate with customers as clusters,

    Var(R) ≈ Σ_c (y_c - R·x_c)² / (Σ_c x_c)²

where x_c are the customer's lists and y_c their converted lists (or
revenue). With one list per customer this is exactly p(1-p)/n, the textbook
variance of a proportion. The two arms are independent, so the difference
d = R_t - R_c has Var(d) = Var(R_t) + Var(R_c), and the 95 % interval is the
normal approximation d ± 1.96·√Var(d). Large-sample: with a few dozen
customers per arm it is rough, and the sample sizes are reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

Z95 = 1.959963984540054


def ratio(clusters: Iterable[tuple[float, float]]) -> tuple[float, float, int]:
    """``(R, Var(R), clusters)`` of ``(x_c, y_c)`` pairs; (0, 0, 0) when there is nothing."""
    pairs = list(clusters)
    sx = sum(x for x, _ in pairs)
    if sx <= 0:
        return 0.0, 0.0, len(pairs)
    r = sum(y for _, y in pairs) / sx
    var = sum((y - r * x) ** 2 for x, y in pairs) / sx**2
    return r, var, len(pairs)


def difference(treatment: Iterable[tuple[float, float]], control: Iterable[tuple[float, float]]) -> dict:
    """Treatment minus control of a ratio metric, its relative size and 95 % interval."""
    rt, vt, _ = ratio(treatment)
    rc, vc, _ = ratio(control)
    d = rt - rc
    half = Z95 * math.sqrt(vt + vc)
    return {
        "treatment_value": rt,
        "control_value": rc,
        "difference": d,
        "relative": (d / rc) if rc else None,
        "ci95": [d - half, d + half],
    }
