"""The session protocol: sessions, V-SKNN and co-occurrence by hand, the metrics, and a split that never leaks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recommender.data.interactions import Interactions
from recommender.training import sessions as S

DAY = 86400
T0 = 1_700_000_000 - 1_700_000_000 % DAY  # a midnight, UTC


def interactions(rows, n_items: int, event_types=("view", "purchase"), weights=None) -> Interactions:
    """``rows``: (user, item, event type index, time)."""
    table = np.array(rows, dtype=np.int64)
    w = np.array([1.0, 5.0] if weights is None else weights, dtype=np.float32)
    users = int(table[:, 0].max()) + 1
    return Interactions(
        user_ids=np.array([f"c{u}" for u in range(users)], dtype=object),
        item_ids=np.array([f"p{i}" for i in range(n_items)], dtype=object),
        user=table[:, 0].astype(np.int32),
        item=table[:, 1].astype(np.int64),
        event=table[:, 2].astype(np.int64),
        quantity=np.ones(len(table), dtype=np.float32),
        event_types=np.array(event_types, dtype=object),
        weight=w[table[:, 2]],
        time=table[:, 3],
        recommendable=np.ones(n_items, dtype=bool),
    )


def hand_index() -> S.SessionIndex:
    """Four past sessions, oldest first, over products a..e = 0..4: [a b], [b c], [a c d], [d e]."""
    items = [[0, 1], [1, 2], [0, 2, 3], [3, 4]]
    indptr = np.cumsum([0] + [len(s) for s in items])
    flat = np.concatenate(items)
    return S.SessionIndex(
        S.Sessions(indptr, flat, np.ones(len(flat), np.float32), np.arange(4) * DAY + T0, np.arange(4), 5)
    )


def test_sessions_are_a_customers_day_in_time_order_each_product_once():
    data = interactions(
        [
            (0, 3, 0, T0 + 100),
            (0, 1, 0, T0 + 50),
            (0, 3, 1, T0 + 200),  # day 0 of c0: p1 then p3 (p3 twice)
            (1, 2, 1, T0 + 10),
            (1, 4, 1, T0 + 10),  # c1, one order: stored order breaks the tie
            (0, 2, 0, T0 + DAY + 5),  # day 1 of c0: a session of its own
        ],
        n_items=5,
    )
    got = S.cut_sessions(data)
    assert len(got) == 3
    # by start time: c1's (T0+10), c0's day 0 (T0+50), c0's day 1
    assert [got.session(s)[0].tolist() for s in range(3)] == [[2, 4], [1, 3], [2]]
    assert got.start.tolist() == [T0 + 10, T0 + 50, T0 + DAY + 5]
    assert got.user.tolist() == [1, 0, 0]
    # each product weighs its first event: p3 was viewed first (1), then bought
    assert got.session(1)[1].tolist() == [1.0, 1.0]


def test_vsknn_by_hand():
    index = hand_index()
    a, b, c, d, e = range(5)
    # visit [a, b]: linear decay a = 1/2, b = 1. Overlaps: S0 (a, b) 1.5, S1 (b) 1.0, S2 (a) 0.5, S3 none.
    sessions, sims = index.overlap(np.array([a, b]), np.array([0.5, 1.0]))
    assert sessions.tolist() == [0, 1, 2] and sims.tolist() == [1.5, 1.0, 0.5]
    # k = 2, all sessions sampled: neighbours S0 (1.5), S1 (1.0): a 1.5, b 2.5, c 1.0
    items, scores = index.vsknn(np.array([a, b]), k=2, m=0)
    assert dict(zip(items.tolist(), scores.tolist())) == {a: 1.5, b: 2.5, c: 1.0}
    # m = 2: only the two most recent sessions sharing a product (S1, S2): b 1.0, c 1.5, a 0.5, d 0.5
    items, scores = index.vsknn(np.array([a, b]), k=2, m=2)
    assert dict(zip(items.tolist(), scores.tolist())) == {a: 0.5, b: 1.0, c: 1.5, d: 0.5}
    # k = 1 keeps the most similar only; a tie goes to the more recent session
    items, scores = index.vsknn(np.array([c]), k=1, m=0)  # S1 and S2 both hold c (sim 1): S2 wins
    assert dict(zip(items.tolist(), scores.tolist())) == {a: 1.0, c: 1.0, d: 1.0}


def test_scorers_rank_exclude_and_fill_with_popular_products():
    index = hand_index()
    a, b, c, d, e = range(5)
    vsknn = S.SessionScorer("vsknn", index, params={"k": 2, "m": 0})
    state = vsknn.state(np.array([a, b]), np.ones(2))
    top, scores = vsknn.recommend(state, 3, exclude=[a, b])
    # c (1.0) from the neighbours, then popular products: a, b, c, d hold 2 sessions each, e 1: d, then e
    assert top.tolist() == [c, d, e] and scores.tolist() == [1.0, 0.0, 0.0]
    # the allow mask is honoured by the neighbours and the fill alike
    allow = np.array([True, True, False, True, True])
    assert vsknn.recommend(state, 2, exclude=[a, b], allow=allow)[0].tolist() == [d, e]
    co = S.SessionScorer("cooccurrence", index)
    # bought with a: S0 (b), S2 (c, d), one session each
    items, scores = index.cooccurrence(np.array([a]))
    assert dict(zip(items.tolist(), scores.tolist())) == {a: 2.0, b: 1.0, c: 1.0, d: 1.0}
    assert co.recommend(co.state(np.array([a]), np.ones(1)), 3, exclude=[a])[0].tolist() == [b, c, d]
    pop = S.SessionScorer("popularity", index)
    assert pop.recommend(pop.state(np.array([a]), np.ones(1)), 2, exclude=[a])[0].tolist() == [b, c]


def test_the_mix_by_hand():
    model = (np.array([0, 1, 2]), np.array([3.0, 2.0, 1.0]))  # min-max: 1, 0.5, 0
    session = (np.array([2, 3]), np.array([4.0, 2.0]))  # / best: 1, 0.5
    items, scores = S.SessionScorer.mix(model, session, 0.4)
    assert dict(zip(items.tolist(), np.round(scores, 6).tolist())) == {0: 0.4, 1: 0.2, 2: 0.6, 3: 0.3}


def test_metrics_by_hand():
    assert S.case_metrics([5, 3, 7], {3, 9}) == pytest.approx((1.0, 0.5, (1 / math.log2(3)) / (1 + 1 / math.log2(3))))
    assert S.case_metrics([9, 3], {3, 9}) == (1.0, 1.0, 1.0)
    assert S.case_metrics([1, 2], {3}) == (0.0, 0.0, 0.0)
    # only the first k count
    assert S.case_metrics(list(range(20)), {15}, k=10) == (0.0, 0.0, 0.0)


def test_cases_show_the_first_g_products_and_hold_out_the_rest():
    index = hand_index()
    cases = S.make_cases(index.sessions, given=(1, 2), max_sessions=0)
    # [a b] -> 1 case, [b c] -> 1, [a c d] -> 2, [d e] -> 1
    assert [(p[0].tolist(), r.tolist()) for p, r in zip(cases.prefixes, cases.rests)] == [
        ([0], [1]),
        ([1], [2]),
        ([0], [2, 3]),
        ([0, 2], [3]),
        ([3], [4]),
    ]


def shop(days: int = 60, customers: int = 40, seed: int = 3) -> Interactions:
    """A synthetic shop: each customer buys 2-4 products a day from one of two halves of the catalogue."""
    rng = np.random.default_rng(seed)
    rows = []
    for day in range(days):
        for c in rng.choice(customers, size=customers // 4, replace=False):
            half = c % 2
            for item in rng.choice(np.arange(10) + 10 * half, size=rng.integers(2, 5), replace=False):
                rows.append((int(c), int(item), 1, T0 + day * DAY + int(rng.integers(0, 3600))))
    # a product sold only in the last days: it may never be in any training index
    rows.append((0, 20, 1, T0 + (days - 1) * DAY + 10))
    rows.append((0, 1, 1, T0 + (days - 1) * DAY + 20))
    return interactions(rows, n_items=21)


def test_the_split_never_lets_a_held_out_session_into_training(settings):
    data = shop()
    sessions = S.cut_sessions(data)
    test_cut = S.session_cut(sessions)
    test = S.period(
        "test",
        data,
        sessions,
        None,
        None,
        settings,
        fitter=None,
        engine="implicit",
        given=(1,),
        max_sessions=0,
        log=print,
    )
    val = S.period(
        "validation",
        data,
        sessions,
        test_cut,
        None,
        settings,
        fitter=None,
        engine="implicit",
        given=(1,),
        max_sessions=0,
        log=print,
    )
    assert test.cut == test_cut
    assert test.index.sessions.start.max() < test.cut and len(test.index) == (sessions.start < test.cut).sum()
    assert test.index.popularity[20] == 0  # sold only in the test period
    assert test.train_sessions + test.held_out_sessions == len(sessions)
    # validation: cut inside the training period, its cases and index all before the test cut
    assert val.cut < test_cut
    assert val.index.sessions.start.max() < val.cut
    assert val.train_sessions + val.held_out_sessions == (sessions.start < test_cut).sum()


def test_the_model_is_fitted_on_the_past_of_each_cut_only(settings, monkeypatch):
    from recommender.training import recipes

    seen = []

    def fit(recipe, matrix, user_ids, item_ids, **kwargs):
        seen.append(matrix.copy())
        raise RuntimeError("stop")

    monkeypatch.setattr(recipes, "fit", fit)
    data = shop()
    sessions = S.cut_sessions(data)
    cut = S.session_cut(sessions)
    with pytest.raises(RuntimeError):
        S.period(
            "test",
            data,
            sessions,
            None,
            recipes.Recipe("als", settings),
            settings,
            fitter=None,
            engine="implicit",
            given=(1,),
            max_sessions=0,
            log=print,
        )
    assert seen[0].nnz == data.matrix(settings.als, data.time < cut).nnz
    assert seen[0][:, 20].nnz == 0


def test_evaluate_chooses_on_validation_and_prints_every_scorer(settings):
    got = S.evaluate(shop(days=80, customers=60), settings, None, given=(1, 2), max_sessions=0)
    names = [r["scorer"] for r in got["scorers"]]
    assert names == ["popularity", "cooccurrence", "vsknn"]  # no model recipe: no model or mix scorer
    chosen = [r for r in got["scorers"] if r["chosen"]]
    assert len(chosen) == 1
    assert chosen[0]["validation"]["ndcg"] == max(r["validation"]["ndcg"] for r in got["scorers"])
    assert got["choice"]["scorer"] == chosen[0]["kind"] and got["choice"]["evaluated"]
    assert len(got["vsknn_grid"]) == len(S.VSKNN_K) * len(S.VSKNN_M)
    for row in got["scorers"]:
        assert set(row["test"]) == {"hit_rate", "mrr", "ndcg", "ndcg_se", "cases"}
    # the halves of the catalogue are learnable: the session methods beat popularity
    by = {r["scorer"]: r for r in got["scorers"]}
    assert by["vsknn"]["test"]["ndcg"] > by["popularity"]["test"]["ndcg"]


def test_the_command_prints_the_table_and_records_the_choice(runner, settings):
    from recommender import store
    from recommender.cli import cli
    from recommender.ingest import imports

    db = store.connect(settings.db)
    imports.load_sample(db, settings)
    assert S.current_choice(db) == S.DEFAULT_CHOICE
    result = runner.invoke(cli, ["sessions", "evaluate", "--given", "1", "--max-sessions", "200"])
    assert result.exit_code == 0, result.output
    for word in ("popularity", "co-occurrence", "V-SKNN", "the chosen model", "model×0.5", "<- chosen", "shipped:"):
        assert word in result.output
    choice = S.current_choice(db)
    assert choice["evaluated"] and choice["scorer"] in S.SCORERS
    result = runner.invoke(
        cli, ["sessions", "evaluate", "--given", "1", "--max-sessions", "200", "--json", "--no-record"]
    )
    assert result.exit_code == 0
    import json

    payload = json.loads(result.output)
    assert payload["recorded"] is False and {r["scorer"] for r in payload["scorers"]} >= set(S.ANCHORS)
    db.conn.close()
