import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from recommender import store
from recommender.config import load_settings
from recommender.data import interactions
from recommender.store.rows import ConsentDecision, CustomerRow, EventRow, ProductRow


def make_shop(db, consent, events):
    store.upsert_customers(db, [CustomerRow(f"c{i}", created_at="2025-01-01T00:00:00Z") for i in range(len(consent))])
    store.upsert_products(db, [ProductRow(f"p{j}", f"P{j}", price=1.0) for j in range(5)])
    rows = [EventRow(f"c{u}", f"p{i}", e, float(q), 1_700_000_000 + t) for u, i, e, q, t in events]
    store.upsert_interactions(db, rows)
    consent_rows = [
        ConsentDecision(f"c{i}", "personalization", g, "2025-01-01T00:00:00Z", "test")
        for i, g in enumerate(consent)
        if g is not None
    ]
    store.set_consents(db, consent_rows)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    consent=st.lists(st.sampled_from([True, False, None]), min_size=1, max_size=8),
    raw_events=st.lists(
        st.tuples(
            st.integers(0, 7),
            st.integers(0, 4),
            st.sampled_from(["view", "add_to_cart", "purchase"]),
            st.integers(1, 5),
            st.integers(0, 10_000),
        ),
        max_size=40,
    ),
)
def test_no_entry_from_a_customer_without_personalization_consent(tmp_path_factory, consent, raw_events):
    db = store.connect(tmp_path_factory.mktemp("shop") / "p.db", create=True)
    events = [e for e in raw_events if e[0] < len(consent)]
    make_shop(db, consent, events)
    settings = load_settings(environ={})
    data = interactions.load(db, settings)
    matrix = data.matrix(settings.als)
    rows_with_entries = {data.user_ids[u] for u in np.flatnonzero(np.diff(matrix.indptr))}
    granted = {f"c{i}" for i, g in enumerate(consent) if g is True}
    assert rows_with_entries <= granted
    assert set(data.user_ids) <= granted
    # Every event of a consenting customer is there.
    expected = {(f"c{u}", f"p{i}") for u, i, *_ in events if consent[u] is True}
    got = {(data.user_ids[u], data.item_ids[i]) for u, i in zip(*matrix.nonzero())}
    assert got == expected
    db.conn.close()


def test_confidence_combines_weights_quantity_and_log_scaling(small_shop):
    settings = load_settings(environ={})
    settings.als.alpha = 2.0
    settings.als.half_life_days = 0.0
    data = interactions.load(small_shop, settings)
    assert list(data.user_ids) == ["c1", "c2"]  # c3 never consented
    counts = data.weighted_counts()
    c1, p1 = list(data.user_ids).index("c1"), list(data.item_ids).index("p1")
    assert counts[c1, p1] == 1 * 1.0 + 2 * 5.0  # one view + a purchase of two
    matrix = data.matrix(settings.als)
    assert np.isclose(matrix[c1, p1], 1 + 2.0 * np.log1p(11.0))
    settings.als.log_scaling = False
    assert np.isclose(data.matrix(settings.als)[c1, p1], 2.0 * 11.0)


def test_time_decay_halves_weight_per_half_life(db):
    make_shop(db, [True], [(0, 0, "purchase", 1, 0), (0, 1, "purchase", 1, 30 * 86400)])
    settings = load_settings(environ={})
    data = interactions.load(db, settings)
    counts = data.weighted_counts(half_life_days=30.0)
    assert np.isclose(counts[0, 0], 2.5) and np.isclose(counts[0, 1], 5.0)


def test_hidden_and_expired_products_stay_in_history_but_are_not_recommendable(small_shop):
    settings = load_settings(environ={})
    data = interactions.load(small_shop, settings, as_of=dt.date(2026, 1, 1))
    flags = dict(zip(data.item_ids, data.recommendable))
    assert flags == {"p1": True, "p2": True, "p3": False, "p4": False}  # p3 hidden, p4 expired 2025-12-31
    assert interactions.load(small_shop, settings, as_of=dt.date(2025, 6, 1)).recommendable.sum() == 3


@pytest.mark.parametrize("half_life", [0.0, 7.0])
def test_customer_confidences_match_the_training_matrix(sample_db, half_life):
    settings = load_settings(environ={})
    settings.als.half_life_days = half_life
    data = interactions.load(sample_db, settings)
    matrix = data.matrix(settings.als)
    item_index = {p: i for i, p in enumerate(data.item_ids)}
    for u in (0, 5, 50):
        items, conf = interactions.customer_confidences(
            sample_db, settings, data.user_ids[u], item_index, reference_time=int(data.time.max())
        )
        row = matrix[u]
        assert list(items) == list(row.indices)
        assert np.allclose(conf, row.data, rtol=1e-5)
