"""BG/NBD and Gamma-Gamma, written on scipy: the buy-till-you-die model and its spend companion.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while
active, a customer buys at rate λ ~ Gamma(r, α); after each purchase they drop out
with probability p ~ Beta(a, b). A customer is summarised by ``x`` (repeat
purchases: purchase days after the first), ``t_x`` (time of the last purchase
after the first) and ``T`` (time from the first purchase to the cut). Time here is
in **weeks** wherever the caller does not say otherwise (the unit only rescales α).

Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): the value of each purchase
is Gamma(p, ν) with ν ~ Gamma(q, γ) per customer; the conditional expected value
per purchase of a customer with ``n`` purchases of mean ``m`` is a weighted mean
of the population mean ``pγ/(q-1)`` and ``m``. We use all of a customer's
purchases (the first included), so a one-time buyer's single order counts too.

Both fits maximise the log-likelihood over log-parameters with L-BFGS-B, plus a
small L2 penalty ``penalizer * sum(params**2)`` on the mean log-likelihood per customer
(as `lifetimes` does): without it
BG/NBD on real shops often drifts to a → 0 (nobody ever drops out).
Everything is vectorised numpy: a million customers score in about a second.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1


class BGNBDParams(NamedTuple):
    r: float
    alpha: float
    a: float
    b: float


class GammaGammaParams(NamedTuple):
    p: float
    q: float
    gamma: float


# --- BG/NBD ------------------------------------------------------------------------------------------------


def bgnbd_loglik(
    params: BGNBDParams | tuple[float, float, float, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Each customer's log-likelihood under BG/NBD (Fader, Hardie & Lee 2005, eq. 6), an array.

    L = B(a, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
        + [x > 0] · B(a+1, b+x-1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))
    """
    r, alpha, a, b = (float(v) for v in params)
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    first = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        second = np.where(
            x > 0, betaln(a + 1, np.maximum(b + x - 1, 1e-300)) - betaln(a, b) - (r + x) * np.log(alpha + t_x), -np.inf
        )
    return common + np.logaddexp(first, second)


# Each parameter is kept within [1e-6, 1e4] (in log space): unbounded, a fit on a short history can run
# to b = 1e10, where the closed form of the expectation loses all its digits.
_BOUNDS = [(np.log(1e-6), np.log(1e4))] * 4


def fit_bgnbd(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, penalizer: float = 0.01, weights: np.ndarray | None = None
) -> BGNBDParams:
    """Maximum (penalised) likelihood estimates of (r, α, a, b).

    Customers with the same ``(x, t_x, T)`` are folded into one weighted row first,
    so the fit costs as many likelihood terms as there are distinct summaries.
    """
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    if weights is None:
        keys = np.column_stack([x, t_x, T])
        keys, counts = np.unique(keys, axis=0, return_counts=True)
        x, t_x, T = keys.T
        weights = counts.astype(float)
    total = float(weights.sum()) or 1.0
    # The same likelihood as bgnbd_loglik, with the gamma and beta functions taken once per distinct x.
    xs, xi = np.unique(x, return_inverse=True)
    repeat = x > 0

    def objective(log_params: np.ndarray) -> float:
        r, alpha, a, b = params = np.exp(log_params)
        base = betaln(a, b)
        common = (gammaln(r + xs) - gammaln(r) + r * np.log(alpha))[xi]
        first = (betaln(a, b + xs) - base)[xi] - (r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            second = np.where(
                repeat,
                (betaln(a + 1, np.maximum(b + xs - 1, 1e-300)) - base)[xi] - (r + x) * np.log(alpha + t_x),
                -np.inf,
            )
        ll = common + np.logaddexp(first, second)
        # a sum, not a dot product: BLAS threads cost more than they give on a vector this short
        return -float(np.sum(weights * ll)) / total + penalizer * float(np.sum(params * params))

    start = np.log([1.0, min(max(float(np.mean(T)), 1e-3), 1e3), 1.0, 1.0])
    best = None
    for method in ("Nelder-Mead", "L-BFGS-B"):
        result = minimize(
            objective,
            start if best is None else best.x,
            method=method,
            bounds=_BOUNDS,
            options={"maxiter": 800} if method == "Nelder-Mead" else {"maxiter": 1000},
        )
        if best is None or (np.isfinite(result.fun) and result.fun <= best.fun):
            best = result
    return BGNBDParams(*(float(v) for v in np.exp(best.x)))


def _hyp2f1(a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Gauss's 2F1 with the Euler transform where scipy's series loses its way (large a, b and z near 1)."""
    value = hyp2f1(a, b, c, z)
    bad = ~np.isfinite(value)
    if np.any(bad):
        a_, b_, c_, z_ = (np.broadcast_to(v, value.shape)[bad] for v in (a, b, c, z))
        value = value.copy()
        value[bad] = (1 - z_) ** (c_ - a_ - b_) * hyp2f1(c_ - a_, c_ - b_, c_, z_)
    return value


def p_alive(params: BGNBDParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(still active at the cut | x, t_x, T) = 1 / (1 + [x > 0] · a/(b+x-1) · ((α+T)/(α+t_x))^(r+x))."""
    r, alpha, a, b = params
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_ratio = (
            np.log(a)
            - np.log(np.maximum(b + x - 1, 1e-300))
            + (r + x) * (np.log(alpha + np.asarray(T, float)) - np.log(alpha + np.asarray(t_x, float)))
        )
        odds = np.where(x > 0, np.exp(np.minimum(log_ratio, 700.0)), 0.0)
    return 1.0 / (1.0 + odds)


def expected_purchases(params: BGNBDParams, t: float | np.ndarray) -> np.ndarray:
    """E[X(t)] for a new customer, unconditionally: (a+b-1)/(a-1) · [1 - (α/(α+t))^r · 2F1(r, b; a+b-1; t/(α+t))]."""
    r, alpha, a, b = params
    t = np.asarray(t, dtype=float)
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * _hyp2f1(r, b, a + b - 1, z))


def conditional_expected_purchases(
    params: BGNBDParams, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` (eq. 10 of the paper), an array.

    [(a+b+x-1)/(a-1)] · [1 - ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1; t/(α+T+t))]
    / [1 + [x > 0] · a/(b+x-1) · ((α+T)/(α+t_x))^(r+x)]
    """
    r, alpha, a, b = params
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    if t <= 0:
        return np.zeros_like(x)
    z = t / (alpha + T + t)
    head = (a + b + x - 1) / (a - 1)
    tail = 1 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * _hyp2f1(r + x, b + x, a + b + x - 1, z)
    value = head * tail * p_alive(params, x, t_x, T)
    if np.isclose(a, 1.0) or not np.all(np.isfinite(value)):
        # a = 1 is a removable singularity of the closed form; near it (or where 2F1 overflows) integrate
        # the same expectation numerically: E = E_posterior[(1/p)(1 - exp(-λ p t))] · P(alive).
        value = np.where(np.isfinite(value), value, _numeric_expected(params, t, x, T) * p_alive(params, x, t_x, T))
    return np.maximum(value, 0.0)


def _numeric_expected(params: BGNBDParams, t: float, x: np.ndarray, T: np.ndarray, nodes: int = 64) -> np.ndarray:
    """E[(1/p)(1 - e^(-λ p t)) | alive], λ ~ Gamma(r+x, α+T), p ~ Beta(a, b+x), by Gauss-Legendre on p and
    the Laplace transform of the gamma in λ: E_λ[e^(-λ p t)] = ((α+T)/(α+T+p t))^(r+x)."""
    r, alpha, a, b = params
    u, w = np.polynomial.legendre.leggauss(nodes)
    p = (u + 1) / 2
    w = w / 2
    x = np.asarray(x, float)[:, None]
    T = np.asarray(T, float)[:, None]
    log_density = (a - 1) * np.log(p) + (b + x - 1) * np.log1p(-p) - betaln(a, b + x)
    inner = (1 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + p * t)))) / p
    return (np.exp(log_density) * inner * w).sum(axis=1)


# --- Gamma-Gamma -------------------------------------------------------------------------------------------


def gamma_gamma_loglik(
    params: GammaGammaParams | tuple[float, float, float], n: np.ndarray, mean_value: np.ndarray
) -> np.ndarray:
    """Log-density of a customer's mean purchase value ``m`` over ``n`` purchases under Gamma-Gamma.

    ln Γ(pn+q) - ln Γ(pn) - ln Γ(q) + q ln γ + (pn-1) ln m + pn ln n - (pn+q) ln(γ + n m)
    """
    p, q, gamma = (float(v) for v in params)
    n = np.asarray(n, dtype=float)
    m = np.asarray(mean_value, dtype=float)
    return (
        gammaln(p * n + q)
        - gammaln(p * n)
        - gammaln(q)
        + q * np.log(gamma)
        + (p * n - 1) * np.log(m)
        + p * n * np.log(n)
        - (p * n + q) * np.log(gamma + n * m)
    )


def fit_gamma_gamma(n: np.ndarray, mean_value: np.ndarray, penalizer: float = 0.0) -> GammaGammaParams:
    """Maximum (penalised) likelihood (p, q, γ) from customers with ``n >= 1`` purchases of mean value > 0."""
    n = np.asarray(n, dtype=float)
    m = np.asarray(mean_value, dtype=float)
    keep = (n >= 1) & (m > 0)
    n, m = n[keep], m[keep]
    count = max(len(n), 1)

    log_m, log_n = np.log(m), np.log(n)

    def objective(log_params: np.ndarray) -> float:
        p, q, gamma = params = np.exp(log_params)
        pn = p * n
        ll = (
            gammaln(pn + q)
            - gammaln(pn)
            - gammaln(q)
            + q * np.log(gamma)
            + (pn - 1) * log_m
            + pn * log_n
            - (pn + q) * np.log(gamma + n * m)
        )
        return -float(np.sum(ll)) / count + penalizer * float(np.sum(params * params))

    start = np.log([1.0, 2.0, min(max(float(np.mean(m)) if len(m) else 1.0, 1e-3), 1e3)])
    best = None
    for method in ("Nelder-Mead", "L-BFGS-B"):
        result = minimize(objective, start if best is None else best.x, method=method, bounds=_BOUNDS[:3])
        if best is None or (np.isfinite(result.fun) and result.fun <= best.fun):
            best = result
    return GammaGammaParams(*(float(v) for v in np.exp(best.x)))


def conditional_expected_value(params: GammaGammaParams, n: np.ndarray, mean_value: np.ndarray) -> np.ndarray:
    """E[value per purchase | n, m] = (q-1)/(pn+q-1) · pγ/(q-1) + pn/(pn+q-1) · m.

    With q <= 1 the population mean is infinite; the observed mean is returned then.
    """
    p, q, gamma = params
    n = np.asarray(n, dtype=float)
    m = np.asarray(mean_value, dtype=float)
    if q <= 1:
        return m.copy()
    population = p * gamma / (q - 1)
    weight = p * n / (p * n + q - 1)
    return (1 - weight) * population + weight * m


def population_mean_value(params: GammaGammaParams) -> float:
    """pγ/(q-1): the expected value per purchase of a customer we know nothing about (inf when q <= 1)."""
    p, q, gamma = params
    return p * gamma / (q - 1) if q > 1 else float("inf")
