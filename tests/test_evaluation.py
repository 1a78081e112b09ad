import math

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.config import load_settings
from recommender.data.interactions import Interactions
from recommender.training import evaluation


def test_metrics_match_hand_computed_values():
    # user 0: relevant {1, 4}; list [1, 2, 4] -> hits at ranks 1 and 3
    # user 1: relevant {0};    list [3, 2, 5] -> no hit
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0]], dtype=np.float32))
    top = np.array([[1, 2, 4], [3, 2, 5]])
    m = evaluation.ranking_metrics(top, relevant, np.array([0, 1]), k=3)
    assert math.isclose(m["precision"], (2 / 3 + 0) / 2)
    assert math.isclose(m["recall"], (2 / 2 + 0) / 2)
    dcg = 1 + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)
    assert math.isclose(m["ndcg"], (dcg / idcg) / 2)
    ap = (1 / 1 + 2 / 3) / 2
    assert math.isclose(m["map"], ap / 2)


def test_metrics_k_larger_than_relevant_and_padding():
    relevant = sp.csr_matrix(np.array([[0, 0, 1]], dtype=np.float32))
    top = np.array([[2, -1, -1, -1]])
    m = evaluation.ranking_metrics(top, relevant, np.array([0]), k=4)
    assert m == {"precision": 0.25, "recall": 1.0, "ndcg": 1.0, "map": 1.0}


def tiny_data():
    # the 80th percentile of these times is 8; user 2 has no history before the cut
    user = np.array([0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 2], dtype=np.int32)
    item = np.array([0, 1, 2, 0, 3, 2, 2, 1, 3, 5, 0], dtype=np.int32)
    time = np.array([0, 1, 2, 3, 4, 5, 6, 8, 8, 9, 9], dtype=np.int64)
    n = len(user)
    return Interactions(
        user_ids=np.array(["a", "b", "c"], dtype=object),
        item_ids=np.array([f"p{i}" for i in range(6)], dtype=object),
        user=user,
        item=item,
        event=np.zeros(n, np.int16),
        quantity=np.ones(n, np.float32),
        event_types=np.array(["purchase"], dtype=object),
        weight=np.ones(n, np.float32),
        time=time,
        recommendable=np.ones(6, dtype=bool),
    )


def test_temporal_split_counts_only_new_items_of_customers_with_history():
    settings = load_settings(environ={})
    split = evaluation.temporal_split(tiny_data(), settings.als, settings.evaluation)
    assert split.cut_time == 8
    assert split.train.nnz == 6  # (1, 2) twice is one pair
    # user 0 re-touches item 1 (seen) and item 3 (new) -> only 3 is relevant; user 1: item 5; user 2: no history
    assert sorted(split.relevant[0].indices) == [3]
    assert sorted(split.relevant[1].indices) == [5]
    assert list(split.users) == [0, 1]


def test_popularity_baseline_skips_seen_items():
    settings = load_settings(environ={})
    split = evaluation.temporal_split(tiny_data(), settings.als, settings.evaluation)
    scores = evaluation.evaluate_popularity(split, k=1)
    # popularity: items 0 and 2 (2 customers), 1 and 3 (1), 4 and 5 (0).
    # user 0 has seen 0, 1, 2 -> gets 3 (a hit); user 1 has seen 0, 2, 3 -> gets 1 (a miss)
    assert scores.metrics["precision"] == 0.5


def test_ndcg_of_a_catalogue_smaller_than_k():
    """Three products, k = 10: lists are three long. One relevant product at rank 2 -> (1/log2 3) / (1/log2 2)."""
    import numpy as np
    import scipy.sparse as sp

    from recommender.training.evaluation import per_user_ndcg, ranking_metrics

    top = np.array([[2, 0, 1]])
    relevant = sp.csr_matrix(np.array([[1, 0, 0]]))
    assert per_user_ndcg(top, relevant, np.array([0]), 10) == pytest.approx([0.6309297535714575])
    metrics = ranking_metrics(top, relevant, np.array([0]), 10)
    assert metrics["precision"] == pytest.approx(0.1) and metrics["recall"] == pytest.approx(1.0)
    assert metrics["map"] == pytest.approx(0.5)
