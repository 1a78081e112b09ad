"""Customer value: BG/NBD and Gamma-Gamma against closed forms and simulation, segments, metrics, consent."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from recommender import store
from recommender.store.rows import ConsentDecision, CustomerRow, EventRow, ProductRow
from recommender.value import bgnbd, metrics, model, segments, transactions
from recommender.value.evaluate import evaluate
from recommender.value.features import summarize
from recommender.value.transactions import Transactions, day_number

# --- BG/NBD -------------------------------------------------------------------------------------------------


def _betaf(a, b):
    return math.gamma(a) * math.gamma(b) / math.gamma(a + b)


def test_bgnbd_loglik_of_a_customer_without_repeat_purchases_is_the_gamma_poisson_zero():
    # x = 0: L = B(a, b)/B(a, b) · (α/(α+T))^r
    ll = bgnbd.bgnbd_loglik((0.5, 2.0, 1.0, 3.0), np.array([0.0]), np.array([0.0]), np.array([5.0]))
    assert ll[0] == pytest.approx(0.5 * math.log(2 / 7), rel=1e-12)


def test_bgnbd_loglik_of_a_repeat_buyer_by_hand():
    r, alpha, a, b = 0.8, 3.0, 1.5, 2.5
    x, t_x, T = 2, 4.0, 10.0
    common = math.gamma(r + x) * alpha**r / math.gamma(r)
    first = _betaf(a, b + x) / _betaf(a, b) * common / (alpha + T) ** (r + x)
    second = _betaf(a + 1, b + x - 1) / _betaf(a, b) * common / (alpha + t_x) ** (r + x)
    ll = bgnbd.bgnbd_loglik((r, alpha, a, b), np.array([x]), np.array([t_x]), np.array([T]))
    assert ll[0] == pytest.approx(math.log(first + second), rel=1e-12)


def test_p_alive_by_hand():
    params = bgnbd.BGNBDParams(0.8, 3.0, 1.5, 2.5)
    # x = 0: alive for sure; x = 2: 1 / (1 + a/(b+x-1) · ((α+T)/(α+t_x))^(r+x))
    p = bgnbd.p_alive(params, np.array([0, 2]), np.array([0.0, 4.0]), np.array([10.0, 10.0]))
    assert p[0] == 1.0
    assert p[1] == pytest.approx(1 / (1 + 1.5 / 3.5 * (13 / 7) ** 2.8), rel=1e-12)


def test_a_new_customer_expects_the_unconditional_count():
    params = bgnbd.BGNBDParams(0.24, 4.41, 0.79, 2.43)  # the paper's CDNOW estimates
    conditional = bgnbd.conditional_expected_purchases(params, 39.0, np.array([0.0]), np.array([0.0]), np.array([0.0]))
    assert conditional[0] == pytest.approx(float(bgnbd.expected_purchases(params, 39.0)), rel=1e-9)
    assert 0 < float(bgnbd.expected_purchases(params, 10.0)) < float(bgnbd.expected_purchases(params, 39.0))


def test_without_dropout_the_expectation_is_the_gamma_poisson_rate():
    # p ~ Beta(a, b) with mean a/(a+b) ≈ 1e-6: nobody drops out, E[Y(t) | x, T] = (r+x)/(α+T) · t
    params = bgnbd.BGNBDParams(0.5, 5.0, 1e-3, 1e3)
    x, t_x, T = np.array([0.0, 3.0, 10.0]), np.array([0.0, 8.0, 20.0]), np.array([20.0, 20.0, 20.0])
    expected = bgnbd.conditional_expected_purchases(params, 26.0, x, t_x, T)
    assert expected == pytest.approx((0.5 + x) / 25.0 * 26.0, rel=2e-3)


def test_closed_form_matches_the_integral_it_solves():
    params = bgnbd.BGNBDParams(0.24, 4.41, 0.79, 2.43)
    x, t_x, T = np.array([0.0, 1.0, 5.0]), np.array([0.0, 10.0, 30.0]), np.array([35.0, 35.0, 35.0])
    closed = bgnbd.conditional_expected_purchases(params, 52.0, x, t_x, T)
    numeric = bgnbd._numeric_expected(params, 52.0, x, T, nodes=200) * bgnbd.p_alive(params, x, t_x, T)
    # Gauss-Legendre converges slowly on the Beta density's p^(a-1) at 0 (a < 1): 1e-3 is its accuracy here
    assert closed == pytest.approx(numeric, rel=1e-3)


def _simulate(params, customers, seed):
    r, alpha, a, b = params
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, customers)
    p = rng.beta(a, b, customers)
    T = rng.uniform(20.0, 60.0, customers)
    x, t_x = np.zeros(customers), np.zeros(customers)
    for i in range(customers):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                break
    return x, t_x, T


def test_fit_recovers_known_parameters_from_simulated_customers():
    """4,000 customers simulated with known (r, α, a, b): r and α within 15 %, a and b within 30 % (the
    dropout's two shapes are weakly identified apart; over seeds 11-14 they land 5-27 % off), and the mean
    dropout a/(a+b) within 10 %."""
    truth = (0.5, 5.0, 0.8, 2.5)
    x, t_x, T = _simulate(truth, 4000, seed=11)
    fitted = bgnbd.fit_bgnbd(x, t_x, T, penalizer=0.0)
    for got, want, tolerance in zip(fitted, truth, (0.15, 0.15, 0.3, 0.3)):
        assert got == pytest.approx(want, rel=tolerance)
    assert fitted.a / (fitted.a + fitted.b) == pytest.approx(0.8 / 3.3, rel=0.1)
    # and the fitted model predicts the simulated total of the next 26 weeks within 5 %
    total = bgnbd.conditional_expected_purchases(fitted, 26.0, x, t_x, T).sum()
    exact = bgnbd.conditional_expected_purchases(bgnbd.BGNBDParams(*truth), 26.0, x, t_x, T).sum()
    assert total == pytest.approx(exact, rel=0.05)


# --- Gamma-Gamma --------------------------------------------------------------------------------------------


def test_gamma_gamma_conditional_value_by_hand():
    params = bgnbd.GammaGammaParams(p=6.0, q=4.0, gamma=15.0)
    assert bgnbd.population_mean_value(params) == pytest.approx(30.0)
    # n = 2, mean 50: weight pn/(pn+q-1) = 12/15 = 0.8 → 0.2 · 30 + 0.8 · 50 = 46
    got = bgnbd.conditional_expected_value(params, np.array([2.0, 1.0]), np.array([50.0, 30.0]))
    assert got == pytest.approx([46.0, 30.0])


def test_gamma_gamma_loglik_by_hand():
    p, q, g = 2.0, 3.0, 10.0
    n, m = 3.0, 7.0
    by_hand = (
        math.lgamma(p * n + q)
        - math.lgamma(p * n)
        - math.lgamma(q)
        + q * math.log(g)
        + (p * n - 1) * math.log(m)
        + p * n * math.log(n)
        - (p * n + q) * math.log(g + n * m)
    )
    assert bgnbd.gamma_gamma_loglik((p, q, g), np.array([n]), np.array([m]))[0] == pytest.approx(by_hand)


def test_gamma_gamma_fit_recovers_the_population_mean():
    rng = np.random.default_rng(5)
    p, q, g = 4.0, 3.0, 20.0
    nu = rng.gamma(q, 1 / g, 3000)
    n = rng.integers(1, 6, 3000)
    means = np.array([rng.gamma(p, 1 / v, k).mean() for v, k in zip(nu, n)])
    fitted = bgnbd.fit_gamma_gamma(n, means)
    assert bgnbd.population_mean_value(fitted) == pytest.approx(p * g / (q - 1), rel=0.1)


# --- segments and metrics -----------------------------------------------------------------------------------


def test_segments_of_a_hand_made_shop():
    #            A   B   C   D    E    F
    recency = [1, 10, 50, 100, 300, 200]
    purchase_days = [10, 1, 5, 8, 1, 9]
    # R by recency (most recent = 5): A 5, B 5, C 4, D 3, E 1, F 2 (six customers: ceil(5 · rank / 6))
    # F by purchase days, ranks B/E 1.5, C 3, D 4, F 5, A 6: A 5, B 2, C 3, D 4, E 2, F 5
    r, f = segments.rfm_scores(recency, purchase_days)
    assert list(r) == [5, 5, 4, 3, 1, 2]
    assert list(f) == [5, 2, 3, 4, 2, 5]
    assert list(segments.assign(recency, purchase_days)) == [
        "champions",
        "promising",
        "promising",
        "loyal",
        "lost",
        "at risk",
    ]
    # the R = 3, F = 3 cell and the R = 1, F = 5 cell
    assert list(segments.segment(np.array([3, 1]), np.array([3, 5]))) == ["needs attention", "can't lose"]
    assert set(segments._WHY) == set(segments.SEGMENTS)


def test_metrics_on_a_hand_made_case():
    pred = np.array([4.0, 3.0, 2.0, 1.0, 0.0])
    actual = np.array([10.0, 0.0, 5.0, 0.0, 5.0])
    assert metrics.top_share(pred, actual, 0.2) == pytest.approx(0.5)  # top 1 of 5: 10 of 20
    assert metrics.top_share(pred, actual, 0.6) == pytest.approx(0.75)  # top 3: 15 of 20
    # ranks (5, 4, 3, 2, 1) vs (5, 1.5, 3.5, 1.5, 3.5): covariance 3 / sqrt(10 · 9)
    assert metrics.spearman(pred, actual) == pytest.approx(3 / math.sqrt(90))
    # buyers score 4, 2, 0; non-buyers 3, 1: pairs won 2 + 1 + 0 of 6
    assert metrics.auc(pred, actual > 0) == pytest.approx(0.5)
    lo, hi = metrics.bootstrap_top_share(pred, actual, 0.2, resamples=200, seed=1)
    assert 0 <= lo <= hi <= 1
    deciles = metrics.deciles(pred, actual, groups=5)
    assert [d["actual"] for d in deciles] == [10.0, 0.0, 5.0, 0.0, 5.0]


# --- a shop in the store: consent, scoring, evaluation --------------------------------------------------------


def _shop(db, customers=60, seed=3):
    """Customers buying over 400 days from 2024-01-01; c00..c49 consent to personalization, the rest not."""
    rng = np.random.default_rng(seed)
    store.upsert_products(db, [ProductRow("p1", "Mug", price=10.0), ProductRow("p2", "Pan", price=40.0)])
    ids = [f"c{i:02d}" for i in range(customers)]
    store.upsert_customers(db, [CustomerRow(c, created_at="2023-12-01T00:00:00Z") for c in ids])
    start = day_number("2024-01-01") * 86400
    events = []
    for c in ids:
        rate = rng.gamma(1.0, 1 / 40)
        t = rng.uniform(0, 200)
        while t < 400:
            events.append(
                EventRow(
                    c,
                    "p1" if rng.random() < 0.7 else "p2",
                    "purchase",
                    float(rng.integers(1, 4)),
                    int(start + t * 86400),
                )
            )
            t += rng.exponential(1 / rate) + 1
    store.upsert_interactions(db, events)
    store.apply_consents(
        db, [ConsentDecision(c, "personalization", i < 50, "2023-12-01T00:00:00Z", "test") for i, c in enumerate(ids)]
    )
    return ids


def test_customers_without_the_profiling_consent_get_no_score(db, settings):
    ids = _shop(db)
    tx = transactions.load(db, settings)
    assert set(tx.customers) <= set(ids[:50])
    assert tx.not_profiled == 10
    scores = model.score(tx, settings)
    assert set(scores.customer_ids) <= set(ids[:50]) and len(scores.customer_ids) > 0
    assert set(scores.segment) <= set(segments.SEGMENTS)
    for h in settings.value.horizons:
        assert np.all(np.isfinite(scores.spend[h])) and np.all(scores.purchases[h] >= 0)
    assert np.all((scores.p_active >= 0) & (scores.p_active <= 1))
    # a withdrawal takes the customer out of the next read
    store.apply_consents(db, [ConsentDecision("c00", "personalization", False, "2025-06-01T00:00:00Z", "test")])
    again = transactions.load(db, settings)
    assert "c00" not in set(again.customers) and again.not_profiled == 11
    # the purpose is configurable
    settings.value.purpose = "marketing"
    assert len(transactions.load(db, settings).customers) == 0


def test_spend_is_quantity_times_price_per_customer_day(db, settings):
    store.upsert_products(db, [ProductRow("p1", "Mug", price=10.0)])
    store.upsert_customers(db, [CustomerRow("a", created_at="2023-12-01T00:00:00Z")])
    day = day_number("2024-03-01") * 86400
    store.upsert_interactions(
        db, [EventRow("a", "p1", "purchase", 2.0, day + 100), EventRow("a", "p1", "view", 1.0, day + 200)]
    )
    store.add_interactions(db, [EventRow("a", "p1", "purchase", 1.0, day + 300, None, 7.5)])
    store.apply_consents(db, [ConsentDecision("a", "personalization", True, "2024-01-01T00:00:00Z", "test")])
    tx = transactions.load(db, settings)
    assert list(tx.customers) == ["a"] and list(tx.day) == [day_number("2024-03-01")]
    assert list(tx.spend) == [pytest.approx(27.5)]  # 2 x 10 (catalogue) + 1 x 7.5 (paid), the view not


def test_the_evaluation_never_fits_on_the_holdout():
    ids, days, spend = [], [], []
    rng = np.random.default_rng(0)
    for i in range(300):
        for d in np.unique(rng.integers(0, 400, rng.integers(1, 8))):
            ids.append(f"c{i}")
            days.append(int(d))
            spend.append(float(rng.gamma(2, 20)))
    tx = Transactions.from_rows(ids, days, spend)
    from recommender.config import Settings

    settings = Settings()
    settings.value.bootstrap = 50
    base = evaluate(tx, settings, cut="1970-10-28")
    # doubling every holdout purchase changes the actual figures, never the predictions nor the choice
    keep = tx.day > day_number("1970-10-28")
    doubled = Transactions(tx.customers, tx.customer, tx.day, np.where(keep, tx.spend * 2, tx.spend))
    other = evaluate(doubled, settings, cut="1970-10-28")
    assert other["chosen"] == base["chosen"]
    assert [r["predicted_spend"] for r in other["estimators"]] == [r["predicted_spend"] for r in base["estimators"]]
    assert other["actual"]["spend"] == pytest.approx(2 * base["actual"]["spend"])
    assert len(summarize(tx, day_number("1970-10-28"))) == base["actual"]["customers"]


def test_value_evaluate_command_prints_every_anchor(runner, settings):
    from recommender.cli import cli

    db = store.connect(settings.db)
    _shop(db)
    db.conn.close()
    result = runner.invoke(cli, ["value", "evaluate", "--json", "--horizon", "90"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    kinds = {r["estimator"]: r["kind"] for r in payload["estimators"]}
    assert payload["estimators"][0]["kind"] == "value model"
    assert {"past spend", "BG/NBD + Gamma-Gamma", "spend in the last 90 days"} <= set(kinds)
    assert set(payload["criteria"]) >= {
        "top10_at_least_best_anchor",
        "spearman_beats_every_anchor",
        "purchases_error_beats_bgnbd",
    }
    bad = runner.invoke(cli, ["value", "evaluate", "--cut", "yesterday"])
    assert bad.exit_code == 1 and "not a date" in bad.output
